/*
 * api_health — /health, /health/live, /health/ready and /api/v1/health.
 *
 * live says the process answers; ready says it can do its work, i.e. the database answers
 * (load balancers and `make up` wait on it); /health adds the details people read.
 */
#include "api.h"
#include "err.h"
#include "query.h"
#include "strbuf.h"

#include <string.h>

static struct db_stmt health_ping_stmt = {
        .name = "health_ping",
        .sql = "SELECT max(version) FROM schema_migrations",
        .nparams = 0,
        .readonly = true,
};

/* Pings the database: true when it answers; *ms gets the round trip, *schema the version. */
static bool health_db(struct request *req, double *ms, char *schema, size_t schema_len)
{
        double t0 = api_now();
        PGresult *res;
        bool ok = db_exec(req->db, &health_ping_stmt, NULL, &res) == ERR_OK;

        *ms = (api_now() - t0) * 1000.0;
        schema[0] = '\0';
        if (ok) {
                const char *v = db_value(res, 0, 0);

                snprintf(schema, schema_len, "%s", v ? v : "0");
                PQclear(res);
        }
        return ok;
}

int api_health(struct request *req)
{
        struct strbuf sb;
        char schema[32];
        double ms;
        bool ok;
        int rc = query_done(req);

        if (rc)
                return rc;
        ok = health_db(req, &ms, schema, sizeof(schema));
        strbuf_init(&sb, 4096);
        strbuf_addf(&sb,
                    "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_seconds\":%.0f,"
                    "\"components\":{\"database\":{\"status\":\"%s\",\"latency_ms\":%.2f",
                    ok ? "healthy" : "unhealthy", API_VERSION, api_now() - api_started_at,
                    ok ? "healthy" : "unavailable", ms);
        if (ok)
                strbuf_addf(&sb, ",\"schema_version\":%s", schema);
        strbuf_addstr(&sb, "}}}");
        http_send_json(req, ok ? 200 : 503, sb.buf, sb.len);
        strbuf_release(&sb);
        return ERR_OK;
}

int api_health_live(struct request *req)
{
        static const char body[] = "{\"status\":\"alive\"}";
        int rc = query_done(req);

        if (rc)
                return rc;
        http_send_json(req, 200, body, sizeof(body) - 1);
        return ERR_OK;
}

int api_health_ready(struct request *req)
{
        static const char ready[] = "{\"status\":\"ready\"}";
        char schema[32];
        double ms;
        int rc = query_done(req);

        if (rc)
                return rc;
        if (!health_db(req, &ms, schema, sizeof(schema)))
                return http_fail(req, ERR_UNAVAILABLE, "not ready: database unavailable");
        http_send_json(req, 200, ready, sizeof(ready) - 1);
        return ERR_OK;
}

int api_v1_health(struct request *req)
{
        char body[160];
        int n, rc = query_done(req);

        if (rc)
                return rc;
        n = snprintf(body, sizeof(body),
                     "{\"status\":\"healthy\",\"version\":\"%s\",\"uptime_seconds\":%.0f}",
                     API_VERSION, api_now() - api_started_at);
        http_send_json(req, 200, body, (size_t)n);
        return ERR_OK;
}
