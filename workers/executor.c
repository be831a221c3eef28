/*
 * loom-executor — claims queued runs and drives the agent's action loop (N processes).
 *
 * A claim is one UPDATE … FOR UPDATE SKIP LOCKED with a lease (LOOM_LEASE_SECONDS, 180); the
 * lease is renewed before every LLM call, and a run whose lease was lost (expired and re-queued
 * by loom-ralph) is abandoned without writing anything.  The end of a run — its state, the
 * bead's status, the agent's release — is one transaction (loom_run_finish).  No transaction is
 * open during an LLM call.
 *
 * The action loop, this version: the system prompt is the action format plus the persona's
 * instructions; each reply must carry {"actions": [...]}.  Terminal actions work (done,
 * close_bead, escalate_ceo); every other action is answered "not available yet" so the model
 * can finish.  Five unreadable replies in a row end the run (parse_failures), a reply without
 * actions ends it (no_actions), and the iteration budget bounds it (max_iterations).
 */
#include "actions.h"
#include "config.h"
#include "err.h"
#include "httpc.h"
#include "llm.h"
#include "log.h"
#include "strbuf.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

#define EXEC_MAX_MESSAGES     64
#define EXEC_KEEP_RECENT      12 /* exchanges kept when the history is trimmed */
#define EXEC_MAX_PARSE_ERRORS 5

static const char exec_action_format[] =
        "You are an autonomous agent working a bead (a work item) in Loom. Act; do not ask the "
        "human questions.\n"
        "Reply with exactly one JSON object and nothing else:\n"
        "{\"actions\": [{\"type\": \"<action>\", ...}], \"notes\": \"<what you did and why>\"}\n"
        "Actions available now:\n"
        "- {\"type\": \"done\", \"reason\": \"...\"} -- the work is finished; the bead is "
        "closed.\n"
        "- {\"type\": \"close_bead\", \"bead_id\": \"<this bead>\", \"reason\": \"...\"} -- the "
        "same, naming the bead.\n"
        "- {\"type\": \"escalate_ceo\", \"reason\": \"...\"} -- a decision only a person can "
        "make; the bead waits for them.\n"
        "File, build, test and git actions are being added; if you ask for one you will be told "
        "it is not available yet.\n";

static struct db_stmt exec_claim_stmt = {
        .name = "exec_claim",
        .sql = "SELECT r.id, r.bead_id, r.max_iterations FROM loom_run_claim($1, $2::int) r"
               " WHERE r.id IS NOT NULL",
        .nparams = 2,
};

static struct db_stmt exec_context_stmt = {
        .name = "exec_context",
        .sql = "SELECT b.title, b.description, b.priority, b.type, p.name, p.id,"
               "       pe.description, pe.instructions, pv.endpoint, pv.api_key, pv.model, "
               "pv.status"
               " FROM runs r JOIN beads b ON b.id = r.bead_id JOIN projects p ON p.id = "
               "r.project_id"
               " JOIN personas pe ON pe.name = r.persona_name"
               " LEFT JOIN providers pv ON pv.id = r.provider_id WHERE r.id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt exec_heartbeat_stmt = {
        .name = "exec_heartbeat",
        .sql = "SELECT loom_run_heartbeat($1, $2, $3::int, $4::int, $5, $6)",
        .nparams = 6,
};

static struct db_stmt exec_finish_stmt = {
        .name = "exec_finish",
        .sql = "SELECT loom_run_finish($1, $2, $3, $4, $5::int, $6, $7)",
        .nparams = 7,
};

struct exec_run {
        struct worker *w;
        char id[24];
        char bead[64];
        int max_iterations, iterations, parse_errors;
        long prompt_tokens, completion_tokens;
        const char *endpoint, *api_key, *model;
        struct llm_message msgs[EXEC_MAX_MESSAGES];
        int nmsgs;
        long lease_s;
};

static const char *exec_num(struct exec_run *run, long v)
{
        return arena_printf(&run->w->arena, "%ld", v);
}

/* Renews the lease; false when the run is no longer ours. */
static bool exec_heartbeat(struct exec_run *run)
{
        const char *params[6] = {run->id,
                                 run->w->name,
                                 exec_num(run, run->lease_s),
                                 exec_num(run, run->iterations),
                                 exec_num(run, run->prompt_tokens),
                                 exec_num(run, run->completion_tokens)};
        PGresult *res;
        bool ours;

        if (db_exec(&run->w->db, &exec_heartbeat_stmt, params, &res) != ERR_OK)
                return true; /* the database hiccuped: keep going, the lease still runs */
        ours = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        return ours;
}

static void exec_finish(struct exec_run *run, const char *reason, const char *error)
{
        const char *params[7] = {run->id,
                                 run->w->name,
                                 reason,
                                 error,
                                 exec_num(run, run->iterations),
                                 exec_num(run, run->prompt_tokens),
                                 exec_num(run, run->completion_tokens)};
        PGresult *res;

        if (db_exec(&run->w->db, &exec_finish_stmt, params, &res) != ERR_OK) {
                log_error("run %s: cannot record its end (%s): %s; the lease will expire", run->id,
                          reason, run->w->db.errmsg);
                return;
        }
        log_info("run %s (bead %s) finished: %s after %d iterations", run->id, run->bead, reason,
                 run->iterations);
        PQclear(res);
}

/* Adds a message (copied into the run's arena); trims the middle of a long history. */
static void exec_say(struct exec_run *run, const char *role, const char *content)
{
        if (run->nmsgs == EXEC_MAX_MESSAGES) {
                int drop = run->nmsgs - 2 - EXEC_KEEP_RECENT;

                memmove(&run->msgs[2], &run->msgs[2 + drop],
                        (size_t)(run->nmsgs - 2 - drop) * sizeof(run->msgs[0]));
                run->nmsgs -= drop;
        }
        run->msgs[run->nmsgs].role = role;
        run->msgs[run->nmsgs].content = arena_strdup(&run->w->arena, content);
        run->nmsgs++;
}

/* Carries out the actions; returns the terminal reason, or NULL to go on (feedback added). */
static const char *exec_apply(struct exec_run *run, json_object *actions)
{
        struct strbuf fb;
        const char *terminal = NULL;

        strbuf_init(&fb, 65536);
        strbuf_addstr(&fb, "Results:\n");
        for (size_t i = 0; i < json_object_array_length(actions); i++) {
                const char *type = actions_type(json_object_array_get_idx(actions, i));

                if (strcmp(type, "done") == 0 || strcmp(type, "close_bead") == 0) {
                        terminal = "completed";
                } else if (strcmp(type, "escalate_ceo") == 0) {
                        terminal = "escalated";
                } else {
                        strbuf_addf(&fb,
                                    "- %.80s: error: not available yet in this Loom; "
                                    "use done, close_bead or escalate_ceo\n",
                                    type);
                        continue;
                }
                strbuf_addf(&fb, "- %s: executed\n", type);
        }
        if (!terminal) {
                strbuf_addstr(&fb, "Based on these results, what is your next action?");
                exec_say(run, "user", fb.buf);
        }
        strbuf_release(&fb);
        return terminal;
}

/* One LLM turn: the reason the run ends, or NULL to continue. */
static const char *exec_turn(struct exec_run *run, char *err, size_t errlen)
{
        struct llm_request req = {.endpoint = run->endpoint,
                                  .api_key = run->api_key,
                                  .model = run->model,
                                  .messages = run->msgs,
                                  .nmessages = run->nmsgs,
                                  .temperature = 0.1,
                                  .max_tokens = 4096,
                                  .stream = true,
                                  .connect_timeout_ms = 5000,
                                  .timeout_ms = 50000,
                                  .max_retries = 2};
        struct llm_result res;
        json_object *root, *actions;
        const char *reason = NULL;
        char perr[200];

        llm_result_init(&res);
        if (llm_chat(&req, &res) != ERR_OK) {
                snprintf(err, errlen, "%s: %s", llm_error_class_name(res.error_class), res.error);
                llm_result_release(&res);
                return "provider_error";
        }
        run->prompt_tokens += res.prompt_tokens;
        run->completion_tokens += res.completion_tokens;
        exec_say(run, "assistant", res.content.buf);
        if (actions_parse(res.content.buf, res.content.len, &root, &actions, perr, sizeof(perr))) {
                if (++run->parse_errors >= EXEC_MAX_PARSE_ERRORS) {
                        snprintf(err, errlen, "%s", perr);
                        reason = "parse_failures";
                } else {
                        exec_say(run, "user",
                                 arena_printf(
                                         &run->w->arena,
                                         "Your reply could not be used: %s. Answer with one "
                                         "JSON object {\"actions\": [...], \"notes\": \"...\"}.",
                                         perr));
                }
                llm_result_release(&res);
                return reason;
        }
        run->parse_errors = 0;
        if (json_object_array_length(actions) == 0) {
                snprintf(err, errlen, "the reply had no actions");
                reason = "no_actions";
        } else {
                reason = exec_apply(run, actions);
        }
        json_object_put(root);
        llm_result_release(&res);
        return reason;
}

/* Loads the bead, persona and provider and runs the loop to a terminal reason. */
static int exec_run(struct exec_run *run)
{
        const char *params[1] = {run->id}, *reason = NULL;
        char err[600] = "";
        PGresult *ctx;
        int rc = db_exec(&run->w->db, &exec_context_stmt, params, &ctx);

        if (rc)
                return rc;
        if (PQntuples(ctx) == 0 || PQgetisnull(ctx, 0, 8) ||
            strcmp(PQgetvalue(ctx, 0, 11), "healthy") != 0) {
                /* no calls to a provider known to be down: the bead waits out the back-off */
                PQclear(ctx);
                exec_finish(run, "provider_error", "the run's provider is missing or unhealthy");
                return ERR_OK;
        }
        run->endpoint = arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, 8));
        run->api_key =
                db_value(ctx, 0, 9) ? arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, 9)) : NULL;
        run->model = arena_strdup(&run->w->arena, PQgetvalue(ctx, 0, 10));
        exec_say(run, "system",
                 arena_printf(&run->w->arena, "%s\n# Your role\n%s\n\n%s", exec_action_format,
                              PQgetvalue(ctx, 0, 6), PQgetvalue(ctx, 0, 7)));
        exec_say(run, "user",
                 arena_printf(&run->w->arena,
                              "Work on bead %s: %s\n\n%s\n\nContext: project %s (%s); priority "
                              "P%s; type %s. You have %d iterations.",
                              run->bead, PQgetvalue(ctx, 0, 0), PQgetvalue(ctx, 0, 1),
                              PQgetvalue(ctx, 0, 4), PQgetvalue(ctx, 0, 5), PQgetvalue(ctx, 0, 2),
                              PQgetvalue(ctx, 0, 3), run->max_iterations));
        PQclear(ctx);
        while (!reason && run->iterations < run->max_iterations) {
                if (!exec_heartbeat(run)) {
                        log_warn("run %s: lease lost; abandoning it", run->id);
                        return ERR_OK;
                }
                run->iterations++;
                reason = exec_turn(run, err, sizeof(err));
        }
        exec_finish(run, reason ? reason : "max_iterations", err[0] ? err : NULL);
        return ERR_OK;
}

static int executor_tick(struct worker *w)
{
        static long lease_s = 0;
        struct exec_run run = {.w = w};
        const char *params[2];
        PGresult *res;
        int rc;

        if (!lease_s)
                lease_s = config_long("LOOM_LEASE_SECONDS", 180, 30, 3600);
        run.lease_s = lease_s;
        params[0] = w->name;
        params[1] = exec_num(&run, lease_s);
        rc = db_exec(&w->db, &exec_claim_stmt, params, &res);
        if (rc)
                return rc;
        if (PQntuples(res) == 0) {
                PQclear(res);
                return ERR_OK;
        }
        snprintf(run.id, sizeof(run.id), "%s", PQgetvalue(res, 0, 0));
        snprintf(run.bead, sizeof(run.bead), "%s", PQgetvalue(res, 0, 1));
        run.max_iterations = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
        PQclear(res);
        log_info("run %s: working bead %s", run.id, run.bead);
        return exec_run(&run);
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-executor",
                .channel = "loom_runs",
                .needs_leader = false,
                .poll_ms = 1000,
                .tick = executor_tick,
        };

        log_setup("loom-executor");
        if (httpc_global_init() != 0) {
                log_error("cannot initialise libcurl");
                return 1;
        }
        return worker_main(&def);
}
