/*
 * api_export — a project as one JSON document and back:
 *   GET  /api/v1/projects/{id}/export   (projects:read)
 *   POST /api/v1/projects/import        (projects:write; ?dry_run=true, ?validate_only=true)
 *
 * The document's format is sql/010_export.sql's; api_import.c checks an import document on its
 * own first, then one call of loom_import_check (dry run) or loom_project_import (one
 * transaction) does the rest.  Imports may be larger than other bodies: IMPORT_MAX_BODY, which
 * nginx lets through for this path only.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const import_bools[] = {"true", "false", NULL};

static struct db_stmt export_stmt = {
        .name = "project_export",
        .sql = "SELECT loom_project_export($1)",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt import_check_stmt = {
        .name = "project_import_check",
        .sql = "SELECT loom_import_check($1::jsonb)",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt import_stmt = {
        .name = "project_import",
        .sql = "SELECT loom_project_import($1::jsonb, $2)",
        .nparams = 2,
};

static const struct api_shape export_shape = {.id = api_project_id};

int api_projects_export(struct request *req)
{
        const char *id;
        int rc = api_start(req, &export_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &export_stmt, &id, 200,
                            arena_printf(req->arena, "project %s not found", id));
}

static void import_put(void *obj)
{
        json_object_put(obj);
}

/* The target's id and prefix as the document says: rename.x, else project.x. */
static const char *import_target(json_object *doc, const char *key)
{
        json_object *rename = json_object_object_get(doc, "rename");
        const char *v = rename ? input_string(rename, key) : NULL;

        return v ? v : input_string(json_object_object_get(doc, "project"), key);
}

/* validate_only: what the document holds, without asking the database. */
static int import_send_valid(struct request *req, json_object *doc, const struct import_counts *c)
{
        json_object *out = arena_defer(req->arena, import_put, json_object_new_object());
        json_object *project = json_object_new_object(), *counts = json_object_new_object();
        const char *text;

        json_object_object_add(out, "valid", json_object_new_boolean(1));
        json_object_object_add(out, "dry_run", json_object_new_boolean(0));
        json_object_object_add(out, "validate_only", json_object_new_boolean(1));
        json_object_object_add(project, "id", json_object_new_string(import_target(doc, "id")));
        json_object_object_add(project, "bead_prefix",
                               json_object_new_string(import_target(doc, "bead_prefix")));
        json_object_object_add(
                project, "source_id",
                json_object_new_string(input_string(json_object_object_get(doc, "project"), "id")));
        json_object_object_add(out, "project", project);
        json_object_object_add(counts, "beads", json_object_new_int64((int64_t)c->beads));
        json_object_object_add(counts, "dependencies",
                               json_object_new_int64((int64_t)c->dependencies));
        json_object_object_add(counts, "comments", json_object_new_int64((int64_t)c->comments));
        json_object_object_add(counts, "decisions", json_object_new_int64((int64_t)c->decisions));
        json_object_object_add(out, "counts", counts);
        json_object_object_add(out, "warnings", json_object_new_array());
        text = api_json_text(out);
        http_send_json(req, 200, text, strlen(text));
        return ERR_OK;
}

/* Reads ?dry_run and ?validate_only (true or false) and the document. */
static int import_read(struct request *req, bool *dry, bool *validate, json_object **doc)
{
        const char *d, *v;
        char *text;
        size_t len;
        int rc = query_enum(req, "dry_run", import_bools, &d);

        if (!rc)
                rc = query_enum(req, "validate_only", import_bools, &v);
        if (!rc)
                rc = query_done(req);
        if (!rc)
                rc = http_read_body_max(req, IMPORT_MAX_BODY, &text, &len);
        if (!rc)
                rc = input_parse(req, text, len, false, doc);
        if (rc)
                return rc;
        *dry = d && strcmp(d, "true") == 0;
        *validate = v && strcmp(v, "true") == 0;
        return ERR_OK;
}

int api_projects_import(struct request *req)
{
        struct import_counts counts;
        const char *params[2];
        json_object *doc;
        bool dry, validate;
        int rc = import_read(req, &dry, &validate, &doc);

        if (!rc)
                rc = api_import_check(req, doc, &counts);
        if (rc)
                return rc;
        if (validate)
                return import_send_valid(req, doc, &counts);
        params[0] = api_json_text(doc);
        params[1] = req->actor;
        if (dry)
                return api_send_row(req, &import_check_stmt, params, 200, NULL);
        return api_send_row(req, &import_stmt, params, 201, NULL);
}
