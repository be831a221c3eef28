/*
 * api_decisions — decisions people make, and read models of what happened:
 *
 *   POST /api/v1/beads/{id}/escalate      a decision bead that blocks the bead
 *   GET  /api/v1/decisions[/{id}]         decision beads (open by default)
 *   POST /api/v1/decisions/{id}/decide    approve / deny / needs_more_info, with a rationale
 *   GET  /api/v1/analytics/stats          LLM calls: totals, by project, agent, model, hour
 *   GET  /api/v1/events/stats             events by type and hour
 *   GET  /api/v1/logs/recent              the events as log lines, with levels
 *
 * The read models take a period (1h, 24h, 7d, 30d; default 24h).
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const verdicts[] = {"approve", "deny", "needs_more_info", NULL};
static const char *const decision_states[] = {"open", "closed", "all", NULL};
static const char *const periods[] = {"1h", "24h", "7d", "30d", NULL};
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const struct field_spec escalate_fields[] = {
        {"reason", FIELD_STRING, FIELD_REQUIRED, 1, 4000, NULL},
        {"returned_to", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},
};

static const struct field_spec decide_fields[] = {
        {"decision", FIELD_STRING, FIELD_REQUIRED, 0, 0, verdicts},
        {"rationale", FIELD_STRING, FIELD_NULLABLE, 0, 4000, NULL},
        {"decider_id", FIELD_STRING, FIELD_NULLABLE, 1, 200, NULL},
};

static struct db_stmt escalate_stmt = {
        .name = "bead_escalate",
        .sql = "SELECT loom_bead_escalate($1, $2, $3)",
        .nparams = 3,
};

static struct db_stmt decision_list_stmt = {
        .name = "decision_list",
        .sql = "SELECT coalesce(json_agg(loom_decision_json(p.b) ORDER BY p.n)"
               "  FILTER (WHERE p.n <= $1::int), '[]'), count(*) > $1::int"
               " FROM (SELECT x.b, row_number() OVER () AS n FROM ("
               "   SELECT b FROM beads b WHERE b.type = 'decision'"
               "   AND ($3::text IS NULL OR b.project_id = $3)"
               "   AND ($4 = 'all' OR ($4 = 'open') = (b.status <> 'closed'))"
               "   ORDER BY b.priority, b.created_at, b.id LIMIT $1::int + 1 OFFSET $2::int) x) p",
        .nparams = 4,
        .readonly = true,
};

static struct db_stmt decision_get_stmt = {
        .name = "decision_get",
        .sql = "SELECT loom_decision_json(b) FROM beads b WHERE b.id = $1 AND b.type = 'decision'",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt decide_stmt = {
        .name = "decision_decide",
        .sql = "SELECT loom_decision_decide($1, $2, $3, coalesce($4, $5), $5)",
        .nparams = 5,
};

static struct db_stmt analytics_stats_stmt = {
        .name = "analytics_stats",
        .sql = "SELECT loom_analytics_stats($1, $2)",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt events_stats_stmt = {
        .name = "events_stats",
        .sql = "SELECT loom_events_stats($1, $2)",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt logs_recent_stmt = {
        .name = "logs_recent",
        .sql = "SELECT coalesce(json_agg(loom_log_json(e) ORDER BY e.id DESC), '[]') FROM ("
               " SELECT * FROM events e WHERE e.id > $1::bigint"
               "  AND ($2::text IS NULL OR e.project_id = $2)"
               "  AND ($3::text IS NULL OR e.bead_id = $3)"
               "  AND ($4::text IS NULL OR e.payload ->> 'agent_id' = $4"
               "       OR e.payload #>> '{run,agent_id}' = $4)"
               "  AND ($5::text IS NULL OR e.actor = $5) AND e.recipient IS NULL"
               "  AND loom_level_rank(loom_event_level(e)) >= loom_level_rank($6)"
               " ORDER BY e.id DESC LIMIT $7::int) e",
        .nparams = 7,
        .readonly = true,
};

static const struct api_shape escalate_shape = {
        .id = api_bead_id,
        .fields = escalate_fields,
        .nfields = INPUT_NFIELDS(escalate_fields),
        .flags = API_BODY,
};

static const struct api_shape decision_id_shape = {.id = api_bead_id};

static const struct api_shape decide_shape = {
        .id = api_bead_id,
        .fields = decide_fields,
        .nfields = INPUT_NFIELDS(decide_fields),
        .flags = API_BODY,
};

int api_beads_escalate(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &escalate_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = input_string(body, "reason");
        params[2] = req->actor;
        return api_send_row(req, &escalate_stmt, params, 201, NULL);
}

int api_decisions_list(struct request *req)
{
        const char *params[4];
        int rc;

        params[2] = query_get(req, "project_id");
        if (input_bad_project_id(req, "project_id", params[2]))
                return ERR_INVALID;
        rc = query_enum(req, "status", decision_states, &params[3]);
        if (!rc)
                rc = api_page(req, 100, &params[0], &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (!params[3])
                params[3] = "open";
        return api_send_list(req, &decision_list_stmt, params, params[0], params[1]);
}

int api_decisions_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &decision_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &decision_get_stmt, &id, 200,
                            arena_printf(req->arena, "decision %s not found", id));
}

int api_decisions_decide(struct request *req)
{
        const char *params[5];
        json_object *body;
        int rc = api_start(req, &decide_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = input_string(body, "decision");
        params[2] = input_string(body, "rationale");
        params[3] = input_string(body, "decider_id");
        params[4] = req->actor;
        return api_send_row(req, &decide_stmt, params, 200, NULL);
}

/* project_id and period, shared by the two stats routes. */
static int stats_params(struct request *req, const char **params)
{
        int rc;

        params[0] = query_get(req, "project_id");
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        rc = query_enum(req, "period", periods, &params[1]);
        if (!rc)
                rc = query_done(req);
        if (!rc && !params[1])
                params[1] = "24h";
        return rc;
}

int api_analytics_stats(struct request *req)
{
        const char *params[2];
        int rc = stats_params(req, params);

        if (rc)
                return rc;
        return api_send_row(req, &analytics_stats_stmt, params, 200, NULL);
}

int api_events_stats(struct request *req)
{
        const char *params[2];
        int rc = stats_params(req, params);

        if (rc)
                return rc;
        return api_send_row(req, &events_stats_stmt, params, 200, NULL);
}

int api_logs_recent(struct request *req)
{
        const char *params[7];
        long since, limit;
        int rc;

        params[1] = query_get(req, "project_id");
        params[2] = query_get(req, "bead_id");
        params[3] = query_get(req, "agent_id");
        params[4] = query_get(req, "source");
        rc = query_enum(req, "level", levels, &params[5]);
        if (!rc)
                rc = query_long(req, "since_id", 0, 0, INT64_MAX, &since);
        if (!rc)
                rc = query_long(req, "limit", 200, 1, 1000, &limit);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", params[1]))
                return ERR_INVALID;
        if (params[2] && !input_is_bead_id(params[2]))
                return http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[2]);
        if (params[3] && (!input_is_name(params[3]) || strlen(params[3]) > 100))
                return http_fail(req, ERR_INVALID, "agent_id: '%.64s' is not an agent id",
                                 params[3]);
        if (params[4] && (!input_is_name(params[4]) || strlen(params[4]) > 100))
                return http_fail(req, ERR_INVALID, "source: '%.64s' is not a source name",
                                 params[4]);
        params[0] = arena_printf(req->arena, "%ld", since);
        params[5] = params[5] ? params[5] : "info";
        params[6] = arena_printf(req->arena, "%ld", limit);
        return api_send_row(req, &logs_recent_stmt, params, 200, NULL);
}
