// What the page knows about the chosen project, kept current by the event stream, and a tiny
// change notifier the views subscribe to.

export const STATUSES = ['open', 'in_progress', 'blocked', 'closed', 'deferred'];
export const STATUS_LABEL = {
  open: 'Open', in_progress: 'In progress', blocked: 'Blocked', closed: 'Closed', deferred: 'Deferred',
};
export const TYPES = ['task', 'bug', 'feature', 'epic', 'chore', 'decision'];
export const PRIORITY_LABEL = ['P0', 'P1', 'P2', 'P3'];

export const state = {
  projects: [],
  project: null, // the project object
  beads: new Map(), // id -> bead (list rows carry no description)
  beadsTruncated: false,
  agents: new Map(), // id -> agent
  events: [], // newest last, capped
  loaded: false,
};

const listeners = new Map();
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
}
export function emit(topic, arg) {
  for (const fn of listeners.get(topic) || []) {
    try { fn(arg); } catch (e) { console.warn(`listener for ${topic} failed:`, e); }
  }
}

// Keeps the newer copy of a bead: replayed events must not roll back what a fetch returned.
export function upsertBead(bead) {
  if (!bead || !bead.id || !state.project || bead.project_id !== state.project.id) return false;
  const old = state.beads.get(bead.id);
  if (old && old.updated_at && bead.updated_at && bead.updated_at < old.updated_at) return false;
  const merged = { ...bead };
  if (old && merged.description === undefined) merged.description = old.description;
  state.beads.set(bead.id, merged);
  return true;
}

export function agentName(id) {
  if (!id) return '';
  const a = state.agents.get(id);
  return a ? a.name : id;
}

export function beadNumber(id) {
  const m = /-(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}
