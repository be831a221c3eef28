/*
 * sse_ring — events as loom-sse sends them, and the in-memory ring of the most recent ones.
 *
 * An event is built once from its row (id, type, project, loom_event_json) into the exact
 * bytes of its Server-Sent Event ("id: …\nevent: …\ndata: …\n\n"), so fanning it out to N
 * streams costs N writes and no formatting.  An event that is an activity of the feed also
 * carries that activity's frame ("event: activity", same id), and an event meant for one user
 * (a notification) names that user as its recipient.  The ring keeps the last `cap` events in id
 * order; it is what lets a reconnecting client resume without a database query when it was away for
 * a short while, and what a stream catching up walks through.
 *
 * Invariant: every event with floor < id <= head that the feed delivered is in the ring, so a
 * resume from `after` can be served from memory exactly when after >= floor.  Pure: no I/O.
 */
#ifndef LOOM_SSE_RING_H
#define LOOM_SSE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSE_EVENT_MAX_TYPE 100 /* longer types are cut (the API never writes them) */

struct sse_event {
        int64_t id;
        const char *type;       /* points into data; never contains CR or LF */
        const char *project_id; /* points into data; "" when the event has no project */
        const char *recipient;  /* points into data; "" unless the event is one user's */
        const char *frame;      /* the whole SSE event, frame_len bytes, NUL-terminated */
        size_t frame_len;
        const char *activity_frame; /* the activity as SSE event "activity", or NULL */
        size_t activity_len;
        char data[];
};

/* One events row as loom-sse reads it; the strings are borrowed for the call. */
struct sse_event_row {
        int64_t id;
        const char *type;
        const char *project_id; /* NULL counts as "" */
        const char *recipient;  /* NULL counts as "" */
        const char *json;       /* loom_event_json, json_len bytes */
        size_t json_len;
        const char *activity; /* loom_activity_json of the row's activity, or NULL */
        size_t activity_len;
};

/*
 * Builds the event for one row.  project_id NULL counts as "".  json (json_len bytes) becomes
 * the data field; a CR or LF inside it (never produced by PostgreSQL's JSON output) starts a new
 * "data:" line, so the frame can never be cut short.  The caller frees with sse_event_free.
 * Cannot fail.
 */
struct sse_event *sse_event_new(int64_t id, const char *type, const char *project_id,
                                const char *json, size_t json_len);
/* The same for a whole row: also the recipient and the activity frame. Cannot fail. */
struct sse_event *sse_event_build(const struct sse_event_row *row);
/* NULL-safe. */
void sse_event_free(struct sse_event *ev);

struct sse_ring {
        struct sse_event **slot;
        size_t cap;
        size_t first; /* slot of the oldest event */
        size_t count;
        int64_t floor; /* see the invariant above */
        int64_t head;  /* the newest delivered id (or where the feed started) */
};

/* An empty ring of cap (>= 1) slots starting at head 0. Cannot fail. */
void sse_ring_init(struct sse_ring *r, size_t cap);
/* Frees every event and the slots. NULL-safe. */
void sse_ring_release(struct sse_ring *r);
/* Drops every event and restarts at head: floor = head, nothing is covered below it. */
void sse_ring_reset(struct sse_ring *r, int64_t head);
/*
 * Appends ev (the ring takes it); ev->id must be greater than head, otherwise ev is freed and
 * false returned.  A full ring frees its oldest event and raises floor to that event's id.
 */
bool sse_ring_push(struct sse_ring *r, struct sse_event *ev);
/* True when every delivered event after `after` (up to head) is in the ring. */
bool sse_ring_covers(const struct sse_ring *r, int64_t after);
/* Index (0 = oldest) of the first event with id > after; count when there is none. */
size_t sse_ring_find(const struct sse_ring *r, int64_t after);
/* The event at index i (0 = oldest, i < count); borrowed until it is evicted. */
const struct sse_event *sse_ring_get(const struct sse_ring *r, size_t i);

#endif
