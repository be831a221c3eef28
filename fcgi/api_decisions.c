/*
 * api_decisions — decisions people make, and read models of what happened:
 *
 *   POST /api/v1/beads/{id}/escalate      a decision bead that blocks the bead
 *   GET  /api/v1/decisions[/{id}]         decision beads (open by default)
 *   POST /api/v1/decisions/{id}/decide    approve / deny / needs_more_info, with a rationale
 *   GET  /api/v1/events/stats             events by type and hour, of a period (1h, 24h, 7d,
 *                                         30d; default 24h)
 *
 * Analytics are in api_analytics.c, logs in api_logs.c.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const verdicts[] = {"approve", "deny", "needs_more_info", NULL};
static const char *const decision_states[] = {"open", "closed", "all", NULL};

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

static struct db_stmt events_stats_stmt = {
        .name = "events_stats",
        .sql = "SELECT loom_events_stats($1, $2)",
        .nparams = 2,
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

int api_events_stats(struct request *req)
{
        const char *params[2];
        int rc = api_period_params(req, &params[0], &params[1]);

        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_row(req, &events_stats_stmt, params, 200, NULL);
}
