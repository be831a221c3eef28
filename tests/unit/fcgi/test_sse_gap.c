/*
 * Unit tests for fcgi/sse_gap.c: delivery held at holes in the id sequence until no running
 * transaction can fill them.  (The module is compiled in: see test_sse_ring.c.)
 */
#include "sse_gap.h"
#include "testlib.h"

#define WAIT 5000

static size_t accept_ids(struct sse_gap *g, int64_t head, const int64_t *ids, size_t n,
                         uint64_t xmin, uint64_t xmax, int64_t now, bool *skipped)
{
        struct sse_gap_snapshot snap = {xmin, xmax};
        int64_t after = -1;

        return sse_gap_accept(g, head, ids, n, &snap, now, WAIT, skipped, &after);
}

TEST(contiguous_ids_pass)
{
        static const int64_t ids[] = {11, 12, 13};
        struct sse_gap g = {0};
        bool skipped;

        CHECK_INT(accept_ids(&g, 10, ids, 3, 100, 105, 0, &skipped), 3);
        CHECK(!g.open);
        CHECK(!skipped);
        CHECK_INT(accept_ids(&g, 10, ids, 0, 100, 105, 0, &skipped), 0);
        CHECK(!g.open);
}

TEST(a_hole_holds_until_its_transactions_end)
{
        static const int64_t ids[] = {11, 13, 14};
        static const int64_t filled[] = {11, 12, 13, 14};
        struct sse_gap g = {0};
        bool skipped;

        /* 12 is missing and transactions 100..104 are running: stop after 11 */
        CHECK_INT(accept_ids(&g, 10, ids, 3, 100, 105, 1000, &skipped), 1);
        CHECK(g.open);
        CHECK_INT(g.after, 11);
        CHECK_INT(g.wait_xmax, 105);
        CHECK_INT(g.since_ms, 1000);
        /* later, some of them are still running: still held, first sighting kept */
        CHECK_INT(accept_ids(&g, 11, ids + 1, 2, 103, 110, 1200, &skipped), 0);
        CHECK(g.open);
        CHECK_INT(g.wait_xmax, 105);
        CHECK_INT(g.since_ms, 1000);
        /* 12 commits: everything flows, the hole is gone */
        CHECK_INT(accept_ids(&g, 11, filled + 1, 3, 103, 110, 1300, &skipped), 3);
        CHECK(!g.open);
        CHECK(!skipped);
}

TEST(a_hole_nobody_can_fill_is_passed)
{
        static const int64_t ids[] = {13, 14};
        struct sse_gap g = {0};
        bool skipped;

        /* held while 100..104 run … */
        CHECK_INT(accept_ids(&g, 11, ids, 2, 100, 105, 0, &skipped), 0);
        CHECK(g.open);
        /* … and passed once the oldest running transaction is newer than all of them */
        CHECK_INT(accept_ids(&g, 11, ids, 2, 105, 120, 50, &skipped), 2);
        CHECK(!g.open);
        CHECK(!skipped);
        /* with nothing running at all (xmin == xmax) a new hole passes at once */
        g = (struct sse_gap){0};
        CHECK_INT(accept_ids(&g, 11, ids, 2, 130, 130, 60, &skipped), 2);
        CHECK(!g.open);
}

TEST(a_stuck_hole_is_skipped_after_the_wait)
{
        static const int64_t ids[] = {20, 21};
        struct sse_gap_snapshot snap = {100, 105};
        struct sse_gap g = {0};
        int64_t after = 0;
        bool skipped;

        CHECK_INT(sse_gap_accept(&g, 18, ids, 2, &snap, 0, WAIT, &skipped, &after), 0);
        CHECK_INT(sse_gap_accept(&g, 18, ids, 2, &snap, WAIT - 1, WAIT, &skipped, &after), 0);
        CHECK(!skipped);
        CHECK_INT(sse_gap_accept(&g, 18, ids, 2, &snap, WAIT, WAIT, &skipped, &after), 2);
        CHECK(skipped);
        CHECK_INT(after, 18);
        CHECK(!g.open);
}

TEST(the_second_hole_is_a_new_one)
{
        static const int64_t ids[] = {12, 13, 16};
        struct sse_gap g = {true, 10, 105, 0};
        bool skipped;

        /* the hole after 10 has settled (xmin 105); the one after 13 is new and held */
        CHECK_INT(accept_ids(&g, 10, ids, 3, 105, 109, 4000, &skipped), 2);
        CHECK(g.open);
        CHECK_INT(g.after, 13);
        CHECK_INT(g.wait_xmax, 109);
        CHECK_INT(g.since_ms, 4000);
}

TESTS(TESTLIB_CASE(contiguous_ids_pass), TESTLIB_CASE(a_hole_holds_until_its_transactions_end),
      TESTLIB_CASE(a_hole_nobody_can_fill_is_passed),
      TESTLIB_CASE(a_stuck_hole_is_skipped_after_the_wait),
      TESTLIB_CASE(the_second_hole_is_a_new_one))
