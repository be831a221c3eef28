/*
 * api_pair — POST /api/v1/pair {bead_id, message, agent_id?}: pair programming with an agent
 * on a bead, the reply streamed as Server-Sent Events (Loom's §7.4):
 *
 *   connected {session_id, agent_id, agent_name, bead_id, message_count}
 *   chunk     {content}                 each piece of the reply as the model writes it
 *   actions   {actions, results}        when the reply holds a JSON block of actions
 *   error     {error, error_class?}     the call failed (the stream then ends)
 *   done      {session_id, tokens_used, message_count}
 *
 * A person has one session per bead and agent, kept 7 days after its last use (pair_sessions,
 * pair_messages; ids "pair_<hex>").  The agent is the one asked for, else the one this person
 * last paired with on the bead, its assignee, an engineering manager, any agent of the project
 * with a provider.  The first message of a session is the system prompt: the persona, the pair
 * mode rules and the actions.
 *
 * Actions run with the executor's router (workers/tools.c) in the bead's git worktree on branch
 * bead/<id>, commands in the same sandbox as loom-executor's (workers/sandbox.c), logged in
 * command_logs; remember writes project memory.  They run only while no run of the bead is
 * live (the agent would race it: send it a message with /conversations/{bead}/inject instead);
 * create_bead, close_bead, escalate_ceo and done are the person's to decide.  Results go back
 * into the conversation, so the next turn sees them.  Failed builds and tests become lessons.
 *
 * Errors found before the stream starts (bad input, unknown bead or agent, no provider, all LLM
 * slots busy) are ordinary JSON answers with a 4xx/503 status.
 */
#include "actions.h"
#include "api.h"
#include "api_llm.h"
#include "err.h"
#include "history.h"
#include "log.h"
#include "tools.h"
#include "workspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAIR_MAX_ACTIONS      20
#define PAIR_RESULT_SHOWN     4000 /* characters of one action's result in the actions event */
#define PAIR_FEEDBACK_CAP     ((size_t)96 << 10)
#define PAIR_INSTRUCTIONS_CAP 16000
#define PAIR_DESCRIPTION_CAP  8000
#define PAIR_OUTPUT_LOG_CAP   65536

static const struct field_spec pair_fields[] = {
        {"bead_id", FIELD_BEAD_ID, FIELD_REQUIRED, 0, 0, NULL},
        {"message", FIELD_STRING, FIELD_REQUIRED, 1, 65536, NULL},
        {"agent_id", FIELD_STRING, 0, 1, 100, NULL},
};

static const char pair_mode_text[] =
        "\n# Pair-programming mode\n"
        "A person is working with you on this bead. Answer conversationally and to the point, as "
        "a colleague at the same keyboard: explain, suggest, ask when something is unclear. To "
        "look at or change the code, put the actions in one fenced JSON block in your answer:\n"
        "```json\n{\"actions\": [{\"type\": \"read_file\", \"path\": \"README.md\"}]}\n```\n"
        "They run in order in the bead's git worktree and their results come back to you in the "
        "next message. create_bead, close_bead, escalate_ceo and done are not available here: "
        "the person decides those. Actions:\n";

enum {
        T_PROJECT,
        T_TITLE,
        T_DESCRIPTION,
        T_AGENT,
        T_AGENT_NAME,
        T_PERSONA,
        T_INSTRUCTIONS,
        T_PROVIDER,
        T_ENDPOINT,
        T_KEY,
        T_MODEL,
        T_PROVIDER_STATUS,
        T_CONTEXT_WINDOW,
        T_LIVE_RUN,
        T_GIT_REPO,
        T_DEFAULT_BRANCH,
        T_ALLOW_NETWORK,
};

static struct db_stmt pair_target_stmt = {
        .name = "pair_target",
        .sql = "SELECT * FROM loom_pair_target($1, $2, nullif($3, '')::bigint)",
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt pair_open_stmt = {
        .name = "pair_open",
        .sql = "SELECT loom_pair_open($1, $2, nullif($3, '')::bigint, $4, $5, $6)",
        .nparams = 6,
};

/* The system prompt and the newest 400 messages. */
static struct db_stmt pair_history_stmt = {
        .name = "pair_history",
        .sql = "SELECT role, content FROM pair_messages WHERE session_id = $1"
               " AND (seq = 1 OR seq > (SELECT max(seq) - 400 FROM pair_messages"
               "                        WHERE session_id = $1)) ORDER BY seq",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt pair_reply_stmt = {
        .name = "pair_reply",
        .sql = "SELECT loom_pair_reply($1, $2, $3::bigint)",
        .nparams = 3,
};

static struct db_stmt pair_note_stmt = {
        .name = "pair_note",
        .sql = "SELECT loom_pair_message_add($1, 'user', $2)",
        .nparams = 2,
};

static struct db_stmt pair_live_stmt = {
        .name = "pair_live",
        .sql = "SELECT EXISTS (SELECT 1 FROM runs WHERE bead_id = $1"
               " AND state IN ('queued', 'running'))",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt pair_remember_stmt = {
        .name = "pair_remember",
        .sql = "SELECT loom_memory_put($1, $2, $3, $4, $5::real, $6, $7) ->> 'key'",
        .nparams = 7,
};

static struct db_stmt pair_lesson_stmt = {
        .name = "pair_lesson",
        .sql = "SELECT loom_lesson_record($1, $2, $3, $4, $5, $6, $7)",
        .nparams = 7,
};

static struct db_stmt pair_command_stmt = {
        .name = "pair_command",
        .sql = "INSERT INTO command_logs (bead_id, project_id, agent_id, command, working_dir,"
               " exit_code, timed_out, duration_ms, output)"
               " VALUES ($1, $2, $3, $4, $5, $6, $7::boolean, $8, $9)",
        .nparams = 9,
};

/* One turn. */
struct pair {
        struct request *req;
        PGresult *target; /* loom_pair_target's row; cleared with the arena */
        const char *bead, *project, *agent, *agent_name, *provider, *model, *api_key;
        const char *session;
        int message_count;
        size_t budget_chars;
        struct history hist;
        bool delivered; /* a chunk reached the client */
        bool ws_tried, ws_ok;
        struct workspace ws;
        struct tool_env tenv;
        char ws_error[700];
};

static void pair_clear(void *res)
{
        PQclear(res);
}

static const char *pair_col(const struct pair *p, int col)
{
        return PQgetvalue(p->target, 0, col);
}

/* Runs a statement whose result only has to succeed; *out (when given) gets a row to clear. */
static bool pair_do(struct pair *p, struct db_stmt *st, const char *const *params, PGresult **out)
{
        PGresult *res;

        if (db_exec(p->req->db, st, params, &res) != ERR_OK) {
                log_warn("pair on %s: %s failed: %s", p->bead, st->name, p->req->db->errmsg);
                return false;
        }
        if (out)
                *out = res;
        else
                PQclear(res);
        return true;
}

static int pair_check(struct request *req, json_object *body)
{
        const char *agent = input_string(body, "agent_id");

        if (agent && !input_is_name(agent))
                return http_fail(req, ERR_INVALID, "agent_id: must not contain control characters");
        return ERR_OK;
}

static const struct api_shape pair_shape = {
        .fields = pair_fields,
        .nfields = INPUT_NFIELDS(pair_fields),
        .flags = API_BODY,
        .check = pair_check,
};

/* The bead, the agent and its provider (404 / 409 from the database), the key opened. */
static int pair_load(struct pair *p, json_object *body)
{
        struct request *req = p->req;
        const char *params[3] = {input_string(body, "bead_id"), input_string(body, "agent_id"),
                                 req->user.id ? arena_printf(req->arena, "%lld", req->user.id)
                                              : ""};
        const char *status;

        if (db_exec(req->db, &pair_target_stmt, params, &p->target) != ERR_OK)
                return http_fail_db(req);
        arena_defer(req->arena, pair_clear, p->target);
        if (PQntuples(p->target) != 1)
                return http_fail(req, ERR_CONFLICT, "the agent's provider or persona is gone");
        p->bead = params[0];
        p->project = pair_col(p, T_PROJECT);
        p->agent = pair_col(p, T_AGENT);
        p->agent_name = pair_col(p, T_AGENT_NAME);
        p->provider = pair_col(p, T_PROVIDER);
        p->model = pair_col(p, T_MODEL);
        status = pair_col(p, T_PROVIDER_STATUS);
        if (strcmp(status, "failed") == 0 || strcmp(status, "inactive") == 0)
                return http_fail(req, ERR_CONFLICT,
                                 "provider %s of agent %s is %s; pair again when it is healthy",
                                 p->provider, p->agent, status);
        p->budget_chars = (size_t)strtol(pair_col(p, T_CONTEXT_WINDOW), NULL, 10) * 4 * 8 / 10;
        return api_llm_open_key(req, p->provider, db_value(p->target, 0, T_KEY), &p->api_key);
}

/* A new session's first message: who the agent is, the pair rules, the actions, the bead. */
static const char *pair_system_prompt(struct pair *p)
{
        struct strbuf sb;
        const char *text;

        strbuf_init(&sb, (size_t)256 << 10);
        strbuf_addf(&sb, "You are %s, pairing with %s on bead %s: %s.\n\n# Your role\n%s\n\n%.*s\n",
                    p->agent_name, p->req->user.username ? p->req->user.username : "a person",
                    p->bead, pair_col(p, T_TITLE), pair_col(p, T_PERSONA), PAIR_INSTRUCTIONS_CAP,
                    pair_col(p, T_INSTRUCTIONS));
        strbuf_addstr(&sb, pair_mode_text);
        actions_usage(&sb);
        strbuf_addf(&sb, "\n# The bead\n%s: %s\n\n%.*s\n", p->bead, pair_col(p, T_TITLE),
                    PAIR_DESCRIPTION_CAP, pair_col(p, T_DESCRIPTION));
        text = arena_strdup(p->req->arena, sb.buf);
        strbuf_release(&sb);
        return text;
}

/* The role as a static string (the history keeps the pointer). */
static const char *pair_role(const char *role)
{
        if (strcmp(role, "system") == 0)
                return "system";
        return strcmp(role, "assistant") == 0 ? "assistant" : "user";
}

/* The session (found or made), the person's message stored, the conversation loaded. */
static int pair_open(struct pair *p, const char *message)
{
        struct request *req = p->req;
        const char *params[6] = {p->bead,
                                 p->agent,
                                 req->user.id ? arena_printf(req->arena, "%lld", req->user.id) : "",
                                 req->actor,
                                 pair_system_prompt(p),
                                 message};
        json_object *doc, *v;
        PGresult *res;

        if (db_exec(req->db, &pair_open_stmt, params, &res) != ERR_OK)
                return http_fail_db(req);
        doc = json_tokener_parse(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!doc || !json_object_object_get_ex(doc, "session_id", &v)) {
                json_object_put(doc);
                return http_fail(req, ERR_INTERNAL, "pair session could not be opened");
        }
        p->session = arena_strdup(req->arena, json_object_get_string(v));
        if (json_object_object_get_ex(doc, "message_count", &v))
                p->message_count = json_object_get_int(v);
        json_object_put(doc);
        if (db_exec(req->db, &pair_history_stmt, &p->session, &res) != ERR_OK)
                return http_fail_db(req);
        history_init(&p->hist, req->arena);
        for (int i = 0; i < PQntuples(res); i++)
                history_add(&p->hist, pair_role(PQgetvalue(res, i, 0)), PQgetvalue(res, i, 1));
        PQclear(res);
        return ERR_OK;
}

/* Sends one event whose data is obj (put here). */
static bool pair_event(struct pair *p, const char *event, json_object *obj)
{
        bool ok = http_stream_event(p->req, event, api_json_text(obj));

        json_object_put(obj);
        return ok;
}

static bool pair_on_chunk(void *arg, const char *data, const char *delta, size_t len)
{
        struct pair *p = arg;
        json_object *o;

        (void)data;
        if (!delta)
                return !p->req->client_gone;
        o = json_object_new_object();
        json_object_object_add(o, "content", json_object_new_string_len(delta, (int)len));
        p->delivered = true;
        return pair_event(p, "chunk", o);
}

/* The call, with what fits of the conversation; a context-length refusal shrinks it. */
static int pair_call(struct pair *p, struct llm_result *res)
{
        for (int level = 0; level <= HISTORY_MAX_LEVEL; level++) {
                struct llm_message *msgs;
                int n = history_view(&p->hist, p->budget_chars, level, &msgs);
                struct llm_request lr = {
                        .endpoint = pair_col(p, T_ENDPOINT),
                        .api_key = p->api_key,
                        .model = p->model,
                        .messages = msgs,
                        .nmessages = n,
                        .temperature = 0.7,
                        .max_tokens = 4096,
                        .stream = true,
                        .on_chunk = pair_on_chunk,
                        .on_chunk_arg = p,
                };
                const struct api_llm_call call = {
                        .source = "pair",
                        .project_id = p->project,
                        .bead_id = p->bead,
                        .agent_id = p->agent,
                        .provider_id = p->provider,
                        .model = p->model,
                        .streamed = true,
                };
                int rc;

                api_llm_request_init(&lr, p->req);
                llm_result_release(res);
                llm_result_init(res);
                rc = llm_chat(&lr, res);
                api_llm_record(p->req, &call, res, rc == ERR_OK);
                if (rc == ERR_OK || res->error_class != LLM_ERR_CONTEXT_LENGTH || p->delivered)
                        return rc;
        }
        return ERR_BAD_GATEWAY;
}

/* The worktree, made on the first action that needs it. */
static bool pair_workspace(struct pair *p)
{
        struct request *req = p->req;

        if (p->ws_tried)
                return p->ws_ok;
        p->ws_tried = true;
        if (workspace_prepare(api_llm_cfg.projects_dir, p->project, pair_col(p, T_GIT_REPO),
                              pair_col(p, T_DEFAULT_BRANCH), p->bead, &p->ws, p->ws_error,
                              sizeof(p->ws_error)) != ERR_OK)
                return false;
        p->tenv = (struct tool_env){
                .root = p->ws.root,
                .bead_id = p->bead,
                .branch = p->ws.branch,
                .has_remote = p->ws.has_remote,
                .default_branch = pair_col(p, T_DEFAULT_BRANCH),
                .command_timeout_s = api_llm_cfg.command_timeout_s,
                .output_cap = 16384,
                .author_name = p->agent_name,
                .author_email = arena_printf(req->arena, "%s@loom.local", p->agent),
                .sandbox = &api_llm_cfg.sandbox,
                .allow_network = strcmp(pair_col(p, T_ALLOW_NETWORK), "t") == 0,
        };
        p->ws_ok = true;
        return true;
}

/* A failed build or test run teaches the project something; a program run is logged. */
static void pair_after_tool(struct pair *p, const char *type, const struct tool_result *tr)
{
        struct tool_lesson l;

        if (tools_lesson(type, tr, &l)) {
                const char *params[7] = {p->project, l.category, l.title, l.detail,
                                         l.key,      p->bead,    p->agent};

                pair_do(p, &pair_lesson_stmt, params, NULL);
        }
        if (tr->ran_command) {
                const char *params[9] = {
                        p->bead,
                        p->project,
                        p->agent,
                        tr->command,
                        p->ws.root,
                        arena_printf(p->req->arena, "%d", tr->exit_code),
                        tr->timed_out ? "true" : "false",
                        arena_printf(p->req->arena, "%ld", tr->duration_ms),
                        arena_printf(p->req->arena, "%.*s", PAIR_OUTPUT_LOG_CAP, tr->text.buf)};

                pair_do(p, &pair_command_stmt, params, NULL);
        }
}

static void pair_remember(struct pair *p, json_object *a, struct tool_result *tr)
{
        json_object *v;
        const char *params[7] = {p->project,
                                 input_string(a, "category"),
                                 input_string(a, "key"),
                                 input_string(a, "value"),
                                 "0.6",
                                 p->bead,
                                 p->agent_name};
        PGresult *res;

        if (json_object_object_get_ex(a, "confidence", &v) && v) {
                if (!json_object_is_type(v, json_type_double) &&
                    !json_object_is_type(v, json_type_int)) {
                        strbuf_addstr(&tr->text, "error: confidence must be a number from 0 to 1");
                        return;
                }
                params[4] = arena_printf(p->req->arena, "%.4f", json_object_get_double(v));
        }
        if (db_exec(p->req->db, &pair_remember_stmt, params, &res) != ERR_OK) {
                strbuf_addf(&tr->text, "error: %s", p->req->db->errmsg);
                return;
        }
        tr->ok = true;
        strbuf_addf(&tr->text, "remembered %s/%s for this project", params[1],
                    PQgetvalue(res, 0, 0));
        PQclear(res);
}

/* Programs that run inside the jail (git and patches run outside it, see sandbox.h). */
static bool pair_jailed_type(const char *type)
{
        return strcmp(type, "run_command") == 0 || strcmp(type, "build_project") == 0 ||
               strcmp(type, "run_tests") == 0;
}

/* Carries out one action into tr. */
static void pair_action(struct pair *p, json_object *a, const char *type, bool live,
                        struct tool_result *tr)
{
        char err[400];

        if (actions_check(a, err, sizeof(err)) != ERR_OK) {
                strbuf_addf(&tr->text, "error: %s", err);
        } else if (strcmp(type, "remember") == 0) {
                pair_remember(p, a, tr);
        } else if (!tools_handles(type)) {
                strbuf_addf(&tr->text,
                            "error: %s is not available in pair mode: the person you pair "
                            "with decides that",
                            type);
        } else if (live) {
                strbuf_addf(&tr->text,
                            "error: a run of bead %s is working in this worktree right now, so "
                            "pair actions would race it; the person can send the running agent "
                            "a message instead, or wait for the run to end",
                            p->bead);
        } else if (pair_jailed_type(type) && !api_llm_cfg.sandbox_ok) {
                strbuf_addf(&tr->text, "error: programs cannot run here: %s",
                            api_llm_cfg.sandbox_error);
        } else if (!pair_workspace(p)) {
                strbuf_addf(&tr->text, "error: the bead's worktree is not available: %s",
                            p->ws_error);
        } else {
                if (tools_run(&p->tenv, type, a, tr) != ERR_OK)
                        strbuf_addstr(&tr->text, "error: internal failure; try again");
                pair_after_tool(p, type, tr);
        }
}

/* Whether a run of the bead is live now (actions wait for it to end). */
static bool pair_live(struct pair *p)
{
        PGresult *res;
        bool live = strcmp(pair_col(p, T_LIVE_RUN), "t") == 0;

        if (pair_do(p, &pair_live_stmt, &p->bead, &res)) {
                live = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
                PQclear(res);
        }
        return live;
}

/* The actions of a reply, if it has any: carried out, reported, fed back. */
static void pair_actions(struct pair *p, const char *reply, size_t len)
{
        json_object *root, *actions, *results, *out;
        struct strbuf fb;
        char err[300];
        size_t n;
        bool live;

        if (actions_parse(reply, len, &root, &actions, err, sizeof(err)) != ERR_OK)
                return; /* a conversational answer */
        n = json_object_array_length(actions);
        if (n == 0) {
                json_object_put(root);
                return;
        }
        live = pair_live(p);
        results = json_object_new_array();
        strbuf_init(&fb, PAIR_FEEDBACK_CAP);
        strbuf_addstr(&fb, "Results of the actions you asked for:\n");
        for (size_t i = 0; i < n && i < PAIR_MAX_ACTIONS; i++) {
                json_object *a = json_object_array_get_idx(actions, i), *r;
                const char *type = actions_type(a);
                struct tool_result tr;

                tool_result_init(&tr);
                pair_action(p, a, type, live, &tr);
                r = json_object_new_object();
                json_object_object_add(r, "action_type", json_object_new_string(type));
                json_object_object_add(r, "status",
                                       json_object_new_string(tr.ok ? "executed" : "error"));
                json_object_object_add(
                        r, "message",
                        json_object_new_string(arena_printf(p->req->arena, "%.*s",
                                                            PAIR_RESULT_SHOWN, tr.text.buf)));
                if (tr.path[0])
                        json_object_object_add(r, "path", json_object_new_string(tr.path));
                json_object_array_add(results, r);
                strbuf_addf(&fb, "%zu. %.60s%s%s: %s\n%s\n", i + 1, type, tr.path[0] ? " " : "",
                            tr.path, tr.ok ? "executed" : "error", tr.text.buf);
                tool_result_release(&tr);
        }
        if (n > PAIR_MAX_ACTIONS)
                strbuf_addf(&fb, "Only the first %d actions ran.\n", PAIR_MAX_ACTIONS);
        out = json_object_new_object();
        json_object_object_add(out, "actions", json_object_get(actions));
        json_object_object_add(out, "results", results);
        pair_event(p, "actions", out);
        {
                const char *params[2] = {p->session, fb.buf};

                if (pair_do(p, &pair_note_stmt, params, NULL))
                        p->message_count++;
        }
        strbuf_release(&fb);
        json_object_put(root);
}

static void pair_error(struct pair *p, const struct llm_result *res)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_string(res->error));
        json_object_object_add(o, "error_class",
                               json_object_new_string(llm_error_class_name(res->error_class)));
        pair_event(p, "error", o);
}

/* Everything after the response head: the events of the turn. */
static void pair_stream(struct pair *p)
{
        struct llm_result res;
        json_object *o = json_object_new_object();
        long tokens;

        http_stream_start(p->req, 200, "text/event-stream");
        json_object_object_add(o, "session_id", json_object_new_string(p->session));
        json_object_object_add(o, "agent_id", json_object_new_string(p->agent));
        json_object_object_add(o, "agent_name", json_object_new_string(p->agent_name));
        json_object_object_add(o, "bead_id", json_object_new_string(p->bead));
        json_object_object_add(o, "message_count", json_object_new_int(p->message_count));
        if (!pair_event(p, "connected", o))
                return;
        llm_result_init(&res);
        if (pair_call(p, &res) != ERR_OK) {
                log_info("pair on %s: the call failed: %s: %s", p->bead,
                         llm_error_class_name(res.error_class), res.error);
                pair_error(p, &res);
                llm_result_release(&res);
                return;
        }
        tokens = res.prompt_tokens + res.completion_tokens;
        {
                const char *params[3] = {p->session, res.content.len ? res.content.buf : "",
                                         arena_printf(p->req->arena, "%ld", tokens)};

                if (pair_do(p, &pair_reply_stmt, params, NULL))
                        p->message_count++;
        }
        pair_actions(p, res.content.buf, res.content.len);
        llm_result_release(&res);
        o = json_object_new_object();
        json_object_object_add(o, "session_id", json_object_new_string(p->session));
        json_object_object_add(o, "tokens_used", json_object_new_int64(tokens));
        json_object_object_add(o, "message_count", json_object_new_int(p->message_count));
        pair_event(p, "done", o);
}

int api_pair(struct request *req)
{
        struct pair p = {.req = req};
        json_object *body;
        int rc = api_start(req, &pair_shape, NULL, &body);

        if (rc)
                return rc;
        rc = api_llm_acquire(req);
        if (rc)
                return rc;
        rc = pair_load(&p, body);
        if (!rc)
                rc = pair_open(&p, input_string(body, "message"));
        if (!rc)
                pair_stream(&p);
        history_release(&p.hist);
        api_llm_release();
        return rc;
}
