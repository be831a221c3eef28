/*
 * api_logs — the log: what the workers wrote (the logs table, via shared/dblog.h) merged with
 * every other event as a line, in one id space (a log line's id is its log.<level> event's).
 *
 *   GET /api/v1/logs/recent   newest first: level (at least), project_id, bead_id, agent_id,
 *                             source, since_id, limit (<= 1000)
 *   GET /api/v1/logs/export   a period of it, oldest first, as JSON or CSV (format), the same
 *                             filters, limit (<= 100000, X-Truncated when there was more)
 *
 * GET /api/v1/logs/stream (loom-sse) carries the log.* events as they happen.  SQL in
 * sql/011_observability.sql (loom_logs_select, loom_logs_export).
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const formats[] = {"json", "csv", NULL};

static struct db_stmt recent_stmt = {
        .name = "logs_recent",
        .sql = "SELECT coalesce(json_agg(s.line ORDER BY s.id DESC), '[]') FROM"
               " loom_logs_select($1::bigint, '-infinity', $2, $3, $4, $5, $6, $7::int, true) s",
        .nparams = 7,
        .readonly = true,
};

static struct db_stmt export_stmt = {
        .name = "logs_export",
        .sql = "SELECT * FROM loom_logs_export($1, $2, $3, $4, $5, $6, $7::int)",
        .nparams = 7,
        .readonly = true,
};

/* project_id, bead_id, agent_id, source and level into params[0..4], checked. */
static int logs_filters(struct request *req, const char **params)
{
        int rc;

        params[0] = query_get(req, "project_id");
        params[1] = query_get(req, "bead_id");
        params[2] = query_get(req, "agent_id");
        params[3] = query_get(req, "source");
        rc = query_enum(req, "level", levels, &params[4]);
        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        if (params[1] && !input_is_bead_id(params[1]))
                return http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[1]);
        if (params[2] && (!input_is_name(params[2]) || strlen(params[2]) > 100))
                return http_fail(req, ERR_INVALID, "agent_id: '%.64s' is not an agent id",
                                 params[2]);
        if (params[3] && (!input_is_name(params[3]) || strlen(params[3]) > 100))
                return http_fail(req, ERR_INVALID, "source: '%.64s' is not a source name",
                                 params[3]);
        if (!params[4])
                params[4] = "info";
        return ERR_OK;
}

int api_logs_recent(struct request *req)
{
        const char *params[7];
        long since, limit;
        int rc = query_long(req, "since_id", 0, 0, INT64_MAX, &since);

        if (!rc)
                rc = query_long(req, "limit", 200, 1, 1000, &limit);
        if (!rc)
                rc = logs_filters(req, params + 1);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        params[0] = arena_printf(req->arena, "%ld", since);
        params[6] = arena_printf(req->arena, "%ld", limit);
        return api_send_row(req, &recent_stmt, params, 200, NULL);
}

int api_logs_export(struct request *req)
{
        const char *params[7], *format, *project;
        long limit;
        int rc = api_period_params(req, &project, &params[0]);

        if (!rc)
                rc = query_enum(req, "format", formats, &format);
        if (!rc)
                rc = query_long(req, "limit", 10000, 1, API_MAX_EXPORT, &limit);
        if (!rc)
                rc = logs_filters(req, params + 1);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        params[6] = arena_printf(req->arena, "%ld", limit + 1);
        return api_send_export(req, &export_stmt, params, format ? format : "json",
                               arena_printf(req->arena, "loom-logs-%s%s%s", params[0],
                                            params[1] ? "-" : "", params[1] ? params[1] : ""),
                               (int)limit, -1);
}
