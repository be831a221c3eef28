// One EventSource per stream.  The browser reconnects by itself (sending Last-Event-ID);
// when it gives up (the server answered 503, or the page was offline) we reopen the stream
// with ?last_event_id= after a backoff, so nothing is lost or repeated either way.

// EventSource has no wildcard listener: these are the types Loom emits today.
export const EVENT_TYPES = [
  'bead.created', 'bead.updated', 'bead.status_change', 'bead.assigned', 'bead.completed',
  'bead.deleted', 'bead.redispatched', 'comment.created', 'comment.updated', 'comment.deleted',
  'project.created', 'project.updated', 'project.deleted', 'agent.spawned', 'agent.status_change',
  'agent.updated', 'agent.deleted', 'persona.updated', 'provider.registered', 'provider.updated',
  'provider.deleted', 'run.queued', 'run.started', 'run.iteration', 'run.finished', 'run.requeued',
  'run.released', 'bead.loop_detected', 'bead.recovered', 'agent.reset', 'decision.created',
  'decision.decided', 'conversation.injected', 'conversation.delivered', 'motivation.created',
  'motivation.updated', 'motivation.enabled', 'motivation.disabled', 'motivation.deleted',
  'motivation.fired', 'motivation.skipped', 'motivation.status_change', 'budget.warning',
  'budget.exceeded', 'budget.updated',
];

// The log stream carries only "log.<level>" events (plus Loom's log.message and log.line).
export const LOG_TYPES = ['log.debug', 'log.info', 'log.warn', 'log.error', 'log.message', 'log.line'];

// Every open stream, so that signing out can end them all before the session does: a stream
// that reconnects after the session ended would only collect 401s.
const open = new Set();
export function closeAllStreams() {
  for (const s of Array.from(open)) s.close();
}

export class LiveStream {
  // onEvent(event), onState('connecting' | 'live' | 'reconnecting' | 'closed')
  constructor(path, { lastEventId = null, types = EVENT_TYPES, onEvent, onState = () => {} }) {
    this.path = path;
    this.lastEventId = lastEventId;
    this.types = types;
    this.onEvent = onEvent;
    this.onState = onState;
    this.es = null;
    this.timer = null;
    this.backoff = 1000;
    this.stopped = false;
    open.add(this);
    this.open('connecting');
  }

  open(state) {
    this.onState(state);
    let url = this.path;
    if (this.lastEventId != null) url += `${url.includes('?') ? '&' : '?'}last_event_id=${encodeURIComponent(this.lastEventId)}`;
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener('connected', (e) => {
      this.track(e);
      this.backoff = 1000;
      this.onState('live');
    });
    const handler = (e) => {
      if (this.es !== es) return;
      this.track(e);
      let ev;
      try { ev = JSON.parse(e.data); } catch { return; }
      this.onEvent(ev);
    };
    for (const t of this.types) es.addEventListener(t, handler);
    es.onerror = () => {
      if (this.es !== es || this.stopped) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (non-200 answer): retry ourselves, resuming after the last id.
        es.close();
        this.onState('reconnecting');
        clearTimeout(this.timer);
        this.timer = setTimeout(() => { if (!this.stopped) this.open('reconnecting'); }, this.backoff);
        this.backoff = Math.min(this.backoff * 2, 30000);
      } else {
        this.onState('reconnecting');
      }
    };
  }

  track(e) {
    if (e.lastEventId) this.lastEventId = e.lastEventId;
  }

  close() {
    open.delete(this);
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
    this.onState('closed');
  }
}
