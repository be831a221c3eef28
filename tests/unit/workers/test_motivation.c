/* Unit tests for workers/motivation.c: the event horizon event motivations read up to. */
#include "motivation.h"
#include "testlib.h"

TEST(nothing_is_safe_before_an_observation_settles)
{
        struct motivation_horizon h = {0};

        /* newest event 10, observed by transaction 500 while 490 is the oldest running one */
        motivation_horizon_step(&h, 490, 500, 10);
        CHECK_INT(h.safe, 0);
        /* 495 still runs: it may hold an id below 10 */
        motivation_horizon_step(&h, 495, 510, 12);
        CHECK_INT(h.safe, 0);
        /* xmin equal to the observer's xid: not yet past it */
        motivation_horizon_step(&h, 500, 520, 12);
        CHECK_INT(h.safe, 0);
        /* every transaction up to 500 has ended: ids up to 10 are settled */
        motivation_horizon_step(&h, 501, 530, 15);
        CHECK_INT(h.safe, 10);
        /* the observation made in the same step (15, by 530) waits its turn */
        CHECK(h.has_pending);
        CHECK_INT(h.pending, 15);
        motivation_horizon_step(&h, 531, 540, 15);
        CHECK_INT(h.safe, 15);
}

TEST(no_new_events_means_nothing_pending)
{
        struct motivation_horizon h = {0};

        motivation_horizon_step(&h, 10, 11, 0);
        CHECK(!h.has_pending);
        motivation_horizon_step(&h, 12, 13, 7);
        motivation_horizon_step(&h, 14, 15, 7);
        CHECK_INT(h.safe, 7);
        CHECK(!h.has_pending);
        motivation_horizon_step(&h, 16, 17, 7);
        CHECK(!h.has_pending);
        CHECK_INT(h.safe, 7);
}

TEST(the_horizon_never_moves_back)
{
        struct motivation_horizon h = {.safe = 40};

        /* a fresh table after pruning, or a stale observation, cannot lower it */
        motivation_horizon_step(&h, 5, 6, 30);
        CHECK(!h.has_pending);
        CHECK_INT(h.safe, 40);
        h = (struct motivation_horizon){
                .safe = 40, .pending = 35, .pending_xid = 3, .has_pending = true};
        motivation_horizon_step(&h, 9, 10, 41);
        CHECK_INT(h.safe, 40);
        CHECK_INT(h.pending, 41);
}

TESTS(TESTLIB_CASE(nothing_is_safe_before_an_observation_settles),
      TESTLIB_CASE(no_new_events_means_nothing_pending), TESTLIB_CASE(the_horizon_never_moves_back))
