/*
 * Integration tests of what runs leave behind and the rules that stop loops (sql/005_work.sql)
 * against a real, throw-away PostgreSQL: accounting of LLM calls, the loop detector and
 * Ralph's recovery, escalation to a decision bead, cancel and hand-back of runs, stuck agents,
 * and agents paused by a person staying paused.
 */
#include "db.h"
#include "err.h"
#include "testlib.h"
#include "testdb.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdlib.h>

static int project_n;

/* A project (prefix w<N>) whose agents are idle on the healthy provider "wp". */
static const char *new_project(void)
{
        static char ids[64][16];
        char *p = ids[++project_n % 64];

        snprintf(p, 16, "w%d", project_n);
        q("SELECT loom_project_create('{\"id\":\"%s\",\"name\":\"%s\",\"bead_prefix\":\"%s\"}',"
          " 'test')",
          p, p, p);
        return p;
}

/* A bead with a run that an executor "ex" holds; returns the run id. */
static const char *running_bead(const char *p, const char *bead_json_extra)
{
        static char rid[8][24];
        static int i;
        const char *bead;

        i = (i + 1) % 8;
        bead = q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"t\"%s}', 'test')"
                 " ->> 'id'",
                 p, bead_json_extra);
        snprintf(rid[i], sizeof(rid[i]), "%s",
                 q("INSERT INTO runs (bead_id, project_id, agent_id, persona_name, priority,"
                   " state, lease_owner, lease_expires_at, started_at)"
                   " SELECT '%s', '%s', (SELECT id FROM agents WHERE project_id = '%s' LIMIT 1),"
                   " 'engineering-manager', 2, 'running', 'ex', now() + interval '1 min', now()"
                   " RETURNING id",
                   bead, p, p));
        q("UPDATE beads SET status = 'in_progress' WHERE id = '%s'", bead);
        return rid[i];
}

static const char *bead_of(const char *rid)
{
        return q("SELECT bead_id FROM runs WHERE id = %s", rid);
}

TEST(llm_calls_are_priced)
{
        const char *p = new_project(), *rid = running_bead(p, "");

        /* the longest matching prefix: gpt-4o-mini, not gpt-4o; cached tokens at their price */
        q("SELECT loom_llm_call_record('{\"run_id\":%s,\"requested_model\":\"openai/gpt-4o-mini\","
          "\"prompt_tokens\":1000000,\"completion_tokens\":1000000,\"cached_tokens\":500000,"
          "\"status\":\"ok\"}')",
          rid);
        CHECK_STR(q("SELECT cost_usd || ' ' || cost_source FROM llm_calls WHERE run_id = %s", rid),
                  "0.712500 price_table");
        /* the provider's own figure wins; an unknown model costs nothing known */
        q("SELECT loom_llm_call_record('{\"run_id\":%s,\"served_model\":\"gpt-4o\","
          "\"prompt_tokens\":10,\"cost_usd\":0.5,\"status\":\"ok\"}')",
          rid);
        q("SELECT loom_llm_call_record('{\"run_id\":%s,\"served_model\":\"my-local-llama\","
          "\"prompt_tokens\":10,\"status\":\"error\",\"error_class\":\"server\"}')",
          rid);
        CHECK_STR(q("SELECT string_agg(cost_source, ',' ORDER BY id) FROM llm_calls"
                    " WHERE run_id = %s",
                    rid),
                  "price_table,provider,none");
        CHECK_STR(q("SELECT llm_calls || ' ' || cost_usd || ' ' || prompt_tokens FROM runs"
                    " WHERE id = %s",
                    rid),
                  "3 1.212500 1000020");
}

TEST(provider_errors_block_then_ralph_recovers)
{
        const char *p = new_project(),
                   *rid = running_bead(p, ",\"context\":{\"dispatch_count\":6}");
        char bead[64];

        snprintf(bead, sizeof(bead), "%s", bead_of(rid));
        for (int i = 0; i < 5; i++) {
                if (i > 0) {
                        q("INSERT INTO runs (bead_id, project_id, persona_name, priority, state,"
                          " lease_owner, lease_expires_at, started_at) VALUES ('%s', '%s', 'ceo',"
                          " 2, 'running', 'ex', now() + interval '1 min', now())",
                          bead, p);
                        rid = q("SELECT max(id) FROM runs WHERE bead_id = '%s'", bead);
                }
                CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'provider_error',"
                            " 'server: HTTP 503 from the provider', 1, 0, 0)",
                            rid),
                          "t");
                CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", bead),
                          i < 4 ? "open" : "blocked");
        }
        CHECK_HAS(q("SELECT context ->> 'ralph_blocked_reason' FROM beads WHERE id = '%s'", bead),
                  "5 provider errors");
        CHECK_STR(q("SELECT context ->> 'loop_detected' FROM beads WHERE id = '%s'", bead), "true");
        /* not before the cool-down; after it, open again with a clean slate */
        CHECK_STR(q("SELECT loom_beads_recover(1800, 7200) >= 0"), "t");
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", bead), "blocked");
        q("UPDATE beads SET context = context || jsonb_build_object('ralph_blocked_at',"
          " now() - interval '31 minutes') WHERE id = '%s'",
          bead);
        q("SELECT loom_beads_recover(1800, 7200)");
        CHECK_STR(q("SELECT status || ' ' || (context ->> 'dispatch_count') || ' ' ||"
                    " (context ? 'error_history')::text FROM beads WHERE id = '%s'",
                    bead),
                  "open 0 false");
}

TEST(auth_waits_longer_and_budget_never_recovers)
{
        const char *p = new_project();
        const char *a = q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"a\","
                          "\"status\":\"blocked\",\"context\":{\"ralph_blocked_reason\":"
                          "\"auto-blocked by Ralph: 3 auth errors\",\"ralph_blocked_at\":"
                          "\"2020-01-01T00:00:00Z\"}}', 't') ->> 'id'",
                          p);
        char auth[64];
        const char *budget;

        snprintf(auth, sizeof(auth), "%s", a);
        budget = q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"b\","
                   "\"status\":\"blocked\",\"context\":{\"ralph_blocked_reason\":"
                   "\"budget exceeded\",\"ralph_blocked_at\":\"2020-01-01T00:00:00Z\"}}', 't')"
                   " ->> 'id'",
                   p);
        q("SELECT loom_beads_recover(1800, 7200)");
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", budget), "blocked");
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", auth), "open");
}

TEST(escalation_blocks_until_the_decision_closes)
{
        const char *p = new_project(), *rid = running_bead(p, "");
        char bead[64], decision[64];

        snprintf(bead, sizeof(bead), "%s", bead_of(rid));
        char blocked_on[80];

        snprintf(decision, sizeof(decision), "%s",
                 q("SELECT loom_escalate('%s', 'which database?', 'agent')", bead));
        snprintf(blocked_on, sizeof(blocked_on), "blocked %s", decision);
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'escalated', NULL, 2, 0, 0)", rid), "t");
        CHECK_STR(q("SELECT status || ' ' || array_to_string(blocked_by, ',') FROM beads"
                    " WHERE id = '%s'",
                    bead),
                  blocked_on);
        CHECK_STR(q("SELECT type || ' ' || (context ->> 'requires_human') FROM beads"
                    " WHERE id = '%s'",
                    decision),
                  "decision true");
        /* the decision beads waiting for a person are never dispatched */
        q("SELECT loom_bead_apply('%s', '{\"status\":\"closed\"}', 'person')", decision);
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", bead), "open");
}

TEST(cancel_and_hand_back)
{
        const char *p = new_project(), *rid = running_bead(p, "");
        char r1[24];

        snprintf(r1, sizeof(r1), "%s", rid);
        /* handing back: queued again, the same attempt, the owner's lease gone */
        CHECK_STR(q("SELECT loom_run_release(%s, 'ex')", r1), "t");
        CHECK_STR(q("SELECT state || ' ' || attempt FROM runs WHERE id = %s", r1), "queued 1");
        CHECK_STR(q("SELECT loom_run_progress(%s, 'ex', 60, 2, NULL)", r1), "f");
        /* canceling: the run ends, the bead is open again, the agent idle */
        CHECK_HAS(q("SELECT loom_run_cancel(%s, 'person')::text", r1), "\"canceled\"");
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", bead_of(r1)), "open");
        CHECK_STR(q("SELECT count(*) FROM runs WHERE id = %s AND state = 'canceled'"
                    " AND finished_at IS NOT NULL",
                    r1),
                  "1");
        /* a run that ended cannot be canceled or finished again */
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'completed', NULL, 1, 0, 0)", r1), "f");
        CHECK_STR(q("SELECT loom_run_cancel(%s, 'person')::text", r1), "ERROR");
        CHECK_HAS(db.errmsg, "already ended");
}

TEST(a_persons_status_wins_over_a_late_finish)
{
        const char *p = new_project(), *rid = running_bead(p, "");
        char bead[64];

        snprintf(bead, sizeof(bead), "%s", bead_of(rid));
        q("SELECT loom_bead_apply('%s', '{\"status\":\"closed\"}', 'person')", bead);
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'max_iterations', 'x', 25, 0, 0)", rid), "t");
        CHECK_STR(q("SELECT status || ' ' || (context ->> 'terminal_reason') FROM beads"
                    " WHERE id = '%s'",
                    bead),
                  "closed max_iterations");
}

TEST(stuck_agents_go_idle_and_paused_ones_stay_paused)
{
        const char *p = new_project();
        char a1[32], a2[32];
        const char *bead = q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"s\"}',"
                             " 't') ->> 'id'",
                             p);

        snprintf(a1, sizeof(a1), "%s", q("SELECT min(id) FROM agents WHERE project_id = '%s'", p));
        snprintf(a2, sizeof(a2), "%s", q("SELECT max(id) FROM agents WHERE project_id = '%s'", p));
        q("UPDATE agents SET status = 'working', current_bead = '%s',"
          " last_active = now() - interval '10 minutes' WHERE id = '%s'",
          bead, a1);
        q("SELECT loom_agent_update('%s', '{\"status\":\"paused\"}', 'person')", a2);
        CHECK_STR(q("SELECT paused_reason FROM agents WHERE id = '%s'", a2), "person");
        CHECK_STR(q("SELECT loom_agents_reset_stuck(300) >= 1"), "t");
        CHECK_STR(q("SELECT status || ' ' || coalesce(current_bead, '-') FROM agents"
                    " WHERE id = '%s'",
                    a1),
                  "idle -");
        q("SELECT loom_provider_probed('wp', true, 1, NULL)");
        CHECK_STR(q("SELECT status FROM agents WHERE id = '%s'", a2), "paused");
}

TEST(project_sets_the_iteration_budget)
{
        const char *p = new_project(), *bead;

        q("SELECT loom_project_update('%s', '{\"context\":{\"max_iterations\":\"7\"}}', 't')", p);
        bead = q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"m\"}', 't')"
                 " ->> 'id'",
                 p);
        CHECK_STR(q("INSERT INTO runs (bead_id, project_id, persona_name, priority)"
                    " VALUES ('%s', '%s', 'ceo', 2) RETURNING max_iterations",
                    bead, p),
                  "7");
}

/* 020: the end of a run and the claim of the next queued run are one transaction. */
TEST(finish_and_claim_in_one_transaction)
{
        const char *p = new_project(), *rid = running_bead(p, "");
        char r1[24], next[24], bead[64];

        snprintf(r1, sizeof(r1), "%s", rid);
        snprintf(bead, sizeof(bead), "%s", bead_of(r1));
        /* a P0 run queued behind it (P0 first: other tests' queued runs do not come before) */
        snprintf(next, sizeof(next), "%s",
                 q("INSERT INTO runs (bead_id, project_id, persona_name, priority)"
                   " SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"n\"}', 'test')"
                   " ->> 'id', '%s', 'engineering-manager', 0 RETURNING id",
                   p, p));
        CHECK_STR(q("SELECT f.finished || ' ' || (f.claimed).id || ' ' || (f.claimed).state"
                    " || ' ' || (f.claimed).lease_owner FROM loom_run_finish_claim(%s, 'ex',"
                    " 'completed', NULL, 1, 0, 0, 60) f",
                    r1),
                  testlib_fmt("true %s running ex", next));
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", bead), "closed");
        /* one transaction: now() is the same for the end and the claim */
        CHECK_STR(q("SELECT a.finished_at = b.started_at FROM runs a, runs b"
                    " WHERE a.id = %s AND b.id = %s",
                    r1, next),
                  "t");
        /* a run no longer ours is not finished, but the executor is free and still claims */
        snprintf(r1, sizeof(r1), "%s",
                 q("INSERT INTO runs (bead_id, project_id, persona_name, priority)"
                   " SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"m\"}', 'test')"
                   " ->> 'id', '%s', 'engineering-manager', 0 RETURNING id",
                   p, p));
        CHECK_STR(q("SELECT f.finished || ' ' || (f.claimed).id FROM loom_run_finish_claim(%s,"
                    " 'other', 'completed', NULL, 1, 0, 0, 60) f",
                    next),
                  testlib_fmt("false %s", r1));
        CHECK_STR(q("SELECT state || ' ' || lease_owner FROM runs WHERE id = %s", next),
                  "running ex");
        CHECK_STR(q("SELECT loom_run_finish(%s, 'other', 'completed', NULL, 1, 0, 0)", r1), "t");
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'completed', NULL, 1, 0, 0)", next), "t");
}

TEST(start)
{
        const char *url = getenv("LOOM_DATABASE_URL");

        CHECK(url != NULL);
        db_init(&db, url);
        CHECK_INT(db_connect(&db), ERR_OK);
        /* the default agents of a project are made from these personas */
        q("SELECT loom_persona_load(jsonb_build_object('name', n, 'role', n))"
          " FROM unnest(ARRAY['ceo', 'engineering-manager', 'qa-engineer', 'devops-engineer',"
          " 'code-reviewer']) n");
        q("SELECT loom_provider_create('{\"id\":\"wp\",\"endpoint\":\"http://127.0.0.1:9/v1\","
          "\"model\":\"m\"}', 't') WHERE NOT EXISTS (SELECT 1 FROM providers WHERE id = 'wp')");
        CHECK_STR(q("SELECT loom_provider_probed('wp', true, 1, NULL)"), "");
}

TESTS(TESTLIB_CASE(start), TESTLIB_CASE(llm_calls_are_priced),
      TESTLIB_CASE(provider_errors_block_then_ralph_recovers),
      TESTLIB_CASE(auth_waits_longer_and_budget_never_recovers),
      TESTLIB_CASE(escalation_blocks_until_the_decision_closes), TESTLIB_CASE(cancel_and_hand_back),
      TESTLIB_CASE(a_persons_status_wins_over_a_late_finish),
      TESTLIB_CASE(stuck_agents_go_idle_and_paused_ones_stay_paused),
      TESTLIB_CASE(project_sets_the_iteration_budget),
      TESTLIB_CASE(finish_and_claim_in_one_transaction))
