/*
 * Integration test of shared/dblog.c against a real PostgreSQL (LOOM_DATABASE_URL, migrated):
 * the lines a worker logs become rows of `logs` and log.<level> events with the same id, with
 * their source, ids and message intact; debug lines stay out.
 */
#include "db.h"
#include "dblog.h"
#include "err.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct db db;

static struct db_stmt q_line = {
        .name = "q_line",
        .sql = "SELECT l.level || '|' || l.source || '|' || coalesce(l.project_id, '-') || '|' ||"
               " coalesce(l.bead_id, '-') || '|' || coalesce(l.agent_id, '-') || '|' ||"
               " l.message || '|' || e.type || '|' || e.actor"
               " FROM logs l JOIN events e ON e.id = l.id WHERE l.message LIKE $1 ORDER BY l.id",
        .nparams = 1,
};

/* The rows whose message matches like, joined with newlines (a static buffer). */
static const char *lines(const char *like)
{
        static char out[4096];
        const char *params[1] = {like};
        PGresult *res;
        size_t n = 0;

        out[0] = '\0';
        if (db_exec(&db, &q_line, params, &res) != ERR_OK)
                return "(query failed)";
        for (int i = 0; i < PQntuples(res); i++)
                n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "\n" : "",
                                      PQgetvalue(res, i, 0));
        PQclear(res);
        return out;
}

TEST(lines_become_rows_and_events)
{
        const char *url = getenv("LOOM_DATABASE_URL");
        const struct dblog_where run = {
                .project_id = "dbl", .bead_id = "dbl-7", .agent_id = "ag-1"};
        struct dblog_stats st;
        char tag[64], like[80], want[512];

        CHECK(url != NULL);
        /* a tag of this run's own, so a database used before holds no match */
        snprintf(tag, sizeof(tag), "dblog-it-%d-%ld", (int)getpid(), (long)time(NULL));
        snprintf(like, sizeof(like), "%s:%%", tag);
        db_init(&db, url);
        CHECK_INT(dblog_start(url, "itest-worker"), 0);
        dblog_write(LOG_LEVEL_WARN, &run, "%s: run %d ended: \"quoted\", %s", tag, 7, "tab\there");
        dblog_write(LOG_LEVEL_INFO, NULL, "%s: a system line", tag);
        dblog_write(LOG_LEVEL_DEBUG, &run, "%s: chatter", tag);
        dblog_stop(10000);
        dblog_get_stats(&st);
        CHECK_INT(st.written, 2);
        CHECK_INT(st.dropped, 0);
        snprintf(want, sizeof(want),
                 "warn|itest-worker|dbl|dbl-7|ag-1|%s: run 7 ended: \"quoted\", tab\there|"
                 "log.warn|itest-worker\n"
                 "info|itest-worker|-|-|-|%s: a system line|log.info|itest-worker",
                 tag, tag);
        CHECK_STR(lines(like), want);
}

TESTS(TESTLIB_CASE(lines_become_rows_and_events))
