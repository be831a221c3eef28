/*
 * api_notifications — the signed-in user's own notifications and preferences (permission
 * "self"; sql/013_activity.sql makes the notifications and says which events make them).
 *
 *   GET       /api/v1/notifications                  newest first; status unread, read,
 *                                                     archived or all (default: unread and
 *                                                     read); limit, offset; X-Unread-Count
 *   POST      /api/v1/notifications/{id}/read         one read (again: no change)
 *   POST      /api/v1/notifications/mark-all-read     every unread one read
 *   GET       /api/v1/notifications/preferences       the preferences (defaults if never set)
 *   PUT/PATCH /api/v1/notifications/preferences       sets the fields given
 *
 * Every statement names the user (user_id = the request's user) besides row-level security,
 * so even an admin reads and marks only their own; someone else's id is a 404.
 */
#include "api.h"
#include "config.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const notification_states[] = {"unread", "read", "archived", "all", NULL};
static const char *const priorities[] = {"low", "normal", "high", "critical", NULL};
static const char *const digest_modes[] = {"realtime", NULL};
/* The kinds a person can subscribe to: the event_type of the notifications they get. */
static const char *const notification_kinds[] = {
        "bead.assigned", "bead.status_change", "decision.created",
        "bead.created",  "comment.mention",    NULL,
};

static const struct field_spec prefs_fields[] = {
        {"enable_in_app", FIELD_BOOL, 0, 0, 0, NULL},
        {"subscribed_events", FIELD_STRING_ARRAY, 0, 0, 16, NULL},
        {"min_priority", FIELD_STRING, 0, 0, 0, priorities},
        {"quiet_hours_start", FIELD_STRING, FIELD_NULLABLE, 5, 5, NULL},
        {"quiet_hours_end", FIELD_STRING, FIELD_NULLABLE, 5, 5, NULL},
        {"timezone", FIELD_STRING, 0, 1, 64, NULL},
        {"project_filters", FIELD_STRING_ARRAY, 0, 0, 100, NULL},
        {"digest_mode", FIELD_STRING, 0, 0, 0, digest_modes},
};

static struct db_stmt notification_list_stmt = {
        .name = "notification_list",
        .sql = "SELECT coalesce(json_agg(loom_notification_json(p.n) ORDER BY p.r)"
               "  FILTER (WHERE p.r <= $2::int), '[]'), count(*) > $2::int,"
               " (SELECT count(*) FROM notifications u"
               "  WHERE u.user_id = $1::bigint AND u.status = 'unread')"
               " FROM (SELECT x.n, row_number() OVER () AS r FROM ("
               "   SELECT n FROM notifications n WHERE n.user_id = $1::bigint"
               "   AND CASE WHEN $4::text IS NULL THEN n.status <> 'archived'"
               "            WHEN $4 = 'all' THEN true ELSE n.status = $4 END"
               "   ORDER BY n.id DESC LIMIT $2::int + 1 OFFSET $3::int) x) p",
        .nparams = 4,
        .readonly = true,
};

static struct db_stmt notification_read_stmt = {
        .name = "notification_read",
        .sql = "SELECT loom_notification_read($1::bigint, $2::bigint, $3)",
        .nparams = 3,
};

static struct db_stmt notification_read_all_stmt = {
        .name = "notification_read_all",
        .sql = "SELECT loom_notifications_read_all($1::bigint, $2)",
        .nparams = 2,
};

static struct db_stmt prefs_get_stmt = {
        .name = "notification_prefs_get",
        .sql = "SELECT loom_notification_prefs_json(loom_notification_prefs($1::bigint))",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt prefs_set_stmt = {
        .name = "notification_prefs_set",
        .sql = "SELECT loom_notification_prefs_set($1::bigint, $2::jsonb)",
        .nparams = 2,
};

static int notification_id(struct request *req, const char **out)
{
        long id;

        *out = req->params[0];
        if (config_parse_long(*out, 1, INT64_MAX, &id) != ERR_OK)
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid notification id", *out);
        return ERR_OK;
}

static bool is_in(const char *const *list, const char *s)
{
        for (; *list; list++) {
                if (strcmp(*list, s) == 0)
                        return true;
        }
        return false;
}

/* "HH:MM", 00:00 to 23:59. */
static bool is_clock(const char *s)
{
        return strlen(s) == 5 && strspn(s, "0123456789") == 2 && s[2] == ':' &&
               strspn(s + 3, "0123456789") == 2 && (s[0] < '2' || (s[0] == '2' && s[1] < '4')) &&
               s[3] < '6';
}

/* Each item of array field name passes ok, else ERR_INVALID naming it and what is wanted. */
static int prefs_check_items(struct request *req, json_object *body, const char *name,
                             bool (*ok)(const char *), const char *want)
{
        json_object *arr;

        if (!json_object_object_get_ex(body, name, &arr))
                return ERR_OK;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(arr, i));

                if (!ok(s))
                        return http_fail(req, ERR_INVALID, "%s[%zu]: '%.64s' is not %s", name, i, s,
                                         want);
        }
        return ERR_OK;
}

static bool is_kind(const char *s)
{
        return is_in(notification_kinds, s);
}

static int prefs_check(struct request *req, json_object *body)
{
        static const char *const clocks[] = {"quiet_hours_start", "quiet_hours_end"};
        int rc = prefs_check_items(
                req, body, "subscribed_events", is_kind,
                arena_printf(req->arena, "one of %s", input_choices_list(req, notification_kinds)));

        if (!rc)
                rc = prefs_check_items(req, body, "project_filters", input_is_project_id,
                                       "a project id");
        for (size_t i = 0; !rc && i < 2; i++) {
                const char *v = input_string(body, clocks[i]);

                if (v && !is_clock(v))
                        rc = http_fail(req, ERR_INVALID,
                                       "%s: '%.16s' is not a time of day as HH:MM (00:00 to "
                                       "23:59)",
                                       clocks[i], v);
        }
        return rc;
}

static const struct api_shape id_shape = {
        .id = notification_id,
        .flags = API_BODY | API_EMPTY_OK,
};

static const struct api_shape empty_shape = {.flags = API_BODY | API_EMPTY_OK};

static const struct api_shape none_shape = {0};

static const struct api_shape prefs_shape = {
        .fields = prefs_fields,
        .nfields = INPUT_NFIELDS(prefs_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = prefs_check,
};

static const char *notification_uid(struct request *req)
{
        return arena_printf(req->arena, "%lld", req->user.id);
}

static void notification_clear(void *res)
{
        PQclear(res);
}

int api_notifications_list(struct request *req)
{
        const char *params[4];
        PGresult *res;
        int rc = query_enum(req, "status", notification_states, &params[3]);

        if (!rc)
                rc = api_page(req, 50, &params[1], &params[2]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        params[0] = notification_uid(req);
        if (db_exec(req->db, &notification_list_stmt, params, &res))
                return http_fail_db(req);
        arena_defer(req->arena, notification_clear, res);
        http_add_header(req, "X-Unread-Count", PQgetvalue(res, 0, 2));
        api_next_offset(req, params[1], params[2], strcmp(PQgetvalue(res, 0, 1), "t") == 0);
        http_send_json(req, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        return ERR_OK;
}

int api_notifications_read(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &id_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = notification_uid(req);
        params[2] = req->actor;
        return api_send_row(req, &notification_read_stmt, params, 200,
                            arena_printf(req->arena, "notification %s not found", params[0]));
}

int api_notifications_read_all(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &empty_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = notification_uid(req);
        params[1] = req->actor;
        return api_send_row(req, &notification_read_all_stmt, params, 200, NULL);
}

int api_notifications_prefs_get(struct request *req)
{
        const char *uid;
        int rc = api_start(req, &none_shape, NULL, NULL);

        if (rc)
                return rc;
        uid = notification_uid(req);
        return api_send_row(req, &prefs_get_stmt, &uid, 200, NULL);
}

int api_notifications_prefs_set(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &prefs_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = notification_uid(req);
        params[1] = api_json_text(body);
        return api_send_row(req, &prefs_set_stmt, params, 200, NULL);
}
