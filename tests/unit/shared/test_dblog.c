/*
 * Unit tests for shared/dblog.c without a database: the caller never waits for one, a full
 * queue drops and counts, debug lines stay on stderr, stop returns.  (tests/integration/
 * test_dblog.c checks the rows a real database gets.)
 */
#include "dblog.h"
#include "testlib.h"

#include <time.h>

/* a unix socket directory that does not exist: every connection attempt fails at once */
#define NOWHERE "host=/nonexistent-loom-dblog-test port=1 dbname=x connect_timeout=1"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(not_started_is_harmless)
{
        struct dblog_stats st;

        dblog_write(LOG_LEVEL_WARN, NULL, "nobody writes this %d", 1);
        dblog_get_stats(&st);
        CHECK_INT(st.queued, 0);
        CHECK_INT(st.written, 0);
        dblog_stop(10);
}

TEST(a_dead_database_never_blocks_the_caller)
{
        const struct dblog_where where = {.project_id = "p", .bead_id = "p-1", .agent_id = "a"};
        struct dblog_stats st;
        double t0;

        CHECK_INT(dblog_start(NOWHERE, "unit-test"), 0);
        CHECK_INT(dblog_start(NOWHERE, "unit-test"), 0); /* again: nothing happens */
        t0 = now_s();
        for (int i = 0; i < 4 * DBLOG_QUEUE; i++)
                dblog_write(LOG_LEVEL_INFO, &where, "line %d with \"quotes\"", i);
        CHECK(now_s() - t0 < 2.0);
        dblog_get_stats(&st);
        CHECK(st.queued <= DBLOG_QUEUE);
        CHECK(st.dropped >= 4 * DBLOG_QUEUE - DBLOG_QUEUE - DBLOG_BATCH);
        CHECK_INT(st.written, 0);
        t0 = now_s();
        dblog_stop(300);
        CHECK(now_s() - t0 < 5.0);
        dblog_get_stats(&st);
        CHECK_INT(st.written, 0);
}

TEST(debug_lines_are_not_queued)
{
        struct dblog_stats before, after;

        CHECK_INT(dblog_start(NOWHERE, "unit-test"), 0);
        dblog_get_stats(&before);
        dblog_write(LOG_LEVEL_DEBUG, NULL, "chatter");
        dblog_get_stats(&after);
        CHECK_INT(after.queued, before.queued);
        CHECK_INT(after.dropped, before.dropped);
        dblog_stop(300);
}

static void quiet(void) __attribute__((constructor));
static void quiet(void)
{
        log_threshold = LOG_LEVEL_ERROR + 1; /* the refused connections would fill the output */
}

TESTS(TESTLIB_CASE(not_started_is_harmless), TESTLIB_CASE(a_dead_database_never_blocks_the_caller),
      TESTLIB_CASE(debug_lines_are_not_queued))
