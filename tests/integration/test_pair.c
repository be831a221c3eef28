/*
 * Integration tests of sql/015_pair.sql against a real, throw-away PostgreSQL: injected messages
 * (taken once, in the conversation, only with a live run), lessons (one row per failure,
 * counted, fading, pruned), project memory checks, pair sessions (reused, expiring), calls
 * outside runs in llm_calls, and clearing conversations.
 */
#include "db.h"
#include "err.h"
#include "testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct db db;
static int project_n;

/* Runs SQL built from f; the first value of the first row ("" for none, "ERROR" on error,
 * with the message in db.errmsg). */
static const char *q(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *q(const char *f, ...)
{
        static char out[8][1024];
        static int i;
        char sql[4096];
        va_list ap;
        PGresult *res;

        i = (i + 1) % 8;
        va_start(ap, f);
        vsnprintf(sql, sizeof(sql), f, ap);
        va_end(ap);
        if (db_exec_sql(&db, sql, &res) != ERR_OK)
                return "ERROR";
        snprintf(out[i], sizeof(out[i]), "%s",
                 PQntuples(res) && PQnfields(res) ? PQgetvalue(res, 0, 0) : "");
        PQclear(res);
        return out[i];
}

static const char *new_project(void)
{
        static char ids[32][16];
        char *p = ids[++project_n % 32];

        snprintf(p, 16, "pr%d", project_n);
        q("SELECT loom_project_create('{\"id\":\"%s\",\"name\":\"%s\",\"bead_prefix\":\"%s\"}',"
          " 'test')",
          p, p, p);
        return p;
}

static const char *new_bead(const char *p)
{
        static char ids[8][32];
        static int i;

        i = (i + 1) % 8;
        snprintf(ids[i], sizeof(ids[i]), "%s",
                 q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"t\"}', 'test')"
                   " ->> 'id'",
                   p));
        return ids[i];
}

/* A run of bead that an executor "ex" holds; its id. */
static const char *running(const char *p, const char *bead)
{
        static char rid[24];

        snprintf(rid, sizeof(rid), "%s",
                 q("INSERT INTO runs (bead_id, project_id, persona_name, priority, state,"
                   " lease_owner, lease_expires_at, started_at, iterations)"
                   " VALUES ('%s', '%s', 'engineering-manager', 2, 'running', 'ex',"
                   " now() + interval '1 min', now(), 3) RETURNING id",
                   bead, p));
        return rid;
}

TEST(start)
{
        const char *url = getenv("LOOM_DATABASE_URL");

        CHECK(url != NULL);
        db_init(&db, url);
        CHECK_INT(db_connect(&db), ERR_OK);
        q("SELECT loom_persona_load(jsonb_build_object('name', n, 'role', n))"
          " FROM unnest(ARRAY['ceo', 'engineering-manager', 'qa-engineer', 'devops-engineer',"
          " 'code-reviewer']) n WHERE NOT EXISTS (SELECT 1 FROM personas WHERE name = n)");
        q("SELECT loom_provider_create('{\"id\":\"pp\",\"endpoint\":\"http://127.0.0.1:9/v1\","
          "\"model\":\"m\"}', 't') WHERE NOT EXISTS (SELECT 1 FROM providers WHERE id = 'pp')");
        CHECK_STR(q("SELECT loom_provider_probed('pp', true, 1, NULL)"), "");
}

TEST(injections_need_a_live_run_and_are_taken_once)
{
        const char *p = new_project(), *b = new_bead(p);
        char rid[24];

        CHECK_STR(q("SELECT loom_inject('%s', 'hello', 'ann')", b), "ERROR");
        CHECK_HAS(db.errmsg, "no run of bead");
        snprintf(rid, sizeof(rid), "%s", running(p, b));
        CHECK_STR(q("SELECT loom_inject('%s', 'use tabs', 'ann') ->> 'status'", b), "pending");
        CHECK_STR(q("SELECT loom_inject('%s', 'and tests', 'bob') ->> 'run_id'", b), rid);
        CHECK_STR(q("SELECT string_agg(t, '|') FROM loom_injections_take(%s) t", rid),
                  "A person (ann) says: use tabs|A person (bob) says: and tests");
        CHECK_STR(q("SELECT count(*) FROM loom_injections_take(%s)", rid), "0");
        CHECK_STR(q("SELECT string_agg(role || ':' || content, '|' ORDER BY seq) FROM messages"
                    " WHERE bead_id = '%s'",
                    b),
                  "user:A person (ann) says: use tabs|user:A person (bob) says: and tests");
        CHECK_STR(q("SELECT count(*) FROM injections WHERE bead_id = '%s' AND consumed_at IS NOT"
                    " NULL AND run_id = %s",
                    b, rid),
                  "2");
        CHECK_STR(q("SELECT string_agg(payload ->> 'iteration', ',') FROM events"
                    " WHERE bead_id = '%s' AND type = 'conversation.delivered'",
                    b),
                  "3,3");
        /* a live run keeps its conversation */
        CHECK_STR(q("SELECT loom_conversation_clear('%s', false, 't')", b), "ERROR");
        CHECK_HAS(db.errmsg, "is live");
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'completed', NULL, 3, 0, 0)", rid), "t");
        CHECK_STR(q("SELECT loom_conversation_clear('%s', false, 't')", b), b);
        CHECK_STR(q("SELECT count(*) FROM messages WHERE bead_id = '%s'", b), "0");
}

TEST(lessons_merge_repeats_and_fade)
{
        const char *p = new_project(), *b = new_bead(p);
        char id[32]; /* q's answers are overwritten by later calls */

        snprintf(id, sizeof(id), "%s",
                 q("SELECT loom_lesson_record('%s', 'test_failure', 'Tests failed: x', 'd1',"
                   " 'make test | FAIL line 12 after 30 ms', '%s', '')",
                   p, b));
        CHECK(id[0] != '\0' && strcmp(id, "ERROR") != 0);
        /* the same failure with other numbers and case is the same lesson */
        CHECK_STR(q("SELECT loom_lesson_record('%s', 'test_failure', 'Tests failed: y', 'd2',"
                    " 'make test | fail LINE 14 after 99 ms', '%s', '')",
                    p, b),
                  id);
        CHECK_STR(
                q("SELECT occurrences || '/' || title || '/' || detail FROM lessons WHERE id = %s",
                  id),
                "2/Tests failed: y/d2");
        /* another failure, another category: other rows */
        CHECK(strcmp(q("SELECT loom_lesson_record('%s', 'test_failure', 't', 'd', 'make test |"
                       " segfault', NULL, NULL)",
                       p),
                     id) != 0);
        CHECK(strcmp(q("SELECT loom_lesson_record('%s', 'compiler_error', 't', 'd', 'make test |"
                       " FAIL line 12 after 30 ms', NULL, NULL)",
                       p),
                     id) != 0);
        CHECK_STR(q("SELECT count(*) FROM lessons WHERE project_id = '%s'", p), "3");
        /* a plain INSERT without a fingerprint still works, and is never merged */
        CHECK(strcmp(q("INSERT INTO lessons (project_id, category, title) VALUES ('%s',"
                       " 'test_failure', 'Tests failed: y') RETURNING id",
                       p),
                     "ERROR") != 0);
        CHECK_STR(q("SELECT count(*) FROM lessons WHERE project_id = '%s'", p), "4");
        /* relevance halves every 7 days unseen; ralph prunes the faded ones */
        q("UPDATE lessons SET last_seen_at = now() - interval '7 days' WHERE id = %s", id);
        CHECK_STR(q("SELECT round(loom_lesson_relevance(relevance, last_seen_at)::numeric, 2)"
                    " FROM lessons WHERE id = %s",
                    id),
                  "0.50");
        CHECK_STR(q("SELECT (loom_lesson_json(l) ->> 'relevance')::float8 FROM lessons l"
                    " WHERE id = %s",
                    id),
                  "0.5");
        q("UPDATE lessons SET last_seen_at = now() - interval '60 days' WHERE id = %s", id);
        CHECK(strtol(q("SELECT loom_pair_prune()"), NULL, 10) >= 1);
        CHECK_STR(q("SELECT count(*) FROM lessons WHERE project_id = '%s'", p), "3");
}

TEST(memory_checks_what_the_api_checks)
{
        const char *p = new_project();

        CHECK_STR(q("SELECT loom_memory_put('%s', 'convention', 'indent', 'tabs', 0.9, NULL, 'a')"
                    " ->> 'value'",
                    p),
                  "tabs");
        CHECK_STR(q("SELECT loom_memory_put('%s', 'convention', 'indent', 'spaces', 0.4, NULL,"
                    " 'b') ->> 'updated_by'",
                    p),
                  "b");
        CHECK_STR(q("SELECT count(*) || '/' || min(value) FROM project_memory"
                    " WHERE project_id = '%s'",
                    p),
                  "1/spaces");
        CHECK_STR(q("SELECT loom_memory_put('%s', 'nope', 'k', 'v', 0.5, NULL, 'a')", p), "ERROR");
        CHECK_HAS(db.errmsg, "category: must be one of");
        CHECK_STR(q("SELECT loom_memory_put('%s', 'lesson', '', 'v', 0.5, NULL, 'a')", p), "ERROR");
        CHECK_HAS(db.errmsg, "key:");
        CHECK_STR(q("SELECT loom_memory_put('%s', 'lesson', 'k', '', 0.5, NULL, 'a')", p), "ERROR");
        CHECK_HAS(db.errmsg, "value:");
        CHECK_STR(q("SELECT loom_memory_put('%s', 'lesson', 'k', 'v', 1.5, NULL, 'a')", p),
                  "ERROR");
        CHECK_HAS(db.errmsg, "confidence:");
        CHECK_STR(q("SELECT loom_memory_put('nosuch', 'lesson', 'k', 'v', 0.5, NULL, 'a')"),
                  "ERROR");
        CHECK_HAS(db.errmsg, "project nosuch not found");
        CHECK_STR(q("SELECT loom_memory_delete('%s', 'lesson', 'k', 'a')", p), "ERROR");
        CHECK_HAS(db.errmsg, "has no memory");
        CHECK_STR(q("SELECT loom_memory_delete('%s', 'convention', 'indent', 'a')", p), "t");
}

TEST(pair_sessions_are_reused_and_expire)
{
        const char *p = new_project(), *b = new_bead(p);
        char agent[32], s1[64]; /* q's answers are overwritten by later calls */

        snprintf(agent, sizeof(agent), "%s",
                 q("SELECT agent_id FROM loom_pair_target('%s', NULL, NULL)", b));
        CHECK(agent[0] == 'a');
        snprintf(s1, sizeof(s1), "%s",
                 q("SELECT loom_pair_open('%s', '%s', NULL, 'ann', 'sys', 'one') ->> 'session_id'",
                   b, agent));
        CHECK_STR(q("SELECT loom_pair_open('%s', '%s', NULL, 'ann', 'sys', 'two')"
                    " ->> 'session_id'",
                    b, agent),
                  s1);
        CHECK_STR(q("SELECT string_agg(role || ':' || content, '|' ORDER BY seq) FROM"
                    " pair_messages WHERE session_id = '%s'",
                    s1),
                  "system:sys|user:one|user:two");
        CHECK_STR(q("SELECT loom_pair_target('%s', 'agent-0', NULL)", b), "ERROR");
        CHECK_HAS(db.errmsg, "not found in project");
        /* reset keeps the system prompt; an expired session is not reused, and is pruned */
        CHECK_STR(q("SELECT loom_conversation_clear('%s', false, 't')", s1), s1);
        CHECK_STR(q("SELECT count(*) FROM pair_messages WHERE session_id = '%s'", s1), "1");
        q("UPDATE pair_sessions SET expires_at = now() - interval '1 s' WHERE id = '%s'", s1);
        CHECK(strcmp(q("SELECT loom_pair_open('%s', '%s', NULL, 'ann', 'sys', 'three')"
                       " ->> 'session_id'",
                       b, agent),
                     s1) != 0);
        CHECK(strtol(q("SELECT loom_pair_prune()"), NULL, 10) >= 1);
        CHECK_STR(q("SELECT count(*) FROM pair_messages WHERE session_id = '%s'", s1), "0");
}

TEST(calls_outside_runs_are_attached)
{
        const char *p = new_project(), *id;
        char want[64];

        id = q("SELECT loom_llm_call_attach(loom_llm_call_record(c), c) FROM (SELECT"
               " jsonb_build_object('source', 'proxy', 'project_id', '%s', 'provider_id', 'pp',"
               " 'requested_model', 'gpt-4o', 'prompt_tokens', 1000000, 'status', 'ok') c) x",
               p);
        CHECK_STR(q("SELECT concat_ws('/', source, project_id, provider_id, run_id IS NULL,"
                    " cost_usd) FROM llm_calls WHERE id = %s",
                    id),
                  (snprintf(want, sizeof(want), "proxy/%s/pp/t/2.500000", p), want));
}

TESTS(TESTLIB_CASE(start), TESTLIB_CASE(injections_need_a_live_run_and_are_taken_once),
      TESTLIB_CASE(lessons_merge_repeats_and_fade), TESTLIB_CASE(memory_checks_what_the_api_checks),
      TESTLIB_CASE(pair_sessions_are_reused_and_expire),
      TESTLIB_CASE(calls_outside_runs_are_attached))
