/*
 * api_activity — the activity feed: what happened, as people read it (sql/013_activity.sql
 * writes it from the events, folding repeats within five minutes into one row).
 *
 *   GET /api/v1/activity-feed   newest first (by the latest occurrence); filters project_id,
 *                               agent_id, bead_id, event_type, since (a date-time: rows whose
 *                               latest occurrence is at or after it); limit (default 50, at
 *                               most 1000) and offset, X-Next-Offset when more rows exist
 *
 * The live feed is loom-sse's /api/v1/activity-feed/stream.  Row-level security confines a
 * non-admin to the projects they belong to.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static struct db_stmt activity_list_stmt = {
        .name = "activity_list",
        .sql = "SELECT coalesce(json_agg(loom_activity_json(p.a) ORDER BY p.n)"
               "  FILTER (WHERE p.n <= $1::int), '[]'), count(*) > $1::int"
               " FROM (SELECT x.a, row_number() OVER () AS n FROM ("
               "   SELECT a FROM activities a"
               "   WHERE ($3::text IS NULL OR a.project_id = $3)"
               "   AND ($4::text IS NULL OR a.agent_id = $4)"
               "   AND ($5::text IS NULL OR a.bead_id = $5)"
               "   AND ($6::text IS NULL OR a.event_type = $6)"
               "   AND ($7::text IS NULL OR a.updated_at >= (SELECT loom_since($7)))"
               "   ORDER BY a.updated_at DESC, a.id DESC LIMIT $1::int + 1 OFFSET $2::int) x) p",
        .nparams = 7,
        .readonly = true,
};

/* The filters other than paging, each checked for shape; on ERR_INVALID the message says which. */
static int activity_filters(struct request *req, const char **params)
{
        params[2] = query_get(req, "project_id");
        params[3] = query_get(req, "agent_id");
        params[4] = query_get(req, "bead_id");
        params[5] = query_get(req, "event_type");
        params[6] = query_get(req, "since");
        if (input_bad_project_id(req, "project_id", params[2]))
                return ERR_INVALID;
        if (params[3] && (!input_is_name(params[3]) || strlen(params[3]) > 100))
                return http_fail(req, ERR_INVALID, "agent_id: '%.64s' is not an agent id",
                                 params[3]);
        if (params[4] && !input_is_bead_id(params[4]))
                return http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[4]);
        if (params[5] && !input_is_event_type(params[5]))
                return http_fail(req, ERR_INVALID,
                                 "event_type: '%.64s' is not an event type (e.g. bead.created)",
                                 params[5]);
        if (params[6] && !input_is_timestamp(params[6]))
                return http_fail(req, ERR_INVALID,
                                 "since: '%.64s' is not a date-time (e.g. 2026-01-31T12:00:00Z)",
                                 params[6]);
        return ERR_OK;
}

int api_activity_feed(struct request *req)
{
        const char *params[7];
        int rc = activity_filters(req, params);

        if (!rc)
                rc = api_page(req, 50, &params[0], &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &activity_list_stmt, params, params[0], params[1]);
}
