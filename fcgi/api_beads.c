/*
 * api_beads — /api/v1/beads: list with filters, ready work, create, read, partial and bulk
 * update, delete, claim, redispatch.
 *
 * Field names and meanings follow Loom (reference §1.1, §2.1).  Every write is one call of a
 * loom_bead_* function (sql/002_api.sql): one transaction with its dependency edges and events.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const bead_types[] = {"task",  "bug",      "feature", "epic",
                                         "chore", "decision", NULL};
static const char *const bead_statuses[] = {"open",   "in_progress", "blocked",
                                            "closed", "deferred",    NULL};

#define BEAD_LINK_MAX 100

/* Fields a client may set, shared by create and update; create adds project_id. */
#define BEAD_SETTABLE_FIELDS                                                                       \
        {"description", FIELD_STRING, FIELD_NULLABLE, 0, 262144, NULL},                            \
                {"type", FIELD_STRING, 0, 0, 0, bead_types},                                       \
                {"status", FIELD_STRING, 0, 0, 0, bead_statuses},                                  \
                {"priority", FIELD_INT, 0, 0, 3, NULL},                                            \
                {"assigned_to", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},                       \
                {"tags", FIELD_STRING_ARRAY, 0, 0, 64, NULL},                                      \
                {"context", FIELD_OBJECT, 0, 0, 200, NULL},                                        \
                {"blocked_by", FIELD_BEAD_ID_ARRAY, 0, 0, BEAD_LINK_MAX, NULL},                    \
                {"blocks", FIELD_BEAD_ID_ARRAY, 0, 0, BEAD_LINK_MAX, NULL},                        \
                {"related_to", FIELD_BEAD_ID_ARRAY, 0, 0, BEAD_LINK_MAX, NULL},                    \
                {"children", FIELD_BEAD_ID_ARRAY, 0, 0, BEAD_LINK_MAX, NULL},                      \
                {"parent", FIELD_BEAD_ID, FIELD_NULLABLE, 0, 0, NULL},                             \
                {"due_date", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},                         \
                {"milestone_id", FIELD_STRING, FIELD_NULLABLE, 1, 200, NULL},                      \
                {"estimated_time", FIELD_INT, FIELD_NULLABLE, 0, 10000000, NULL},                  \
                {"id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                                  \
                {"created_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
                {"updated_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
                {"closed_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},

static const struct field_spec bead_create_fields[] = {
        {"project_id", FIELD_STRING, FIELD_REQUIRED, 1, 63, NULL},
        {"title", FIELD_STRING, FIELD_REQUIRED, 1, 500, NULL},
        BEAD_SETTABLE_FIELDS};

static const struct field_spec bead_update_fields[] = {
        {"project_id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"title", FIELD_STRING, 0, 1, 500, NULL},
        BEAD_SETTABLE_FIELDS};

static const struct field_spec bead_filter_fields[] = {
        {"ids", FIELD_BEAD_ID_ARRAY, 0, 0, 1000, NULL},
        {"project_id", FIELD_STRING, 0, 1, 63, NULL},
        {"status", FIELD_STRING, 0, 0, 0, bead_statuses},
        {"type", FIELD_STRING, 0, 0, 0, bead_types},
        {"assigned_to", FIELD_STRING, 0, 1, 200, NULL},
        {"priority", FIELD_INT, 0, 0, 3, NULL},
        {"tag", FIELD_STRING, 0, 1, 200, NULL},
};

static const struct field_spec bead_bulk_fields[] = {
        {"filter", FIELD_OBJECT, FIELD_REQUIRED, 0, 16, NULL},
        {"updates", FIELD_OBJECT, FIELD_REQUIRED, 0, 64, NULL},
};

static const struct field_spec bead_claim_fields[] = {
        {"agent_id", FIELD_STRING, FIELD_REQUIRED, 1, 200, NULL},
};

static const struct field_spec bead_redispatch_fields[] = {
        {"reason", FIELD_STRING, FIELD_NULLABLE, 0, 4000, NULL},
};

/* The page of beads in s(r, n) as (json array, more) — shared by list and ready. */
/*
 * A page of beads as (json array, more).  The inner query takes limit + 1 whole rows in order;
 * they are numbered after OFFSET, so "more" is whether row limit + 1 came back.
 */
#define BEAD_PAGE_SELECT                                                                           \
        "SELECT coalesce(json_agg(loom_bead_json(p.r) ORDER BY p.n)"                               \
        "                FILTER (WHERE p.n <= $2::int), '[]'), count(*) > $2::int"                 \
        " FROM (SELECT x.r, row_number() OVER (ORDER BY (x.r).priority, (x.r).created_at,"         \
        "                                            (x.r).id) AS n FROM "
#define BEAD_PAGE_ROWS "SELECT b AS r"
#define BEAD_PAGE_END                                                                              \
        " ORDER BY b.priority, b.created_at, b.id LIMIT $2::int + 1 OFFSET $3::int) x) p"

static struct db_stmt bead_list_stmt = {
        .name = "bead_list",
        .sql = BEAD_PAGE_SELECT
        "(" BEAD_PAGE_ROWS " FROM beads b"
        " WHERE ($1::text IS NULL OR b.project_id = $1)"
        "   AND ($4::text IS NULL OR b.status = $4)"
        "   AND ($5::text IS NULL OR b.type = $5)"
        "   AND ($6::text IS NULL OR b.assigned_to = $6"
        "        OR ($6 = '' AND b.assigned_to IS NULL))"
        "   AND ($7::smallint IS NULL OR b.priority = $7::smallint)"
        "   AND ($8::text IS NULL OR b.tags @> ARRAY[$8::text])" BEAD_PAGE_END,
        .nparams = 8,
        .readonly = true,
};

/* Ready: open, and no unclosed blocker on the bead or on any of its ancestors. */
static struct db_stmt bead_ready_stmt = {
        .name = "bead_ready",
        .sql = BEAD_PAGE_SELECT
        "(" BEAD_PAGE_ROWS " FROM beads b"
        " WHERE b.status = 'open' AND ($1::text IS NULL OR b.project_id = $1)"
        "   AND NOT EXISTS (WITH RECURSIVE anc(id) AS ("
        "         SELECT b.id UNION SELECT d.depends_on_id FROM bead_deps d"
        "         JOIN anc ON d.bead_id = anc.id WHERE d.kind = 'parent')"
        "       SELECT 1 FROM anc JOIN bead_deps d ON d.bead_id = anc.id AND d.kind = 'blocks'"
        "       JOIN beads x ON x.id = d.depends_on_id WHERE x.status <> 'closed')" BEAD_PAGE_END,
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt bead_get_stmt = {
        .name = "bead_get",
        .sql = "SELECT loom_bead_json(b) FROM beads b WHERE b.id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt bead_create_stmt = {
        .name = "bead_create",
        .sql = "SELECT loom_bead_create($1::jsonb, $2)",
        .nparams = 2,
};

static struct db_stmt bead_update_stmt = {
        .name = "bead_update",
        .sql = "SELECT loom_bead_update($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt bead_bulk_stmt = {
        .name = "bead_bulk_update",
        .sql = "SELECT loom_bead_bulk_update($1::jsonb, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt bead_delete_stmt = {
        .name = "bead_delete",
        .sql = "SELECT loom_bead_delete($1, $2)",
        .nparams = 2,
};

static struct db_stmt bead_claim_stmt = {
        .name = "bead_claim",
        .sql = "SELECT loom_bead_claim($1, $2, $3)",
        .nparams = 3,
};

static struct db_stmt bead_redispatch_stmt = {
        .name = "bead_redispatch",
        .sql = "SELECT loom_bead_redispatch($1, $2, $3)",
        .nparams = 3,
};

/* Checks what the field table cannot: id formats and printable names. */
static int bead_check_values(struct request *req, json_object *body)
{
        const char *v = input_string(body, "project_id");

        if (input_bad_project_id(req, "project_id", v))
                return ERR_INVALID;
        v = input_string(body, "assigned_to");
        if (v && *v && !input_is_name(v))
                return http_fail(req, ERR_INVALID,
                                 "assigned_to: must not contain control "
                                 "characters");
        v = input_string(body, "agent_id");
        if (v && !input_is_name(v))
                return http_fail(req, ERR_INVALID, "agent_id: must not contain control characters");
        return api_budget_check_context(req, body, true);
}

/* Reads the filter parameters shared by list: project_id, status, type, assigned_to, ... */
static int bead_list_filters(struct request *req, const char **params)
{
        const char *v;
        int rc;

        params[0] = query_get(req, "project_id");
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        rc = query_enum(req, "status", bead_statuses, &params[3]);
        if (!rc)
                rc = query_enum(req, "type", bead_types, &params[4]);
        if (rc)
                return rc;
        params[5] = query_get(req, "assigned_to");
        if (params[5] && *params[5] && !input_is_name(params[5]))
                return http_fail(req, ERR_INVALID, "assigned_to: not a valid agent id");
        v = query_get(req, "priority");
        params[6] = NULL;
        if (v) {
                if ((v[0] == 'P' || v[0] == 'p') && v[1])
                        v++;
                if (strlen(v) != 1 || v[0] < '0' || v[0] > '3')
                        return http_fail(req, ERR_INVALID,
                                         "priority: must be 0 to 3 (or P0 to P3)");
                params[6] = v;
        }
        params[7] = query_get(req, "tag");
        if (params[7] && (!*params[7] || strlen(params[7]) > 200))
                return http_fail(req, ERR_INVALID, "tag: must be 1 to 200 bytes long");
        return ERR_OK;
}

int api_beads_list(struct request *req)
{
        const char *params[8] = {NULL};
        int rc = bead_list_filters(req, params);

        if (!rc)
                rc = api_page(req, 100, &params[1], &params[2]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &bead_list_stmt, params, params[1], params[2]);
}

int api_beads_ready(struct request *req)
{
        const char *params[3];
        int rc;

        params[0] = query_get(req, "project_id");
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        rc = api_page(req, 100, &params[1], &params[2]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &bead_ready_stmt, params, params[1], params[2]);
}

static const struct api_shape bead_create_shape = {
        .fields = bead_create_fields,
        .nfields = INPUT_NFIELDS(bead_create_fields),
        .flags = API_BODY,
        .check = bead_check_values,
};

static const struct api_shape bead_id_shape = {.id = api_bead_id};

static const struct api_shape bead_update_shape = {
        .id = api_bead_id,
        .fields = bead_update_fields,
        .nfields = INPUT_NFIELDS(bead_update_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = bead_check_values,
};

static const struct api_shape bead_bulk_shape = {
        .fields = bead_bulk_fields,
        .nfields = INPUT_NFIELDS(bead_bulk_fields),
        .flags = API_BODY,
};

static const struct api_shape bead_claim_shape = {
        .id = api_bead_id,
        .fields = bead_claim_fields,
        .nfields = INPUT_NFIELDS(bead_claim_fields),
        .flags = API_BODY,
        .check = bead_check_values,
};

static const struct api_shape bead_redispatch_shape = {
        .id = api_bead_id,
        .fields = bead_redispatch_fields,
        .nfields = INPUT_NFIELDS(bead_redispatch_fields),
        .flags = API_BODY | API_EMPTY_OK,
};

int api_beads_create(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &bead_create_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = api_json_text(body);
        params[1] = req->actor;
        return api_send_row(req, &bead_create_stmt, params, 201, NULL);
}

int api_beads_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &bead_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &bead_get_stmt, &id, 200,
                            arena_printf(req->arena, "bead %s not found", id));
}

int api_beads_update(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &bead_update_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &bead_update_stmt, params, 200, NULL);
}

int api_beads_bulk_update(struct request *req)
{
        const char *params[3];
        json_object *body, *filter, *updates;
        int rc = api_start(req, &bead_bulk_shape, NULL, &body);

        if (rc)
                return rc;
        json_object_object_get_ex(body, "filter", &filter);
        json_object_object_get_ex(body, "updates", &updates);
        rc = input_check(req, filter, bead_filter_fields, INPUT_NFIELDS(bead_filter_fields), true);
        if (rc)
                return input_prefix_error(req, rc, "filter.");
        rc = input_check(req, updates, bead_update_fields, INPUT_NFIELDS(bead_update_fields), true);
        if (!rc)
                rc = bead_check_values(req, updates);
        if (rc)
                return input_prefix_error(req, rc, "updates.");
        if (json_object_object_length(filter) == 0)
                return http_fail(req, ERR_INVALID,
                                 "filter: name at least one condition (ids, "
                                 "project_id, status, type, assigned_to, "
                                 "priority, tag)");
        if (json_object_object_length(updates) == 0)
                return http_fail(req, ERR_INVALID, "updates: no fields to update");
        params[0] = api_json_text(filter);
        params[1] = api_json_text(updates);
        params[2] = req->actor;
        return api_send_row(req, &bead_bulk_stmt, params, 200, NULL);
}

int api_beads_delete(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &bead_id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &bead_delete_stmt, params, 200, NULL);
}

int api_beads_claim(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &bead_claim_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = input_string(body, "agent_id");
        params[2] = req->actor;
        return api_send_row(req, &bead_claim_stmt, params, 200, NULL);
}

int api_beads_redispatch(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &bead_redispatch_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = input_string(body, "reason");
        params[2] = req->actor;
        return api_send_row(req, &bead_redispatch_stmt, params, 200, NULL);
}
