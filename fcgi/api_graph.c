/*
 * api_graph — GET /api/v1/work-graph and GET /api/v1/events.
 *
 * The work graph is Loom's {beads: {id: bead}, edges: [{from, to, relationship}]}: for blocks
 * the edge runs blocker → blocked, for parent parent → child, related has no direction.
 * At most WORK_GRAPH_MAX beads are returned ("truncated": true beyond).
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

#define WORK_GRAPH_MAX 5000

static struct db_stmt work_graph_stmt = {
        .name = "work_graph",
        .sql = "WITH bs AS (SELECT b.id FROM beads b"
               "            WHERE ($1::text IS NULL OR b.project_id = $1)"
               "            ORDER BY b.id LIMIT 5001),"
               "     page AS (SELECT * FROM bs ORDER BY id LIMIT 5000)"
               " SELECT json_build_object("
               "  'beads', (SELECT coalesce(json_object_agg(b.id, loom_bead_json(b)), '{}')"
               "            FROM page p JOIN beads b ON b.id = p.id),"
               "  'edges', (SELECT coalesce(json_agg(json_build_object('from', d.depends_on_id,"
               "                     'to', d.bead_id, 'relationship', d.kind)"
               "                   ORDER BY d.depends_on_id, d.bead_id, d.kind), '[]')"
               "            FROM bead_deps d WHERE d.bead_id IN (SELECT id FROM page)),"
               "  'truncated', (SELECT count(*) > 5000 FROM bs))",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt events_list_stmt = {
        .name = "events_list",
        .sql = "SELECT coalesce(json_agg(loom_event_json(e) ORDER BY e.id DESC), '[]') FROM"
               " (SELECT * FROM events e"
               "  WHERE ($1::text IS NULL OR e.project_id = $1)"
               "    AND ($2::text IS NULL OR e.type = $2)"
               "    AND ($3::text IS NULL OR e.bead_id = $3)"
               "    AND e.id > $4::bigint"
               "    AND e.recipient IS NULL" /* one user's notifications: their stream only */
               "  ORDER BY e.id DESC LIMIT $5::int) e",
        .nparams = 5,
        .readonly = true,
};

int api_work_graph(struct request *req)
{
        const char *project = query_get(req, "project_id");
        int rc = query_done(req);

        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", project))
                return ERR_INVALID;
        return api_send_row(req, &work_graph_stmt, &project, 200, NULL);
}

int api_events_list(struct request *req)
{
        const char *params[5];
        long since, limit;
        int rc;

        params[0] = query_get(req, "project_id");
        params[1] = query_get(req, "type");
        params[2] = query_get(req, "bead_id");
        rc = query_long(req, "since_id", 0, 0, INT64_MAX, &since);
        if (!rc)
                rc = query_long(req, "limit", 100, 1, 1000, &limit);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        if (params[1] && !input_is_event_type(params[1]))
                return http_fail(req, ERR_INVALID,
                                 "type: '%.64s' is not an event type "
                                 "(e.g. bead.created)",
                                 params[1]);
        if (params[2] && !input_is_bead_id(params[2]))
                return http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[2]);
        params[3] = arena_printf(req->arena, "%ld", since);
        params[4] = arena_printf(req->arena, "%ld", limit);
        return api_send_row(req, &events_list_stmt, params, 200, NULL);
}
