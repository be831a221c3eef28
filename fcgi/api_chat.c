/*
 * api_chat — the OpenAI-compatible proxy to a project's provider:
 *
 *   POST /api/v1/chat/completions          an OpenAI chat completion request, answered with the
 *                                          provider's own JSON; with "stream": true, the
 *                                          provider's SSE chunks ("data: {...}", "data: [DONE]")
 *   POST /api/v1/chat/completions/stream   Loom's stream: events connected {provider_id, model},
 *                                          chunk (an OpenAI chunk), error, done {tokens_used, ...}
 *
 * Which provider: provider_id (query or body), else the provider of project_id's agents (a
 * healthy one first, the engineering manager's first); one of them is required.  The body goes
 * to the provider as it came (every OpenAI field: tools, response_format, ...) without Loom's
 * project_id/provider_id, with "model" set to the provider's model when absent.  Every call is
 * an llm_calls row (source "proxy", the project when given) so analytics and costs see it.
 *
 * Streams retry 429/5xx before the first chunk like the executor's calls; plain calls are one
 * attempt (the client retries).  The provider's refusals come back as {"error": "..."}: 429
 * stays 429, a request it rejects (400, 404, 413, 422) is 400, anything else is 502.
 */
#include "api.h"
#include "api_llm.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "query.h"

#include <stdio.h>
#include <string.h>

#define CHAT_MAX_MESSAGES 1000

static const char *const chat_roles[] = {"system",    "user",     "assistant", "tool",
                                         "developer", "function", NULL};

/* $1 project (or NULL), $2 provider (or NULL): (project seen, provider row or NULLs). */
static struct db_stmt chat_target_stmt = {
        .name = "chat_target",
        .sql = "SELECT $1::text IS NULL OR EXISTS (SELECT 1 FROM projects WHERE id = $1),"
               " pv.id, pv.endpoint, pv.api_key_sealed, pv.model, pv.status"
               " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT p.* FROM providers p"
               "  WHERE p.id = coalesce($2::text, (SELECT a.provider_id FROM agents a"
               "   JOIN providers q ON q.id = a.provider_id WHERE a.project_id = $1"
               "   ORDER BY (q.status = 'healthy') DESC,"
               "            (a.persona_name = 'engineering-manager') DESC, a.created_at, a.id"
               "   LIMIT 1))) pv ON true",
        .nparams = 2,
        .readonly = true,
};

enum { C_SEEN, C_PROVIDER, C_ENDPOINT, C_KEY, C_MODEL, C_STATUS };

struct chat {
        struct request *req;
        json_object *body; /* what goes to the provider (owned by the arena's body) */
        const char *project, *provider, *endpoint, *api_key, *model;
        bool loom;          /* /stream: Loom's events */
        bool include_usage; /* the client asked for the usage chunk */
        bool started;       /* the response head went out */
};

static void chat_clear(void *res)
{
        PQclear(res);
}

/* project_id / provider_id from the query or the body (taken out of it); the same twice is
 * fine, two different values are not. */
static int chat_pick(struct request *req, json_object *body, const char *name, const char **out)
{
        const char *q = query_get(req, name);
        json_object *v;

        *out = q;
        if (json_object_object_get_ex(body, name, &v)) {
                if (!json_object_is_type(v, json_type_string))
                        return http_fail(req, ERR_INVALID, "%s: must be a string", name);
                if (q && strcmp(q, json_object_get_string(v)) != 0)
                        return http_fail(req, ERR_INVALID,
                                         "%s: the query says '%.64s' and the body '%.64s'", name, q,
                                         json_object_get_string(v));
                *out = arena_strdup(req->arena, json_object_get_string(v));
                json_object_object_del(body, name);
        }
        if (*out && !input_is_project_id(*out))
                return http_fail(req, ERR_INVALID, "%s: '%.64s' is not a valid %s", name, *out,
                                 strcmp(name, "project_id") == 0 ? "project id" : "provider id");
        return ERR_OK;
}

/* messages: 1..1000 objects, each with a known role. */
static int chat_check_messages(struct request *req, json_object *body)
{
        json_object *msgs;
        size_t n;

        if (!json_object_object_get_ex(body, "messages", &msgs))
                return http_fail(req, ERR_INVALID,
                                 "messages: required (an array of {role, "
                                 "content})");
        if (!json_object_is_type(msgs, json_type_array))
                return http_fail(req, ERR_INVALID, "messages: must be an array");
        n = json_object_array_length(msgs);
        if (n < 1 || n > CHAT_MAX_MESSAGES)
                return http_fail(req, ERR_INVALID, "messages: must hold 1 to %d messages",
                                 CHAT_MAX_MESSAGES);
        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(msgs, i), *role;
                bool known = false;

                if (!json_object_is_type(m, json_type_object))
                        return http_fail(req, ERR_INVALID, "messages[%zu]: must be an object", i);
                if (!json_object_object_get_ex(m, "role", &role) ||
                    !json_object_is_type(role, json_type_string))
                        return http_fail(req, ERR_INVALID, "messages[%zu].role: required string",
                                         i);
                for (int k = 0; chat_roles[k]; k++)
                        known |= strcmp(chat_roles[k], json_object_get_string(role)) == 0;
                if (!known)
                        return http_fail(req, ERR_INVALID,
                                         "messages[%zu].role: '%.30s' is not "
                                         "one of %s",
                                         i, json_object_get_string(role),
                                         input_choices_list(req, chat_roles));
        }
        return ERR_OK;
}

/* The request: body shape, where it goes, the stream flags. */
static int chat_parse(struct chat *c, bool loom_stream)
{
        struct request *req = c->req;
        json_object *v;
        char *text;
        size_t len;
        int rc = http_read_body(req, &text, &len);

        if (!rc)
                rc = input_parse(req, text, len, false, &c->body);
        if (!rc)
                rc = chat_pick(req, c->body, "project_id", &c->project);
        if (!rc)
                rc = chat_pick(req, c->body, "provider_id", &c->provider);
        if (!rc)
                rc = query_done(req);
        if (!rc)
                rc = chat_check_messages(req, c->body);
        if (rc)
                return rc;
        if (json_object_object_get_ex(c->body, "model", &v) &&
            (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 200))
                return http_fail(req, ERR_INVALID, "model: must be a string of at most 200 bytes");
        if (json_object_object_get_ex(c->body, "stream", &v) &&
            !json_object_is_type(v, json_type_boolean))
                return http_fail(req, ERR_INVALID, "stream: must be true or false");
        if (!c->project && !c->provider)
                return http_fail(req, ERR_INVALID,
                                 "project_id or provider_id is required (query or body): which "
                                 "provider should answer?");
        c->loom = loom_stream;
        if (json_object_object_get_ex(c->body, "stream_options", &v) &&
            json_object_is_type(v, json_type_object) &&
            json_object_object_get_ex(v, "include_usage", &v))
                c->include_usage = json_object_get_boolean(v);
        return ERR_OK;
}

/* The provider: 404 for a project or provider the caller cannot see, 409 when none fits. */
static int chat_target(struct chat *c)
{
        struct request *req = c->req;
        const char *params[2] = {c->project, c->provider};
        PGresult *res;
        json_object *v;

        if (db_exec(req->db, &chat_target_stmt, params, &res) != ERR_OK)
                return http_fail_db(req);
        arena_defer(req->arena, chat_clear, res);
        if (strcmp(PQgetvalue(res, 0, C_SEEN), "t") != 0)
                return http_fail(req, ERR_NOT_FOUND, "project %s not found", c->project);
        if (PQgetisnull(res, 0, C_PROVIDER)) {
                if (c->provider)
                        return http_fail(req, ERR_NOT_FOUND, "provider %s not found", c->provider);
                return http_fail(req, ERR_CONFLICT,
                                 "no agent of project %s has a provider; give provider_id",
                                 c->project);
        }
        c->provider = PQgetvalue(res, 0, C_PROVIDER);
        c->endpoint = PQgetvalue(res, 0, C_ENDPOINT);
        if (strcmp(PQgetvalue(res, 0, C_STATUS), "inactive") == 0)
                return http_fail(req, ERR_CONFLICT, "provider %s is inactive", c->provider);
        /* a copy: the body's own string dies when "model" is replaced below */
        c->model = json_object_object_get_ex(c->body, "model", &v)
                           ? arena_strdup(req->arena, json_object_get_string(v))
                           : "";
        if (!*c->model)
                c->model = PQgetvalue(res, 0, C_MODEL);
        if (!*c->model)
                return http_fail(req, ERR_INVALID, "model: required (provider %s has no default)",
                                 c->provider);
        json_object_object_add(c->body, "model", json_object_new_string(c->model));
        return api_llm_open_key(req, c->provider, db_value(res, 0, C_KEY), &c->api_key);
}

static void chat_record(struct chat *c, const struct llm_result *res, bool ok, bool streamed)
{
        const struct api_llm_call call = {.source = "proxy",
                                          .project_id = c->project,
                                          .provider_id = c->provider,
                                          .model = c->model,
                                          .streamed = streamed};

        api_llm_record(c->req, &call, res, ok);
}

/* The provider's own words from an error body ({"error": {"message"}} or text). */
static const char *chat_upstream_message(struct request *req, const char *body)
{
        json_object *doc = json_tokener_parse(body), *e, *m;
        const char *out = NULL;

        if (doc && json_object_object_get_ex(doc, "error", &e)) {
                if (json_object_is_type(e, json_type_string))
                        out = arena_strdup(req->arena, json_object_get_string(e));
                else if (json_object_object_get_ex(e, "message", &m))
                        out = arena_strdup(req->arena, json_object_get_string(m));
        }
        json_object_put(doc);
        return out ? out : arena_printf(req->arena, "%.300s", body);
}

/* An answer that is not a success, as our error. */
static int chat_refused(struct chat *c, long status, const char *words)
{
        if (status == 429)
                return http_fail(c->req, ERR_RATE_LIMITED, "provider %s is rate limiting: %.400s",
                                 c->provider, words);
        if (status == 400 || status == 404 || status == 413 || status == 422)
                return http_fail(c->req, ERR_INVALID,
                                 "provider %s refused the request (HTTP %ld): %.400s", c->provider,
                                 status, words);
        if (status == 0)
                return http_fail(c->req, ERR_BAD_GATEWAY, "provider %s did not answer: %.400s",
                                 c->provider, words);
        return http_fail(c->req, ERR_BAD_GATEWAY, "provider %s answered HTTP %ld: %.400s",
                         c->provider, status, words);
}

/* usage and model of a whole answer, for the record (estimated from sizes when absent). */
static void chat_account(const char *body, size_t sent, struct llm_result *res)
{
        json_object *doc = json_tokener_parse(body), *u, *v;

        if (doc && json_object_object_get_ex(doc, "model", &v))
                snprintf(res->served_model, sizeof(res->served_model), "%s",
                         json_object_get_string(v));
        if (doc && json_object_object_get_ex(doc, "usage", &u) &&
            json_object_is_type(u, json_type_object)) {
                if (json_object_object_get_ex(u, "prompt_tokens", &v))
                        res->prompt_tokens = json_object_get_int64(v);
                if (json_object_object_get_ex(u, "completion_tokens", &v))
                        res->completion_tokens = json_object_get_int64(v);
        } else {
                res->prompt_tokens = (long)(sent / 4 + 1);
                res->completion_tokens = (long)(strlen(body) / 4 + 1);
                res->usage_estimated = true;
        }
        json_object_put(doc);
}

static bool chat_is_object(const char *text)
{
        json_object *doc = json_tokener_parse(text);
        bool ok = doc && json_object_is_type(doc, json_type_object);

        json_object_put(doc);
        return ok;
}

/* One attempt, the provider's answer passed through. */
static int chat_plain(struct chat *c)
{
        struct request *req = c->req;
        const char *sent = api_json_text(c->body);
        struct httpc_request hr = {
                .method = "POST",
                .url = arena_printf(req->arena, "%s/chat/completions", c->endpoint),
                .bearer = c->api_key,
                .json_body = sent,
                .connect_timeout_ms = api_llm_cfg.connect_ms ? api_llm_cfg.connect_ms : 10000,
                .timeout_ms = api_llm_cfg.timeout_ms ? api_llm_cfg.timeout_ms : 120000,
        };
        struct httpc_response hres;
        struct llm_result res;
        int rc;

        llm_result_init(&res);
        strbuf_init(&hres.body, LLM_MAX_REPLY);
        rc = httpc_perform(&hr, &hres);
        res.http_status = hres.status;
        res.total_ms = res.ttft_ms = hres.total_ms;
        if (!rc && hres.status == 200 && chat_is_object(hres.body.buf)) {
                chat_account(hres.body.buf, strlen(sent), &res);
                chat_record(c, &res, true, false);
                http_send_json(req, 200, hres.body.buf, hres.body.len);
        } else if (!rc && hres.status == 200) {
                res.error_class = LLM_ERR_PROTOCOL;
                snprintf(res.error, sizeof(res.error), "the answer is not a JSON object");
                chat_record(c, &res, false, false);
                rc = http_fail(req, ERR_BAD_GATEWAY,
                               "provider %s answered 200 with something that is not JSON",
                               c->provider);
        } else {
                const char *words = rc ? hres.error : chat_upstream_message(req, hres.body.buf);

                res.error_class = rc ? LLM_ERR_NETWORK : llm_classify(hres.status, hres.body.buf);
                snprintf(res.error, sizeof(res.error), "%s", words);
                chat_record(c, &res, false, false);
                rc = chat_refused(c, rc ? 0 : hres.status, words);
        }
        strbuf_release(&hres.body);
        llm_result_release(&res);
        return rc;
}

/* The response head, once: Loom's stream opens with connected. */
static bool chat_start(struct chat *c)
{
        json_object *o;
        bool ok;

        if (c->started)
                return !c->req->client_gone;
        c->started = true;
        http_stream_start(c->req, 200, "text/event-stream");
        if (!c->loom)
                return !c->req->client_gone;
        o = json_object_new_object();
        json_object_object_add(o, "provider_id", json_object_new_string(c->provider));
        json_object_object_add(o, "model", json_object_new_string(c->model));
        ok = http_stream_event(c->req, "connected", api_json_text(o));
        json_object_put(o);
        return ok;
}

/* A chunk that carries only the usage (choices empty): the client asked for it or not. */
static bool chat_usage_only(const char *data)
{
        json_object *doc = json_tokener_parse(data), *ch;
        bool only = doc && json_object_object_get_ex(doc, "choices", &ch) &&
                    json_object_is_type(ch, json_type_array) && json_object_array_length(ch) == 0;

        json_object_put(doc);
        return only;
}

static bool chat_on_chunk(void *arg, const char *data, const char *delta, size_t len)
{
        struct chat *c = arg;
        struct strbuf sb;
        bool ok;

        (void)delta, (void)len;
        if (!chat_start(c))
                return false;
        if (chat_usage_only(data) && (c->loom || !c->include_usage))
                return true;
        if (c->loom)
                return http_stream_event(c->req, "chunk", data);
        strbuf_init(&sb, 0);
        strbuf_addf(&sb, "data: %s\n\n", data);
        ok = http_stream_write(c->req, sb.buf, sb.len);
        strbuf_release(&sb);
        return ok;
}

/* The end of a stream: done / [DONE], or the failure in the stream's own terms. */
static void chat_stream_end(struct chat *c, const struct llm_result *res, bool ok)
{
        json_object *o = json_object_new_object();

        if (ok) {
                json_object_object_add(
                        o, "tokens_used",
                        json_object_new_int64(res->prompt_tokens + res->completion_tokens));
                json_object_object_add(o, "prompt_tokens",
                                       json_object_new_int64(res->prompt_tokens));
                json_object_object_add(o, "completion_tokens",
                                       json_object_new_int64(res->completion_tokens));
                json_object_object_add(o, "model", json_object_new_string(res->served_model));
                if (c->loom)
                        http_stream_event(c->req, "done", api_json_text(o));
                else
                        http_stream_write(c->req, "data: [DONE]\n\n", 14);
        } else if (c->loom) {
                json_object_object_add(o, "error", json_object_new_string(res->error));
                json_object_object_add(
                        o, "error_class",
                        json_object_new_string(llm_error_class_name(res->error_class)));
                http_stream_event(c->req, "error", api_json_text(o));
        } else {
                json_object *e = json_object_new_object();

                json_object_object_add(e, "message", json_object_new_string(res->error));
                json_object_object_add(
                        e, "type", json_object_new_string(llm_error_class_name(res->error_class)));
                json_object_object_add(o, "error", e);
                http_stream_write(c->req, "data: ", 6);
                http_stream_write(c->req, api_json_text(o), strlen(api_json_text(o)));
                http_stream_write(c->req, "\n\n", 2);
        }
        json_object_put(o);
}

/* A streamed call: retried before its first chunk, then passed on chunk by chunk. */
static int chat_stream(struct chat *c)
{
        json_object *so;
        struct llm_request lr = {
                .endpoint = c->endpoint,
                .api_key = c->api_key,
                .model = c->model,
                .stream = true,
                .on_chunk = chat_on_chunk,
                .on_chunk_arg = c,
        };
        struct llm_result res;
        int rc;

        json_object_object_add(c->body, "stream", json_object_new_boolean(1));
        if (!json_object_object_get_ex(c->body, "stream_options", &so) ||
            !json_object_is_type(so, json_type_object)) {
                so = json_object_new_object();
                json_object_object_add(c->body, "stream_options", so);
        }
        json_object_object_add(so, "include_usage", json_object_new_boolean(1));
        lr.body_json = api_json_text(c->body);
        api_llm_request_init(&lr, c->req);
        if (c->loom && !chat_start(c))
                return ERR_OK;
        llm_result_init(&res);
        rc = llm_chat(&lr, &res);
        chat_record(c, &res, rc == ERR_OK, true);
        if (rc == ERR_OK) {
                chat_start(c);
                chat_stream_end(c, &res, true);
        } else if (c->started) {
                chat_stream_end(c, &res, false);
        } else {
                rc = res.error_class == LLM_ERR_NETWORK
                             ? chat_refused(c, 0, res.error)
                             : chat_refused(c, res.http_status ? res.http_status : 502, res.error);
        }
        llm_result_release(&res);
        return c->started ? ERR_OK : rc;
}

static int chat_handle(struct request *req, bool loom_stream)
{
        struct chat c = {.req = req};
        json_object *v;
        int rc = chat_parse(&c, loom_stream);

        if (!rc)
                rc = chat_target(&c);
        if (rc)
                return rc;
        rc = api_llm_acquire(req);
        if (rc)
                return rc;
        if (loom_stream ||
            (json_object_object_get_ex(c.body, "stream", &v) && json_object_get_boolean(v)))
                rc = chat_stream(&c);
        else
                rc = chat_plain(&c);
        api_llm_release();
        return rc;
}

int api_chat_completions(struct request *req)
{
        return chat_handle(req, false);
}

int api_chat_completions_stream(struct request *req)
{
        return chat_handle(req, true);
}
