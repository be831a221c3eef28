/*
 * auth — who is asking, and may they: credentials, CSRF and the permission of the route.
 *
 * Credentials: "Authorization: Bearer <token>" (a session token "lms_…" or an API key "lmk_…")
 * or the session cookie the login sets (AUTH_COOKIE, or AUTH_COOKIE_TLS under TLS).  One
 * statement, loom_auth() in sql/008_auth.sql, checks the credential and scopes the request's
 * database connection to the user's projects.  A state change authenticated by the cookie also
 * needs a same-origin Origin (or Sec-Fetch-Site: same-origin) and the session's CSRF token in
 * X-CSRF-Token; bearer tokens are never sent by a browser on its own, so they need neither.
 *
 * Permissions are "resource:action" strings; each role grants a fixed list (auth.c), an API
 * key may narrow its user's list further, and two pseudo-permissions exist: "public" (no
 * credential needed) and "self" (any signed-in user, for their own account).
 */
#ifndef LOOM_AUTH_H
#define LOOM_AUTH_H

#include "http.h"

#include <stdbool.h>

#define AUTH_COOKIE     "loom_session"
#define AUTH_COOKIE_TLS "__Host-loom_session"
#define AUTH_TOKEN_MAX  64

/*
 * Authenticates req for a route needing permission perm and fills req->user and req->actor.
 * Returns 0, or ERR_UNAUTHORIZED (no or bad credential), ERR_FORBIDDEN (CSRF, or the role
 * lacks perm; the denial is audited) or a database error, with the message recorded.
 */
int auth_request(struct request *req, const char *perm) __attribute__((warn_unused_result));

/* True when role (with an API key's list key_perms, NULL for none) grants perm. */
bool auth_allows(const char *role, const char *key_perms, const char *perm)
        __attribute__((warn_unused_result));

/* True when the request carries any credential at all (header or cookie). */
bool auth_has_credential(const struct request *req) __attribute__((warn_unused_result));

/* True when the request came over TLS (nginx's HTTPS parameter). */
bool auth_tls(const struct request *req) __attribute__((warn_unused_result));

/* Adds the Set-Cookie header for token (NULL: a cookie that clears the session). */
void auth_set_cookie(struct request *req, const char *token, long max_age);

/* A known permission string ("beads:write"); for API key permission lists. */
bool auth_is_permission(const char *perm) __attribute__((warn_unused_result));

/*
 * The pure parts of reading a request's credential, for tests and fuzzing (auth_request uses
 * them on the CGI parameters).  Strings are NUL-terminated header values; results borrow from
 * them.
 */
/* The token of "Bearer <token>" (case-insensitive scheme, spaces skipped), or NULL. */
const char *auth_bearer(const char *authorization);
/* The value of cookie name in a Cookie header: a pointer into header and *len, or NULL. */
const char *auth_cookie_find(const char *header, const char *name, size_t *len);
/* Session tokens and API keys: "lms_" or "lmk_" and 32 lower-case hex digits. */
bool auth_token_shaped(const char *t) __attribute__((warn_unused_result));
/*
 * Whether a cookie-authenticated change comes from this site: Sec-Fetch-Site "same-origin"
 * when the browser sent it, else an http(s) Origin whose host is the Host header's.  Debian's
 * fastcgi_params passes HTTP_HOST as nginx's $host, without the port, so ports are not
 * compared; SameSite cookies ignore them too.  Absent headers are "".
 */
bool auth_origin_ok(const char *origin, const char *fetch_site, const char *host)
        __attribute__((warn_unused_result));

/* Idle and absolute session lifetimes, in seconds, from LOOM_SESSION_IDLE_SECONDS and
 * LOOM_SESSION_MAX_SECONDS. */
long auth_session_idle(void);
long auth_session_max(void);

#endif
