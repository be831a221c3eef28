// DOM helpers: every node is built with createElement and textContent, never from HTML
// strings, so nothing the API returns can become markup.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// h('button', {class: 'btn', onclick: fn, 'aria-label': 'x'}, 'text', child, [more])
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s('rect', {x: 0, width: '40%'}): the same for SVG elements (charts).
const SVG_NS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'hidden' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// "3 min ago" for recent times, a short date otherwise; the full time goes in the title.
export function ago(iso) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: 'numeric' });
}

export function time(iso) {
  const el = h('time', { datetime: iso || '', title: iso ? new Date(iso).toLocaleString() : '' }, ago(iso));
  return el;
}

export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString(undefined, { hour12: false });
}

// Shows or hides a form's error box (and marks the field the API named, if any).
export function formError(form, message) {
  const box = $('.form-error', form);
  $$('[aria-invalid]', form).forEach((el) => el.removeAttribute('aria-invalid'));
  $$('.field-error', form).forEach((el) => { el.hidden = true; el.textContent = ''; });
  if (!message) { if (box) { box.hidden = true; box.textContent = ''; } return; }
  const field = /^([a-z_]+):/.exec(message);
  const input = field && form.elements.namedItem(field[1]);
  const slot = input && input.id && document.getElementById(`${input.id}-err`);
  if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
    if (box) box.hidden = true;
    input.focus();
  } else if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

export function setBusy(form, busy) {
  $$('button[type=submit]', form).forEach((b) => { b.disabled = busy; });
}

export function option(value, label, selected) {
  return h('option', { value, selected: !!selected }, label ?? value);
}

// Replaces a <select>'s options after the first `keep`, preserving its value when still offered.
export function fillSelect(select, keep, items) {
  const value = select.value;
  while (select.options.length > keep) select.remove(keep);
  for (const [v, label] of items) select.append(option(v, label));
  select.value = Array.from(select.options).some((o) => o.value === value) ? value : select.options[0]?.value ?? '';
}

// Puts `nodes` in `parent` in this order, moving only what is out of place, so a node that
// stays keeps its focus and what is typed in it.
export function syncChildren(parent, nodes) {
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}

// Runs fn (which rebuilds part of root) and puts the focus back on the rebuilt element that
// has the same data-focus key as the one that had it.
export function keepFocus(root, fn) {
  const el = document.activeElement;
  const key = el && root.contains(el) && el.dataset ? el.dataset.focus : null;
  fn();
  const again = key && root.querySelector(`[data-focus="${CSS.escape(key)}"]`);
  if (again) again.focus();
}

// Shows a message in an error box (role=alert), or hides it with null.
export function showMessage(box, message) {
  box.textContent = message || '';
  box.hidden = !message;
}

// Numbers for people: 12,345 · $0.0123 · 820 ms / 2.4 s.
export function fmtNum(n) {
  return Number(n || 0).toLocaleString('en-US');
}

export function fmtUsd(n) {
  const v = Number(n || 0);
  if (v === 0) return '$0';
  return `$${v < 0.01 ? v.toFixed(4) : v < 100 ? v.toFixed(2) : Math.round(v).toLocaleString('en-US')}`;
}

export function fmtMs(n) {
  const v = Number(n || 0);
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10000 ? 1 : 0)} s`;
}
