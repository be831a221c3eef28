/*
 * sse_gap — holding delivery at holes in the id sequence; see sse_gap.h.
 */
#include "sse_gap.h"

size_t sse_gap_accept(struct sse_gap *g, int64_t head, const int64_t *ids, size_t n,
                      const struct sse_gap_snapshot *snap, int64_t now_ms, int64_t max_wait_ms,
                      bool *skipped, int64_t *skipped_after)
{
        struct sse_gap prev = *g;
        int64_t last = head;
        size_t i;

        *skipped = false;
        g->open = false;
        for (i = 0; i < n; i++) {
                struct sse_gap cur;

                if (ids[i] == last + 1) {
                        last = ids[i];
                        continue;
                }
                /* the hole (last, ids[i]): the same one as last time keeps its first sighting */
                if (prev.open && prev.after == last)
                        cur = prev;
                else
                        cur = (struct sse_gap){true, last, snap->xmax, now_ms};
                if (snap->xmin < cur.wait_xmax) {
                        if (now_ms - cur.since_ms < max_wait_ms) {
                                *g = cur;
                                break;
                        }
                        *skipped = true;
                        *skipped_after = last;
                }
                last = ids[i];
        }
        return i;
}
