/*
 * sse_gap — when an event may be delivered although an earlier id is still missing.
 *
 * events.id comes from a sequence, and sequences hand out ids in call order, not commit order:
 * transaction A takes id 10, B takes 11, B commits first.  A feed that delivered 11 at once and
 * then read "id > 11" would never send 10, and a client resuming with Last-Event-ID: 11 would
 * never get it either.  So the feed delivers in id order and stops at a hole, until the hole is
 * settled: either the missing rows appear, or no transaction that could still insert them is
 * running.  The fetch reads pg_current_snapshot() in the same statement as the rows; the owner
 * of a missing id was running in that snapshot (its id is below one already committed), so
 * once the oldest running transaction id (xmin) reaches that snapshot's xmax, every possible
 * owner has ended and the hole is permanent (a rollback, or a sequence value never used).
 * A hole older than the wait limit is skipped anyway (and reported), so one stuck transaction
 * cannot stop every stream.
 *
 * The one window this cannot see: an id taken by a transaction that had not yet been assigned
 * a transaction id.  Loom writes its row before its event, so its event inserts always run in
 * a transaction that already has one.  Pure: no I/O, time comes in as an argument.
 */
#ifndef LOOM_SSE_GAP_H
#define LOOM_SSE_GAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sse_gap {
        bool open;          /* delivery is held right after `after` */
        int64_t after;      /* the last id delivered before the hole */
        uint64_t wait_xmax; /* settled once the snapshot xmin reaches this */
        int64_t since_ms;   /* when the hole was first seen */
};

/* A fetch's view of running transactions (pg_snapshot_xmin/xmax as 64-bit xids). */
struct sse_gap_snapshot {
        uint64_t xmin;
        uint64_t xmax;
};

/*
 * ids[0..n) are fetched ids, ascending, all above head.  Returns how many of them, from the
 * start, may be delivered now, and updates g: open when delivery stopped at a hole that is
 * not settled yet.  *skipped is set when a hole was passed only because it was older than
 * max_wait_ms (the caller logs it; *skipped_after says after which id).
 */
size_t sse_gap_accept(struct sse_gap *g, int64_t head, const int64_t *ids, size_t n,
                      const struct sse_gap_snapshot *snap, int64_t now_ms, int64_t max_wait_ms,
                      bool *skipped, int64_t *skipped_after);

#endif
