/*
 * api_memory — a project's memory: what is known about it, by category and key, with a
 * confidence from 0 to 1 (Loom's project memory KB).
 *
 *   GET    /api/v1/projects/{id}/memory[/{category}]      entries (category filter, limit, offset)
 *   PUT    /api/v1/projects/{id}/memory/{category}/{key}  {value, confidence?, source_bead?}
 *   DELETE /api/v1/projects/{id}/memory/{category}/{key}
 *
 * Categories: convention, build_system, github, failure, lesson.  Keys are 1 to 200 characters
 * (percent-encoded in the path; no '/').  Agents add entries with the remember action; the
 * executor puts the surest and newest ones into the system prompt next to the lessons.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const memory_categories[] = {"convention", "build_system", "github",
                                                "failure",    "lesson",       NULL};

static const struct field_spec memory_put_fields[] = {
        {"value", FIELD_STRING, FIELD_REQUIRED, 1, 10000, NULL},
        {"confidence", FIELD_NUMBER, 0, 0, 1, NULL},
        {"source_bead", FIELD_BEAD_ID, FIELD_NULLABLE, 0, 0, NULL},
};

static struct db_stmt memory_list_stmt = {
        .name = "memory_list",
        .sql = "SELECT CASE WHEN EXISTS (SELECT 1 FROM projects WHERE id = $3) THEN"
               " coalesce(json_agg(p.j ORDER BY p.n) FILTER (WHERE p.n <= $1::int), '[]') END,"
               " count(*) > $1::int"
               " FROM (SELECT loom_memory_json(t) AS j, row_number() OVER () AS n FROM"
               "  (SELECT * FROM project_memory x WHERE x.project_id = $3"
               "   AND ($4::text IS NULL OR x.category = $4)"
               "   ORDER BY x.category, x.key LIMIT $1::int + 1 OFFSET $2::int) t) p",
        .nparams = 4,
        .readonly = true,
};

static struct db_stmt memory_put_stmt = {
        .name = "memory_put",
        .sql = "SELECT loom_memory_put($1, $2, $3, $4, $5::real, $6, $7)",
        .nparams = 7,
};

static struct db_stmt memory_delete_stmt = {
        .name = "memory_delete",
        .sql = "SELECT loom_memory_delete($1, $2, $3, $4)",
        .nparams = 4,
};

/* Path parameter i as a category; ERR_INVALID listing them. */
static int memory_category(struct request *req, int i, const char **out)
{
        *out = req->params[i];
        for (int k = 0; memory_categories[k]; k++) {
                if (strcmp(*out, memory_categories[k]) == 0)
                        return ERR_OK;
        }
        return http_fail(req, ERR_INVALID, "category: '%.64s' is not one of %s", *out,
                         input_choices_list(req, memory_categories));
}

/* Path parameters: project, category, key. */
static int memory_entry(struct request *req, const char **params)
{
        int rc = api_project_id(req, &params[0]);
        size_t n;

        if (!rc)
                rc = memory_category(req, 1, &params[1]);
        if (rc)
                return rc;
        params[2] = req->params[2];
        n = strlen(params[2]);
        if (n < 1 || n > 200 || !input_is_name(params[2]))
                return http_fail(req, ERR_INVALID,
                                 "key: must be 1 to 200 characters without control characters");
        return query_done(req);
}

int api_memory_list(struct request *req)
{
        const char *params[4];
        int rc = api_page(req, 200, &params[0], &params[1]);

        if (!rc)
                rc = api_project_id(req, &params[2]);
        params[3] = NULL;
        if (!rc && req->nparams > 1)
                rc = memory_category(req, 1, &params[3]);
        else if (!rc)
                rc = query_enum(req, "category", memory_categories, &params[3]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        {
                PGresult *res;

                if (db_exec(req->db, &memory_list_stmt, params, &res) != ERR_OK)
                        return http_fail_db(req);
                if (PQgetisnull(res, 0, 0)) {
                        PQclear(res);
                        return http_fail(req, ERR_NOT_FOUND, "project %s not found", params[2]);
                }
                api_next_offset(req, params[0], params[1], strcmp(PQgetvalue(res, 0, 1), "t") == 0);
                http_send_json(req, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
                PQclear(res);
        }
        return ERR_OK;
}

int api_memory_put(struct request *req)
{
        const char *params[7];
        json_object *body, *v;
        size_t len;
        char *raw;
        int rc = memory_entry(req, params);

        if (!rc)
                rc = http_read_body(req, &raw, &len);
        if (!rc)
                rc = input_parse(req, raw, len, false, &body);
        if (!rc)
                rc = input_check(req, body, memory_put_fields, INPUT_NFIELDS(memory_put_fields),
                                 false);
        if (rc)
                return rc;
        params[3] = input_string(body, "value");
        params[4] = json_object_object_get_ex(body, "confidence", &v)
                            ? arena_printf(req->arena, "%.4f", json_object_get_double(v))
                            : "0.5";
        params[5] = input_string(body, "source_bead");
        params[6] = req->actor;
        return api_send_row(req, &memory_put_stmt, params, 200, NULL);
}

int api_memory_delete(struct request *req)
{
        const char *params[4];
        PGresult *res;
        int rc = memory_entry(req, params);

        if (rc)
                return rc;
        params[3] = req->actor;
        if (db_exec(req->db, &memory_delete_stmt, params, &res) != ERR_OK)
                return http_fail_db(req);
        PQclear(res);
        http_send_empty(req, 204);
        return ERR_OK;
}
