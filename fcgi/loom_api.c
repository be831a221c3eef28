/*
 * loom-api — the REST API FastCGI program.
 *
 * Stateless: every request is routed through the table in routes.c, runs on its thread's own
 * database connection and arena, and leaves nothing behind that a later request depends on, so
 * any number of these processes, on any number of hosts, can sit behind one nginx upstream.
 *
 *   LOOM_DATABASE_URL   libpq connection string
 *   LOOM_API_THREADS    request threads (default 4), each with one database connection
 *   LOOM_FCGI_LISTEN    unix path or host:port; unset = fd 0 from supervisord [fcgi-program]
 *   LOOM_SECRET_KEY     the key that seals provider API keys, else <LOOM_VAR>/secret.key
 *   LOOM_SESSION_IDLE_SECONDS, LOOM_SESSION_MAX_SECONDS   session lifetimes (8 h idle, 7 days)
 *   LOOM_LOGIN_MAX_FAILURES (5 per user), LOOM_LOGIN_MAX_FAILURES_PER_IP (20),
 *   LOOM_LOGIN_WINDOW_SECONDS (900)   login throttling: 429 with Retry-After past the limit
 *   LOOM_API_LLM_REQUESTS (threads / 2)  pair and chat-proxy requests under way at once; 503
 *   LOOM_LLM_*, LOOM_PAIR_COMMAND_TIMEOUT_SECONDS (120), LOOM_PROJECTS_DIR, LOOM_SANDBOX*
 *                        how pair programming calls the model and runs the agent's actions
 *   LOOM_METRICS_FLUSH_MS   how often this process reports its HTTP counters (5000; metrics.h)
 */
#include "api.h"
#include "api_llm.h"
#include "auth.h"
#include "config.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "router.h"
#include "secret.h"
#include "server.h"

#include <stdio.h>
#include <string.h>

static void api_handle(FCGX_Request *fcgx, struct server_thread *t)
{
        struct request req;
        const struct route *route;
        char allow[128];
        double t0 = api_now();
        int rc;

        http_request_init(&req, fcgx, &t->arena, &t->db);
        if (log_threshold <= LOG_LEVEL_DEBUG) {
                char ctx[128];

                snprintf(ctx, sizeof(ctx), "req=%s %s %.80s", req.request_id, req.method, req.path);
                log_set_context(ctx);
        }
        switch (route_find(loom_routes, loom_routes_count, &req, &route, allow, sizeof(allow))) {
        case ROUTE_FOUND:
                rc = auth_request(&req, route->permission);
                if (!rc)
                        rc = query_parse(&req);
                if (!rc)
                        rc = route->handler(&req);
                break;
        case ROUTE_NO_METHOD:
                if (!auth_has_credential(&req)) {
                        rc = auth_request(&req, "self"); /* 401: say nothing about the API */
                        break;
                }
                http_add_header(&req, "Allow", allow);
                rc = http_fail(&req, ERR_METHOD,
                               "method %.10s is not allowed on %.200s (allowed: "
                               "%s)",
                               req.method, req.path, allow);
                break;
        case ROUTE_BAD_PATH:
                rc = http_fail(&req, ERR_INVALID, "malformed path");
                break;
        default:
                if (!auth_has_credential(&req) && strncmp(req.path, "/api/", 5) == 0) {
                        rc = auth_request(&req, "self");
                        break;
                }
                rc = http_fail(&req, ERR_NOT_FOUND, "no route for %.10s %.200s", req.method,
                               req.path);
        }
        http_finish(&req, rc);
        metrics_http_record(req.route, req.status, api_now() - t0);
        log_debug("%d", req.status);
        log_set_context(NULL);
        http_request_release(&req);
}

int main(void)
{
        struct server_config cfg = {
                .program = "loom-api",
                .handler = api_handle,
                /* a connection opened mid-request sees no project until loom_auth() scopes it */
                .db_session_sql = "SET ROLE loom_api; SET loom.scope = 'member'; SET loom.uid = ''",
        };
        char err[512];
        int rc;

        log_setup("loom-api");
        /* before the threads start: they only read the key */
        if (secret_key_load(err, sizeof(err)) != 0) {
                log_error("%s", err);
                return 1;
        }
        api_started_at = api_now();
        if (httpc_global_init() != 0) {
                log_error("cannot initialise libcurl");
                return 1;
        }
        cfg.threads = (int)config_long("LOOM_API_THREADS", 4, 1, 256);
        api_llm_setup(cfg.threads);
        metrics_init(loom_routes, loom_routes_count);
        if (metrics_start(config_database_url()) != ERR_OK)
                log_warn("cannot start the metrics flusher; /metrics shows this process's "
                         "requests only when it answers the scrape itself");
        rc = server_run(&cfg);
        metrics_stop();
        return rc;
}
