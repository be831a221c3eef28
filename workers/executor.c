/*
 * loom-executor — claims queued runs and drives the agent's action loop (N processes).
 *
 * A claim is one UPDATE … FOR UPDATE SKIP LOCKED with a lease (LOOM_LEASE_SECONDS, 60),
 * renewed at every iteration and every lease/3 during an LLM call (and stretched to cover a
 * long command); a run whose lease was lost
 * (expired and re-queued by loom-ralph, or canceled by a person) is abandoned without writing
 * anything more.  The end of a run — its state, the bead's status, the agent's release — is one
 * transaction (loom_run_finish), which also claims the next queued run unless the process is
 * stopping (loom_run_finish_claim: one commit instead of two; a run so claimed and not begun
 * at SIGTERM is handed back).  No transaction is open during an LLM call or a command.
 *
 * A run works in the bead's own git worktree (workspace.h) on branch bead/<id>.  Each
 * iteration: renew the lease and publish "iteration i/N"; send what fits of the conversation
 * (history.h; a context-length refusal shrinks it and retries); account the call (llm_calls);
 * read the reply leniently (actions.h); carry out the actions (tools.h for files, commands and
 * git; bead actions and remember here); log every action and command; tell the model the
 * results.  The conversation is stored (messages) as it grows, and a later run of the bead
 * resumes it.  Before each LLM call the messages people sent the loop (injections) join it.
 * The system prompt carries the project's most relevant lessons and its memory; a failed build
 * or test run is recorded as a lesson (deduplicated and fading, loom_lesson_record).
 *
 * Every LLM call is reserved first against the project's and the bead's budgets (budget.h)
 * and reconciled by its llm_calls record.  A refused reservation ends the run for a person: the
 * bead waits on a decision to raise the budget, or to allow more spending (the spend gate).  In
 * a project whose context says require_approval_merge, done work is committed but neither
 * pushed nor merged: the run ends awaiting approval, and once a person approves, the bead's
 * next run only pushes and merges, without the model.
 *
 * A run ends with Loom's terminal reasons: completed (done / close_bead), escalated
 * (escalate_ceo files a decision bead that blocks this one), max_iterations, no_actions,
 * parse_failures / validation_failures (8 unusable replies in a row), loop_detected (guard.h),
 * progress_stagnant, provider_error, error; and budget, awaiting_approval (a gate).
 */
#include "actions.h"
#include "budget.h"
#include "config.h"
#include "dblog.h"
#include "err.h"
#include "guard.h"
#include "history.h"
#include "httpc.h"
#include "llm.h"
#include "log.h"
#include "secret.h"
#include "strbuf.h"
#include "tools.h"
#include "worker.h"
#include "workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define EXEC_MAX_BAD_REPLIES 8
#define EXEC_FEEDBACK_CAP    ((size_t)96 << 10)
#define EXEC_ARG_CAP         2000 /* longest string kept in an action's logged args */
#define EXEC_OUTPUT_LOG_CAP  65536
#define EXEC_AGENTS_MD_CAP   4000
#define EXEC_MEMORY_ROWS     "20"
#define EXEC_MEMORY_CAP      4000 /* characters of project memory in the system prompt */
#define EXEC_LESSON_SHOWN    600  /* characters of one lesson's detail in the system prompt */

static const char exec_action_format[] =
        "You are an autonomous agent working a bead (a work item) in Loom. Act; never ask the "
        "human questions: when only a person can decide, use escalate_ceo.\n"
        "Reply with exactly one JSON object and nothing else:\n"
        "{\"actions\": [{\"type\": \"<action>\", ...}, ...], \"notes\": \"<what you are doing "
        "and why>\"}\n"
        "The actions run in order and you see every result in the next message. Paths are "
        "relative to the repository root; you work in your own git worktree on the bead's "
        "branch. Commands run without a shell of their own: an allowlist of programs (make, "
        "git, npm, node, python3, cargo, go, grep, ls, cat, ...), with &&, || and | between "
        "them.\n"
        "Actions:\n";

static const char exec_rules[] =
        "Work this way: look at the code you need (read_tree, search_text, read_file), make "
        "the change (edit_code, write_file, apply_patch), verify it (build_project, run_tests), "
        "commit it (git_commit), then finish with done. Use close_bead for another bead, "
        "create_bead for follow-up work you find, escalate_ceo for a decision a person must "
        "make.\n";

static const char *const exec_slips[] = {
        "would you like me to",    "do you want me to", "please provide",
        "please let me know",      "shall i ",          "should i proceed",
        "let me know if",          "can you clarify",   "could you provide",
        "i need more information",
};

static struct db_stmt exec_claim_stmt = {
        .name = "exec_claim",
        .sql = "SELECT r.id, r.bead_id, r.max_iterations, r.attempt, r.project_id,"
               " coalesce(r.agent_id, ''), r.iterations FROM loom_run_claim($1, $2::int) r"
               " WHERE r.id IS NOT NULL",
        .nparams = 2,
};

/* Everything a run needs, in one read. */
enum {
        CTX_TITLE,
        CTX_DESCRIPTION,
        CTX_PRIORITY,
        CTX_TYPE,
        CTX_PROJECT_NAME,
        CTX_PROJECT,
        CTX_PERSONA_DESCRIPTION,
        CTX_INSTRUCTIONS,
        CTX_ENDPOINT,
        CTX_API_KEY,
        CTX_MODEL,
        CTX_PROVIDER_STATUS,
        CTX_GIT_REPO,
        CTX_DEFAULT_BRANCH,
        CTX_CONTEXT_WINDOW,
        CTX_AGENT,
        CTX_AGENT_NAME,
        CTX_BEAD_CONTEXT,
        CTX_PREVIOUS,
        CTX_GIT_STRATEGY,
        CTX_ALLOW_NETWORK,
        CTX_PROVIDER_ID,
        CTX_MERGE_GATED,
        CTX_MERGE_APPROVED,
};

static struct db_stmt exec_context_stmt = {
        .name = "exec_context",
        .sql = "SELECT b.title, b.description, b.priority, b.type, p.name, p.id,"
               "       pe.description, pe.instructions, pv.endpoint, pv.api_key_sealed, pv.model,"
               "       pv.status, p.git_repo, p.default_branch,"
               "       coalesce(pv.context_window, 32768), coalesce(r.agent_id, ''),"
               "       coalesce(a.name, r.persona_name),"
               "       (b.context - ARRAY['error_history', 'dispatch_count', 'last_run_at',"
               "                          'last_failed_at', 'redispatch_requested',"
               "                          'redispatch_requested_at', 'terminal_reason',"
               "                          'last_run_error'])::text,"
               "       (SELECT format('%s: %s%s', pr.terminal_reason, coalesce(pr.error, ''),"
               "               CASE WHEN pr.terminal_reason = 'awaiting_approval'"
               "                    AND b.context ? 'ceo_decision' THEN format("
               "                    '. A person decided: %s (%s)', b.context->>'ceo_decision',"
               "                    coalesce(b.context->>'ceo_rationale', 'no rationale')) END)"
               "          FROM runs pr WHERE pr.bead_id = r.bead_id AND pr.id < r.id"
               "          ORDER BY pr.id DESC LIMIT 1), p.git_strategy,"
               "       coalesce(p.context->>'allow_network' IN ('true', '1', 'yes'), false),"
               "       coalesce(r.provider_id, ''),"
               "       coalesce(p.context->>'require_approval_merge' IN ('true', '1', 'yes'),"
               "                false),"
               "       coalesce(b.context->>'merge_approved' = 'true', false)"
               " FROM runs r JOIN beads b ON b.id = r.bead_id"
               " JOIN projects p ON p.id = r.project_id"
               " JOIN personas pe ON pe.name = r.persona_name"
               " LEFT JOIN agents a ON a.id = r.agent_id"
               " LEFT JOIN providers pv ON pv.id = r.provider_id WHERE r.id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt exec_messages_stmt = {
        .name = "exec_messages",
        .sql = "SELECT role, content FROM (SELECT seq, role, content FROM messages"
               " WHERE bead_id = $1 AND role <> 'system' ORDER BY seq DESC LIMIT 400) m"
               " ORDER BY seq",
        .nparams = 1,
        .readonly = true,
};

/* The most relevant lessons: fading with time unseen, weighted by how often they recurred. */
static struct db_stmt exec_lessons_stmt = {
        .name = "exec_lessons",
        .sql = "SELECT category, title, detail, occurrences FROM lessons WHERE project_id = $1"
               " AND loom_lesson_relevance(relevance, last_seen_at) >= 0.1"
               " ORDER BY loom_lesson_relevance(relevance, last_seen_at) * (1 + ln(occurrences))"
               " DESC, id DESC LIMIT 5",
        .nparams = 1,
        .readonly = true,
};

/* Project memory for the prompt: the surest and newest entries first. */
static struct db_stmt exec_memory_stmt = {
        .name = "exec_memory",
        .sql = "SELECT category, key, value, confidence FROM project_memory WHERE project_id = $1"
               " ORDER BY confidence DESC, updated_at DESC LIMIT " EXEC_MEMORY_ROWS,
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt exec_remember_stmt = {
        .name = "exec_remember",
        .sql = "SELECT loom_memory_put($1, $2, $3, $4, $5::real, $6, $7) ->> 'key'",
        .nparams = 7,
};

/* A person's messages for the bead, stored in the conversation and marked delivered. */
static struct db_stmt exec_injections_stmt = {
        .name = "exec_injections",
        .sql = "SELECT t FROM loom_injections_take($1::bigint) t",
        .nparams = 1,
};

static struct db_stmt exec_message_stmt = {
        .name = "exec_message",
        .sql = "SELECT loom_message_add($1, $2, $3, $4)",
        .nparams = 4,
};

static struct db_stmt exec_progress_stmt = {
        .name = "exec_progress",
        .sql = "SELECT loom_run_progress($1, $2, $3::int, $4::int, $5::jsonb)",
        .nparams = 5,
};

static struct db_stmt exec_llm_call_stmt = {
        .name = "exec_llm_call",
        .sql = "SELECT loom_llm_call_record($1::jsonb)",
        .nparams = 1,
};

static struct db_stmt exec_action_stmt = {
        .name = "exec_action",
        .sql = "INSERT INTO actions (run_id, bead_id, project_id, agent_id, iteration, seq, type,"
               " args, status, message, path, duration_ms)"
               " VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, $8::jsonb, $9, $10,"
               " nullif($11, ''), $12) RETURNING id",
        .nparams = 12,
};

static struct db_stmt exec_command_stmt = {
        .name = "exec_command",
        .sql = "INSERT INTO command_logs (action_id, run_id, bead_id, project_id, agent_id,"
               " command, working_dir, exit_code, timed_out, duration_ms, output)"
               " VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9::boolean, $10, $11)",
        .nparams = 11,
};

static struct db_stmt exec_worktree_stmt = {
        .name = "exec_worktree",
        .sql = "UPDATE runs SET worktree = $2 WHERE id = $1",
        .nparams = 2,
};

static struct db_stmt exec_create_bead_stmt = {
        .name = "exec_create_bead",
        .sql = "SELECT loom_bead_create($1::jsonb, $2) ->> 'id'",
        .nparams = 2,
};

static struct db_stmt exec_close_other_stmt = {
        .name = "exec_close_other",
        .sql = "SELECT loom_bead_apply(id, jsonb_build_object('status', 'closed', 'context',"
               " jsonb_build_object('close_reason', $3::text)), $4) ->> 'id'"
               " FROM beads WHERE id = $1 AND project_id = $2",
        .nparams = 4,
};

static struct db_stmt exec_escalate_stmt = {
        .name = "exec_escalate",
        .sql = "SELECT loom_escalate($1, $2, $3)",
        .nparams = 3,
};

/* Recorded once per distinct failure; a repeat counts and refreshes it (015_pair.sql). */
static struct db_stmt exec_lesson_stmt = {
        .name = "exec_lesson",
        .sql = "SELECT loom_lesson_record($1, $2, $3, $4, $5, $6, $7)",
        .nparams = 7,
};

static struct db_stmt exec_release_stmt = {
        .name = "exec_release",
        .sql = "SELECT loom_run_release($1, $2)",
        .nparams = 2,
};

static struct db_stmt exec_finish_stmt = {
        .name = "exec_finish",
        .sql = "SELECT loom_run_finish($1, $2, $3, $4, $5::int, 0, 0)",
        .nparams = 5,
};

/* The end of a run and the claim of the next in one transaction, one disk flush instead of two
 * (sql/020_finish_claim.sql): whether the run was still ours, then exec_claim_stmt's columns,
 * NULL when nothing is queued. */
static struct db_stmt exec_finish_claim_stmt = {
        .name = "exec_finish_claim",
        .sql = "SELECT f.finished, (f.claimed).id, (f.claimed).bead_id,"
               " (f.claimed).max_iterations, (f.claimed).attempt, (f.claimed).project_id,"
               " coalesce((f.claimed).agent_id, ''), (f.claimed).iterations"
               " FROM loom_run_finish_claim($1, $2, $3, $4, $5::int, 0, 0, $6::int) f",
        .nparams = 6,
};

/* A run claimed along with the end of the previous one, for the next tick to work, and the
 * end of its lease by this process's clock (counted from when the claim was sent). */
static PGresult *exec_next;
static long long exec_next_until_ms;

/* The runs being worked, and whose they are (a handful: one per busy executor). */
static struct db_stmt exec_held_stmt = {
        .name = "exec_held",
        .sql = "SELECT id, lease_owner FROM runs WHERE state = 'running'",
        .readonly = true,
};

/* The lease of a run whose executor is gone ends now; loom_runs_expire takes it from there. */
static struct db_stmt exec_orphan_stmt = {
        .name = "exec_orphan",
        .sql = "UPDATE runs SET lease_expires_at = now()"
               " WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        .nparams = 2,
};

static struct db_stmt exec_expire_stmt = {
        .name = "exec_expire",
        .sql = "SELECT loom_runs_expire($1::int)",
        .nparams = 1,
};

/* Chosen once at start (LOOM_SANDBOX*): how commands are confined. */
static struct sandbox exec_sandbox;

struct exec_settings {
        long lease_s;
        long llm_timeout_s, llm_connect_s, llm_retries;
        long command_timeout_s;
        long budget_wait_s;
        long max_attempts;
        bool stream;
        bool reclaim; /* LOOM_EXECUTOR_RECLAIM: end the leases of this host's dead executors */
        const char *projects_dir;
};

struct exec_run {
        struct worker *w;
        const struct exec_settings *cfg;
        char id[24], bead[64], project[64], agent[64], provider[64];
        const char *agent_name, *default_branch;
        bool merge;       /* git_strategy "direct": finished work is merged into default_branch */
        bool merge_gated; /* context.require_approval_merge: no push or merge unapproved */
        bool merge_approved; /* a person approved: this run only pushes and merges */
        int attempt, max_iterations, iterations, bad_replies;
        bool lease_lost;
        /* when the lease last confirmed runs out by this process's monotonic clock (measured
         * from before the renewing statement was sent, so never later than the database's):
         * past it, nothing more is done, even while the database cannot be asked */
        long long lease_until_ms;
        bool unpriced_logged;
        /* why a reservation stopped the run: gate ("budget", "spend", "merge") for a person,
         * with the question and figures for the decision; halt for anything else */
        const char *gate, *gate_question, *gate_detail, *halt;
        const char *endpoint, *api_key, *model;
        size_t budget_chars;
        struct history hist;
        struct workspace ws;
        struct tool_env tenv;
        struct guard guard;
        int commits;
};

/* What the run's database log lines are about (a pointer to a compound literal). */
#define EXEC_WHERE(run)                                                                            \
        (&(const struct dblog_where){.project_id = (run)->project,                                 \
                                     .bead_id = (run)->bead,                                       \
                                     .agent_id = (run)->agent[0] ? (run)->agent : NULL})

/* The level a run's end is logged at: done is news, a failure of the provider or of Loom is
 * an error, any other failure a warning. */
static enum log_level exec_finish_level(const char *reason)
{
        if (strcmp(reason, "completed") == 0 || strcmp(reason, "escalated") == 0 ||
            strcmp(reason, "canceled") == 0)
                return LOG_LEVEL_INFO;
        if (strcmp(reason, "provider_error") == 0 || strcmp(reason, "error") == 0)
                return LOG_LEVEL_ERROR;
        return LOG_LEVEL_WARN;
}

static const char *exec_num(struct exec_run *run, long v)
{
        return arena_printf(&run->w->arena, "%ld", v);
}

/* Runs a statement whose result we only need to succeed; logs a failure. */
static bool exec_do(struct exec_run *run, struct db_stmt *st, const char *const *params,
                    PGresult **out)
{
        PGresult *res = NULL;

        if (db_exec(&run->w->db, st, params, &res) != ERR_OK) {
                log_warn("run %s: %s failed: %s", run->id, st->name, run->w->db.errmsg);
                return false;
        }
        if (out)
                *out = res;
        else
                PQclear(res);
        return true;
}

/* Adds a message to the conversation and stores it. */
static void exec_say(struct exec_run *run, const char *role, const char *content)
{
        const char *params[4] = {run->bead, run->id, role, content};

        history_add(&run->hist, role, content);
        exec_do(run, &exec_message_stmt, params, NULL);
}

/* True while the lease last confirmed has not run out by our own clock. */
static bool exec_lease_held(struct exec_run *run)
{
        if (!run->lease_lost && worker_now_ms() >= run->lease_until_ms) {
                run->lease_lost = true;
                log_warn("run %s: the lease ran out before it could be renewed; stopping", run->id);
        }
        return !run->lease_lost;
}

/*
 * Renews the lease for lease_s; with info, publishes the iteration.  False: not ours, or the
 * database cannot be asked and the lease confirmed last has run out (another executor may
 * hold the run by now: fencing, not hope).
 */
static bool exec_progress(struct exec_run *run, long lease_s, const char *info)
{
        const char *params[5] = {run->id, run->w->owner, exec_num(run, lease_s),
                                 exec_num(run, run->iterations), info};
        long long sent = worker_now_ms();
        PGresult *res;
        bool ours;

        if (db_exec(&run->w->db, &exec_progress_stmt, params, &res) != ERR_OK)
                return exec_lease_held(run); /* a hiccup: go on while the old lease runs */
        ours = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (!ours)
                run->lease_lost = true;
        else
                run->lease_until_ms = sent + lease_s * 1000;
        return ours;
}

/*
 * Records the end of the run.  Unless the process is stopping, the same transaction claims the
 * next queued run, kept in exec_next for the next tick.
 */
static void exec_finish(struct exec_run *run, const char *reason, const char *error)
{
        bool chain = !*worker_stop_flag() && !exec_next;
        const char *params[6] = {run->id,
                                 run->w->owner,
                                 reason,
                                 error,
                                 exec_num(run, run->iterations),
                                 exec_num(run, run->cfg->lease_s)};
        long long sent = worker_now_ms();
        PGresult *res;

        if (db_exec(&run->w->db, chain ? &exec_finish_claim_stmt : &exec_finish_stmt, params,
                    &res) != ERR_OK) {
                dblog_write(LOG_LEVEL_ERROR, EXEC_WHERE(run),
                            "run %s: cannot record its end (%s): %s; the lease will expire",
                            run->id, reason, run->w->db.errmsg);
                return;
        }
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
                dblog_write(LOG_LEVEL_WARN, EXEC_WHERE(run),
                            "run %s: ended (%s) but it was no longer ours", run->id, reason);
        else
                dblog_write(exec_finish_level(reason), EXEC_WHERE(run),
                            "run %s (bead %s) finished: %s after %d iterations%s%.1500s", run->id,
                            run->bead, reason, run->iterations, error ? ": " : "",
                            error ? error : "");
        if (chain && !PQgetisnull(res, 0, 1)) {
                exec_next = res;
                exec_next_until_ms = sent + run->cfg->lease_s * 1000;
                return;
        }
        PQclear(res);
}

/* key: what makes two lessons the same one (digits and case do not count). */
static void exec_lesson(struct exec_run *run, const char *category, const char *title,
                        const char *detail, const char *key)
{
        const char *params[7] = {run->project, category, title, detail, key, run->bead, run->agent};

        exec_do(run, &exec_lesson_stmt, params, NULL);
}

/* The llm_calls row of one call (or one failed call), reconciling its reservation. */
static void exec_account(struct exec_run *run, const struct llm_result *res, bool ok, bool streamed,
                         const char *reservation)
{
        json_object *c = json_object_new_object();
        const char *params[1];

        json_object_object_add(c, "run_id", json_object_new_string(run->id));
        json_object_object_add(c, "iteration", json_object_new_int(run->iterations));
        json_object_object_add(c, "requested_model", json_object_new_string(run->model));
        json_object_object_add(c, "served_model", json_object_new_string(res->served_model));
        json_object_object_add(c, "prompt_tokens", json_object_new_int64(res->prompt_tokens));
        json_object_object_add(c, "completion_tokens",
                               json_object_new_int64(res->completion_tokens));
        json_object_object_add(c, "cached_tokens", json_object_new_int64(res->cached_tokens));
        if (res->cost_usd >= 0)
                json_object_object_add(c, "cost_usd", json_object_new_double(res->cost_usd));
        if (ok)
                json_object_object_add(c, "ttft_ms", json_object_new_int((int)res->ttft_ms));
        json_object_object_add(c, "latency_ms", json_object_new_int((int)res->total_ms));
        json_object_object_add(c, "status", json_object_new_string(ok ? "ok" : "error"));
        if (res->http_status)
                json_object_object_add(c, "http_status",
                                       json_object_new_int((int)res->http_status));
        if (!ok) {
                json_object_object_add(
                        c, "error_class",
                        json_object_new_string(llm_error_class_name(res->error_class)));
                json_object_object_add(c, "error", json_object_new_string(res->error));
        }
        json_object_object_add(c, "retries", json_object_new_int(res->retries));
        json_object_object_add(c, "streamed", json_object_new_boolean(streamed));
        if (reservation[0])
                json_object_object_add(c, "reservation_id", json_object_new_string(reservation));
        params[0] = arena_strdup(&run->w->arena,
                                 json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
        json_object_put(c);
        exec_do(run, &exec_llm_call_stmt, params, NULL);
}

/* The keepalive of an LLM call: renews the lease while the model thinks. */
static bool exec_keepalive(void *arg)
{
        struct exec_run *run = arg;

        return exec_progress(run, run->cfg->lease_s, NULL);
}

/* Local endpoints get response_format json_object, as in Loom; hosted ones may refuse it. */
static bool exec_is_local(const char *endpoint)
{
        static const char *const local[] = {"://localhost", "://127.", "://10.",
                                            "://192.168.",  "://172.", "://[::1]"};

        for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
                if (strstr(endpoint, local[i]))
                        return true;
        }
        return strstr(endpoint, ".local:") || strstr(endpoint, ".local/");
}

/*
 * Reserves the cost of a call of max_tokens on msgs (budget.h).  0: make the call.  Otherwise
 * the run stops: run->gate says for which person's decision, run->halt why else, or
 * run->lease_lost.
 */
static int exec_reserve(struct exec_run *run, const struct llm_message *msgs, int n, int max_tokens,
                        struct budget_hold *hold)
{
        struct budget_call call = {
                .run_id = run->id,
                .owner = run->w->owner,
                .model = run->model,
                .max_tokens = max_tokens,
                .wait_ms = run->cfg->budget_wait_s * 1000,
                .keepalive = exec_keepalive,
                .keepalive_arg = run,
                .keepalive_ms = run->cfg->lease_s * 1000 / 3,
                .cancel = worker_stop_flag(),
        };
        int rc;

        for (int i = 0; i < n; i++)
                call.prompt_chars += strlen(msgs[i].content);
        rc = budget_reserve(&run->w->db, &run->w->arena, &call, hold);
        if (rc) {
                run->halt = arena_printf(&run->w->arena, "cannot reserve the call's budget: %s",
                                         run->w->db.errmsg);
                return rc;
        }
        if (hold->waited_ms >= BUDGET_WAIT_LOG_MS)
                log_info("run %s: waited %ld ms for calls in flight to settle the budget (%s)",
                         run->id, hold->waited_ms, budget_verdict_name(hold->verdict));
        if (!hold->priced && !run->unpriced_logged) {
                run->unpriced_logged = true;
                log_info("run %s: model %s has no price in model_prices: its calls reserve $0, so "
                         "budgets count only what the provider reports",
                         run->id, run->model);
        }
        switch (hold->verdict) {
        case BUDGET_GRANTED:
                return ERR_OK;
        case BUDGET_REFUSED:
        case BUDGET_APPROVAL:
                run->gate = hold->verdict == BUDGET_REFUSED ? "budget" : "spend";
                run->gate_question = hold->message;
                run->gate_detail = hold->detail;
                log_info("run %s (bead %s): %s", run->id, run->bead, hold->message);
                return ERR_FORBIDDEN;
        case BUDGET_LOST:
                run->lease_lost = true;
                return ERR_CONFLICT;
        case BUDGET_WAIT:
                break;
        }
        run->halt = arena_printf(&run->w->arena, "budget busy for %ld s: %s",
                                 run->cfg->budget_wait_s, hold->message);
        return ERR_UNAVAILABLE;
}

/*
 * One call to the model with what fits of the history, its cost reserved first; a
 * context-length refusal shrinks the history and tries again.  0 with the reply in res, or a
 * negative err_code (res says why, or the reservation stopped the run: exec_reserve).
 */
static int exec_call(struct exec_run *run, struct llm_result *res)
{
        bool streamed = run->cfg->stream;

        for (int level = 0; level <= HISTORY_MAX_LEVEL; level++) {
                struct llm_message *msgs;
                int n = history_view(&run->hist, run->budget_chars, level, &msgs);
                struct budget_hold hold;
                struct llm_request req = {
                        .endpoint = run->endpoint,
                        .api_key = run->api_key,
                        .model = run->model,
                        .messages = msgs,
                        .nmessages = n,
                        .temperature = 0.1,
                        .max_tokens = 4096,
                        .stream = streamed,
                        .json_mode = exec_is_local(run->endpoint),
                        .connect_timeout_ms = run->cfg->llm_connect_s * 1000,
                        .timeout_ms = run->cfg->llm_timeout_s * 1000,
                        .max_retries = (int)run->cfg->llm_retries,
                        .cancel = worker_stop_flag(),
                        .keepalive = exec_keepalive,
                        .keepalive_arg = run,
                        .keepalive_ms = run->cfg->lease_s * 1000 / 3,
                };
                int rc = exec_reserve(run, msgs, n, req.max_tokens, &hold);

                if (rc)
                        return rc;
                llm_result_release(res);
                llm_result_init(res);
                rc = llm_chat(&req, res);
                exec_account(run, res, rc == ERR_OK, streamed, hold.reservation);
                if (rc == ERR_OK || res->error_class != LLM_ERR_CONTEXT_LENGTH)
                        return rc;
                dblog_write(LOG_LEVEL_INFO, EXEC_WHERE(run),
                            "run %s: the model's context is full; shrinking the history (level "
                            "%d)",
                            run->id, level + 1);
        }
        return ERR_BAD_GATEWAY;
}

/* The action as logged: long strings (file contents, patches) cut to EXEC_ARG_CAP. */
static const char *exec_logged_args(struct exec_run *run, json_object *action)
{
        json_object *copy = json_object_new_object();
        const char *text;

        json_object_object_foreach(action, k, v)
        {
                if (strcmp(k, "type") == 0)
                        continue;
                if (json_object_is_type(v, json_type_string) &&
                    json_object_get_string_len(v) > EXEC_ARG_CAP) {
                        json_object_object_add(
                                copy, k,
                                json_object_new_string(arena_printf(
                                        &run->w->arena, "%.*s… [%d bytes]", EXEC_ARG_CAP,
                                        json_object_get_string(v), json_object_get_string_len(v))));
                } else {
                        json_object_object_add(copy, k, json_object_get(v));
                }
        }
        text = arena_strdup(&run->w->arena,
                            json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN));
        json_object_put(copy);
        return text;
}

/* Records one action (and the command it ran) in actions / command_logs. */
static void exec_log_action(struct exec_run *run, int seq, const char *type, json_object *action,
                            const struct tool_result *tr, long ms)
{
        const char *params[12] = {run->id,
                                  run->bead,
                                  run->project,
                                  run->agent,
                                  exec_num(run, run->iterations),
                                  exec_num(run, seq),
                                  type,
                                  exec_logged_args(run, action),
                                  tr->ok ? "executed" : "error",
                                  arena_printf(&run->w->arena, "%.4000s", tr->text.buf),
                                  tr->path,
                                  exec_num(run, ms)};
        PGresult *res;

        if (!exec_do(run, &exec_action_stmt, params, &res))
                return;
        if (tr->ran_command) {
                const char *cparams[11] = {
                        PQgetvalue(res, 0, 0),
                        run->id,
                        run->bead,
                        run->project,
                        run->agent,
                        tr->command,
                        run->ws.root,
                        exec_num(run, tr->exit_code),
                        tr->timed_out ? "true" : "false",
                        exec_num(run, tr->duration_ms),
                        arena_printf(&run->w->arena, "%.*s", EXEC_OUTPUT_LOG_CAP, tr->text.buf)};

                exec_do(run, &exec_command_stmt, cparams, NULL);
        }
        PQclear(res);
}

static const char *exec_str(json_object *obj, const char *key)
{
        json_object *v;

        if (obj && json_object_object_get_ex(obj, key, &v) &&
            json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

/* create_bead: the new bead's fields, checked as the API checks them, in the run's project. */
static void exec_create_bead(struct exec_run *run, json_object *action, struct tool_result *tr)
{
        json_object *spec, *v, *doc = json_object_new_object();
        const char *title, *params[2];
        PGresult *res;

        if (!json_object_object_get_ex(action, "bead", &spec) ||
            !json_object_is_type(spec, json_type_object))
                spec = action;
        title = exec_str(spec, "title");
        if (!title || !*title || strlen(title) > 500) {
                strbuf_addstr(&tr->text, "error: bead.title must be 1 to 500 characters");
                goto out;
        }
        json_object_object_add(doc, "project_id", json_object_new_string(run->project));
        json_object_object_add(doc, "title", json_object_new_string(title));
        if (exec_str(spec, "description"))
                json_object_object_add(
                        doc, "description",
                        json_object_new_string(arena_printf(&run->w->arena, "%.60000s",
                                                            exec_str(spec, "description"))));
        if (json_object_object_get_ex(spec, "priority", &v) && v) {
                const char *p = json_object_get_string(v);
                int prio = (p[0] == 'P' || p[0] == 'p') ? p[1] - '0' : p[0] - '0';

                if (prio < 0 || prio > 3 || (p[0] != 'P' && p[0] != 'p' && p[1]) ||
                    ((p[0] == 'P' || p[0] == 'p') && p[2])) {
                        strbuf_addf(&tr->text,
                                    "error: bead.priority must be 0 to 3 (or P0 to P3), "
                                    "not %.20s",
                                    p);
                        goto out;
                }
                json_object_object_add(doc, "priority", json_object_new_int(prio));
        }
        if (exec_str(spec, "type")) {
                static const char *const types[] = {"task", "bug", "feature", "chore", "epic"};
                bool known = false;

                for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                        known |= strcmp(types[i], exec_str(spec, "type")) == 0;
                if (!known) {
                        strbuf_addstr(&tr->text, "error: bead.type must be one of task, bug, "
                                                 "feature, chore, epic");
                        goto out;
                }
                json_object_object_add(doc, "type", json_object_new_string(exec_str(spec, "type")));
        }
        if (json_object_object_get_ex(spec, "tags", &v) &&
            json_object_is_type(v, json_type_array)) {
                json_object *tags = json_object_new_array();

                for (size_t i = 0; i < json_object_array_length(v) && i < 20; i++) {
                        json_object *t = json_object_array_get_idx(v, i);

                        if (json_object_is_type(t, json_type_string) &&
                            json_object_get_string_len(t) <= 100)
                                json_object_array_add(tags, json_object_get(t));
                }
                json_object_object_add(doc, "tags", tags);
        }
        v = json_object_new_object();
        json_object_object_add(v, "created_by_run", json_object_new_string(run->id));
        json_object_object_add(v, "discovered_from", json_object_new_string(run->bead));
        json_object_object_add(doc, "context", v);
        params[0] = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        params[1] = run->agent_name;
        if (db_exec(&run->w->db, &exec_create_bead_stmt, params, &res) != ERR_OK) {
                strbuf_addf(&tr->text, "error: the bead could not be created: %s",
                            run->w->db.errmsg);
                goto out;
        }
        tr->ok = true;
        strbuf_addf(&tr->text, "created bead %s", PQgetvalue(res, 0, 0));
        PQclear(res);
out:
        json_object_put(doc);
}

static void exec_close_other(struct exec_run *run, const char *bead, const char *reason,
                             struct tool_result *tr)
{
        const char *params[4] = {bead, run->project, reason ? reason : "", run->agent_name};
        PGresult *res;

        if (db_exec(&run->w->db, &exec_close_other_stmt, params, &res) != ERR_OK) {
                strbuf_addf(&tr->text, "error: %s", run->w->db.errmsg);
                return;
        }
        if (PQntuples(res) == 0) {
                strbuf_addf(&tr->text, "error: there is no bead %.64s in this project", bead);
        } else {
                tr->ok = true;
                strbuf_addf(&tr->text, "closed bead %s", bead);
        }
        PQclear(res);
}

/*
 * The action ledger (LOOM_ACTION_LEDGER, a file path; off when unset): one line per action
 * carried out, appended with O_APPEND by every executor on the host, written when the action
 * has had its effect and before the database hears of it, so it also counts what a crash or a
 * database outage keeps out of the actions table:
 *
 *   <unix ms> <lease owner> <bead> <run> <attempt> <iteration> <seq> <type> <ok|error> <path|->
 *
 * (run, attempt, iteration, seq) names one action of one reply of the model: a key seen twice
 * is an action done twice.  make chaos counts exactly that.
 */
static int exec_ledger_fd = -1;

static void exec_ledger_open(void)
{
        const char *path = config_str("LOOM_ACTION_LEDGER", NULL);

        if (!path || !*path)
                return;
        exec_ledger_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (exec_ledger_fd < 0)
                log_warn("LOOM_ACTION_LEDGER %s: %s; no ledger is kept", path, strerror(errno));
}

static void exec_ledger(struct exec_run *run, int seq, const char *type,
                        const struct tool_result *tr)
{
        struct timespec now;
        char line[1024], path[512];
        size_t i;
        int n;

        if (exec_ledger_fd < 0)
                return;
        /* one line, one write(): no byte of a path may break it */
        for (i = 0; tr->path[i] && i < sizeof(path) - 1; i++)
                path[i] = (unsigned char)tr->path[i] <= ' ' ? '?' : tr->path[i];
        path[i] = '\0';
        clock_gettime(CLOCK_REALTIME, &now);
        n = snprintf(line, sizeof(line), "%lld %s %s %s %d %d %d %.40s %s %s\n",
                     (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, run->w->owner, run->bead,
                     run->id, run->attempt, run->iterations, seq, type, tr->ok ? "ok" : "error",
                     path[0] ? path : "-");
        if (n > 0 && (size_t)n < sizeof(line) && write(exec_ledger_fd, line, (size_t)n) != n)
                log_warn("action ledger: %s", strerror(errno));
}

/*
 * Uncommitted work is committed, and the branch pushed when there is a remote (in a project
 * that gates merges, only once a person approved).
 */
static void exec_wrap_up(struct exec_run *run, int *seq)
{
        static const char *const steps[] = {"git_commit", "git_push"};

        for (size_t i = 0; i < 2; i++) {
                json_object *a = json_object_new_object();
                struct tool_result tr;

                if (i == 1 && (!run->ws.has_remote || (run->merge_gated && !run->merge_approved))) {
                        json_object_put(a);
                        break;
                }
                json_object_object_add(a, "type", json_object_new_string(steps[i]));
                if (i == 0)
                        json_object_object_add(
                                a, "commit_message",
                                json_object_new_string(arena_printf(
                                        &run->w->arena, "Loom: finish bead %s", run->bead)));
                tool_result_init(&tr);
                if (exec_lease_held(run) && tools_run(&run->tenv, steps[i], a, &tr) == ERR_OK &&
                    (tr.ok || i == 1)) {
                        exec_ledger(run, ++*seq, steps[i], &tr);
                        exec_log_action(run, *seq, steps[i], a, &tr, tr.duration_ms);
                }
                tool_result_release(&tr);
                json_object_put(a);
        }
}

/* A failed build or test run is a lesson for later work (deduplicated in SQL). */
static void exec_learn(struct exec_run *run, const char *type, const struct tool_result *tr)
{
        struct tool_lesson l;

        if (tools_lesson(type, tr, &l))
                exec_lesson(run, l.category, l.title, l.detail, l.key);
}

/* remember: a project memory entry (checked by loom_memory_put), confidence 0.6 unless given. */
static void exec_remember(struct exec_run *run, json_object *action, struct tool_result *tr)
{
        json_object *v;
        double conf = 0.6;
        const char *params[7];
        PGresult *res;

        if (json_object_object_get_ex(action, "confidence", &v) && v) {
                if (!json_object_is_type(v, json_type_double) &&
                    !json_object_is_type(v, json_type_int)) {
                        strbuf_addstr(&tr->text, "error: confidence must be a number from 0 to 1");
                        return;
                }
                conf = json_object_get_double(v);
        }
        params[0] = run->project;
        params[1] = exec_str(action, "category");
        params[2] = exec_str(action, "key");
        params[3] = exec_str(action, "value");
        params[4] = arena_printf(&run->w->arena, "%.4f", conf);
        params[5] = run->bead;
        params[6] = run->agent_name;
        if (db_exec(&run->w->db, &exec_remember_stmt, params, &res) != ERR_OK) {
                strbuf_addf(&tr->text, "error: %s", run->w->db.errmsg);
                return;
        }
        tr->ok = true;
        strbuf_addf(&tr->text, "remembered %s/%s for this project", params[1],
                    PQgetvalue(res, 0, 0));
        PQclear(res);
}

/* True for the types that run a program (their lease is stretched to cover it). */
static bool exec_runs_program(const char *type)
{
        return strcmp(type, "run_command") == 0 || strcmp(type, "build_project") == 0 ||
               strcmp(type, "run_tests") == 0 || strcmp(type, "git_push") == 0;
}

/*
 * Carries out the actions of one reply; the feedback goes into fb.  Returns the terminal
 * reason, or NULL to go on; *why gets the reason's detail.
 */
static const char *exec_apply(struct exec_run *run, json_object *actions, struct strbuf *fb,
                              const char **why)
{
        const char *terminal = NULL;
        int seq = 0;

        for (size_t i = 0; i < json_object_array_length(actions) && !terminal; i++) {
                json_object *a = json_object_array_get_idx(actions, i);
                const char *type = actions_type(a);
                struct tool_result tr;
                char err[400];
                struct timespec t0, t1;
                long ms;

                if (!exec_lease_held(run))
                        return "lease_lost"; /* another executor may hold the run by now */
                tool_result_init(&tr);
                clock_gettime(CLOCK_MONOTONIC, &t0);
                if (actions_check(a, err, sizeof(err)) != ERR_OK) {
                        strbuf_addf(&tr.text, "error: %s", err);
                } else if (run->merge_gated && strcmp(type, "git_push") == 0) {
                        strbuf_addstr(&tr.text, "error: in this project a person approves every "
                                                "push; commit your work and finish with done, "
                                                "and it is pushed once approved");
                } else if (tools_handles(type)) {
                        if (exec_runs_program(type) &&
                            !exec_progress(run, run->cfg->command_timeout_s + run->cfg->lease_s,
                                           NULL)) {
                                tool_result_release(&tr);
                                return "lease_lost";
                        }
                        if (tools_run(&run->tenv, type, a, &tr) != ERR_OK)
                                strbuf_addstr(&tr.text, "error: internal failure; try again");
                        exec_learn(run, type, &tr);
                } else if (strcmp(type, "remember") == 0) {
                        exec_remember(run, a, &tr);
                } else if (strcmp(type, "done") == 0 ||
                           (strcmp(type, "close_bead") == 0 &&
                            (!exec_str(a, "bead_id") ||
                             strcmp(exec_str(a, "bead_id"), run->bead) == 0))) {
                        tr.ok = true;
                        strbuf_addstr(&tr.text, "the bead is done");
                        terminal = "completed";
                        *why = exec_str(a, "reason");
                } else if (strcmp(type, "close_bead") == 0) {
                        exec_close_other(run, exec_str(a, "bead_id"), exec_str(a, "reason"), &tr);
                } else if (strcmp(type, "create_bead") == 0) {
                        exec_create_bead(run, a, &tr);
                } else if (strcmp(type, "escalate_ceo") == 0) {
                        const char *params[3] = {run->bead, exec_str(a, "reason"), run->agent_name};
                        PGresult *res;

                        if (db_exec(&run->w->db, &exec_escalate_stmt, params, &res) == ERR_OK) {
                                tr.ok = true;
                                strbuf_addf(&tr.text,
                                            "decision bead %s filed; this bead waits "
                                            "for it",
                                            PQgetvalue(res, 0, 0));
                                PQclear(res);
                                terminal = "escalated";
                                *why = exec_str(a, "reason");
                        } else {
                                strbuf_addf(&tr.text, "error: %s", run->w->db.errmsg);
                        }
                }
                clock_gettime(CLOCK_MONOTONIC, &t1);
                ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
                guard_action(&run->guard, run->iterations, type, tr.path, tr.ok, tr.mutated);
                if (tr.ok && strcmp(type, "git_commit") == 0 && tr.mutated)
                        run->commits++;
                exec_ledger(run, ++seq, type, &tr);
                exec_log_action(run, seq, type, a, &tr, ms);
                strbuf_addf(fb, "%zu. %.60s%s%s: %s\n%s\n", i + 1, type, tr.path[0] ? " " : "",
                            tr.path, tr.ok ? "executed" : "error", tr.text.buf);
                tool_result_release(&tr);
        }
        if (terminal && strcmp(terminal, "completed") == 0)
                exec_wrap_up(run, &seq);
        return terminal;
}

static bool exec_slipped(const char *reply)
{
        for (size_t i = 0; i < sizeof(exec_slips) / sizeof(exec_slips[0]); i++) {
                if (strcasestr(reply, exec_slips[i]))
                        return true;
        }
        return false;
}

/* One reply that could not be used: correct the model, or end after too many in a row. */
static const char *exec_bad_reply(struct exec_run *run, const char *kind, const char *what,
                                  char *err, size_t errlen)
{
        struct strbuf sb;

        if (++run->bad_replies >= EXEC_MAX_BAD_REPLIES) {
                snprintf(err, errlen, "%d unusable replies in a row; the last: %s",
                         run->bad_replies, what);
                return strcmp(kind, "parse") == 0 ? "parse_failures" : "validation_failures";
        }
        strbuf_init(&sb, 16384);
        strbuf_addf(&sb,
                    "Your reply could not be used: %s.\nAnswer with exactly one JSON object "
                    "{\"actions\": [...], \"notes\": \"...\"} and nothing else. The actions:\n",
                    what);
        actions_usage(&sb);
        exec_say(run, "user", sb.buf);
        strbuf_release(&sb);
        return NULL;
}

/* One iteration: the reason the run ends, or NULL to continue. */
static const char *exec_turn(struct exec_run *run, char *err, size_t errlen)
{
        struct llm_result res;
        json_object *root = NULL, *actions;
        const char *reason = NULL, *why = NULL, *list;
        char perr[300], stag[200];
        struct strbuf fb;
        int repeats;

        llm_result_init(&res);
        if (exec_call(run, &res) != ERR_OK) {
                if (*worker_stop_flag() || run->lease_lost) {
                        llm_result_release(&res);
                        return run->lease_lost ? "lease_lost" : NULL; /* NULL: handed back */
                }
                if (run->gate || run->halt) {
                        llm_result_release(&res);
                        snprintf(err, errlen, "%s", run->gate ? run->gate_question : run->halt);
                        return !run->gate                         ? "error"
                               : strcmp(run->gate, "budget") == 0 ? "budget"
                                                                  : "awaiting_approval";
                }
                snprintf(err, errlen, "%s: %s", llm_error_class_name(res.error_class), res.error);
                dblog_write(LOG_LEVEL_ERROR, EXEC_WHERE(run),
                            "run %s: provider %s (model %s) failed after %d retries: %s", run->id,
                            run->provider[0] ? run->provider : "?", run->model, res.retries, err);
                llm_result_release(&res);
                return "provider_error";
        }
        exec_say(run, "assistant", res.content.len ? res.content.buf : "(empty reply)");
        if (actions_parse(res.content.buf, res.content.len, &root, &actions, perr, sizeof(perr))) {
                if (exec_slipped(res.content.buf)) {
                        exec_say(run, "user",
                                 "AUTONOMOUS MODE REMINDER: nobody will answer questions. "
                                 "Decide yourself and reply with one JSON object of actions; "
                                 "use escalate_ceo only for a decision a person must make.");
                        llm_result_release(&res);
                        return NULL;
                }
                llm_result_release(&res);
                return exec_bad_reply(run, "parse", perr, err, errlen);
        }
        llm_result_release(&res);
        if (json_object_array_length(actions) == 0) {
                snprintf(err, errlen, "the reply had no actions");
                json_object_put(root);
                return "no_actions";
        }
        /* every action unusable: a validation failure, not progress */
        for (size_t i = 0; i < json_object_array_length(actions); i++) {
                if (actions_check(json_object_array_get_idx(actions, i), perr, sizeof(perr)) ==
                    ERR_OK)
                        break;
                if (i + 1 == json_object_array_length(actions)) {
                        json_object_put(root);
                        return exec_bad_reply(run, "validation", perr, err, errlen);
                }
        }
        run->bad_replies = 0;
        list = json_object_to_json_string_ext(actions, JSON_C_TO_STRING_PLAIN);
        repeats = guard_sequence(&run->guard, list);
        if (repeats >= GUARD_LOOP_REPEATS) {
                snprintf(err, errlen,
                         "the same actions were asked for %d times with no change "
                         "in between: %.300s",
                         repeats, list);
                exec_lesson(run, "loop_pattern",
                            arena_printf(&run->w->arena, "Bead %s: an agent repeated itself",
                                         run->bead),
                            arena_printf(&run->w->arena,
                                         "Repeating %.500s did not move the work forward; "
                                         "try a different approach.",
                                         list),
                            list);
                json_object_put(root);
                return "loop_detected";
        }
        strbuf_init(&fb, EXEC_FEEDBACK_CAP);
        strbuf_addf(
                &fb,
                "Iteration %d/%d | files read %d, written %d | build %s | tests %s | "
                "commits %d\nResults:\n",
                run->iterations, run->max_iterations, run->guard.nread, run->guard.nwritten,
                run->guard.builds ? (run->guard.build_failing ? "failing" : "passing") : "not run",
                run->guard.tests ? (run->guard.tests_failing ? "failing" : "passing") : "not run",
                run->commits);
        reason = exec_apply(run, actions, &fb, &why);
        /* why borrows from the reply's JSON, which dies here (TSan and ASan saw it read after) */
        if (why)
                why = arena_strdup(&run->w->arena, why);
        json_object_put(root);
        if (reason && strcmp(reason, "lease_lost") == 0) {
                strbuf_release(&fb);
                return reason;
        }
        if (!reason && guard_stagnant(&run->guard, run->iterations, stag, sizeof(stag))) {
                snprintf(err, errlen, "no progress: %s", stag);
                exec_lesson(run, "loop_pattern",
                            arena_printf(&run->w->arena, "Bead %s stalled", run->bead), stag, stag);
                reason = "progress_stagnant";
        }
        if (repeats == GUARD_LOOP_REPEATS - 1)
                strbuf_addstr(&fb, "Warning: you asked for exactly these actions before and "
                                   "nothing changed since. Do something different.\n");
        if (!reason) {
                strbuf_addstr(&fb, "Based on these results, what is your next action?");
                exec_say(run, "user", fb.buf);
        } else if (why) {
                snprintf(err, errlen, "%s", why);
        }
        strbuf_release(&fb);
        return reason;
}

/* The project's memory, surest and newest first, at most EXEC_MEMORY_CAP characters. */
static void exec_memory_prompt(struct exec_run *run, struct strbuf *sb)
{
        const char *params[1] = {run->project};
        size_t used = 0;
        PGresult *res;

        if (!exec_do(run, &exec_memory_stmt, params, &res))
                return;
        if (PQntuples(res) > 0)
                strbuf_addstr(sb, "\n# Project memory (what is known about this project; add to "
                                  "it with remember)\n");
        for (int i = 0; i < PQntuples(res); i++) {
                const char *line =
                        arena_printf(&run->w->arena, "- [%s] %s: %.1000s\n", PQgetvalue(res, i, 0),
                                     PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
                size_t n = strlen(line);

                if (used + n > EXEC_MEMORY_CAP)
                        break;
                strbuf_addstr(sb, line);
                used += n;
        }
        PQclear(res);
}

/* The system prompt: action format, rules, persona, project guidance, lessons, memory. */
static const char *exec_system_prompt(struct exec_run *run, PGresult *ctx)
{
        struct strbuf sb;
        const char *params[1] = {run->project}, *text;
        PGresult *res;
        char path[4200];
        FILE *f;

        strbuf_init(&sb, (size_t)256 << 10);
        strbuf_addstr(&sb, exec_action_format);
        actions_usage(&sb);
        strbuf_addstr(&sb, exec_rules);
        strbuf_addf(&sb, "\n# Your role: %s\n%s\n\n%s\n", PQgetvalue(ctx, 0, CTX_AGENT_NAME),
                    PQgetvalue(ctx, 0, CTX_PERSONA_DESCRIPTION),
                    PQgetvalue(ctx, 0, CTX_INSTRUCTIONS));
        snprintf(path, sizeof(path), "%s/AGENTS.md", run->ws.root);
        f = fopen(path, "r");
        if (f) {
                char buf[EXEC_AGENTS_MD_CAP + 1];
                size_t n = fread(buf, 1, EXEC_AGENTS_MD_CAP, f);

                buf[n] = '\0';
                fclose(f);
                strbuf_addf(&sb, "\n# Project guidance (AGENTS.md)\n%s\n", buf);
        }
        if (exec_do(run, &exec_lessons_stmt, params, &res)) {
                if (PQntuples(res) > 0)
                        strbuf_addstr(&sb, "\n# Lessons from earlier work in this project\n");
                for (int i = 0; i < PQntuples(res); i++)
                        strbuf_addf(&sb, "- [%s] %s (seen %s times): %.*s\n", PQgetvalue(res, i, 0),
                                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 3), EXEC_LESSON_SHOWN,
                                    PQgetvalue(res, i, 2));
                PQclear(res);
        }
        exec_memory_prompt(run, &sb);
        text = arena_strdup(&run->w->arena, sb.buf);
        strbuf_release(&sb);
        return text;
}

/* The conversation: a fresh one, or the bead's earlier one with a note that a new run resumes. */
static void exec_open_conversation(struct exec_run *run, PGresult *ctx)
{
        const char *params[1] = {run->bead};
        PGresult *prev = NULL;

        exec_say(run, "system", exec_system_prompt(run, ctx));
        if (exec_do(run, &exec_messages_stmt, params, &prev) && PQntuples(prev) > 0) {
                for (int i = 0; i < PQntuples(prev); i++)
                        history_add(&run->hist,
                                    strcmp(PQgetvalue(prev, i, 0), "user") == 0 ? "user"
                                                                                : "assistant",
                                    PQgetvalue(prev, i, 1));
                exec_say(run, "user",
                         arena_printf(&run->w->arena,
                                      "A new run (attempt %d) continues this bead. The "
                                      "previous run ended with %s. Your worktree still has the "
                                      "earlier changes. You have %d iterations. Continue.",
                                      run->attempt,
                                      PQgetisnull(ctx, 0, CTX_PREVIOUS)
                                              ? "no recorded reason"
                                              : PQgetvalue(ctx, 0, CTX_PREVIOUS),
                                      run->max_iterations));
                PQclear(prev);
                return;
        }
        if (prev)
                PQclear(prev);
        exec_say(run, "user",
                 arena_printf(&run->w->arena,
                              "Work on bead %s: %s\n\n%s\n\nContext:\n- project %s (%s), "
                              "your branch %s\n- priority P%s, type %s\n- bead context: %s\n\n"
                              "You have %d iterations. Make the change, verify it (build, "
                              "tests), commit it with git_commit, then reply with done.",
                              run->bead, PQgetvalue(ctx, 0, CTX_TITLE),
                              PQgetvalue(ctx, 0, CTX_DESCRIPTION),
                              PQgetvalue(ctx, 0, CTX_PROJECT_NAME), run->project, run->ws.branch,
                              PQgetvalue(ctx, 0, CTX_PRIORITY), PQgetvalue(ctx, 0, CTX_TYPE),
                              PQgetvalue(ctx, 0, CTX_BEAD_CONTEXT), run->max_iterations));
}

/* Merges the bead's branch into the default branch (git_strategy direct); err says why not. */
static int exec_merge(struct exec_run *run, char *err, size_t errlen)
{
        char why[700];

        if (workspace_merge(run->cfg->projects_dir, run->project, run->default_branch, run->bead,
                            run->agent_name, run->tenv.author_email, why, sizeof(why)) == ERR_OK)
                return ERR_OK;
        snprintf(err, errlen,
                 "the work is done on %.100s but merging it into %.100s failed: %.600s",
                 run->ws.branch, run->default_branch, why);
        return ERR_CONFLICT;
}

/* An approved merge: what is left is committed and the branch pushed (exec_conclude merges);
 * no LLM call. */
static const char *exec_merge_approved(struct exec_run *run, char *err, size_t errlen)
{
        int seq = 0;

        log_info("run %s: a person approved %s; pushing and merging without the model", run->id,
                 run->ws.branch);
        if (!exec_progress(run, run->cfg->command_timeout_s + run->cfg->lease_s, NULL))
                return "lease_lost";
        exec_wrap_up(run, &seq);
        snprintf(err, errlen, "%s after approval", run->merge ? "merged" : "pushed");
        return "completed";
}

/* Done work in a project that approves merges: the question for the person. */
static void exec_gate_merge(struct exec_run *run, const char *summary)
{
        json_object *d = json_object_new_object();
        const char *says = summary[0] ? " The agent says: " : "";

        json_object_object_add(d, "branch", json_object_new_string(run->default_branch));
        json_object_object_add(d, "bead_branch", json_object_new_string(run->ws.branch));
        json_object_object_add(d, "strategy",
                               json_object_new_string(run->merge ? "direct" : "branch-pr"));
        run->gate = "merge";
        run->gate_detail = arena_strdup(&run->w->arena,
                                        json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
        json_object_put(d);
        if (run->merge)
                run->gate_question =
                        arena_printf(&run->w->arena, "approve merge of %s into %s?%s%.1500s",
                                     run->ws.branch, run->default_branch, says, summary);
        else
                run->gate_question = arena_printf(
                        &run->w->arena,
                        "approve pushing %s for review (branch-pr: it is not merged into %s)?"
                        "%s%.1500s",
                        run->ws.branch, run->default_branch, says, summary);
}

/* Ends the run for a person's decision (run->gate); the executor is free at once. */
static void exec_gate(struct exec_run *run)
{
        char did[64];

        if (budget_gate(&run->w->db, run->id, run->w->owner, run->gate, run->gate_question,
                        run->gate_detail, run->iterations, did, sizeof(did)) != ERR_OK) {
                log_error("run %s: cannot stop it for a person (%s): %s; the lease will expire",
                          run->id, run->gate, run->w->db.errmsg);
                return;
        }
        if (!did[0])
                log_warn("run %s: stopped for a person (%s), but the run or its bead had moved on",
                         run->id, run->gate);
        else
                log_info("run %s (bead %s) waits for a person: decision %s (%s) after %d "
                         "iterations: %s",
                         run->id, run->bead, did, run->gate, run->iterations, run->gate_question);
}

/*
 * The end of a run: a person's decision when a gate holds it (a refused reservation, or done
 * work in a project that approves merges), else the merge of done work and the run's end.
 */
static void exec_conclude(struct exec_run *run, const char *reason, char *err, size_t errlen)
{
        bool done = strcmp(reason, "completed") == 0;

        if (done && run->merge_gated && !run->merge_approved)
                exec_gate_merge(run, err);
        if (run->gate) {
                exec_gate(run);
                return;
        }
        if (done && run->merge && exec_merge(run, err, errlen) != ERR_OK) {
                reason = "error";
                done = false;
        }
        exec_finish(run, reason, err[0] ? err : NULL);
        if (done &&
            workspace_release(run->cfg->projects_dir, run->project, run->bead, err, errlen) != 0)
                dblog_write(LOG_LEVEL_WARN, EXEC_WHERE(run), "run %s: worktree kept: %s", run->id,
                            err);
}

/*
 * What people said to the loop since the last iteration (POST /conversations/{bead}/inject):
 * stored in the conversation and marked delivered by one statement, added to the history here.
 */
static void exec_take_injections(struct exec_run *run)
{
        const char *params[1] = {run->id};
        PGresult *res;

        if (!exec_do(run, &exec_injections_stmt, params, &res))
                return;
        for (int i = 0; i < PQntuples(res); i++)
                history_add(&run->hist, "user", PQgetvalue(res, i, 0));
        if (PQntuples(res) > 0)
                log_info("run %s: %d message%s from people added to the conversation", run->id,
                         PQntuples(res), PQntuples(res) == 1 ? "" : "s");
        PQclear(res);
}

/* Loads the bead, persona and provider, prepares the worktree, and runs the loop to its end. */
static int exec_run(struct exec_run *run)
{
        const char *params[2] = {run->id}, *reason = NULL;
        char err[1000] = "";
        PGresult *ctx;
        int rc = db_exec(&run->w->db, &exec_context_stmt, params, &ctx);

        if (rc)
                return rc;
        if (PQntuples(ctx) == 0 || PQgetisnull(ctx, 0, CTX_ENDPOINT) ||
            strcmp(PQgetvalue(ctx, 0, CTX_PROVIDER_STATUS), "healthy") != 0) {
                /* no calls to a provider known to be down: the bead waits out the back-off */
                PQclear(ctx);
                exec_finish(run, "provider_error", "the run's provider is missing or unhealthy");
                return ERR_OK;
        }
        snprintf(run->project, sizeof(run->project), "%s", PQgetvalue(ctx, 0, CTX_PROJECT));
        snprintf(run->agent, sizeof(run->agent), "%s", PQgetvalue(ctx, 0, CTX_AGENT));
        snprintf(run->provider, sizeof(run->provider), "%s", PQgetvalue(ctx, 0, CTX_PROVIDER_ID));
        run->agent_name = arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, CTX_AGENT_NAME));
        run->endpoint = arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, CTX_ENDPOINT));
        /* opened into the tick's arena, which wipes it when the run is over */
        run->api_key = NULL;
        rc = db_value(ctx, 0, CTX_API_KEY)
                     ? secret_open(&run->w->arena, PQgetvalue(ctx, 0, CTX_API_KEY), &run->api_key)
                     : ERR_OK;
        if (rc) {
                PQclear(ctx);
                exec_finish(run, "provider_error",
                            arena_printf(&run->w->arena, "provider API key: %s",
                                         secret_open_strerror(rc)));
                return ERR_OK;
        }
        run->model = arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, CTX_MODEL));
        run->default_branch = arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, CTX_DEFAULT_BRANCH));
        run->merge = strcmp(PQgetvalue(ctx, 0, CTX_GIT_STRATEGY), "direct") == 0;
        run->merge_gated = strcmp(PQgetvalue(ctx, 0, CTX_MERGE_GATED), "t") == 0;
        run->merge_approved = strcmp(PQgetvalue(ctx, 0, CTX_MERGE_APPROVED), "t") == 0;
        run->budget_chars =
                (size_t)strtol(PQgetvalue(ctx, 0, CTX_CONTEXT_WINDOW), NULL, 10) * 4 * 8 / 10;
        if (workspace_prepare(run->cfg->projects_dir, run->project,
                              PQgetvalue(ctx, 0, CTX_GIT_REPO),
                              PQgetvalue(ctx, 0, CTX_DEFAULT_BRANCH), run->bead, &run->ws, err,
                              sizeof(err)) != ERR_OK) {
                PQclear(ctx);
                exec_finish(run, "error", arena_printf(&run->w->arena, "workspace: %s", err));
                return ERR_OK;
        }
        params[1] = run->ws.root;
        exec_do(run, &exec_worktree_stmt, params, NULL);
        run->tenv = (struct tool_env){
                .root = run->ws.root,
                .bead_id = run->bead,
                .branch = run->ws.branch,
                .has_remote = run->ws.has_remote,
                .default_branch = run->default_branch,
                .command_timeout_s = (int)run->cfg->command_timeout_s,
                .output_cap = 16384,
                .author_name = run->agent_name,
                .author_email = arena_printf(&run->w->arena, "%s@loom.local",
                                             run->agent[0] ? run->agent : "agent"),
                .sandbox = &exec_sandbox,
                .allow_network = strcmp(PQgetvalue(ctx, 0, CTX_ALLOW_NETWORK), "t") == 0,
        };
        if (exec_sandbox.mode == SANDBOX_BWRAP)
                log_info("run %s: commands run in sandbox %s, network %s", run->id,
                         sandbox_mode_name(exec_sandbox.mode),
                         run->tenv.allow_network ? "allowed (context.allow_network)" : "off");
        else
                dblog_write(LOG_LEVEL_WARN, EXEC_WHERE(run),
                            "run %s: commands are not isolated (sandbox %s): rlimits, the "
                            "program allowlist and no_new_privs only",
                            run->id, sandbox_mode_name(exec_sandbox.mode));
        if (run->merge_approved)
                reason = exec_merge_approved(run, err, sizeof(err));
        else
                exec_open_conversation(run, ctx);
        PQclear(ctx);
        while (!reason && run->iterations < run->max_iterations) {
                if (*worker_stop_flag()) {
                        const char *rp[2] = {run->id, run->w->owner};

                        exec_do(run, &exec_release_stmt, rp, NULL);
                        dblog_write(LOG_LEVEL_INFO, EXEC_WHERE(run),
                                    "run %s: handed back to the queue (shutting down)", run->id);
                        return ERR_OK;
                }
                run->iterations++;
                if (!exec_progress(
                            run, run->cfg->lease_s,
                            arena_printf(&run->w->arena, "{\"agent\": \"%s\"}", run->agent_name)))
                        break;
                exec_take_injections(run);
                reason = exec_turn(run, err, sizeof(err));
        }
        if (run->lease_lost || (reason && strcmp(reason, "lease_lost") == 0)) {
                dblog_write(LOG_LEVEL_WARN, EXEC_WHERE(run),
                            "run %s: lease lost (expired or canceled); abandoning it", run->id);
                return ERR_OK;
        }
        if (!reason)
                snprintf(err, sizeof(err), "used all %d iterations", run->max_iterations);
        exec_conclude(run, reason ? reason : "max_iterations", err, sizeof(err));
        return ERR_OK;
}

/*
 * A run whose executor was killed (SIGKILL, the OOM killer, a crash) would wait out its lease
 * (LOOM_LEASE_SECONDS, a minute by default) before loom-ralph re-queues it.  A lease owner is
 * name@host:pid, so an executor can tell when one of its own host's executors is gone: no
 * process has that pid any more.  Then the lease ends at once and the run goes back to the
 * queue as its next attempt (loom_runs_expire, Ralph's own rule, max attempts and all).  When
 * supervisord restarts a killed executor, the new process finds its predecessor's run on its
 * first tick.  Checked on the first tick and every EXEC_RECLAIM_MS after.  A pid that exists
 * (or was reused) proves nothing and leaves the lease to expire; executors that share a host
 * name must share a pid namespace (LOOM_EXECUTOR_RECLAIM=0 turns this off where they do not).
 */
#define EXEC_RECLAIM_MS 5000

static void exec_reclaim(struct worker *w, const struct exec_settings *cfg)
{
        static long long next_ms;
        static char host[65];
        PGresult *res;
        int ended = 0;

        if (worker_now_ms() < next_ms)
                return;
        next_ms = worker_now_ms() + EXEC_RECLAIM_MS;
        if (!host[0] && gethostname(host, sizeof(host) - 1) != 0)
                return;
        if (db_exec(&w->db, &exec_held_stmt, NULL, &res) != ERR_OK)
                return;
        for (int i = 0; i < PQntuples(res); i++) {
                const char *owner = PQgetvalue(res, i, 1);
                const char *at = strrchr(owner, '@'), *colon = strrchr(owner, ':');
                const char *params[2] = {PQgetvalue(res, i, 0), owner};
                PGresult *done;
                char *end;
                long pid;

                if (!at || !colon || colon < at || (size_t)(colon - at - 1) != strlen(host) ||
                    strncmp(at + 1, host, strlen(host)) != 0)
                        continue;
                pid = strtol(colon + 1, &end, 10);
                if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
                    errno != ESRCH)
                        continue;
                if (db_exec(&w->db, &exec_orphan_stmt, params, &done) == ERR_OK) {
                        PQclear(done);
                        dblog_write(LOG_LEVEL_WARN, NULL,
                                    "run %s: its executor %s is gone; the run goes back to the "
                                    "queue now instead of when its lease runs out",
                                    params[0], owner);
                        ended++;
                }
        }
        PQclear(res);
        if (ended) {
                const char *params[1] = {arena_printf(&w->arena, "%ld", cfg->max_attempts)};

                if (db_exec(&w->db, &exec_expire_stmt, params, &res) == ERR_OK)
                        PQclear(res);
                else
                        log_warn("cannot re-queue the runs of gone executors now (%s); loom-ralph "
                                 "will",
                                 w->db.errmsg);
        }
}

static int executor_tick(struct worker *w)
{
        static struct exec_settings cfg;
        struct exec_run run = {.w = w, .cfg = &cfg};
        const char *params[2];
        PGresult *res;
        int rc, col = 0;

        if (!cfg.lease_s) {
                const char *var = config_str("LOOM_VAR", "var");

                cfg.lease_s = config_long("LOOM_LEASE_SECONDS", 60, 3, 3600);
                cfg.llm_timeout_s = config_long("LOOM_LLM_TIMEOUT_SECONDS", 120, 1, 3600);
                cfg.llm_connect_s = config_long("LOOM_LLM_CONNECT_TIMEOUT_SECONDS", 10, 1, 300);
                cfg.llm_retries = config_long("LOOM_LLM_RETRIES", 3, 0, 10);
                cfg.command_timeout_s = config_long("LOOM_COMMAND_TIMEOUT_SECONDS", 300, 1, 3600);
                cfg.budget_wait_s = config_long("LOOM_BUDGET_WAIT_SECONDS", 300, 1, 3600);
                cfg.stream = config_long("LOOM_LLM_STREAM", 1, 0, 1) == 1;
                cfg.max_attempts = config_long("LOOM_MAX_ATTEMPTS", 3, 1, 100);
                cfg.reclaim = config_long("LOOM_EXECUTOR_RECLAIM", 1, 0, 1) == 1;
                cfg.projects_dir = config_str("LOOM_PROJECTS_DIR", NULL);
                if (!cfg.projects_dir) {
                        static char dir[4096];

                        snprintf(dir, sizeof(dir), "%s/projects", var);
                        cfg.projects_dir = dir;
                }
        }
        if (cfg.reclaim)
                exec_reclaim(w, &cfg);
        if (exec_next) {
                /* claimed with the end of the last run: its columns start at the second */
                res = exec_next;
                exec_next = NULL;
                col = 1;
                run.lease_until_ms = exec_next_until_ms;
        } else {
                params[0] = w->owner;
                params[1] = exec_num(&run, cfg.lease_s);
                run.lease_until_ms = worker_now_ms() + cfg.lease_s * 1000;
                rc = db_exec(&w->db, &exec_claim_stmt, params, &res);
                if (rc)
                        return rc;
                if (PQntuples(res) == 0) {
                        PQclear(res);
                        return ERR_OK;
                }
        }
        snprintf(run.id, sizeof(run.id), "%s", PQgetvalue(res, 0, col));
        snprintf(run.bead, sizeof(run.bead), "%s", PQgetvalue(res, 0, col + 1));
        run.max_iterations = (int)strtol(PQgetvalue(res, 0, col + 2), NULL, 10);
        run.attempt = (int)strtol(PQgetvalue(res, 0, col + 3), NULL, 10);
        snprintf(run.project, sizeof(run.project), "%s", PQgetvalue(res, 0, col + 4));
        snprintf(run.agent, sizeof(run.agent), "%s", PQgetvalue(res, 0, col + 5));
        /* handed back by an executor that shut down: go on from where it stopped */
        run.iterations = (int)strtol(PQgetvalue(res, 0, col + 6), NULL, 10);
        PQclear(res);
        dblog_write(LOG_LEVEL_INFO, EXEC_WHERE(&run), "run %s: started on bead %s (attempt %d)",
                    run.id, run.bead, run.attempt);
        history_init(&run.hist, &w->arena);
        guard_init(&run.guard);
        rc = exec_run(&run);
        history_release(&run.hist);
        return rc ? rc : 1; /* a run was worked: the queue may hold more, claim again now */
}

/* At SIGTERM: a run claimed with the end of the last one and not begun goes back to the queue. */
static void executor_stop(struct worker *w)
{
        const char *params[2];
        PGresult *res;

        if (!exec_next)
                return;
        params[0] = PQgetvalue(exec_next, 0, 1);
        params[1] = w->owner;
        if (db_exec(&w->db, &exec_release_stmt, params, &res) == ERR_OK) {
                PQclear(res);
                dblog_write(LOG_LEVEL_INFO, NULL,
                            "run %s: handed back to the queue (shutting down)", params[0]);
        } else {
                log_warn("run %s: cannot hand it back (%s); its lease will expire", params[0],
                         w->db.errmsg);
        }
        PQclear(exec_next);
        exec_next = NULL;
}

/* Probes and announces the sandbox; false when LOOM_SANDBOX=bwrap cannot be had. */
static bool exec_sandbox_setup(void)
{
        char err[700], desc[1200];

        if (sandbox_setup(&exec_sandbox, err, sizeof(err)) != ERR_OK) {
                dblog_write(LOG_LEVEL_ERROR, NULL, "refusing to start: %s", err);
                return false;
        }
        sandbox_describe(&exec_sandbox, desc, sizeof(desc));
        if (exec_sandbox.mode == SANDBOX_BWRAP)
                log_info("sandbox: commands run in %s", desc);
        else
                dblog_write(LOG_LEVEL_WARN, NULL,
                            "SANDBOX %s: commands are NOT isolated by bwrap (%s); they run with "
                            "rlimits, the program allowlist and no_new_privs only; %s",
                            exec_sandbox.mode == SANDBOX_OFF ? "OFF" : "UNAVAILABLE",
                            exec_sandbox.reason, desc);
        return true;
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-executor",
                .channel = "loom_runs",
                .needs_leader = false,
                .poll_ms = 1000,
                .tick = executor_tick,
                .stop = executor_stop,
        };
        char err[512];

        log_setup("loom-executor");
        if (secret_key_load(err, sizeof(err)) != 0) {
                log_error("%s", err);
                return 1;
        }
        /* before the sandbox probe, so its warning reaches the logs table too */
        if (dblog_start(config_database_url(), config_str("LOOM_WORKER_NAME", def.name)) != ERR_OK)
                log_warn("cannot start the database log writer; logging to stderr only");
        if (!exec_sandbox_setup()) {
                dblog_stop(2000);
                return 1;
        }
        exec_ledger_open();
        if (httpc_global_init() != 0) {
                log_error("cannot initialise libcurl");
                return 1;
        }
        return worker_main(&def);
}
