/*
 * api_auth — accounts and access:
 *
 *   POST /api/v1/auth/login            {username, password} → token, csrf_token, cookie
 *   POST /api/v1/auth/logout           ends this session
 *   POST /api/v1/auth/refresh          a new session token for this one (which ends)
 *   GET  /api/v1/auth/me               who am I, the CSRF token for the UI
 *   POST /api/v1/auth/change-password  {current_password, new_password}; other sessions end
 *   GET|POST /api/v1/auth/api-keys, DELETE /api/v1/auth/api-keys/{id}
 *   GET|POST /api/v1/auth/users, PATCH /api/v1/auth/users/{username}   (admin)
 *   GET  /api/v1/audit                 the audit log (admin)
 *   GET  /api/v1/auth/check            for nginx auth_request in front of loom-sse
 *   GET|POST /api/v1/projects/{id}/members, DELETE /api/v1/projects/{id}/members/{username}
 *
 * Passwords are checked and hashed here (shared/passwd.c); tokens are minted here and only
 * their SHA-256 digests reach the database (sql/008_auth.sql).
 */
#include "api.h"
#include "auth.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "passwd.h"
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"admin", "user", "viewer", "service", NULL};

static const struct field_spec login_fields[] = {
        {"username", FIELD_STRING, FIELD_REQUIRED, 1, 100, NULL},
        {"password", FIELD_STRING, FIELD_REQUIRED, 1, 1024, NULL},
};

static const struct field_spec password_fields[] = {
        {"current_password", FIELD_STRING, FIELD_REQUIRED, 1, 1024, NULL},
        {"new_password", FIELD_STRING, FIELD_REQUIRED, 1, 1024, NULL},
};

static const struct field_spec key_fields[] = {
        {"name", FIELD_STRING, FIELD_REQUIRED, 1, 200, NULL},
        {"expires_in_days", FIELD_INT, FIELD_NULLABLE, 1, 3650, NULL},
        {"permissions", FIELD_STRING_ARRAY, FIELD_NULLABLE, 0, 64, NULL},
};

static const struct field_spec user_fields[] = {
        {"username", FIELD_STRING, FIELD_REQUIRED, 2, 63, NULL},
        {"password", FIELD_STRING, FIELD_NULLABLE, 1, 1024, NULL},
        {"role", FIELD_STRING, FIELD_REQUIRED, 0, 0, roles},
        {"display_name", FIELD_STRING, 0, 0, 200, NULL},
        {"email", FIELD_STRING, 0, 0, 320, NULL},
        {"disabled", FIELD_BOOL, 0, 0, 0, NULL},
};

static const struct field_spec member_fields[] = {
        {"username", FIELD_STRING, FIELD_REQUIRED, 1, 63, NULL},
};

static const struct api_shape login_shape = {
        .fields = login_fields, .nfields = INPUT_NFIELDS(login_fields), .flags = API_BODY};
static const struct api_shape password_shape = {
        .fields = password_fields, .nfields = INPUT_NFIELDS(password_fields), .flags = API_BODY};
static const struct api_shape key_shape = {
        .fields = key_fields, .nfields = INPUT_NFIELDS(key_fields), .flags = API_BODY};
static const struct api_shape user_shape = {
        .fields = user_fields, .nfields = INPUT_NFIELDS(user_fields), .flags = API_BODY};
static const struct api_shape user_patch_shape = {
        .fields = user_fields,
        .nfields = INPUT_NFIELDS(user_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
};
static const struct api_shape member_shape = {
        .id = api_project_id,
        .fields = member_fields,
        .nfields = INPUT_NFIELDS(member_fields),
        .flags = API_BODY,
};
static const struct api_shape empty_shape = {.flags = API_BODY | API_EMPTY_OK};
static const struct api_shape none_shape = {0};
static const struct api_shape project_shape = {.id = api_project_id};

static struct db_stmt login_begin_stmt = {
        .name = "auth_login_begin",
        .sql = "SELECT user_id, password_hash, retry_after FROM loom_login_begin($1, $2)",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt login_failed_stmt = {
        .name = "auth_login_failed",
        .sql = "SELECT loom_login_failed($1, $2, $3::int, $4::int, $5::int)",
        .nparams = 5,
};

static struct db_stmt session_open_stmt = {
        .name = "auth_session_open",
        .sql = "SELECT (loom_session_open($1::bigint, $2, $3, $4::int, $5::int, $6, $7, $8)::jsonb"
               " || jsonb_build_object('token', $2::text, 'token_type', 'Bearer'))::text",
        .nparams = 8,
};

static struct db_stmt session_revoke_stmt = {
        .name = "auth_session_revoke",
        .sql = "SELECT loom_session_revoke($1::bigint, $2, $3, $4)",
        .nparams = 4,
};

static struct db_stmt me_stmt = {
        .name = "auth_me",
        .sql = "SELECT json_build_object('user', loom_user_json(u), 'kind', $2::text,"
               " 'csrf_token', $3::text) FROM users u WHERE u.id = $1::bigint",
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt user_hash_stmt = {
        .name = "auth_user_hash",
        .sql = "SELECT password_hash FROM users WHERE id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt password_set_stmt = {
        .name = "auth_password_set",
        .sql = "SELECT loom_password_set($1::bigint, $2, $3::bigint, $4, $5)",
        .nparams = 5,
};

static struct db_stmt keys_list_stmt = {
        .name = "auth_keys_list",
        .sql = "SELECT coalesce(json_agg(loom_api_key_json(k) ORDER BY k.id DESC), '[]')"
               " FROM api_keys k WHERE k.user_id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt key_create_stmt = {
        .name = "auth_key_create",
        .sql = "SELECT (loom_api_key_create($1::bigint, $2::jsonb, $3, $4, $5)::jsonb"
               " || jsonb_build_object('key', $3::text))::text",
        .nparams = 5,
};

static struct db_stmt key_revoke_stmt = {
        .name = "auth_key_revoke",
        .sql = "SELECT loom_api_key_revoke($1::bigint, $2::bigint, $3::boolean, $4, $5)",
        .nparams = 5,
};

static struct db_stmt users_list_stmt = {
        .name = "auth_users_list",
        .sql = "SELECT coalesce(json_agg(loom_user_json(u) ORDER BY u.username), '[]') FROM users "
               "u",
        .nparams = 0,
        .readonly = true,
};

static struct db_stmt user_create_stmt = {
        .name = "auth_user_create",
        .sql = "SELECT loom_user_create($1::jsonb, $2, $3, $4)",
        .nparams = 4,
};

static struct db_stmt user_update_stmt = {
        .name = "auth_user_update",
        .sql = "SELECT loom_user_update($1, $2::jsonb, $3, $4, $5)",
        .nparams = 5,
};

static struct db_stmt audit_list_stmt = {
        .name = "auth_audit_list",
        .sql = "SELECT coalesce(json_agg(row_to_json(x) ORDER BY x.id DESC)"
               "  FILTER (WHERE x.n <= $1::int), '[]'), count(*) > $1::int"
               " FROM (SELECT a.id, a.at, a.actor, a.user_id, a.action, a.target, a.outcome,"
               "   a.ip, a.detail, row_number() OVER (ORDER BY a.id DESC) AS n"
               "   FROM audit_log a WHERE ($3::text IS NULL OR a.action = $3)"
               "   AND ($4::text IS NULL OR a.actor = $4) AND ($5::text IS NULL OR a.outcome = $5)"
               "   ORDER BY a.id DESC LIMIT $1::int + 1 OFFSET $2::int) x",
        .nparams = 5,
        .readonly = true,
};

static struct db_stmt member_projects_stmt = {
        .name = "auth_member_projects",
        .sql = "SELECT coalesce(string_agg(project_id, ',' ORDER BY project_id), '')"
               " FROM project_members WHERE user_id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt members_list_stmt = {
        .name = "auth_members_list",
        .sql = "SELECT CASE WHEN EXISTS (SELECT 1 FROM projects WHERE id = $1)"
               " THEN loom_member_json($1) END",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt member_set_stmt = {
        .name = "auth_member_set",
        .sql = "SELECT loom_member_set($1, $2, $3::boolean, $4, $5)",
        .nparams = 5,
};

/* A user name as stored: lower case.  ERR_INVALID (with the message) when it cannot be one. */
static int auth_username(struct request *req, const char *in, const char **out)
{
        char *u = arena_strdup(req->arena, in);
        size_t n = strlen(u);

        for (char *p = u; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        if (n < 2 || n > 63 || strspn(u, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n ||
            u[0] == '.' || u[0] == '-' || u[0] == '_') {
                return http_fail(req, ERR_INVALID,
                                 "username: 2 to 63 characters, letters, digits, '.', '_' or "
                                 "'-', starting with a letter or digit");
        }
        *out = u;
        return ERR_OK;
}

static void auth_retry_after(struct request *req, long seconds)
{
        http_add_header(req, "Retry-After", arena_printf(req->arena, "%ld", seconds));
}

/* Mints a session for uid and sends it (status), with the cookie. */
static int auth_send_session(struct request *req, const char *uid, const char *why, int status)
{
        char token[PASSWD_TOKEN_MAX], csrf[PASSWD_TOKEN_MAX];
        const char *params[8];
        long max = auth_session_max();

        if (passwd_token("lms_", token, sizeof(token)) || passwd_token("", csrf, sizeof(csrf)))
                return http_fail(req, ERR_INTERNAL, "no randomness available");
        params[0] = uid;
        params[1] = token;
        params[2] = csrf;
        params[3] = arena_printf(req->arena, "%ld", auth_session_idle());
        params[4] = arena_printf(req->arena, "%ld", max);
        params[5] = req->ip;
        params[6] = http_param(req, "HTTP_USER_AGENT");
        params[7] = why;
        auth_set_cookie(req, token, max);
        http_add_header(req, "Cache-Control", "no-store");
        return api_send_row(req, &session_open_stmt, params, status, NULL);
}

static int auth_login_refused(struct request *req, const char *user)
{
        const char *params[5] = {
                user,
                req->ip,
                arena_printf(req->arena, "%ld", config_long("LOOM_LOGIN_MAX_FAILURES", 5, 1, 1000)),
                arena_printf(req->arena, "%ld",
                             config_long("LOOM_LOGIN_MAX_FAILURES_PER_IP", 20, 1, 100000)),
                arena_printf(req->arena, "%ld",
                             config_long("LOOM_LOGIN_WINDOW_SECONDS", 900, 1, 86400)),
        };
        PGresult *res;
        long locked;

        if (db_exec(req->db, &login_failed_stmt, params, &res))
                return http_fail_db(req);
        locked = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (locked > 0) {
                auth_retry_after(req, locked);
                return http_fail(req, ERR_RATE_LIMITED,
                                 "too many failed logins: try again in %ld seconds", locked);
        }
        return http_fail(req, ERR_UNAUTHORIZED, "invalid user name or password");
}

int api_auth_login(struct request *req)
{
        const char *params[2], *pw, *uid = NULL, *hash = NULL;
        json_object *body;
        PGresult *res;
        long retry = 0;
        bool ok;
        int rc = api_start(req, &login_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = input_string(body, "username");
        params[1] = req->ip;
        pw = input_string(body, "password");
        if (db_exec(req->db, &login_begin_stmt, params, &res))
                return http_fail_db(req);
        if (!PQgetisnull(res, 0, 2))
                retry = strtol(PQgetvalue(res, 0, 2), NULL, 10);
        if (!PQgetisnull(res, 0, 0)) {
                uid = arena_strdup(req->arena, PQgetvalue(res, 0, 0));
                hash = db_value(res, 0, 1) ? arena_strdup(req->arena, PQgetvalue(res, 0, 1)) : NULL;
        }
        PQclear(res);
        if (retry > 0) {
                auth_retry_after(req, retry);
                return http_fail(req, ERR_RATE_LIMITED,
                                 "too many failed logins: try again in %ld seconds", retry);
        }
        ok = passwd_verify(hash, pw); /* costs the same for unknown users */
        if (!ok || !uid)
                return auth_login_refused(req, params[0]);
        return auth_send_session(req, uid, "login", 200);
}

static int auth_need_session(struct request *req)
{
        if (strcmp(req->user.kind, "session") != 0)
                return http_fail(req, ERR_INVALID,
                                 "this needs a session (log in); an API key is revoked with "
                                 "DELETE /api/v1/auth/api-keys/{id}");
        return ERR_OK;
}

static int auth_end_session(struct request *req, const char *why)
{
        const char *params[4] = {arena_printf(req->arena, "%lld", req->user.credential_id),
                                 req->actor, req->ip, why};
        PGresult *res;

        if (db_exec(req->db, &session_revoke_stmt, params, &res))
                return http_fail_db(req);
        PQclear(res);
        return ERR_OK;
}

int api_auth_logout(struct request *req)
{
        json_object *body;
        int rc = api_start(req, &empty_shape, NULL, &body);

        if (!rc)
                rc = auth_need_session(req);
        if (!rc)
                rc = auth_end_session(req, "logout");
        if (rc)
                return rc;
        auth_set_cookie(req, NULL, 0);
        http_send_empty(req, 204);
        return ERR_OK;
}

int api_auth_refresh(struct request *req)
{
        json_object *body;
        int rc = api_start(req, &empty_shape, NULL, &body);

        if (!rc)
                rc = auth_need_session(req);
        if (!rc)
                rc = auth_end_session(req, "refresh.old");
        if (rc)
                return rc;
        return auth_send_session(req, arena_printf(req->arena, "%lld", req->user.id), "refresh",
                                 200);
}

static const char *auth_uid(struct request *req)
{
        return arena_printf(req->arena, "%lld", req->user.id);
}

int api_auth_me(struct request *req)
{
        const char *params[3];
        int rc = api_start(req, &none_shape, NULL, NULL);

        if (rc)
                return rc;
        params[0] = auth_uid(req);
        params[1] = req->user.kind;
        params[2] = req->user.csrf;
        http_add_header(req, "Cache-Control", "no-store");
        return api_send_row(req, &me_stmt, params, 200, "user not found");
}

/* Hashes pw after the policy check; *hash in the arena. */
static int auth_new_hash(struct request *req, const char *pw, const char *user, const char **hash)
{
        char why[128], buf[PASSWD_HASH_MAX];

        if (!passwd_acceptable(pw, user, why, sizeof(why)))
                return http_fail(req, ERR_INVALID, "%s", why);
        if (passwd_hash(pw, buf, sizeof(buf)))
                return http_fail(req, ERR_INTERNAL, "cannot hash the password");
        *hash = arena_strdup(req->arena, buf);
        return ERR_OK;
}

static int auth_check_current(struct request *req, const char *pw)
{
        const char *uid = auth_uid(req);
        PGresult *res;
        bool ok;

        if (db_exec(req->db, &user_hash_stmt, &uid, &res))
                return http_fail_db(req);
        ok = PQntuples(res) == 1 && passwd_verify(db_value(res, 0, 0), pw);
        PQclear(res);
        if (!ok)
                return http_fail(req, ERR_FORBIDDEN, "current_password is wrong");
        return ERR_OK;
}

int api_auth_change_password(struct request *req)
{
        const char *params[5], *hash = NULL;
        json_object *body;
        PGresult *res;
        int rc = api_start(req, &password_shape, NULL, &body);

        if (!rc)
                rc = auth_check_current(req, input_string(body, "current_password"));
        if (!rc)
                rc = auth_new_hash(req, input_string(body, "new_password"), req->user.username,
                                   &hash);
        if (rc)
                return rc;
        params[0] = auth_uid(req);
        params[1] = hash;
        params[2] = strcmp(req->user.kind, "session") == 0
                            ? arena_printf(req->arena, "%lld", req->user.credential_id)
                            : NULL;
        params[3] = req->actor;
        params[4] = req->ip;
        if (db_exec(req->db, &password_set_stmt, params, &res))
                return http_fail_db(req);
        PQclear(res);
        http_send_empty(req, 204);
        return ERR_OK;
}

int api_auth_keys_list(struct request *req)
{
        const char *uid;
        int rc = api_start(req, &none_shape, NULL, NULL);

        if (rc)
                return rc;
        uid = auth_uid(req);
        return api_send_row(req, &keys_list_stmt, &uid, 200, NULL);
}

static int auth_check_key_perms(struct request *req, json_object *body)
{
        json_object *perms = json_object_object_get(body, "permissions");
        size_t n = perms && json_object_is_type(perms, json_type_array)
                           ? json_object_array_length(perms)
                           : 0;

        for (size_t i = 0; i < n; i++) {
                const char *p = json_object_get_string(json_object_array_get_idx(perms, i));

                if (!auth_is_permission(p))
                        return http_fail(req, ERR_INVALID,
                                         "permissions[%zu]: %.100s is not a permission "
                                         "(resource:action, e.g. beads:read or runs:*)",
                                         i, p);
                if (!auth_allows(req->user.role, req->user.key_perms, p))
                        return http_fail(req, ERR_FORBIDDEN,
                                         "permissions[%zu]: %s is not granted to you, so a key "
                                         "of yours cannot have it",
                                         i, p);
        }
        return ERR_OK;
}

int api_auth_keys_create(struct request *req)
{
        char key[PASSWD_TOKEN_MAX];
        const char *params[5];
        json_object *body;
        int rc = api_start(req, &key_shape, NULL, &body);

        if (!rc)
                rc = auth_check_key_perms(req, body);
        if (rc)
                return rc;
        if (passwd_token("lmk_", key, sizeof(key)))
                return http_fail(req, ERR_INTERNAL, "no randomness available");
        params[0] = auth_uid(req);
        params[1] = api_json_text(body);
        params[2] = key;
        params[3] = req->actor;
        params[4] = req->ip;
        http_add_header(req, "Cache-Control", "no-store");
        return api_send_row(req, &key_create_stmt, params, 201, NULL);
}

int api_auth_keys_revoke(struct request *req)
{
        const char *params[5];
        long id;
        int rc = api_start(req, &none_shape, NULL, NULL);

        if (rc)
                return rc;
        if (req->nparams < 1 || config_parse_long(req->params[0], 1, 1L << 62, &id))
                return http_fail(req, ERR_INVALID, "id: must be a positive integer");
        params[0] = req->params[0];
        params[1] = auth_uid(req);
        params[2] = strcmp(req->user.role, "admin") == 0 ? "true" : "false";
        params[3] = req->actor;
        params[4] = req->ip;
        return api_send_row(req, &key_revoke_stmt, params, 200, NULL);
}

int api_auth_users_list(struct request *req)
{
        int rc = api_start(req, &none_shape, NULL, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &users_list_stmt, NULL, 200, NULL);
}

/* The password field of a user body, hashed (and removed from the body), or NULL. */
static int auth_body_password(struct request *req, json_object *body, const char *user,
                              const char **hash)
{
        const char *pw = input_string(body, "password");
        int rc;

        *hash = NULL;
        if (!pw)
                return ERR_OK;
        rc = auth_new_hash(req, pw, user, hash);
        json_object_object_del(body, "password");
        return rc;
}

int api_auth_users_create(struct request *req)
{
        const char *params[4], *user;
        json_object *body;
        int rc = api_start(req, &user_shape, NULL, &body);

        if (rc)
                return rc;
        rc = auth_username(req, input_string(body, "username"), &user);
        if (!rc)
                rc = auth_body_password(req, body, user, &params[1]);
        if (rc)
                return rc;
        params[0] = api_json_text(body);
        params[2] = req->actor;
        params[3] = req->ip;
        return api_send_row(req, &user_create_stmt, params, 201, NULL);
}

int api_auth_users_update(struct request *req)
{
        const char *params[5], *user;
        json_object *body;
        int rc = api_start(req, &user_patch_shape, NULL, &body);

        if (rc)
                return rc;
        if (json_object_object_get_ex(body, "username", NULL))
                return http_fail(req, ERR_INVALID, "username: cannot be changed");
        rc = auth_username(req, req->params[0], &user);
        if (!rc)
                rc = auth_body_password(req, body, user, &params[2]);
        if (rc)
                return rc;
        params[0] = user;
        params[1] = api_json_text(body);
        params[3] = req->actor;
        params[4] = req->ip;
        return api_send_row(req, &user_update_stmt, params, 200, NULL);
}

static const char *const audit_outcomes[] = {"ok", "failed", "denied", NULL};

int api_audit_list(struct request *req)
{
        const char *params[5];
        int rc;

        params[2] = query_get(req, "action");
        params[3] = query_get(req, "actor");
        rc = query_enum(req, "outcome", audit_outcomes, &params[4]);
        if (!rc)
                rc = api_page(req, 100, &params[0], &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &audit_list_stmt, params, params[0], params[1]);
}

/*
 * For nginx's auth_request in front of loom-sse: 204 with the user and the projects they may
 * watch ("*" for all), which nginx hands to loom-sse as FastCGI parameters.
 */
int api_auth_check(struct request *req)
{
        const char *uid;
        PGresult *res;
        int rc = api_start(req, &none_shape, NULL, NULL);

        if (rc)
                return rc;
        http_add_header(req, "X-Loom-User", req->user.username);
        if (strcmp(req->user.role, "admin") == 0) {
                http_add_header(req, "X-Loom-Projects", "*");
        } else {
                uid = auth_uid(req);
                if (db_exec(req->db, &member_projects_stmt, &uid, &res))
                        return http_fail_db(req);
                http_add_header(req, "X-Loom-Projects", PQgetvalue(res, 0, 0));
                PQclear(res);
        }
        http_send_empty(req, 204);
        return ERR_OK;
}

int api_members_list(struct request *req)
{
        const char *id;
        int rc = api_start(req, &project_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &members_list_stmt, &id, 200,
                            arena_printf(req->arena, "project %s not found", id));
}

static int auth_member_change(struct request *req, const char *pid, const char *user, bool add)
{
        const char *params[5] = {pid, user, add ? "true" : "false", req->actor, req->ip};

        return api_send_row(req, &member_set_stmt, params, add ? 201 : 200, NULL);
}

int api_members_add(struct request *req)
{
        const char *id, *user;
        json_object *body;
        int rc = api_start(req, &member_shape, &id, &body);

        if (rc)
                return rc;
        rc = auth_username(req, input_string(body, "username"), &user);
        if (rc)
                return rc;
        return auth_member_change(req, id, user, true);
}

int api_members_remove(struct request *req)
{
        const char *id, *user;
        int rc = api_start(req, &project_shape, &id, NULL);

        if (rc)
                return rc;
        rc = auth_username(req, req->params[1], &user);
        if (rc)
                return rc;
        return auth_member_change(req, id, user, false);
}
