/*
 * auth — credentials, CSRF and permissions for every route; see auth.h.
 */
#include "auth.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What each role may do.  Loom's roles (reference §2.2), over our resources. */
static const char *const auth_admin[] = {"*:*", NULL};
static const char *const auth_user[] = {
        "projects:read",  "projects:write",   "beads:read",        "beads:write",
        "agents:read",    "agents:write",     "decisions:read",    "decisions:write",
        "providers:read", "providers:write",  "runs:read",         "runs:write",
        "personas:read",  "events:read",      "logs:read",         "analytics:read",
        "chat:write",     "motivations:read", "motivations:write", NULL,
};
static const char *const auth_viewer[] = {
        "projects:read",  "beads:read",     "agents:read",      "decisions:read",
        "providers:read", "runs:read",      "personas:read",    "events:read",
        "logs:read",      "analytics:read", "motivations:read", NULL,
};
static const char *const auth_service[] = {NULL};

/* Every resource and action a permission may name; "*" stands for all. */
static const char *const auth_resources[] = {
        "projects", "beads",  "agents",      "decisions", "providers", "runs",
        "personas", "events", "logs",        "analytics", "users",     "audit",
        "system",   "chat",   "motivations", NULL,
};
static const char *const auth_actions[] = {"read", "write", "delete", "admin", NULL};

static struct db_stmt auth_stmt = {
        .name = "auth_check",
        .sql = "SELECT user_id, username, role, kind, csrf_token, permissions::text, credential_id"
               " FROM loom_auth($1)",
        .nparams = 1,
        .readonly = true, /* safe to run twice: it only touches last_seen_at / last_used_at */
};

static struct db_stmt auth_denied_stmt = {
        .name = "auth_denied",
        .sql = "SELECT loom_audit($1, 'denied', $2, 'denied', $3,"
               " jsonb_build_object('permission', $4::text, 'reason', $5::text))",
        .nparams = 5,
};

static const char *const *auth_role_grants(const char *role)
{
        if (!role)
                return auth_service;
        if (strcmp(role, "admin") == 0)
                return auth_admin;
        if (strcmp(role, "user") == 0)
                return auth_user;
        if (strcmp(role, "viewer") == 0)
                return auth_viewer;
        return auth_service;
}

/* True when grant ("beads:*", "*:*", "beads:read") covers perm ("beads:read"). */
static bool auth_grant_covers(const char *grant, size_t glen, const char *perm)
{
        const char *gc = memchr(grant, ':', glen), *pc = strchr(perm, ':');
        size_t gres, pres;

        if (!gc || !pc)
                return false;
        gres = (size_t)(gc - grant);
        pres = (size_t)(pc - perm);
        if (!(gres == 1 && grant[0] == '*') && !(gres == pres && memcmp(grant, perm, pres) == 0))
                return false;
        glen -= gres + 1;
        gc++;
        return (glen == 1 && gc[0] == '*') ||
               (glen == strlen(pc + 1) && memcmp(gc, pc + 1, glen) == 0);
}

/* key_perms is PostgreSQL's text form of text[]: "{beads:read,runs:read}". */
static bool auth_list_allows(const char *key_perms, const char *perm)
{
        const char *p = key_perms;

        if (*p == '{')
                p++;
        while (*p && *p != '}') {
                size_t n = strcspn(p, ",}");

                if (auth_grant_covers(p, n, perm))
                        return true;
                p += n;
                if (*p == ',')
                        p++;
        }
        return false;
}

bool auth_allows(const char *role, const char *key_perms, const char *perm)
{
        const char *const *g = auth_role_grants(role);
        bool by_role = false;

        if (strcmp(perm, "public") == 0 || strcmp(perm, "self") == 0)
                return true;
        for (; *g && !by_role; g++)
                by_role = auth_grant_covers(*g, strlen(*g), perm);
        if (role && strcmp(role, "service") == 0)
                return key_perms && auth_list_allows(key_perms, perm);
        return by_role && (!key_perms || auth_list_allows(key_perms, perm));
}

static bool auth_in(const char *const *list, const char *s, size_t n)
{
        for (; *list; list++)
                if (strlen(*list) == n && memcmp(*list, s, n) == 0)
                        return true;
        return (n == 1 && s[0] == '*');
}

bool auth_is_permission(const char *perm)
{
        const char *c = strchr(perm, ':');

        return c && auth_in(auth_resources, perm, (size_t)(c - perm)) &&
               auth_in(auth_actions, c + 1, strlen(c + 1));
}

bool auth_tls(const struct request *req)
{
        const char *https = http_param(req, "HTTPS");

        return *https && strcasecmp(https, "off") != 0;
}

const char *auth_cookie_find(const char *header, const char *name, size_t *len)
{
        const char *h = header;
        size_t nlen = strlen(name);

        *len = 0;
        while (*h) {
                size_t n;

                h += strspn(h, " ;");
                n = strcspn(h, ";");
                if (n > nlen && strncmp(h, name, nlen) == 0 && h[nlen] == '=') {
                        *len = n - nlen - 1;
                        return h + nlen + 1;
                }
                h += n;
        }
        return NULL;
}

const char *auth_bearer(const char *authorization)
{
        if (strncasecmp(authorization, "Bearer ", 7) != 0)
                return NULL;
        return authorization + 7 + strspn(authorization + 7, " ");
}

/* The value of cookie name in the Cookie header, copied into the arena, or NULL. */
static const char *auth_cookie(const struct request *req, const char *name)
{
        size_t len;
        const char *v = auth_cookie_find(http_param(req, "HTTP_COOKIE"), name, &len);

        return v ? arena_strndup(req->arena, v, len) : NULL;
}

/* The credential: the bearer token, else the session cookie (*cookie set), else NULL. */
static const char *auth_credential(const struct request *req, bool *cookie)
{
        const char *t = auth_bearer(http_param(req, "HTTP_AUTHORIZATION"));

        *cookie = false;
        if (t)
                return t;
        t = auth_cookie(req, auth_tls(req) ? AUTH_COOKIE_TLS : AUTH_COOKIE);
        if (t)
                *cookie = true;
        return t;
}

bool auth_has_credential(const struct request *req)
{
        bool cookie;

        return auth_credential(req, &cookie) != NULL || *http_param(req, "HTTP_AUTHORIZATION");
}

bool auth_token_shaped(const char *t)
{
        size_t n = strlen(t);

        if (n != 36 || (strncmp(t, "lms_", 4) != 0 && strncmp(t, "lmk_", 4) != 0))
                return false;
        return strspn(t + 4, "0123456789abcdef") == 32;
}

static bool auth_same_text(const char *a, const char *b)
{
        size_t n = strlen(a);
        unsigned char d = 0;

        if (n != strlen(b))
                return false;
        for (size_t i = 0; i < n; i++)
                d |= (unsigned char)(a[i] ^ b[i]);
        return d == 0;
}

/* The host name in an origin or Host value: after any "scheme://", before any ":port". */
static size_t auth_host_part(const char *v, const char **host)
{
        const char *p = strstr(v, "://");

        *host = p ? p + 3 : v;
        return strcspn(*host, ":/");
}

bool auth_origin_ok(const char *origin, const char *fetch_site, const char *host)
{
        const char *oh, *hh;
        size_t on, hn;

        if (*fetch_site)
                return strcmp(fetch_site, "same-origin") == 0;
        if (!*origin || strcmp(origin, "null") == 0)
                return false;
        on = auth_host_part(origin, &oh);
        hn = auth_host_part(host, &hh);
        return on && on == hn && strncasecmp(oh, hh, on) == 0 &&
               (strncmp(origin, "http://", 7) == 0 || strncmp(origin, "https://", 8) == 0);
}

static bool auth_same_origin(const struct request *req)
{
        return auth_origin_ok(http_param(req, "HTTP_ORIGIN"),
                              http_param(req, "HTTP_SEC_FETCH_SITE"), http_param(req, "HTTP_HOST"));
}

static int auth_deny(struct request *req, const char *perm, const char *why)
{
        const char *params[5] = {req->actor,
                                 arena_printf(req->arena, "%s %s", req->method, req->path), req->ip,
                                 perm, why};
        PGresult *res;

        if (db_exec(req->db, &auth_denied_stmt, params, &res) == ERR_OK)
                PQclear(res);
        log_info("denied %s %s to %s: %s", req->method, req->path, req->actor, why);
        return http_fail(req, ERR_FORBIDDEN, "%s", why);
}

static int auth_csrf(struct request *req, const char *perm)
{
        const char *sent = http_param(req, "HTTP_X_CSRF_TOKEN");

        if (!req->user.cookie || strcmp(req->method, "GET") == 0)
                return ERR_OK;
        if (!auth_same_origin(req))
                return auth_deny(req, perm,
                                 "cross-site request refused: the Origin (or Sec-Fetch-Site) "
                                 "header must name this site");
        if (!*sent || !req->user.csrf || !auth_same_text(sent, req->user.csrf))
                return auth_deny(req, perm,
                                 "CSRF token missing or wrong: send the csrf_token from login "
                                 "or /api/v1/auth/me in the X-CSRF-Token header");
        return ERR_OK;
}

static void auth_fill_user(struct request *req, const PGresult *res, bool cookie)
{
        struct request_user *u = &req->user;

        u->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        u->username = arena_strdup(req->arena, PQgetvalue(res, 0, 1));
        u->role = arena_strdup(req->arena, PQgetvalue(res, 0, 2));
        u->kind = arena_strdup(req->arena, PQgetvalue(res, 0, 3));
        u->csrf = PQgetisnull(res, 0, 4) ? NULL : arena_strdup(req->arena, PQgetvalue(res, 0, 4));
        u->key_perms =
                PQgetisnull(res, 0, 5) ? NULL : arena_strdup(req->arena, PQgetvalue(res, 0, 5));
        u->credential_id = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
        u->cookie = cookie;
        req->actor = u->username;
}

static int auth_unauthorized(struct request *req, const char *why)
{
        http_add_header(req, "WWW-Authenticate", "Bearer realm=\"loom\"");
        return http_fail(req, ERR_UNAUTHORIZED, "%s", why);
}

int auth_request(struct request *req, const char *perm)
{
        bool cookie;
        const char *token = auth_credential(req, &cookie);
        PGresult *res;
        int rc;

        if (strcmp(perm, "public") == 0)
                return ERR_OK;
        if (!token || !*token)
                return auth_unauthorized(req, "authentication required: log in with POST "
                                              "/api/v1/auth/login or send Authorization: "
                                              "Bearer <token>");
        if (!auth_token_shaped(token))
                return auth_unauthorized(req, "malformed credential: expected a session token "
                                              "(lms_…) or an API key (lmk_…)");
        rc = db_exec(req->db, &auth_stmt, &token, &res);
        if (rc)
                return http_fail_db(req);
        if (PQntuples(res) != 1) {
                PQclear(res);
                return auth_unauthorized(req, "credential expired, revoked or unknown: log in "
                                              "again");
        }
        auth_fill_user(req, res, cookie);
        PQclear(res);
        rc = auth_csrf(req, perm);
        if (rc)
                return rc;
        if (!auth_allows(req->user.role, req->user.key_perms, perm))
                return auth_deny(req, perm,
                                 arena_printf(req->arena,
                                              "permission %s is not granted to %s "
                                              "(role %s%s)",
                                              perm, req->user.username, req->user.role,
                                              req->user.key_perms ? ", API key's list" : ""));
        return ERR_OK;
}

void auth_set_cookie(struct request *req, const char *token, long max_age)
{
        bool tls = auth_tls(req);

        http_add_header(req, "Set-Cookie",
                        arena_printf(req->arena,
                                     "%s=%s; Path=/; HttpOnly; SameSite=Strict; "
                                     "Max-Age=%ld%s",
                                     tls ? AUTH_COOKIE_TLS : AUTH_COOKIE, token ? token : "",
                                     token ? max_age : 0, tls ? "; Secure" : ""));
}

long auth_session_idle(void)
{
        return config_long("LOOM_SESSION_IDLE_SECONDS", 8 * 3600, 60, 30L * 86400);
}

long auth_session_max(void)
{
        return config_long("LOOM_SESSION_MAX_SECONDS", 7 * 86400, 300, 365L * 86400);
}
