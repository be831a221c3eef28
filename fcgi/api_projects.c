/*
 * api_projects — /api/v1/projects: list, create, read, update, delete, close, reopen, state.
 *
 * Shapes are checked here; existence, uniqueness and state rules are checked by the
 * loom_project_* functions (sql/002_api.sql), each one transaction with its event.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const project_statuses[] = {"open", "closed", "reopened", NULL};
static const char *const git_strategies[] = {"direct", "branch-pr", NULL};
static const char *const git_auth_methods[] = {"none", "ssh", "token", "basic", "git-helper", NULL};

#define PROJECT_COMMON_FIELDS                                                                      \
        {"description", FIELD_STRING, FIELD_NULLABLE, 0, 65536, NULL},                             \
                {"git_repo", FIELD_STRING, FIELD_NULLABLE, 0, 1000, NULL},                         \
                {"branch", FIELD_STRING, 0, 1, 200, NULL},                                         \
                {"beads_path", FIELD_STRING, 0, 0, 500, NULL},                                     \
                {"bead_prefix", FIELD_STRING, 0, 1, 16, NULL},                                     \
                {"parent_id", FIELD_STRING, FIELD_NULLABLE, 1, 63, NULL},                          \
                {"is_perpetual", FIELD_BOOL, 0, 0, 0, NULL},                                       \
                {"is_sticky", FIELD_BOOL, 0, 0, 0, NULL},                                          \
                {"git_strategy", FIELD_STRING, 0, 0, 0, git_strategies},                           \
                {"git_auth_method", FIELD_STRING, 0, 0, 0, git_auth_methods},                      \
                {"use_worktrees", FIELD_BOOL, 0, 0, 0, NULL},                                      \
                {"use_container", FIELD_BOOL, 0, 0, 0, NULL},                                      \
                {"github_repo", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},                       \
                {"default_branch", FIELD_STRING, 0, 1, 200, NULL},                                 \
                {"context", FIELD_OBJECT, 0, 0, 200, NULL},                                        \
                {"status", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                              \
                {"created_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
                {"updated_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
                {"closed_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},

static const struct field_spec project_create_fields[] = {
        {"id", FIELD_STRING, 0, 1, 63, NULL},
        {"name", FIELD_STRING, FIELD_REQUIRED, 1, 200, NULL},
        PROJECT_COMMON_FIELDS};

static const struct field_spec project_update_fields[] = {
        {"id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"name", FIELD_STRING, 0, 1, 200, NULL},
        PROJECT_COMMON_FIELDS};

static const struct field_spec project_close_fields[] = {
        {"force", FIELD_BOOL, 0, 0, 0, NULL},
        {"comment", FIELD_STRING, FIELD_NULLABLE, 0, 65536, NULL},
        {"author_id", FIELD_STRING, FIELD_NULLABLE, 1, 200, NULL},
};

static struct db_stmt project_list_stmt = {
        .name = "project_list",
        .sql = "SELECT coalesce(json_agg(loom_project_json(s.r) ORDER BY s.n)"
               "                FILTER (WHERE s.n <= $2::int), '[]'), count(*) > $2::int"
               " FROM (SELECT x.r, row_number() OVER (ORDER BY (x.r).id) AS n"
               "       FROM (SELECT p AS r FROM projects p"
               "             WHERE ($1::text IS NULL OR p.status = $1)"
               "             ORDER BY p.id LIMIT $2::int + 1 OFFSET $3::int) x) s",
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt project_get_stmt = {
        .name = "project_get",
        .sql = "SELECT loom_project_json(p) FROM projects p WHERE p.id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt project_create_stmt = {
        .name = "project_create",
        .sql = "SELECT loom_project_create($1::jsonb, $2)",
        .nparams = 2,
};

static struct db_stmt project_update_stmt = {
        .name = "project_update",
        .sql = "SELECT loom_project_update($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt project_delete_stmt = {
        .name = "project_delete",
        .sql = "SELECT loom_project_delete($1, $2)",
        .nparams = 2,
};

static struct db_stmt project_close_stmt = {
        .name = "project_close",
        .sql = "SELECT loom_project_close($1, $2::boolean, $3, $4)",
        .nparams = 4,
};

static struct db_stmt project_reopen_stmt = {
        .name = "project_reopen",
        .sql = "SELECT loom_project_reopen($1, $2)",
        .nparams = 2,
};

static struct db_stmt project_state_stmt = {
        .name = "project_state",
        .sql = "SELECT loom_project_state($1)",
        .nparams = 1,
        .readonly = true,
};

static bool is_prefix(const char *s)
{
        size_t n = 0;

        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                return false;
        for (; s[n]; n++) {
                char c = s[n];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                        return false;
        }
        return n <= 16;
}

/* Format checks that the field table cannot express. */
static int project_check_ids(struct request *req, json_object *body)
{
        const char *v;

        v = input_string(body, "id");
        if (v && !input_is_project_id(v))
                return http_fail(req, ERR_INVALID,
                                 "id: '%.64s' is not a valid project id (lower-"
                                 "case letters, digits, '-' and '_', at most 63)",
                                 v);
        if (input_bad_project_id(req, "parent_id", input_string(body, "parent_id")))
                return ERR_INVALID;
        v = input_string(body, "bead_prefix");
        if (v && !is_prefix(v))
                return http_fail(req, ERR_INVALID,
                                 "bead_prefix: '%.64s' must be a letter followed "
                                 "by up to 15 letters or digits",
                                 v);
        return api_budget_check_context(req, body, false);
}

int api_projects_list(struct request *req)
{
        const char *params[3], *status, *limit, *offset;
        int rc = query_enum(req, "status", project_statuses, &status);

        if (!rc)
                rc = api_page(req, 100, &limit, &offset);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        params[0] = status;
        params[1] = limit;
        params[2] = offset;
        return api_send_list(req, &project_list_stmt, params, limit, offset);
}

static const struct api_shape project_create_shape = {
        .fields = project_create_fields,
        .nfields = INPUT_NFIELDS(project_create_fields),
        .flags = API_BODY,
        .check = project_check_ids,
};

static const struct api_shape project_id_shape = {.id = api_project_id};

static const struct api_shape project_update_shape = {
        .id = api_project_id,
        .fields = project_update_fields,
        .nfields = INPUT_NFIELDS(project_update_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = project_check_ids,
};

static const struct api_shape project_close_shape = {
        .id = api_project_id,
        .fields = project_close_fields,
        .nfields = INPUT_NFIELDS(project_close_fields),
        .flags = API_BODY | API_EMPTY_OK,
};

/* reopen takes no fields, but an empty JSON object (or no body) is accepted */
static const struct api_shape project_reopen_shape = {
        .id = api_project_id,
        .flags = API_BODY | API_EMPTY_OK,
};

int api_projects_create(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &project_create_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = api_json_text(body);
        params[1] = req->actor;
        return api_send_row(req, &project_create_stmt, params, 201, NULL);
}

int api_projects_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &project_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &project_get_stmt, &id, 200,
                            arena_printf(req->arena, "project %s not found", id));
}

int api_projects_update(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &project_update_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &project_update_stmt, params, 200, NULL);
}

int api_projects_delete(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &project_id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &project_delete_stmt, params, 200, NULL);
}

int api_projects_close(struct request *req)
{
        const char *params[4], *author;
        json_object *body, *force;
        int rc = api_start(req, &project_close_shape, &params[0], &body);

        if (rc)
                return rc;
        force = json_object_object_get(body, "force");
        params[1] = force && json_object_get_boolean(force) ? "true" : "false";
        params[2] = input_string(body, "comment");
        author = input_string(body, "author_id");
        params[3] = author ? author : req->actor;
        return api_send_row(req, &project_close_stmt, params, 200, NULL);
}

int api_projects_reopen(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &project_reopen_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &project_reopen_stmt, params, 200, NULL);
}

int api_projects_state(struct request *req)
{
        const char *id;
        int rc = api_start(req, &project_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &project_state_stmt, &id, 200, NULL);
}
