// The REST client: JSON in and out under /api/v1; failures become ApiError with the API's
// own message ({"error": "..."}), and outages (no answer, 502-504) are reported to the
// listener set with onOutage so the page can show one banner.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
  get outage() { return this.status === 0 || this.status >= 500; }
}

let outageListener = () => {};
export function onOutage(fn) { outageListener = fn; }

// The session cookie authenticates every request; state changes also carry the session's
// CSRF token (from login or /auth/me).  A 401 means the session ended: the listener set with
// onUnauthorized asks the person to sign in again.
let csrfToken = null;
export function setCsrf(token) { csrfToken = token; }
let unauthorizedListener = () => {};
export function onUnauthorized(fn) { unauthorizedListener = fn; }

export async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (method !== 'GET' && csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const url = path.startsWith('/') && !path.startsWith('/api/') && !path.startsWith('/health') ? `/api/v1${path}` : path;
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    const err = new ApiError(0, 'cannot reach the Loom server');
    outageListener(err);
    throw err;
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string') ? data.error : `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, msg);
    if (err.outage) outageListener(err);
    if (res.status === 401 && !url.endsWith('/auth/login')) unauthorizedListener(err);
    throw err;
  }
  outageListener(null);
  return { data, headers: res.headers };
}

// A POST whose answer is a Server-Sent Event stream (pair programming): resolves with the
// Response for the caller to read (readEvents below) once the stream opened; a refusal (any
// answer but 200) throws an ApiError with the API's message, as request() does.
export async function postStream(path, body) {
  const init = {
    method: 'POST',
    headers: { Accept: 'text/event-stream', 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  };
  if (csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    const err = new ApiError(0, 'cannot reach the Loom server');
    outageListener(err);
    throw err;
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { const data = await res.json(); if (typeof data.error === 'string') msg = data.error; } catch { /* not JSON */ }
    const err = new ApiError(res.status, msg);
    if (err.outage) outageListener(err);
    if (res.status === 401) unauthorizedListener(err);
    throw err;
  }
  outageListener(null);
  return res;
}

// Reads a Server-Sent Event stream from a fetch Response as it arrives, calling
// onEvent(name, data) per event (data parsed as JSON when it is JSON); resolves at its end.
export async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = pending.indexOf('\n\n')) >= 0) {
      const block = pending.slice(0, cut);
      pending = pending.slice(cut + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (!data.length) continue;
      let parsed = data.join('\n');
      try { parsed = JSON.parse(parsed); } catch { /* left as text */ }
      onEvent(name, parsed);
    }
  }
}

export const get = async (path) => (await request('GET', path)).data;
export const post = async (path, body) => (await request('POST', path, body ?? {})).data;
export const patch = async (path, body) => (await request('PATCH', path, body)).data;
export const put = async (path, body) => (await request('PUT', path, body)).data;
export const del = async (path) => (await request('DELETE', path)).data;

export const enc = encodeURIComponent;

// Every page of a list that answers X-Next-Offset, up to `max` rows.
export async function getAll(path, max = 10000) {
  const rows = [];
  let offset = 0;
  const sep = path.includes('?') ? '&' : '?';
  for (;;) {
    const { data, headers } = await request('GET', `${path}${sep}limit=1000&offset=${offset}`);
    rows.push(...data);
    const next = headers.get('X-Next-Offset');
    if (!next || rows.length >= max) return { rows, truncated: !!next };
    offset = Number(next);
  }
}

// A refresh that runs at most once at a time: a call while it runs asks for one more pass
// afterwards, so a burst of events costs two requests, not one each.  fn reports its own errors.
export function refresher(fn) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    try {
      do { again = false; await fn(); } while (again);
    } catch (e) {
      console.warn('refresh failed:', e);
    } finally {
      running = false;
    }
  };
}
