/*
 * Integration tests of budgets and approval gates (sql/012_budgets.sql) against a real,
 * throw-away PostgreSQL: reservations estimated from model_prices and reconciled by the call's
 * record, refusals and waits at the project, monthly and bead limits, the 80 % / 100 % alerts
 * once per crossing, the spend gate, runs that stop for a person (budget, merge, spend) and
 * the verdicts applied to every bead waiting on a gate's decision, and stale reservations.
 */
#include "db.h"
#include "err.h"
#include "testlib.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

static struct db db;
static int project_n;

/* Runs SQL built from f; the first value of the first row ("" for none, "ERROR" on error). */
static const char *q(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *q(const char *f, ...)
{
        static char out[8][2048];
        static int i;
        char sql[4096];
        va_list ap;
        PGresult *res;

        i = (i + 1) % 8;
        va_start(ap, f);
        vsnprintf(sql, sizeof(sql), f, ap);
        va_end(ap);
        if (db_exec_sql(&db, sql, &res) != ERR_OK) {
                printf("#   SQL failed: %s\n#   %s\n", sql, db.errmsg);
                return "ERROR";
        }
        snprintf(out[i], sizeof(out[i]), "%s",
                 PQntuples(res) && PQnfields(res) ? PQgetvalue(res, 0, 0) : "");
        PQclear(res);
        return out[i];
}

/* A project (prefix g<pid>x<N>: a second run on one database makes new ones) with the given
 * context JSON ("{}" for none). */
static const char *new_project(const char *context)
{
        static char ids[64][24];
        char *p = ids[++project_n % 64];

        snprintf(p, 24, "g%dx%d", (int)(getpid() % 100000), project_n % 100);
        q("SELECT loom_project_create('{\"id\":\"%s\",\"name\":\"%s\",\"bead_prefix\":\"%s\","
          "\"context\":%s}', 'test')",
          p, p, p, context);
        return p;
}

/* A bead (context JSON) with a run that executor "ex" holds; returns the run id. */
static const char *running_bead(const char *p, const char *context)
{
        static char rid[8][24];
        static int i;
        char bead[64];

        i = (i + 1) % 8;
        snprintf(bead, sizeof(bead), "%s",
                 q("SELECT loom_bead_create('{\"project_id\":\"%s\",\"title\":\"t\","
                   "\"context\":%s}', 'test') ->> 'id'",
                   p, context));
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

/* Runs sql that must fail; its error message ("" when it succeeded). */
static const char *q_fails(const char *sql)
{
        static char out[512];
        PGresult *res;

        if (db_exec_sql(&db, sql, &res) == ERR_OK) {
                PQclear(res);
                return "";
        }
        snprintf(out, sizeof(out), "%s", db.errmsg);
        return out;
}

static const char *bead_of(const char *rid)
{
        return q("SELECT bead_id FROM runs WHERE id = %s", rid);
}

/* The verdict of a reservation: prompt_chars characters and max_tokens on model "bm". */
static const char *reserve(const char *rid, long chars, int max_tokens)
{
        return q("SELECT loom_budget_reserve(%s, 'ex', 'bm-large', %ld, %d) ->> 'verdict'", rid,
                 chars, max_tokens);
}

/* Records a call of rid that cost usd, reconciling reservation res ("NULL": none). */
static void record(const char *rid, const char *usd, const char *res)
{
        q("SELECT loom_llm_call_record(jsonb_build_object('run_id', %s, 'served_model', 'bm',"
          " 'cost_usd', %s::numeric, 'status', 'ok', 'reservation_id', %s::bigint))",
          rid, usd, res);
}

static const char *events(const char *p, const char *type)
{
        return q("SELECT count(*) FROM events WHERE project_id = '%s' AND type = '%s'", p, type);
}

TEST(a_reservation_is_the_estimate_and_the_record_reconciles_it)
{
        const char *p = new_project("{}"), *rid = running_bead(p, "{}");
        char res[512];

        /* 4000 characters ~ 1000 prompt tokens at $1/M + 1000 completion tokens at $2/M */
        snprintf(res, sizeof(res), "%s",
                 q("SELECT loom_budget_reserve(%s, 'ex', 'bm-large', 4000, 1000)::text", rid));
        CHECK_HAS(res, "\"verdict\": \"granted\"");
        CHECK_HAS(res, "\"priced\": true");
        CHECK_HAS(res, "\"amount_usd\": 0.003000");
        CHECK_STR(q("SELECT amount_usd FROM budget_reservations WHERE run_id = %s", rid),
                  "0.003000");
        CHECK_STR(q("SELECT loom_budget_json('%s') ->> 'reserved_usd'", p), "0.003000");
        snprintf(res, sizeof(res), "%s",
                 q("SELECT id FROM budget_reservations WHERE run_id = %s", rid));
        /* the real cost counts, the reservation goes, in the record's transaction */
        q("SELECT loom_llm_call_record(jsonb_build_object('run_id', %s, 'served_model',"
          " 'bm-large', 'prompt_tokens', 500, 'completion_tokens', 100, 'status', 'ok',"
          " 'reservation_id', %s))",
          rid, res);
        CHECK_STR(q("SELECT spent_usd || ' ' || month_spent_usd FROM budgets"
                    " WHERE project_id = '%s'",
                    p),
                  "0.000700 0.000700");
        CHECK_STR(q("SELECT count(*) FROM budget_reservations WHERE run_id = %s", rid), "0");
        /* no price: nothing reserved, and the answer says so */
        CHECK_HAS(
                q("SELECT loom_budget_reserve(%s, 'ex', 'my-local-llama', 4000, 1000)::text", rid),
                "\"priced\": false");
        CHECK_STR(q("SELECT amount_usd FROM budget_reservations WHERE run_id = %s"
                    " AND model = 'my-local-llama'",
                    rid),
                  "0.000000");
        /* a run that is not the caller's reserves nothing */
        CHECK_STR(
                q("SELECT loom_budget_reserve(%s, 'someone-else', 'bm', 4, 1) ->> 'verdict'", rid),
                "lost");
}

TEST(a_project_budget_refuses_waits_and_alerts_once)
{
        const char *p = new_project("{\"budget_usd\":\"0.010\"}"), *rid = running_bead(p, "{}");
        char ids[3][24];

        /* three calls of $0.003 in flight: a fourth would pass the limit only while they are */
        for (int i = 0; i < 3; i++) {
                CHECK_STR(reserve(rid, 4000, 1000), "granted");
                snprintf(ids[i], sizeof(ids[i]), "%s",
                         q("SELECT max(id) FROM budget_reservations WHERE run_id = %s", rid));
        }
        CHECK_STR(reserve(rid, 4000, 1000), "wait");
        CHECK_HAS(q("SELECT loom_budget_reserve(%s, 'ex', 'bm', 4000, 1000) ->> 'message'", rid),
                  "held by calls in flight");
        record(rid, "0.003", ids[0]);
        record(rid, "0.003", ids[1]);
        CHECK_STR(events(p, "budget.warning"), "0");
        record(rid, "0.003", ids[2]);
        /* $0.009 spent: 90 %, one warning; the next call cannot fit whatever happens */
        CHECK_STR(events(p, "budget.warning"), "1");
        CHECK_STR(events(p, "budget.exceeded"), "0");
        CHECK_STR(reserve(rid, 4000, 1000), "budget");
        CHECK_STR(reserve(rid, 4000, 1000), "budget");
        CHECK_STR(events(p, "budget.exceeded"), "1");
        CHECK_HAS(q("SELECT loom_budget_reserve(%s, 'ex', 'bm', 4000, 1000) ->> 'message'", rid),
                  "is used up: $0.009 spent");
        CHECK_STR(q("SELECT loom_budget_reserve(%s, 'ex', 'bm', 4000, 1000) #>> '{detail,scope}'",
                    rid),
                  "total");
        record(rid, "0.0005", "NULL");
        CHECK_STR(events(p, "budget.warning"), "1");
        CHECK_STR(events(p, "budget.exceeded"), "1");
        CHECK_STR(q("SELECT (loom_budget_json('%s') ->> 'remaining_usd')::numeric", p), "0.000500");
        /* a higher limit re-arms what it no longer crosses; crossing it again alerts again */
        q("SELECT loom_budget_set('%s', '{\"limit_usd\": 0.0120}', 'person')", p);
        CHECK_STR(q("SELECT count(*) FROM budget_alerts WHERE project_id = '%s'", p), "0");
        CHECK_STR(reserve(rid, 0, 1000), "granted");
        record(rid, "0.002", "NULL");
        CHECK_STR(events(p, "budget.warning"), "2");
        CHECK_STR(events(p, "budget.exceeded"), "1");
        CHECK_STR(reserve(rid, 0, 1000), "budget");
        CHECK_STR(events(p, "budget.exceeded"), "2");
        CHECK_STR(q("SELECT loom_budget_json('%s') ->> 'limit_usd'", p), "0.012000");
        CHECK_STR(q("SELECT context ->> 'budget_usd' FROM projects WHERE id = '%s'", p), "0.012");
}

TEST(the_month_rolls_over_and_a_bead_has_its_own_limit)
{
        const char *p = new_project("{\"budget_monthly_usd\":\"0.005\"}"),
                   *rid = running_bead(p, "{\"budget_usd\":\"0.004\"}"),
                   *other = running_bead(p, "{}");

        record(other, "0.005", "NULL");
        CHECK_STR(reserve(rid, 0, 1000), "budget");
        CHECK_STR(
                q("SELECT loom_budget_reserve(%s, 'ex', 'bm', 0, 1000) #>> '{detail,scope}'", rid),
                "monthly");
        CHECK_STR(events(p, "budget.exceeded"), "1");
        /* last month's spending does not count this month */
        q("UPDATE budgets SET month = (loom_budget_month() - interval '1 month')::date"
          " WHERE project_id = '%s'",
          p);
        CHECK_STR(q("SELECT loom_budget_json('%s') ->> 'month_spent_usd'", p), "0");
        CHECK_STR(reserve(rid, 0, 1000), "granted");
        CHECK_STR(q("SELECT month_spent_usd || ' ' || spent_usd FROM budgets"
                    " WHERE project_id = '%s'",
                    p),
                  "0.000000 0.005000");
        q("DELETE FROM budget_reservations WHERE run_id = %s", rid);
        /* the bead's own budget: $0.003 spent of $0.004, a $0.002 call does not fit */
        record(rid, "0.003", "NULL");
        CHECK_STR(reserve(rid, 0, 1000), "budget");
        CHECK_STR(
                q("SELECT loom_budget_reserve(%s, 'ex', 'bm', 0, 1000) #>> '{detail,scope}'", rid),
                "bead");
        CHECK_STR(q("SELECT loom_bead_budget_json('%s') ->> 'remaining_usd'", bead_of(rid)),
                  "0.001000");
        CHECK_STR(q("SELECT count(*) FROM events WHERE type = 'budget.exceeded'"
                    " AND bead_id = '%s'",
                    bead_of(rid)),
                  "1");
}

TEST(a_used_up_budget_blocks_beads_on_one_decision_until_approved)
{
        const char *p = new_project("{\"budget_usd\":\"0.001\"}");
        char r1[24], r2[24], b1[64], b2[64], did[64];

        snprintf(r1, sizeof(r1), "%s", running_bead(p, "{}"));
        snprintf(r2, sizeof(r2), "%s", running_bead(p, "{}"));
        snprintf(b1, sizeof(b1), "%s", bead_of(r1));
        snprintf(b2, sizeof(b2), "%s", bead_of(r2));
        CHECK_STR(reserve(r1, 0, 1000), "budget");
        snprintf(did, sizeof(did), "%s",
                 q("SELECT loom_run_gate(%s, 'ex', 'budget', 'the budget is used up', 3,"
                   " '{\"scope\":\"total\",\"limit_usd\":\"0.001\"}')",
                   r1));
        CHECK_STR(q("SELECT loom_run_gate(%s, 'ex', 'budget', 'used up too', 1,"
                    " '{\"scope\":\"total\"}')",
                    r2),
                  did);
        CHECK_STR(q("SELECT state || ' ' || terminal_reason FROM runs WHERE id = %s", r1),
                  "failed budget");
        CHECK_STR(q("SELECT status || ' ' || (context ->> 'ralph_blocked_reason') FROM beads"
                    " WHERE id = '%s'",
                    b1),
                  "blocked budget: the budget is used up");
        CHECK_STR(q("SELECT array_to_string(blocked_by, ',') FROM beads WHERE id = '%s'", b2), did);
        CHECK_STR(q("SELECT (context ->> 'gate') || ' ' || title FROM beads WHERE id = '%s'", did),
                  q("SELECT 'budget Raise the budget of project %s?'", p));
        CHECK_STR(
                q("SELECT count(*) FROM agents WHERE project_id = '%s' AND status = 'working'", p),
                "0");
        /* Ralph never lifts it; a second gate on a finished run does nothing */
        q("UPDATE beads SET context = context || '{\"ralph_blocked_at\": \"2020-01-01\"}'"
          " WHERE id = '%s'",
          b1);
        q("SELECT loom_beads_recover(1, 1)");
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", b1), "blocked");
        CHECK_STR(q("SELECT coalesce(loom_run_gate(%s, 'ex', 'budget', 'x', 1, '{}'), 'none')", r1),
                  "none");
        CHECK_STR(q("SELECT loom_budget_json('%s') -> 'blocked_beads' ->> 1", p), b2);
        /* denied: they stay blocked; approved (a second decision, after the limit is raised):
         * open again */
        q("SELECT loom_decision_decide('%s', 'deny', 'no more money', 'cfo', 'cfo')", did);
        CHECK_STR(q("SELECT status FROM beads WHERE id = '%s'", b1), "blocked");
        CHECK_HAS(q("SELECT content FROM bead_comments WHERE bead_id = '%s'", b2),
                  "Denied (decision");
        CHECK_HAS(q("SELECT context ->> 'ralph_blocked_reason' FROM beads WHERE id = '%s'", b2),
                  "budget: more budget refused by cfo");
        snprintf(did, sizeof(did), "%s",
                 q("SELECT loom_gate_raise('%s', 'budget', 'again', '{\"scope\":\"total\"}', 'ex')",
                   b1));
        q("SELECT loom_gate_raise('%s', 'budget', 'again', '{\"scope\":\"total\"}', 'ex')", b2);
        q("SELECT loom_budget_set('%s', '{\"limit_usd\": 1}', 'person')", p);
        q("SELECT loom_decision_decide('%s', 'approve', 'raised to $1', 'cfo', 'cfo')", did);
        CHECK_STR(q("SELECT string_agg(status || ' ' || (context ? 'ralph_blocked_reason')::text,"
                    " ',' ORDER BY id) FROM beads WHERE id IN ('%s', '%s')",
                    b1, b2),
                  "open false,open false");
        CHECK_STR(q("SELECT cardinality(loom_open_blockers('%s'))", b1), "0");
}

TEST(a_merge_waits_for_approval_then_the_next_run_only_merges)
{
        const char *p = new_project("{\"require_approval_merge\":\"true\"}"),
                   *rid = running_bead(p, "{}");
        char bead[64], did[64], r2[24];

        snprintf(bead, sizeof(bead), "%s", bead_of(rid));
        snprintf(did, sizeof(did), "%s",
                 q("SELECT loom_run_gate(%s, 'ex', 'merge', 'approve merge of bead/%s into"
                   " main?', 4, '{\"branch\":\"main\"}')",
                   rid, bead));
        CHECK_STR(q("SELECT state || ' ' || terminal_reason FROM runs WHERE id = %s", rid),
                  "succeeded awaiting_approval");
        CHECK_STR(q("SELECT status || ' ' || (context ->> 'awaiting_approval') FROM beads"
                    " WHERE id = '%s'",
                    bead),
                  "blocked merge");
        CHECK_STR(q("SELECT loom_decision_json(d) ->> 'gate' FROM beads d WHERE id = '%s'", did),
                  "merge");
        /* a person cannot escalate it again while it waits */
        CHECK_HAS(q_fails(q("SELECT format('SELECT loom_bead_escalate(%%L, ''x'', ''p'')', '%s')",
                            bead)),
                  "already waits for decision");
        q("SELECT loom_decision_decide('%s', 'approve', 'ship it', 'lead', 'lead')", did);
        CHECK_STR(q("SELECT status || ' ' || (context ->> 'merge_approved') || ' ' ||"
                    " (context ? 'awaiting_approval')::text FROM beads WHERE id = '%s'",
                    bead),
                  "open true false");
        /* the merge-only run completes: closed, and the approval is used up */
        snprintf(r2, sizeof(r2), "%s",
                 q("INSERT INTO runs (bead_id, project_id, persona_name, priority, state,"
                   " lease_owner, lease_expires_at, started_at) VALUES ('%s', '%s', 'ceo', 2,"
                   " 'running', 'ex', now() + interval '1 min', now()) RETURNING id",
                   bead, p));
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'completed', 'merged', 0, 0, 0)", r2), "t");
        CHECK_STR(q("SELECT status || ' ' || (context ? 'merge_approved')::text FROM beads"
                    " WHERE id = '%s'",
                    bead),
                  "closed false");
}

TEST(a_denied_merge_reopens_the_bead_with_the_rationale)
{
        const char *p = new_project("{\"require_approval_merge\":\"true\"}"),
                   *rid = running_bead(p, "{}");
        char bead[64], did[64];

        snprintf(bead, sizeof(bead), "%s", bead_of(rid));
        snprintf(did, sizeof(did), "%s",
                 q("SELECT loom_run_gate(%s, 'ex', 'merge', 'merge?', 4, '{}')", rid));
        q("SELECT loom_decision_decide('%s', 'deny', 'tests are missing', 'lead', 'lead')", did);
        CHECK_STR(q("SELECT status || ' ' || coalesce(assigned_to, '-') || ' ' ||"
                    " (context ? 'merge_approved')::text FROM beads WHERE id = '%s'",
                    bead),
                  "open - false");
        CHECK_HAS(q("SELECT content FROM bead_comments WHERE bead_id = '%s'", bead),
                  "Denied (decision");
        CHECK_HAS(q("SELECT content FROM bead_comments WHERE bead_id = '%s'", bead),
                  "tests are missing");
}

TEST(the_spend_gate_asks_and_an_approval_raises_the_allowance)
{
        const char *p = new_project("{\"approval_cost_usd\":\"0.004\"}"),
                   *rid = running_bead(p, "{}");
        char bead[64], did[64], r2[24];

        snprintf(bead, sizeof(bead), "%s", bead_of(rid));
        record(rid, "0.003", "NULL");
        CHECK_STR(reserve(rid, 0, 1000), "approval");
        CHECK_HAS(q("SELECT loom_budget_reserve(%s, 'ex', 'bm', 0, 1000) ->> 'message'", rid),
                  "of the $0.004 it may spend without approval");
        snprintf(did, sizeof(did), "%s",
                 q("SELECT loom_run_gate(%s, 'ex', 'spend', 'more?', 2,"
                   " '{\"scope\":\"spend\",\"needed_usd\":\"0.002\"}')",
                   rid));
        CHECK_STR(q("SELECT context ->> 'awaiting_approval' FROM beads WHERE id = '%s'", bead),
                  "spend");
        q("SELECT loom_decision_decide('%s', 'approve', 'go on', 'cfo', 'cfo')", did);
        CHECK_STR(q("SELECT status || ' ' || (context ->> 'spend_allowance_usd') FROM beads"
                    " WHERE id = '%s'",
                    bead),
                  "open 0.008");
        snprintf(r2, sizeof(r2), "%s",
                 q("INSERT INTO runs (bead_id, project_id, persona_name, priority, state,"
                   " lease_owner, lease_expires_at, started_at) VALUES ('%s', '%s', 'ceo', 2,"
                   " 'running', 'ex', now() + interval '1 min', now()) RETURNING id",
                   bead, p));
        CHECK_STR(reserve(r2, 0, 1000), "granted");
        CHECK_STR(q("SELECT loom_bead_budget_json('%s') ->> 'spend_allowance_usd'", bead),
                  "0.008000");
}

TEST(stale_reservations_are_released)
{
        const char *p = new_project("{}");
        char r1[24], r2[24], r3[24];

        snprintf(r1, sizeof(r1), "%s", running_bead(p, "{}"));
        snprintf(r2, sizeof(r2), "%s", running_bead(p, "{}"));
        snprintf(r3, sizeof(r3), "%s", running_bead(p, "{}"));
        CHECK_STR(reserve(r1, 4000, 1000), "granted");
        CHECK_STR(reserve(r2, 4000, 1000), "granted");
        CHECK_STR(reserve(r3, 4000, 1000), "granted");
        /* r1's executor died (lease over); r2 was canceled; r3 is alive; a finished run
         * releases its own at once */
        q("UPDATE runs SET lease_expires_at = now() - interval '1 s' WHERE id = %s", r1);
        q("SELECT loom_run_cancel(%s, 'person')", r2);
        CHECK_STR(q("SELECT loom_budget_release_stale()"), "2");
        CHECK_STR(q("SELECT count(*) FROM budget_reservations WHERE project_id = '%s'", p), "1");
        CHECK_STR(q("SELECT loom_run_finish(%s, 'ex', 'error', 'x', 1, 0, 0)", r3), "t");
        CHECK_STR(q("SELECT count(*) FROM budget_reservations WHERE project_id = '%s'", p), "0");
}

TEST(calls_outside_runs_count_when_they_learn_their_project)
{
        const char *p = new_project("{\"budget_usd\":\"0.010\"}");
        char cid[24];

        snprintf(cid, sizeof(cid), "%s",
                 q("SELECT loom_llm_call_record('{\"served_model\": \"bm\", \"cost_usd\": 0.009,"
                   " \"status\": \"ok\"}')"));
        CHECK_STR(q("SELECT coalesce(max(spent_usd)::text, 'none') FROM budgets"
                    " WHERE project_id = '%s'",
                    p),
                  "none");
        q("SELECT loom_llm_call_attach(%s, '{\"source\": \"proxy\", \"project_id\": \"%s\"}')", cid,
          p);
        CHECK_STR(q("SELECT spent_usd FROM budgets WHERE project_id = '%s'", p), "0.009000");
        CHECK_STR(events(p, "budget.warning"), "1");
}

TEST(start)
{
        const char *url = getenv("LOOM_DATABASE_URL");

        CHECK(url != NULL);
        db_init(&db, url);
        CHECK_INT(db_connect(&db), ERR_OK);
        q("SELECT loom_persona_load(jsonb_build_object('name', n, 'role', n))"
          " FROM unnest(ARRAY['ceo', 'engineering-manager', 'qa-engineer', 'devops-engineer',"
          " 'code-reviewer']) n");
        /* "bm": $1 per million prompt tokens, $2 per million completion tokens */
        q("INSERT INTO model_prices (model_prefix, prompt_per_mtok, completion_per_mtok)"
          " VALUES ('bm', 1, 2) ON CONFLICT (model_prefix) DO NOTHING");
        CHECK_STR(q("SELECT loom_usd('0.50') || ' ' || coalesce(loom_usd('-1')::text, 'null')"
                    " || ' ' || coalesce(loom_usd('lots')::text, 'null')"),
                  "0.500000 null null");
}

TESTS(TESTLIB_CASE(start), TESTLIB_CASE(a_reservation_is_the_estimate_and_the_record_reconciles_it),
      TESTLIB_CASE(a_project_budget_refuses_waits_and_alerts_once),
      TESTLIB_CASE(the_month_rolls_over_and_a_bead_has_its_own_limit),
      TESTLIB_CASE(a_used_up_budget_blocks_beads_on_one_decision_until_approved),
      TESTLIB_CASE(a_merge_waits_for_approval_then_the_next_run_only_merges),
      TESTLIB_CASE(a_denied_merge_reopens_the_bead_with_the_rationale),
      TESTLIB_CASE(the_spend_gate_asks_and_an_approval_raises_the_allowance),
      TESTLIB_CASE(stale_reservations_are_released),
      TESTLIB_CASE(calls_outside_runs_count_when_they_learn_their_project))
