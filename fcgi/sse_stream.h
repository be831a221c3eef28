/*
 * sse_stream — what a request on loom-sse asks for, and the life of a stream.
 *
 * Routes are data (stream_routes in sse_stream.c):
 *   /api/v1/events/stream         every event; filters project_id, type (exact)
 *   /api/v1/activity-feed/stream  the activity of every event that is one (SSE event
 *                                 "activity", data the activity JSON); filter project_id
 *   /api/v1/logs/stream           events whose type starts with "log."; filter project_id
 *   /api/v1/notifications/stream  the signed-in user's own events ("notification",
 *                                 "notification.read"), never anyone else's; no filter
 * An event with a recipient (one user's notification) goes to that user's notifications
 * streams only; the user is LOOM_USER from nginx's auth_request, as the projects one may watch
 * are LOOM_PROJECTS.
 * All take last_event_id (or the Last-Event-ID header, which wins: EventSource sends it on
 * every reconnect while the URL keeps the first value).  Bad parameters are a 400 JSON error,
 * a full process a 503 with Retry-After and an SSE `retry:` in the body.
 *
 * A stream starts with `retry: 2000` and an `event: connected` carrying the id it continues
 * from (also as its `id:`, so a client that reconnects before any event resumes from there
 * rather than from the new head).  Without a resume id it starts LIVE at the ring's head.
 * With one it is CATCHING_UP: it walks the ring while the ring covers its position, asks the
 * hub for bounded table reads while it does not, and pauses whenever its output queue is above
 * SSE_QUEUE_LOW; once it reaches the head it joins srv->live and gets new events from
 * sse_stream_fanout.  A live stream whose queue passes SSE_QUEUE_LOW (a burst, a slow client)
 * goes back to CATCHING_UP, so one batch of large events paces healthy clients instead of
 * dropping them; a client that stops reading altogether is dropped by sse_conn.  Every write
 * advances last_id, and nothing at or below last_id is ever written again: no gap and no
 * duplicate across the switches, or across a reconnect.
 */
#ifndef LOOM_SSE_STREAM_H
#define LOOM_SSE_STREAM_H

#include "sse_conn.h"
#include "sse_ring.h"
#include "sse_server.h"

#include <stddef.h>
#include <stdint.h>

#define SSE_RETRY_MS 2000 /* the `retry:` a stream starts with */

/* A complete PARAMS stream arrived for c's open request: answer it or start the stream. */
void sse_stream_request(struct sse_conn *c, const uint8_t *params, size_t len);
/* A new event (already in the ring): written to every live stream it matches. */
void sse_stream_fanout(struct sse_server *srv, const struct sse_event *ev);
/* One event from c's table read, in id order. */
void sse_stream_deliver(struct sse_conn *c, const struct sse_event *ev);
/* c's table read ended: every event up to `through` was delivered. Continues the catch-up. */
void sse_stream_read_done(struct sse_conn *c, int64_t through);
/* c's output queue is at or below SSE_QUEUE_LOW: a paused catch-up continues. */
void sse_stream_drained(struct sse_conn *c);
/* c is closing or its request ended: leave every list, free the filters. Idempotent. */
void sse_stream_forget(struct sse_conn *c);
/* True when ev passes c's filters. */
bool sse_stream_matches(const struct sse_conn *c, const struct sse_event *ev);

#endif
