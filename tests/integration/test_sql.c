/*
 * Integration tests of the schema and the loom_* functions against a real, throw-away
 * PostgreSQL (LOOM_DATABASE_URL, migrated by tests/lib/check.sh).  Each test makes its own
 * project, so tests do not depend on each other.
 */
#include "db.h"
#include "err.h"
#include "testlib.h"
#include "xalloc.h"

#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>

static struct db db;
static int project_n;

static struct db_stmt q1 = {.name = "q1", .sql = "SELECT $1::text", .nparams = 1};

/* Runs literal SQL; returns the first value as a malloc'd string ("" for none), NULL on error. */
static char *sql1(struct db *d, const char *sql)
{
        PGresult *res;
        char *out;

        if (db_exec_sql(d, sql, &res) != ERR_OK)
                return NULL;
        out = xstrdup(PQntuples(res) && PQnfields(res) ? PQgetvalue(res, 0, 0) : "");
        PQclear(res);
        return out;
}

static bool sql_ok(const char *sql)
{
        char *v = sql1(&db, sql);

        free(v);
        return v != NULL;
}

/* A fresh project with prefix t<N>; returns the prefix (lives until exit). */
static const char *new_project(void)
{
        char *p = xstrdup(testlib_fmt("t%d", ++project_n));
        char *r =
                sql1(&db, testlib_fmt("SELECT loom_project_create('{\"id\":\"%s\",\"name\":\"%s\","
                                      "\"bead_prefix\":\"%s\"}', 'test')",
                                      p, p, p));

        free(r);
        return p;
}

static void new_bead(const char *prefix, const char *extra)
{
        free(sql1(&db,
                  testlib_fmt("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"b\"%s}',"
                              " 'test')",
                              prefix, extra)));
}

TEST(schema_is_migrated)
{
        char *v = sql1(&db, "SELECT count(*) FROM schema_migrations");

        CHECK(v != NULL);
        CHECK(strtol(v, NULL, 10) >= 2);
        free(v);
        v = sql1(&db, "SELECT to_regclass('beads') IS NOT NULL AND to_regclass('bead_deps') IS NOT"
                      " NULL AND to_regclass('events') IS NOT NULL");
        CHECK_STR(v, "t");
        free(v);
        (void)q1;
}

TEST(constraints_refuse_bad_rows)
{
        const char *p = new_project();

        /* the CHECKs mirror the API's enums even for writers that bypass the functions */
        CHECK(!sql_ok(
                testlib_fmt("INSERT INTO beads (id, project_id, title, status) VALUES ('%s-900', "
                            "'%s', 'x', 'done')",
                            p, p)));
        CHECK_INT(db.err, ERR_INVALID);
        CHECK(!sql_ok(testlib_fmt("INSERT INTO beads (id, project_id, title, priority) VALUES "
                                  "('%s-901', '%s', 'x', 4)",
                                  p, p)));
        CHECK(!sql_ok(
                testlib_fmt("INSERT INTO beads (id, project_id, title, status) VALUES ('%s-902', "
                            "'%s', 'x', 'closed')",
                            p, p))); /* closed needs closed_at */
}

TEST(bead_ids_count_per_project)
{
        const char *p = new_project();
        char *v;

        new_bead(p, "");
        new_bead(p, "");
        v = sql1(&db,
                 testlib_fmt("SELECT string_agg(id, ',' ORDER BY id) FROM beads WHERE project_id = "
                             "'%s'",
                             p));
        CHECK_STR(v, testlib_fmt("%s-1,%s-2", p, p));
        free(v);
}

TEST(failed_write_leaves_nothing)
{
        const char *p = new_project();
        char *before, *after;

        new_bead(p, "");
        before = sql1(
                &db,
                testlib_fmt("SELECT (SELECT count(*) FROM beads WHERE project_id = '%s') || '/'"
                            " || (SELECT count(*) FROM events WHERE project_id = '%s')",
                            p, p));
        /* the bead row and its event are written before the bad blocker is found */
        CHECK(!sql_ok(testlib_fmt("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"x\","
                                  "\"blocked_by\":[\"%s-99\"]}', 'test')",
                                  p, p)));
        CHECK_INT(db.err, ERR_INVALID);
        CHECK_HAS(db.errmsg, "does not exist");
        after = sql1(
                &db,
                testlib_fmt("SELECT (SELECT count(*) FROM beads WHERE project_id = '%s') || '/'"
                            " || (SELECT count(*) FROM events WHERE project_id = '%s')",
                            p, p));
        CHECK_STR(after, before);
        free(before);
        free(after);
}

TEST(every_change_notifies_its_event)
{
        const char *p = new_project();
        struct db listener;
        char *last;
        PGnotify *n = NULL;
        PGresult *res;
        struct pollfd pfd;

        db_init(&listener, getenv("LOOM_DATABASE_URL"));
        CHECK_INT(db_exec_sql(&listener, "LISTEN loom_events", &res), ERR_OK);
        PQclear(res);
        new_bead(p, "");
        last = sql1(&db, testlib_fmt("SELECT max(id) FROM events WHERE project_id = '%s'", p));
        pfd.fd = PQsocket(listener.conn);
        pfd.events = POLLIN;
        for (int i = 0; i < 50 && !n; i++) {
                poll(&pfd, 1, 100);
                PQconsumeInput(listener.conn);
                n = PQnotifies(listener.conn);
        }
        CHECK(n != NULL); /* a doorbell: readers fetch the rows after the last id they saw */
        CHECK_STR(n->extra, "");
        PQfreemem(n);
        free(last);
        last = sql1(&db,
                    testlib_fmt("SELECT type FROM events WHERE project_id = '%s' ORDER BY id DESC "
                                "LIMIT 1",
                                p));
        CHECK_STR(last, "bead.created");
        free(last);
        db_release(&listener);
}

TEST(ready_inherits_parent_blockers)
{
        const char *p = new_project();
        char *v;

        new_bead(p, "");                                           /* 1 blocker */
        new_bead(p, testlib_fmt(",\"blocked_by\":[\"%s-1\"]", p)); /* 2 epic, blocked by 1 */
        new_bead(p, testlib_fmt(",\"parent\":\"%s-2\"", p));       /* 3 child of 2 */
        new_bead(p, "");                                           /* 4 free */
        v = sql1(&db, testlib_fmt("SELECT array_to_string(loom_open_blockers('%s-3'), ',')", p));
        CHECK_STR(v, testlib_fmt("%s-1", p));
        free(v);
        free(sql1(
                &db,
                testlib_fmt("SELECT loom_bead_update('%s-1', '{\"status\":\"closed\"}', 't')", p)));
        v = sql1(&db, testlib_fmt("SELECT cardinality(loom_open_blockers('%s-3'))", p));
        CHECK_STR(v, "0");
        free(v);
}

TEST(cycles_are_refused_across_kinds)
{
        const char *p = new_project();

        new_bead(p, "");
        new_bead(p, testlib_fmt(",\"parent\":\"%s-1\"", p));
        /* 1 blocked by its own child 2: 2 would inherit 1's blocker, itself: a deadlock */
        CHECK(!sql_ok(testlib_fmt(
                "SELECT loom_bead_update('%s-1', '{\"blocked_by\":[\"%s-2\"]}', 't')", p, p)));
        CHECK_INT(db.err, ERR_CONFLICT);
        CHECK_HAS(db.errmsg, "dependency cycle");
        CHECK(!sql_ok(testlib_fmt("SELECT loom_bead_update('%s-1', '{\"parent\":\"%s-2\"}', 't')",
                                  p, p)));
        CHECK(!sql_ok(testlib_fmt("SELECT loom_bead_update('%s-1', '{\"blocks\":[\"%s-1\"]}', 't')",
                                  p, p)));
        CHECK_INT(db.err, ERR_INVALID);
        /* related links are not dependencies: no cycle */
        CHECK(sql_ok(testlib_fmt(
                "SELECT loom_bead_update('%s-1', '{\"related_to\":[\"%s-2\"]}', 't')", p, p)));
}

TEST(bulk_update_is_all_or_nothing)
{
        const char *p = new_project();
        char *v;

        new_bead(p, "");
        new_bead(p, "");
        new_bead(p, testlib_fmt(",\"parent\":\"%s-1\"", p));
        /* setting every bead's parent to 3: bead 1 would become a child of its own child */
        CHECK(!sql_ok(testlib_fmt("SELECT loom_bead_bulk_update('{\"project_id\":\"%s\"}', "
                                  "'{\"priority\":0,\"parent\":\"%s-3\"}', 't')",
                                  p, p)));
        v = sql1(&db,
                 testlib_fmt("SELECT count(*) FROM beads WHERE project_id = '%s' AND priority = 0",
                             p));
        CHECK_STR(v, "0");
        free(v);
}

#define RACE_CLIENTS 16
#define RACE_BEADS   200

static const char *race_prefix;
static int race_wins[RACE_CLIENTS];

static struct db_stmt race_claim_stmt = {
        .name = "race_claim",
        .sql = "SELECT loom_bead_claim($1, $2, 'race')",
        .nparams = 2,
};

static void *race_client(void *arg)
{
        int me = (int)(long)arg;
        char agent[32], bead[32];
        const char *params[2] = {bead, agent};
        struct db d;

        snprintf(agent, sizeof(agent), "agent-%d", me);
        db_init(&d, getenv("LOOM_DATABASE_URL"));
        for (int i = 0; i < RACE_BEADS; i++) {
                PGresult *res;
                /* each client walks the beads from a different starting point */
                int b = (i + me * 13) % RACE_BEADS + 1;

                snprintf(bead, sizeof(bead), "%s-%d", race_prefix, b);
                if (db_exec(&d, &race_claim_stmt, params, &res) == ERR_OK) {
                        race_wins[me]++;
                        PQclear(res);
                }
        }
        db_release(&d);
        return NULL;
}

TEST(claim_race_one_winner_per_bead)
{
        pthread_t t[RACE_CLIENTS];
        int total = 0;
        char *v;

        race_prefix = new_project();
        free(sql1(&db,
                  testlib_fmt(
                          "SELECT count(loom_bead_create('{\"project_id\":\"%s\",\"title\":\"r\"}',"
                          " 't')) FROM generate_series(1, %d)",
                          race_prefix, RACE_BEADS)));
        for (long i = 0; i < RACE_CLIENTS; i++)
                pthread_create(&t[i], NULL, race_client, (void *)i);
        for (int i = 0; i < RACE_CLIENTS; i++) {
                pthread_join(t[i], NULL);
                total += race_wins[i];
        }
        CHECK_INT(total, RACE_BEADS);
        v = sql1(&db, testlib_fmt("SELECT count(*) FROM beads WHERE project_id = '%s' AND status = "
                                  "'in_progress' AND assigned_to IS NOT NULL",
                                  race_prefix));
        CHECK_INT(strtol(v, NULL, 10), RACE_BEADS);
        free(v);
        /* exactly one bead.assigned event per bead */
        v = sql1(&db,
                 testlib_fmt("SELECT count(DISTINCT bead_id) || '/' || count(*) FROM events WHERE "
                             "project_id = '%s' AND type = 'bead.assigned'",
                             race_prefix));
        CHECK_STR(v, testlib_fmt("%d/%d", RACE_BEADS, RACE_BEADS));
        free(v);
}

static void setup(void)
{
        const char *url = getenv("LOOM_DATABASE_URL");

        if (!url) {
                printf("LOOM_DATABASE_URL is not set\n");
                exit(2);
        }
        db_init(&db, url);
}

TEST(activity_prune_keeps_unread_notifications)
{
        const char *p = new_project();
        char *v;

        new_bead(p, "");
        CHECK(sql_ok(testlib_fmt("INSERT INTO users (username, role) VALUES ('%s-u', 'user')", p)));
        CHECK(sql_ok(testlib_fmt(
                "INSERT INTO notifications (user_id, event_type, title, status, read_at,"
                " created_at) SELECT u.id, 'bead.assigned', x.t, x.s, x.r,"
                " coalesce(x.r, now() - interval '40 days')"
                " FROM users u, (VALUES ('old read', 'read', now() - interval '40 days'),"
                " ('old unread', 'unread', NULL), ('new read', 'read', now())) x(t, s, r)"
                " WHERE u.username = '%s-u'",
                p)));
        CHECK(sql_ok(testlib_fmt("UPDATE activities SET updated_at = now() - interval '40 days'"
                                 " WHERE project_id = '%s'",
                                 p)));
        v = sql1(&db, "SELECT loom_activity_prune(30) >= 3");
        CHECK_STR(v, "t");
        free(v);
        v = sql1(&db, testlib_fmt("SELECT count(*) FROM activities WHERE project_id = '%s'", p));
        CHECK_STR(v, "0");
        free(v);
        v = sql1(&db,
                 testlib_fmt("SELECT string_agg(n.title, ',' ORDER BY n.id) FROM notifications n"
                             " JOIN users u ON u.id = n.user_id WHERE u.username = '%s-u'",
                             p));
        CHECK_STR(v, "old unread,new read");
        free(v);
}

/* 019: an observation lands in its "le" bucket, in place; a row of other bounds is left alone. */
TEST(histogram_observations_count_in_place)
{
        const char *p = new_project();
        char *v;

        v = sql1(&db,
                 "SELECT loom_hist_one('{1,2,5}', 2)::text || loom_hist_one('{1,2,5}', 9)::text"
                 " || loom_hist_one('{}', 3)::text || loom_hist_one('{1,2,5}', 'NaN')::text");
        CHECK_STR(v, "{0,1,0,0}{0,0,0,1}{1}{0,0,0,1}");
        free(v);
        CHECK(sql_ok(testlib_fmt("SELECT loom_metric_observe('test_%s_seconds', '{}', '{1,2,5}', x)"
                                 " FROM unnest('{0.5,1,1.5,5,7,7}'::float8[]) x",
                                 p)));
        /* other bounds: not merged into the row */
        CHECK(sql_ok(testlib_fmt(
                "SELECT loom_metric_observe('test_%s_seconds', '{}', '{1,2}', 0.1)", p)));
        v = sql1(&db,
                 testlib_fmt(
                         "SELECT buckets::text || ' ' || sum || ' ' || count FROM metric_histograms"
                         " WHERE name = 'test_%s_seconds'",
                         p));
        CHECK_STR(v, "{2,1,1,2} 22 6");
        free(v);
        CHECK(sql_ok(
                testlib_fmt("DELETE FROM metric_histograms WHERE name = 'test_%s_seconds'", p)));
}

/* 019: the activity trigger's WHEN leaves out what loom_activity_record dropped anyway. */
TEST(activity_skips_bookkeeping_updates)
{
        const char *p = new_project();
        const char *n = testlib_fmt("SELECT count(*) FROM activities WHERE project_id = '%s'"
                                    " AND event_type = 'bead.updated'",
                                    p);
        char *v;

        CHECK(sql_ok(testlib_fmt("SELECT loom_event('bead.updated', '%s', NULL, 'test',"
                                 " '{\"fields\": [\"context\", \"status\"]}')",
                                 p)));
        CHECK(sql_ok(
                testlib_fmt("SELECT loom_event('bead.updated', '%s', NULL, 'test', '{}')", p)));
        v = sql1(&db, n);
        CHECK_STR(v, "0");
        free(v);
        CHECK(sql_ok(testlib_fmt("SELECT loom_event('bead.updated', '%s', NULL, 'test',"
                                 " '{\"fields\": [\"context\", \"title\"]}')",
                                 p)));
        v = sql1(&db, n);
        CHECK_STR(v, "1");
        free(v);
}

TEST(start)
{
        setup();
        CHECK_INT(db_connect(&db), ERR_OK);
}

TESTS(TESTLIB_CASE(start), TESTLIB_CASE(schema_is_migrated),
      TESTLIB_CASE(activity_prune_keeps_unread_notifications),
      TESTLIB_CASE(histogram_observations_count_in_place),
      TESTLIB_CASE(activity_skips_bookkeeping_updates), TESTLIB_CASE(constraints_refuse_bad_rows),
      TESTLIB_CASE(bead_ids_count_per_project), TESTLIB_CASE(failed_write_leaves_nothing),
      TESTLIB_CASE(every_change_notifies_its_event), TESTLIB_CASE(ready_inherits_parent_blockers),
      TESTLIB_CASE(cycles_are_refused_across_kinds), TESTLIB_CASE(bulk_update_is_all_or_nothing),
      TESTLIB_CASE(claim_race_one_winner_per_bead))
