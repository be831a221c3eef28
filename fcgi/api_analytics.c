/*
 * api_analytics — what the LLM calls and the runs cost and did (Loom's Analytics, §7.3):
 *
 *   GET /api/v1/analytics/stats            requests, tokens, cost, latency (avg, p95), error
 *                                          rate; by project, agent, model, provider and hour;
 *                                          the runs of the period by state and reason
 *   GET /api/v1/analytics/costs            cost, requests and tokens grouped by group_by:
 *                                          project, agent, persona, model, provider, bead, day
 *   GET /api/v1/analytics/logs             the LLM calls themselves, newest first, filtered
 *   GET /api/v1/analytics/export           the LLM calls of a period as CSV or JSON
 *   GET /api/v1/analytics/change-velocity  per project: files changed, builds and tests run and
 *                                          passed, commits, pushes, the edit → push funnel
 *
 * Every route takes project_id and period (1h, 24h, 7d, 30d; default 24h).  The SQL is in
 * sql/006_decisions.sql and sql/011_observability.sql; row-level security limits a user to
 * the projects they belong to.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const cost_groups[] = {"project",  "agent", "persona", "model",
                                          "provider", "bead",  "day",     NULL};
static const char *const call_states[] = {"ok", "error", NULL};
static const char *const formats[] = {"json", "csv", NULL};

static struct db_stmt stats_stmt = {
        .name = "analytics_stats",
        .sql = "SELECT loom_analytics_stats($1, $2)",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt costs_stmt = {
        .name = "analytics_costs",
        .sql = "SELECT loom_analytics_costs($1, $2, $3)",
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt velocity_stmt = {
        .name = "analytics_velocity",
        .sql = "SELECT loom_change_velocity($1, $2)",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt calls_stmt = {
        .name = "analytics_calls",
        .sql = "SELECT coalesce(json_agg(loom_llm_call_json(p.c) ORDER BY p.n)"
               "  FILTER (WHERE p.n <= $1::int), '[]'), count(*) > $1::int"
               " FROM (SELECT x.c, row_number() OVER () AS n FROM ("
               "   SELECT c FROM llm_calls c"
               "   WHERE c.created_at >= now() - loom_period($3)"
               "   AND ($4::text IS NULL OR c.project_id = $4)"
               "   AND ($5::text IS NULL OR c.agent_id = $5)"
               "   AND ($6::text IS NULL OR c.bead_id = $6)"
               "   AND ($7::bigint IS NULL OR c.run_id = $7::bigint)"
               "   AND ($8::text IS NULL OR c.provider_id = $8)"
               "   AND ($9::text IS NULL OR c.served_model = $9 OR c.requested_model = $9)"
               "   AND ($10::text IS NULL OR c.status = $10)"
               "   ORDER BY c.id DESC LIMIT $1::int + 1 OFFSET $2::int) x) p",
        .nparams = 10,
        .readonly = true,
};

static struct db_stmt export_stmt = {
        .name = "analytics_export",
        .sql = "SELECT * FROM loom_analytics_export($1, $2, $3::int, $4::int)",
        .nparams = 4,
        .readonly = true,
};

int api_analytics_stats(struct request *req)
{
        const char *params[2];
        int rc = api_period_params(req, &params[0], &params[1]);

        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_row(req, &stats_stmt, params, 200, NULL);
}

int api_analytics_costs(struct request *req)
{
        const char *params[3];
        int rc = api_period_params(req, &params[0], &params[1]);

        if (!rc)
                rc = query_enum(req, "group_by", cost_groups, &params[2]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (!params[2])
                params[2] = "project";
        return api_send_row(req, &costs_stmt, params, 200, NULL);
}

int api_analytics_velocity(struct request *req)
{
        const char *params[2];
        int rc = api_period_params(req, &params[0], &params[1]);

        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_row(req, &velocity_stmt, params, 200, NULL);
}

/* An optional id-like filter: 1..100 bytes, no control characters. */
static int analytics_name(struct request *req, const char *key, const char *what, const char **out)
{
        *out = query_get(req, key);
        if (*out && (!input_is_name(*out) || strlen(*out) > 100))
                return http_fail(req, ERR_INVALID, "%s: '%.64s' is not %s", key, *out, what);
        return ERR_OK;
}

/* The filters of /analytics/logs after limit, offset and period: params[3..9]. */
static int calls_filters(struct request *req, const char **params)
{
        long run_id = 0;
        int rc = analytics_name(req, "agent_id", "an agent id", &params[4]);

        params[5] = query_get(req, "bead_id");
        if (!rc && params[5] && !input_is_bead_id(params[5]))
                rc = http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[5]);
        if (!rc)
                rc = query_long(req, "run_id", 0, 1, INT64_MAX, &run_id);
        if (!rc)
                rc = analytics_name(req, "provider_id", "a provider id", &params[7]);
        if (!rc)
                rc = analytics_name(req, "model", "a model name", &params[8]);
        if (!rc)
                rc = query_enum(req, "status", call_states, &params[9]);
        params[6] = !rc && run_id ? arena_printf(req->arena, "%ld", run_id) : NULL;
        return rc;
}

int api_analytics_logs(struct request *req)
{
        const char *params[10];
        int rc = api_period_params(req, &params[3], &params[2]);

        if (!rc)
                rc = calls_filters(req, params);
        if (!rc)
                rc = api_page(req, 100, &params[0], &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &calls_stmt, params, params[0], params[1]);
}

int api_analytics_export(struct request *req)
{
        const char *params[4], *format;
        long limit, offset;
        int rc = api_period_params(req, &params[0], &params[1]);

        if (!rc)
                rc = query_enum(req, "format", formats, &format);
        if (!rc)
                rc = query_long(req, "limit", 10000, 1, API_MAX_EXPORT, &limit);
        if (!rc)
                rc = query_long(req, "offset", 0, 0, 100000000, &offset);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        params[2] = arena_printf(req->arena, "%ld", limit + 1);
        params[3] = arena_printf(req->arena, "%ld", offset);
        rc = api_send_export(req, &export_stmt, params, format ? format : "json",
                             arena_printf(req->arena, "loom-llm-calls-%s%s%s", params[1],
                                          params[0] ? "-" : "", params[0] ? params[0] : ""),
                             (int)limit, offset);
        return rc;
}
