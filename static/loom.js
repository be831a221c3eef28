// Loom dashboard (first cut): projects and their beads from the REST API, no build step.
'use strict';

const $ = (id) => document.getElementById(id);

async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text == null ? '—' : String(text);
  return td;
}

function message(el, text, colspan) {
  el.replaceChildren();
  const node = document.createElement(colspan ? 'tr' : 'li');
  const inner = colspan ? Object.assign(document.createElement('td'), { colSpan: colspan }) : node;
  inner.className = 'empty';
  inner.textContent = text;
  if (colspan) node.append(inner);
  el.append(node);
}

async function showBeads(project, button) {
  document.querySelectorAll('#projects button').forEach((b) => b.setAttribute('aria-current', b === button));
  $('beads-of').textContent = `in ${project.name}`;
  try {
    const beads = await getJSON(`/api/v1/beads?project_id=${encodeURIComponent(project.id)}&limit=200`);
    if (!beads.length) return message($('beads'), 'No beads yet.', 5);
    $('beads').replaceChildren(...beads.map((b) => {
      const tr = document.createElement('tr');
      tr.append(cell(b.id), cell(`P${b.priority}`), cell(b.status), cell(b.title), cell(b.assigned_to));
      return tr;
    }));
  } catch (e) {
    message($('beads'), `Could not load beads: ${e.message}`, 5);
  }
}

async function load() {
  try {
    await getJSON('/health/ready');
    $('health').textContent = 'healthy';
    $('health').className = 'pill ok';
  } catch (e) {
    $('health').textContent = 'unavailable';
    $('health').className = 'pill bad';
  }
  try {
    const projects = await getJSON('/api/v1/projects');
    if (!projects.length) return message($('projects'), 'No projects yet: POST /api/v1/projects.');
    $('projects').replaceChildren(...projects.map((p) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.textContent = `${p.name} (${p.id})`;
      b.addEventListener('click', () => showBeads(p, b));
      li.append(b);
      return li;
    }));
  } catch (e) {
    message($('projects'), `Could not load projects: ${e.message}`);
  }
}

load();
