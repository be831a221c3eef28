/* Unit tests for workers/guard.c: loops and stagnation of the action loop. */
#include "guard.h"
#include "testlib.h"

static struct guard g;
static char why[200];

TEST(repeats_count_until_the_worktree_changes)
{
        guard_init(&g);
        CHECK_INT(guard_sequence(&g, "[{\"type\":\"read_file\",\"path\":\"a\"}]"), 1);
        CHECK_INT(guard_sequence(&g, "[{\"type\":\"git_status\"}]"), 1);
        CHECK_INT(guard_sequence(&g, "[{\"type\":\"read_file\",\"path\":\"a\"}]"), 2);
        guard_action(&g, 3, "write_file", "a", true, true);
        CHECK_INT(guard_sequence(&g, "[{\"type\":\"read_file\",\"path\":\"a\"}]"), 1);
        CHECK_INT(guard_sequence(&g, "[{\"type\":\"read_file\",\"path\":\"a\"}]"), 2);
        CHECK_INT(guard_sequence(&g, "[{\"type\":\"read_file\",\"path\":\"a\"}]"), 3);
}

TEST(many_distinct_lists_do_not_overflow)
{
        char buf[64];

        guard_init(&g);
        for (int i = 0; i < 500; i++) {
                snprintf(buf, sizeof(buf), "[%d]", i);
                CHECK_INT(guard_sequence(&g, buf), 1);
        }
        CHECK_INT(guard_sequence(&g, "[499]"), 2);
}

TEST(read_tree_more_than_five_times)
{
        guard_init(&g);
        for (int i = 1; i <= 5; i++)
                guard_action(&g, i, "read_tree", ".", true, false);
        CHECK(!guard_stagnant(&g, 5, why, sizeof(why)));
        guard_action(&g, 6, "read_tree", ".", true, false);
        CHECK(guard_stagnant(&g, 6, why, sizeof(why)));
        CHECK_HAS(why, "read_tree 6 times");
}

TEST(reading_without_writing)
{
        char path[32];

        guard_init(&g);
        for (int i = 1; i <= 16; i++) {
                snprintf(path, sizeof(path), "f%d.c", i);
                guard_action(&g, i, "read_file", path, true, false);
        }
        /* the rules beyond read_tree wait for iteration 15 */
        CHECK(!guard_stagnant(&g, 14, why, sizeof(why)));
        CHECK(guard_stagnant(&g, 16, why, sizeof(why)));
        CHECK_HAS(why, "16 files read and none written");
        /* a write answers that rule; 16 reads still trip "one action over and over" */
        guard_action(&g, 16, "write_file", "out.c", true, true);
        CHECK(guard_stagnant(&g, 16, why, sizeof(why)));
        CHECK_HAS(why, "read_file asked for 16 times");
}

TEST(failing_build_and_tests)
{
        guard_init(&g);
        guard_action(&g, 1, "write_file", "a.c", true, true);
        guard_action(&g, 1, "write_file", "b.c", true, true);
        for (int i = 2; i <= 7; i++)
                guard_action(&g, i, "build_project", "", false, false);
        CHECK(guard_stagnant(&g, 15, why, sizeof(why)));
        CHECK_HAS(why, "build still fails after 6 builds");
        guard_action(&g, 16, "build_project", "", true, false);
        CHECK(!guard_stagnant(&g, 16, why, sizeof(why)));

        guard_init(&g);
        guard_action(&g, 1, "write_file", "a.c", true, true);
        for (int i = 2; i <= 7; i++)
                guard_action(&g, i, "run_tests", "", false, false);
        CHECK(guard_stagnant(&g, 15, why, sizeof(why)));
        CHECK_HAS(why, "tests still fail after 6 runs");
}

TEST(one_action_over_and_over)
{
        guard_init(&g);
        guard_action(&g, 1, "write_file", "a.c", true, true);
        for (int i = 0; i < 16; i++)
                guard_action(&g, 2 + i, "search_text", "", true, false);
        CHECK(guard_stagnant(&g, 18, why, sizeof(why)));
        CHECK_HAS(why, "search_text asked for 16 times");
}

TEST(long_time_without_writes)
{
        guard_init(&g);
        CHECK(!guard_stagnant(&g, 35, why, sizeof(why)));
        CHECK(guard_stagnant(&g, 36, why, sizeof(why)));
        CHECK_HAS(why, "36 iterations without writing");
}

TESTS(TESTLIB_CASE(repeats_count_until_the_worktree_changes),
      TESTLIB_CASE(many_distinct_lists_do_not_overflow),
      TESTLIB_CASE(read_tree_more_than_five_times), TESTLIB_CASE(reading_without_writing),
      TESTLIB_CASE(failing_build_and_tests), TESTLIB_CASE(one_action_over_and_over),
      TESTLIB_CASE(long_time_without_writes))
