/*
 * api_common — helpers every resource handler uses; see api.h.
 */
#include "api.h"
#include "err.h"
#include "config.h"
#include "export.h"
#include "query.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

double api_started_at;

double api_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void api_clear(void *res)
{
        PQclear(res);
}

int api_send_row(struct request *req, struct db_stmt *st, const char *const *params, int status,
                 const char *not_found)
{
        PGresult *res;
        int rc = db_exec(req->db, st, params, &res);

        if (rc)
                return http_fail_db(req);
        arena_defer(req->arena, api_clear, res);
        if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
                return http_fail(req, ERR_NOT_FOUND, "%s", not_found ? not_found : "not found");
        http_send_json(req, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        return ERR_OK;
}

int api_bead_id(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!input_is_bead_id(*out))
                return http_fail(req, ERR_INVALID,
                                 "'%.64s' is not a valid bead id (want <prefix>-<number>)", *out);
        return ERR_OK;
}

int api_project_id(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!input_is_project_id(*out))
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid project id", *out);
        return ERR_OK;
}

int api_comment_id(struct request *req, const char **out)
{
        long id;

        *out = req->params[0];
        if (config_parse_long(*out, 1, INT64_MAX, &id) != ERR_OK)
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid comment id", *out);
        return ERR_OK;
}

int api_start(struct request *req, const struct api_shape *shape, const char **id,
              json_object **body)
{
        char *text;
        size_t len;
        int rc = shape->id ? shape->id(req, id) : ERR_OK;

        if (!rc)
                rc = query_done(req);
        if (rc || !(shape->flags & API_BODY))
                return rc;
        rc = http_read_body(req, &text, &len);
        if (!rc)
                rc = input_parse(req, text, len, shape->flags & API_EMPTY_OK, body);
        if (!rc)
                rc = input_check(req, *body, shape->fields, shape->nfields,
                                 shape->flags & API_PARTIAL);
        if (!rc && shape->check)
                rc = shape->check(req, *body);
        if (!rc && (shape->flags & API_NONEMPTY) && json_object_object_length(*body) == 0)
                rc = http_fail(req, ERR_INVALID, "no fields to update");
        return rc;
}

int api_page(struct request *req, long def, const char **limit, const char **offset)
{
        long l, o;
        int rc = query_long(req, "limit", def, 1, API_MAX_PAGE, &l);

        if (!rc)
                rc = query_long(req, "offset", 0, 0, 10000000, &o);
        if (rc)
                return rc;
        *limit = arena_printf(req->arena, "%ld", l);
        *offset = arena_printf(req->arena, "%ld", o);
        return ERR_OK;
}

void api_next_offset(struct request *req, const char *limit, const char *offset, bool more)
{
        long l, o;

        if (!more || config_parse_long(limit, 0, API_MAX_PAGE, &l) ||
            config_parse_long(offset, 0, 10000000, &o))
                return;
        http_add_header(req, "X-Next-Offset", arena_printf(req->arena, "%ld", l + o));
}

int api_send_list(struct request *req, struct db_stmt *st, const char *const *params,
                  const char *limit, const char *offset)
{
        PGresult *res;
        int rc = db_exec(req->db, st, params, &res);

        if (rc)
                return http_fail_db(req);
        arena_defer(req->arena, api_clear, res);
        api_next_offset(req, limit, offset, strcmp(PQgetvalue(res, 0, 1), "t") == 0);
        http_send_json(req, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        return ERR_OK;
}

const char *api_json_text(json_object *obj)
{
        return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE);
}

int api_send_export(struct request *req, struct db_stmt *st, const char *const *params,
                    const char *format, const char *name, int max_rows, long offset)
{
        bool csv = strcmp(format, "csv") == 0;
        struct strbuf sb;
        PGresult *res;
        int rc = db_exec(req->db, st, params, &res), rows;

        if (rc)
                return http_fail_db(req);
        arena_defer(req->arena, api_clear, res);
        rows = PQntuples(res) > max_rows ? max_rows : PQntuples(res);
        strbuf_init(&sb, API_EXPORT_MAX);
        if (csv)
                export_csv(&sb, res, rows);
        else
                export_json(&sb, res, rows);
        if (sb.failed) {
                strbuf_release(&sb);
                return http_fail(req, ERR_TOO_LARGE,
                                 "the export is over %zu MiB: ask for fewer rows (limit, period)",
                                 API_EXPORT_MAX >> 20);
        }
        if (PQntuples(res) > max_rows) {
                http_add_header(req, "X-Truncated", "true");
                if (offset >= 0)
                        http_add_header(req, "X-Next-Offset",
                                        arena_printf(req->arena, "%ld", offset + max_rows));
        }
        http_add_header(req, "Content-Disposition",
                        arena_printf(req->arena, "attachment; filename=\"%s.%s\"", name,
                                     csv ? "csv" : "json"));
        http_send_body(req, 200, csv ? "text/csv; charset=utf-8" : "application/json", sb.buf,
                       sb.len);
        strbuf_release(&sb);
        return ERR_OK;
}

static const char *const api_periods[] = {"1h", "24h", "7d", "30d", NULL};

int api_period_params(struct request *req, const char **project_id, const char **period)
{
        int rc;

        *project_id = query_get(req, "project_id");
        if (input_bad_project_id(req, "project_id", *project_id))
                return ERR_INVALID;
        rc = query_enum(req, "period", api_periods, period);
        if (!rc && !*period)
                *period = "24h";
        return rc;
}
