/*
 * api_motivations — /api/v1/motivations: standing reasons for work that loom-ralph evaluates
 * (sql/014_motivations.sql, workers/motivation.c).
 *
 *   GET, POST             /api/v1/motivations                 list; create
 *   GET, PUT/PATCH, DELETE /api/v1/motivations/{id}           read; partial update; delete
 *   POST                  /api/v1/motivations/{id}/enable, /disable, /trigger
 *   GET                   /api/v1/motivations/{id}/history, /api/v1/motivations/history
 *
 * The condition's shape depends on the type and is checked here, cron syntax included (with
 * shared/cron.c, which also gives a cron schedule its first next_trigger_at); the database
 * checks what needs it (personas, agents, projects, names, who may change global ones).
 */
#include "api.h"
#include "cron.h"
#include "err.h"
#include "query.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const motivation_types[] = {"calendar",  "event", "external",
                                               "threshold", "idle",  NULL};
static const char *const motivation_statuses[] = {"active", "disabled", "cooldown", "fired", NULL};
static const char *const settable_statuses[] = {"active", "disabled", NULL};
static const char *const trigger_results[] = {"success",   "skipped", "cooldown",
                                              "no_target", "error",   NULL};
static const char *const booleans[] = {"true", "false", NULL};
static const char *const event_names[] = {"bead_created",        "bead_completed",
                                          "bead_status_changed", "decision_pending",
                                          "decision_resolved",   NULL};
static const char *const metrics[] = {"cost", "failure_rate", NULL};
static const char *const idle_scopes[] = {"system", "project", "agent", NULL};
static const char *const bead_types[] = {"task",  "bug",      "feature", "epic",
                                         "chore", "decision", NULL};

#define MOTIVATION_FIELDS(required)                                                                \
        {"name", FIELD_STRING, required, 1, 200, NULL},                                            \
                {"description", FIELD_STRING, 0, 0, 4000, NULL},                                   \
                {"type", FIELD_STRING, required, 0, 0, motivation_types},                          \
                {"condition", FIELD_OBJECT, 0, 0, 10, NULL},                                       \
                {"status", FIELD_STRING, 0, 0, 0, settable_statuses},                              \
                {"agent_role", FIELD_STRING, 0, 0, 63, NULL},                                      \
                {"agent_id", FIELD_STRING, FIELD_NULLABLE, 1, 100, NULL},                          \
                {"project_id", FIELD_STRING, FIELD_NULLABLE, 1, 63, NULL},                         \
                {"parameters", FIELD_OBJECT, 0, 0, 50, NULL},                                      \
                {"cooldown_period", FIELD_INT, 0, 0, 31536000, NULL},                              \
                {"priority", FIELD_INT, 0, 0, 100, NULL},                                          \
                {"create_bead_on_trigger", FIELD_BOOL, 0, 0, 0, NULL},                             \
                {"bead_template", FIELD_OBJECT, 0, 0, 10, NULL},                                   \
                {"wake_agent", FIELD_BOOL, 0, 0, 0, NULL},                                         \
                {"id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                                  \
                {"is_built_in", FIELD_BOOL, FIELD_READONLY, 0, 0, NULL},                           \
                {"active_bead", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                         \
                {"last_triggered_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                   \
                {"next_trigger_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                     \
                {"trigger_count", FIELD_INT, FIELD_READONLY, 0, 0, NULL},                          \
                {"created_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
                {"updated_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
        {                                                                                          \
                "disabled_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL                            \
        }

static const struct field_spec create_fields[] = {MOTIVATION_FIELDS(FIELD_REQUIRED)};
static const struct field_spec update_fields[] = {MOTIVATION_FIELDS(0)};

static const struct field_spec template_fields[] = {
        {"title", FIELD_STRING, 0, 1, 200, NULL},
        {"description", FIELD_STRING, 0, 0, 65536, NULL},
        {"priority", FIELD_INT, 0, 0, 3, NULL},
        {"type", FIELD_STRING, 0, 0, 0, bead_types},
        {"tags", FIELD_STRING_ARRAY, 0, 0, 32, NULL},
        {"requires_persona", FIELD_STRING, 0, 0, 63, NULL},
};

static const struct field_spec calendar_fields[] = {
        {"interval_seconds", FIELD_INT, 0, 1, 31536000, NULL},
        {"cron", FIELD_STRING, 0, 1, CRON_MAX_LEN, NULL},
};
static const struct field_spec event_fields[] = {
        {"event", FIELD_STRING, FIELD_REQUIRED, 0, 0, event_names},
};
/* "threshold" (a number) is checked on its own: field_spec has no real numbers */
static const struct field_spec threshold_fields[] = {
        {"metric", FIELD_STRING, FIELD_REQUIRED, 0, 0, metrics},
        {"window_seconds", FIELD_INT, 0, 60, 2592000, NULL},
        {"min_runs", FIELD_INT, 0, 1, 100000, NULL},
};
static const struct field_spec idle_fields[] = {
        {"scope", FIELD_STRING, FIELD_REQUIRED, 0, 0, idle_scopes},
        {"idle_minutes", FIELD_INT, FIELD_REQUIRED, 1, 43200, NULL},
};

static const struct field_spec trigger_fields[] = {
        {"data", FIELD_OBJECT, 0, 0, 50, NULL},
        {"project_id", FIELD_STRING, 0, 1, 63, NULL},
};

/* A page of JSON values: (array of at most $1, more rows exist); see api_runs.c. */
#define PAGE_OF(json, rows)                                                                        \
        "SELECT coalesce(json_agg(p.j ORDER BY p.n) FILTER (WHERE p.n <= $1::int), '[]'),"         \
        " count(*) > $1::int FROM (SELECT " json " AS j, row_number() OVER () AS n FROM (" rows    \
        " LIMIT $1::int + 1 OFFSET $2::int) t) p"

static struct db_stmt list_stmt = {
        .name = "motivation_list",
        .sql = PAGE_OF("loom_motivation_json(t)",
                       "SELECT * FROM motivations m"
                       " WHERE ($3::text IS NULL OR m.project_id = $3"
                       "        OR ($7::boolean AND m.project_id IS NULL))"
                       " AND ($4::text IS NULL OR m.type = $4)"
                       " AND ($5::text IS NULL OR m.status = $5)"
                       " AND ($6::text IS NULL OR m.agent_role = $6)"
                       " ORDER BY m.project_id NULLS FIRST, m.priority DESC, m.id"),
        .nparams = 7,
        .readonly = true,
};

static struct db_stmt get_stmt = {
        .name = "motivation_get",
        .sql = "SELECT loom_motivation_json(m) FROM motivations m WHERE m.id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt type_stmt = {
        .name = "motivation_type",
        .sql = "SELECT type FROM motivations WHERE id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt create_stmt = {
        .name = "motivation_create",
        .sql = "SELECT loom_motivation_create($1::jsonb, $2::timestamptz, $3)",
        .nparams = 3,
};

static struct db_stmt update_stmt = {
        .name = "motivation_update",
        .sql = "SELECT loom_motivation_update($1::bigint, $2::jsonb, $3::timestamptz, $4)",
        .nparams = 4,
};

static struct db_stmt delete_stmt = {
        .name = "motivation_delete",
        .sql = "SELECT loom_motivation_delete($1::bigint, $2)",
        .nparams = 2,
};

static struct db_stmt enable_stmt = {
        .name = "motivation_enable",
        .sql = "SELECT loom_motivation_set_enabled($1::bigint, $2::boolean, $3)",
        .nparams = 3,
};

static struct db_stmt trigger_stmt = {
        .name = "motivation_trigger",
        .sql = "SELECT loom_motivation_trigger($1::bigint, $2::jsonb, $3, $4)",
        .nparams = 4,
};

#define HISTORY_ROWS                                                                               \
        "SELECT t AS tr, m.name AS mname FROM motivation_triggers t"                               \
        " JOIN motivations m ON m.id = t.motivation_id"

static struct db_stmt history_stmt = {
        .name = "motivation_history",
        .sql = "SELECT CASE WHEN EXISTS (SELECT 1 FROM motivations WHERE id = $3::bigint)"
               " THEN x.a END, x.m FROM (" PAGE_OF("loom_motivation_trigger_json(t.tr, t.mname)",
                                                   HISTORY_ROWS
                                                   " WHERE t.motivation_id = $3::bigint"
                                                   " AND ($4::text IS NULL OR t.result = $4)"
                                                   " ORDER BY t.id DESC") ") x(a, m)",
        .nparams = 4,
        .readonly = true,
};

static struct db_stmt history_all_stmt = {
        .name = "motivation_history_all",
        .sql = PAGE_OF("loom_motivation_trigger_json(t.tr, t.mname)",
                       HISTORY_ROWS " WHERE ($3::text IS NULL OR t.project_id = $3"
                                    "        OR m.project_id = $3)"
                                    " AND ($4::bigint IS NULL OR t.motivation_id = $4::bigint)"
                                    " AND ($5::text IS NULL OR t.result = $5)"
                                    " ORDER BY t.id DESC"),
        .nparams = 5,
        .readonly = true,
};

/* Motivation ids are positive bigints. */
static bool motivation_is_id(const char *s)
{
        size_t n = strspn(s, "0123456789");

        return n > 0 && n <= 18 && s[n] == '\0' && s[0] != '0';
}

static int motivation_id_param(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!motivation_is_id(*out))
                return http_fail(req, ERR_INVALID,
                                 "'%.64s' is not a valid motivation id (a number)", *out);
        return ERR_OK;
}

/* Persona names: lower-case letters, digits and dashes. */
static bool motivation_is_persona(const char *s)
{
        return input_is_project_id(s) && !strchr(s, '_');
}

/* A copy of obj without key, sharing the other values (the caller puts it). */
static json_object *motivation_without(json_object *obj, const char *key)
{
        json_object *copy = json_object_new_object();

        json_object_object_foreach(obj, k, v)
        {
                if (strcmp(k, key) != 0)
                        json_object_object_add(copy, k, json_object_get(v));
        }
        return copy;
}

/* The "threshold" of a threshold condition: a number above 0 (at most 1 for a rate). */
static int motivation_check_threshold(struct request *req, json_object *cond)
{
        json_object *v;
        const char *metric = input_string(cond, "metric");
        double x, max = metric && strcmp(metric, "failure_rate") == 0 ? 1.0 : 1e12;

        if (!json_object_object_get_ex(cond, "threshold", &v))
                return http_fail(req, ERR_INVALID, "condition.threshold: is required");
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return http_fail(req, ERR_INVALID, "condition.threshold: must be a number");
        x = json_object_get_double(v);
        if (!(x > 0 && x <= max))
                return http_fail(req, ERR_INVALID,
                                 "condition.threshold: must be above 0 and at most %g%s", max,
                                 max == 1.0 ? " (a share of the runs)" : "");
        if (metric && strcmp(metric, "cost") == 0 &&
            json_object_object_get_ex(cond, "min_runs", &v))
                return http_fail(req, ERR_INVALID,
                                 "condition.min_runs: only for the failure_rate metric");
        return ERR_OK;
}

static int motivation_check_fields(struct request *req, json_object *cond,
                                   const struct field_spec *specs, size_t n)
{
        int rc = input_check(req, cond, specs, n, false);

        return rc ? input_prefix_error(req, rc, "condition.") : ERR_OK;
}

/* A calendar condition: interval_seconds or a valid cron expression, not both. */
static int motivation_check_calendar(struct request *req, json_object *cond)
{
        const char *cron = input_string(cond, "cron");
        json_object *v;
        bool interval = json_object_object_get_ex(cond, "interval_seconds", &v);
        struct cron c;
        char err[160];
        int rc =
                motivation_check_fields(req, cond, calendar_fields, INPUT_NFIELDS(calendar_fields));

        if (rc)
                return rc;
        if (interval == (cron != NULL))
                return http_fail(req, ERR_INVALID,
                                 "condition: a calendar motivation needs interval_seconds or "
                                 "cron (one of them)");
        if (cron && cron_parse(cron, &c, err, sizeof(err)) != 0)
                return http_fail(req, ERR_INVALID, "condition.cron: %s", err);
        return ERR_OK;
}

static int motivation_check_condition(struct request *req, const char *type, json_object *cond)
{
        json_object *rest;
        int rc;

        if (strcmp(type, "calendar") == 0)
                return motivation_check_calendar(req, cond);
        if (strcmp(type, "event") == 0)
                return motivation_check_fields(req, cond, event_fields,
                                               INPUT_NFIELDS(event_fields));
        if (strcmp(type, "idle") == 0)
                return motivation_check_fields(req, cond, idle_fields, INPUT_NFIELDS(idle_fields));
        if (strcmp(type, "external") == 0)
                return motivation_check_fields(req, cond, NULL, 0);
        rest = motivation_without(cond, "threshold");
        rc = motivation_check_fields(req, rest, threshold_fields, INPUT_NFIELDS(threshold_fields));
        json_object_put(rest);
        return rc ? rc : motivation_check_threshold(req, cond);
}

static int motivation_check_template(struct request *req, json_object *body)
{
        json_object *tpl;
        const char *persona;
        int rc;

        if (!json_object_object_get_ex(body, "bead_template", &tpl))
                return ERR_OK;
        rc = input_check(req, tpl, template_fields, INPUT_NFIELDS(template_fields), true);
        if (rc)
                return input_prefix_error(req, rc, "bead_template.");
        persona = input_string(tpl, "requires_persona");
        if (persona && *persona && !motivation_is_persona(persona))
                return http_fail(req, ERR_INVALID,
                                 "bead_template.requires_persona: '%.64s' is not a persona name",
                                 persona);
        return ERR_OK;
}

/* The checks every body gets: names of things, the template. */
static int motivation_check_common(struct request *req, json_object *body)
{
        const char *v = input_string(body, "agent_role");

        if (v && *v && !motivation_is_persona(v))
                return http_fail(req, ERR_INVALID,
                                 "agent_role: '%.64s' is not a persona name (lower-case letters, "
                                 "digits and dashes)",
                                 v);
        v = input_string(body, "agent_id");
        if (v && (!input_is_name(v) || strchr(v, '/')))
                return http_fail(req, ERR_INVALID, "agent_id: '%.64s' is not an agent id", v);
        if (input_bad_project_id(req, "project_id", input_string(body, "project_id")))
                return ERR_INVALID;
        return motivation_check_template(req, body);
}

static int motivation_check_create(struct request *req, json_object *body)
{
        const char *type = input_string(body, "type");
        json_object *cond;
        int rc = motivation_check_common(req, body);

        if (rc)
                return rc;
        if (!json_object_object_get_ex(body, "condition", &cond)) {
                if (strcmp(type, "external") != 0)
                        return http_fail(req, ERR_INVALID,
                                         "condition: is required for a %s motivation", type);
                return ERR_OK;
        }
        return motivation_check_condition(req, type, cond);
}

/*
 * The first time of a cron schedule in cond (an ISO 8601 text in the arena), or NULL when it
 * has none.  The condition was checked already.
 */
static const char *motivation_cron_at(struct request *req, json_object *body)
{
        json_object *cond;
        const char *cron;
        struct cron c;
        char err[160], buf[32];
        struct tm tm;
        time_t t;

        if (!json_object_object_get_ex(body, "condition", &cond))
                return NULL;
        cron = input_string(cond, "cron");
        if (!cron || cron_parse(cron, &c, err, sizeof(err)) != 0)
                return NULL;
        t = cron_next(&c, time(NULL));
        if (t < 0 || !gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
                return NULL;
        return arena_strdup(req->arena, buf);
}

static const struct api_shape create_shape = {
        .fields = create_fields,
        .nfields = INPUT_NFIELDS(create_fields),
        .flags = API_BODY,
        .check = motivation_check_create,
};

static const struct api_shape update_shape = {
        .id = motivation_id_param,
        .fields = update_fields,
        .nfields = INPUT_NFIELDS(update_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = motivation_check_common,
};

static const struct api_shape id_shape = {.id = motivation_id_param};

static const struct api_shape trigger_shape = {
        .id = motivation_id_param,
        .fields = trigger_fields,
        .nfields = INPUT_NFIELDS(trigger_fields),
        .flags = API_BODY | API_EMPTY_OK,
};

int api_motivations_list(struct request *req)
{
        const char *params[7];
        int rc = api_page(req, 200, &params[0], &params[1]);

        params[2] = query_get(req, "project_id");
        params[5] = query_get(req, "agent_role");
        if (!rc)
                rc = query_enum(req, "type", motivation_types, &params[3]);
        if (!rc)
                rc = query_enum(req, "status", motivation_statuses, &params[4]);
        if (!rc)
                rc = query_enum(req, "include_global", booleans, &params[6]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", params[2]))
                return ERR_INVALID;
        if (params[5] && !motivation_is_persona(params[5]))
                return http_fail(req, ERR_INVALID, "agent_role: '%.64s' is not a persona name",
                                 params[5]);
        if (!params[6])
                params[6] = "false";
        return api_send_list(req, &list_stmt, params, params[0], params[1]);
}

int api_motivations_create(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &create_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = api_json_text(body);
        params[1] = motivation_cron_at(req, body);
        params[2] = req->actor;
        return api_send_row(req, &create_stmt, params, 201, NULL);
}

int api_motivations_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &get_stmt, &id, 200,
                            arena_printf(req->arena, "motivation %s not found", id));
}

/* The type the condition of an update is for: the body's, else the stored one. */
static int motivation_update_type(struct request *req, const char *id, json_object *body,
                                  const char **type)
{
        PGresult *res;

        *type = input_string(body, "type");
        if (*type)
                return ERR_OK;
        if (db_exec(req->db, &type_stmt, &id, &res))
                return http_fail_db(req);
        if (PQntuples(res) != 1) {
                PQclear(res);
                return http_fail(req, ERR_NOT_FOUND, "motivation %s not found", id);
        }
        *type = arena_strdup(req->arena, PQgetvalue(res, 0, 0));
        PQclear(res);
        return ERR_OK;
}

/* A new type needs its condition; a new condition is checked against the (new) type. */
static int motivation_check_update(struct request *req, const char *id, json_object *body)
{
        json_object *cond;
        const char *type;
        bool has_cond = json_object_object_get_ex(body, "condition", &cond);
        int rc;

        if (input_string(body, "type") && !has_cond)
                return http_fail(req, ERR_INVALID,
                                 "condition: is required with type (the new type's condition)");
        if (!has_cond)
                return ERR_OK;
        rc = motivation_update_type(req, id, body, &type);
        return rc ? rc : motivation_check_condition(req, type, cond);
}

int api_motivations_update(struct request *req)
{
        const char *params[4];
        json_object *body;
        int rc = api_start(req, &update_shape, &params[0], &body);

        if (!rc)
                rc = motivation_check_update(req, params[0], body);
        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = motivation_cron_at(req, body);
        params[3] = req->actor;
        return api_send_row(req, &update_stmt, params, 200, NULL);
}

int api_motivations_delete(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &delete_stmt, params, 200, NULL);
}

static int motivation_set_enabled(struct request *req, const char *enable)
{
        const char *params[3];
        int rc = api_start(req, &id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = enable;
        params[2] = req->actor;
        return api_send_row(req, &enable_stmt, params, 200, NULL);
}

int api_motivations_enable(struct request *req)
{
        return motivation_set_enabled(req, "true");
}

int api_motivations_disable(struct request *req)
{
        return motivation_set_enabled(req, "false");
}

int api_motivations_trigger(struct request *req)
{
        const char *params[4];
        json_object *body, *data;
        int rc = api_start(req, &trigger_shape, &params[0], &body);

        if (rc)
                return rc;
        params[2] = input_string(body, "project_id");
        if (input_bad_project_id(req, "project_id", params[2]))
                return ERR_INVALID;
        params[1] = json_object_object_get_ex(body, "data", &data) ? api_json_text(data) : NULL;
        params[3] = req->actor;
        return api_send_row(req, &trigger_stmt, params, 200, NULL);
}

/* A page of history: 404 when the motivation does not exist (or is not visible). */
static int motivation_send_history(struct request *req, const char **params)
{
        PGresult *res;

        if (db_exec(req->db, &history_stmt, params, &res))
                return http_fail_db(req);
        if (PQgetisnull(res, 0, 0)) {
                PQclear(res);
                return http_fail(req, ERR_NOT_FOUND, "motivation %s not found", params[2]);
        }
        api_next_offset(req, params[0], params[1], strcmp(PQgetvalue(res, 0, 1), "t") == 0);
        http_send_json(req, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        PQclear(res);
        return ERR_OK;
}

int api_motivations_history(struct request *req)
{
        const char *params[4];
        int rc = api_page(req, 100, &params[0], &params[1]);

        if (!rc)
                rc = query_enum(req, "result", trigger_results, &params[3]);
        if (!rc)
                rc = api_start(req, &id_shape, &params[2], NULL);
        if (rc)
                return rc;
        return motivation_send_history(req, params);
}

int api_motivations_history_all(struct request *req)
{
        const char *params[5];
        int rc = api_page(req, 100, &params[0], &params[1]);

        params[2] = query_get(req, "project_id");
        params[3] = query_get(req, "motivation_id");
        if (!rc)
                rc = query_enum(req, "result", trigger_results, &params[4]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", params[2]))
                return ERR_INVALID;
        if (params[3] && !motivation_is_id(params[3]))
                return http_fail(req, ERR_INVALID,
                                 "motivation_id: '%.64s' is not a motivation id (a number)",
                                 params[3]);
        return api_send_list(req, &history_all_stmt, params, params[0], params[1]);
}
