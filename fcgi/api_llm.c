/*
 * api_llm — provider calls from loom-api: settings, the in-flight cap, keys, accounting; see
 * api_llm.h.
 */
#include "api_llm.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "secret.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define API_LLM_KEEPALIVE_MS 1000

struct api_llm_settings api_llm_cfg;
static atomic_int api_llm_inflight;

static struct db_stmt api_llm_record_stmt = {
        .name = "api_llm_record",
        .sql = "SELECT loom_llm_call_attach(loom_llm_call_record($1::jsonb), $1::jsonb)",
        .nparams = 1,
};

void api_llm_setup(int threads)
{
        struct api_llm_settings *c = &api_llm_cfg;
        const char *dir = config_str("LOOM_PROJECTS_DIR", NULL);
        char desc[1200];

        c->connect_ms = config_long("LOOM_LLM_CONNECT_TIMEOUT_SECONDS", 10, 1, 300) * 1000;
        c->timeout_ms = config_long("LOOM_LLM_TIMEOUT_SECONDS", 120, 1, 3600) * 1000;
        c->retries = (int)config_long("LOOM_LLM_RETRIES", 3, 0, 10);
        c->max_inflight =
                (int)config_long("LOOM_API_LLM_REQUESTS", threads > 1 ? threads / 2 : 1, 1, 256);
        c->command_timeout_s = (int)config_long("LOOM_PAIR_COMMAND_TIMEOUT_SECONDS", 120, 1, 3600);
        if (dir)
                snprintf(c->projects_dir, sizeof(c->projects_dir), "%s", dir);
        else
                snprintf(c->projects_dir, sizeof(c->projects_dir), "%s/projects",
                         config_str("LOOM_VAR", "var"));
        c->sandbox_ok =
                sandbox_setup(&c->sandbox, c->sandbox_error, sizeof(c->sandbox_error)) == ERR_OK;
        if (!c->sandbox_ok) {
                log_error("pair programming runs no programs: %s", c->sandbox_error);
                return;
        }
        sandbox_describe(&c->sandbox, desc, sizeof(desc));
        if (c->sandbox.mode == SANDBOX_BWRAP)
                log_info("pair programming: programs run in %s", desc);
        else
                log_warn("pair programming: programs are NOT isolated by bwrap (%s); %s",
                         c->sandbox.reason, desc);
}

int api_llm_acquire(struct request *req)
{
        int max = api_llm_cfg.max_inflight > 0 ? api_llm_cfg.max_inflight : 1;

        if (atomic_fetch_add(&api_llm_inflight, 1) >= max) {
                atomic_fetch_sub(&api_llm_inflight, 1);
                return http_fail(req, ERR_UNAVAILABLE,
                                 "this API process already has %d LLM requests under way "
                                 "(LOOM_API_LLM_REQUESTS); retry shortly",
                                 max);
        }
        return ERR_OK;
}

void api_llm_release(void)
{
        atomic_fetch_sub(&api_llm_inflight, 1);
}

/* The call's keepalive: stop when nobody is listening any more. */
static bool api_llm_keepalive(void *arg)
{
        return !http_client_gone(arg);
}

void api_llm_request_init(struct llm_request *lr, struct request *req)
{
        lr->connect_timeout_ms = api_llm_cfg.connect_ms ? api_llm_cfg.connect_ms : 10000;
        lr->timeout_ms = api_llm_cfg.timeout_ms ? api_llm_cfg.timeout_ms : 120000;
        lr->max_retries = api_llm_cfg.retries;
        lr->keepalive = api_llm_keepalive;
        lr->keepalive_arg = req;
        lr->keepalive_ms = API_LLM_KEEPALIVE_MS;
}

int api_llm_open_key(struct request *req, const char *provider, const char *sealed,
                     const char **key)
{
        int rc;

        *key = NULL;
        if (!sealed)
                return ERR_OK;
        rc = secret_open(req->arena, sealed, key);
        if (rc)
                return http_fail(req, ERR_CONFLICT, "provider %s: %s", provider,
                                 secret_open_strerror(rc));
        return ERR_OK;
}

static void api_llm_add(json_object *o, const char *k, const char *v)
{
        if (v)
                json_object_object_add(o, k, json_object_new_string(v));
}

void api_llm_record(struct request *req, const struct api_llm_call *call,
                    const struct llm_result *res, bool ok)
{
        json_object *c = json_object_new_object();
        const char *params[1];
        PGresult *out;

        api_llm_add(c, "source", call->source);
        api_llm_add(c, "project_id", call->project_id);
        api_llm_add(c, "bead_id", call->bead_id);
        api_llm_add(c, "agent_id", call->agent_id);
        api_llm_add(c, "provider_id", call->provider_id);
        api_llm_add(c, "requested_model", call->model ? call->model : "");
        api_llm_add(c, "served_model", res->served_model);
        json_object_object_add(c, "prompt_tokens", json_object_new_int64(res->prompt_tokens));
        json_object_object_add(c, "completion_tokens",
                               json_object_new_int64(res->completion_tokens));
        json_object_object_add(c, "cached_tokens", json_object_new_int64(res->cached_tokens));
        if (res->cost_usd >= 0)
                json_object_object_add(c, "cost_usd", json_object_new_double(res->cost_usd));
        if (ok)
                json_object_object_add(c, "ttft_ms", json_object_new_int((int)res->ttft_ms));
        json_object_object_add(c, "latency_ms", json_object_new_int((int)res->total_ms));
        api_llm_add(c, "status", ok ? "ok" : "error");
        if (res->http_status)
                json_object_object_add(c, "http_status",
                                       json_object_new_int((int)res->http_status));
        if (!ok) {
                api_llm_add(c, "error_class", llm_error_class_name(res->error_class));
                api_llm_add(c, "error", res->error);
        }
        json_object_object_add(c, "retries", json_object_new_int(res->retries));
        json_object_object_add(c, "streamed", json_object_new_boolean(call->streamed));
        params[0] = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
        if (db_exec(req->db, &api_llm_record_stmt, params, &out) == ERR_OK)
                PQclear(out);
        else
                log_warn("cannot record an LLM call (%s): %s", call->source, req->db->errmsg);
        json_object_put(c);
}
