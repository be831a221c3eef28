/*
 * fuzz_auth — reading credentials and rules from headers: fcgi/auth.c (Authorization: Bearer,
 * the session cookie, the token shape, Origin / Sec-Fetch-Site / Host, role and API-key
 * permission lists) and shared/passwd.c's password policy.
 *
 * Input, one field per line: Authorization, Cookie, Origin, Sec-Fetch-Site, Host, role, an API
 * key's permission list as PostgreSQL prints text[] ("{beads:read,runs:*}"), a permission,
 * a password, a user name.  Checks: results point inside the header they came from; a token
 * that passes the shape test is exactly "lms_"/"lmk_" and 32 hex digits; a key list never
 * grants what the role does not; only known permission names are accepted; the password
 * policy answers with a reason exactly when it refuses.
 */
#include "fuzz.h"
#include "auth.h"
#include "passwd.h"

enum { F_AUTHZ, F_COOKIE, F_ORIGIN, F_SITE, F_HOST, F_ROLE, F_PERMS, F_PERM, F_PW, F_USER, F_N };

static void check_credential(const char *authz, const char *cookie)
{
        const char *t = auth_bearer(authz), *c;
        size_t len;

        if (t) {
                FUZZ_ASSERT(t >= authz + 7 && t <= authz + strlen(authz));
                if (auth_token_shaped(t))
                        FUZZ_ASSERT(strlen(t) == 36 &&
                                    (!strncmp(t, "lms_", 4) || !strncmp(t, "lmk_", 4)));
        }
        for (int i = 0; i < 2; i++) {
                const char *name = i ? AUTH_COOKIE_TLS : AUTH_COOKIE;

                c = auth_cookie_find(cookie, name, &len);
                if (!c)
                        continue;
                FUZZ_ASSERT(c > cookie + strlen(name) && c + len <= cookie + strlen(cookie));
                FUZZ_ASSERT(c[-1] == '=' && !memchr(c, ';', len));
                FUZZ_ASSERT(strncmp(c - strlen(name) - 1, name, strlen(name)) == 0);
        }
}

static void check_origin(const char *origin, const char *site, const char *host)
{
        bool ok = auth_origin_ok(origin, site, host);

        if (*site)
                FUZZ_ASSERT(ok == (strcmp(site, "same-origin") == 0));
        else if (ok)
                FUZZ_ASSERT(!strncmp(origin, "http://", 7) || !strncmp(origin, "https://", 8));
}

static void check_perms(const char *role, const char *perms, const char *perm)
{
        bool with_key = auth_allows(role, perms, perm), by_role = auth_allows(role, NULL, perm);

        if (auth_is_permission(perm))
                FUZZ_ASSERT(strchr(perm, ':'));
        /* a key narrows its user's rights, it never adds to them (service users excepted:
         * they have nothing but their key's list) */
        if (with_key && strcmp(role, "service") != 0)
                FUZZ_ASSERT(by_role);
        if (!strcmp(perm, "public") || !strcmp(perm, "self"))
                FUZZ_ASSERT(with_key);
}

static void check_password(const char *pw, const char *user)
{
        char why[128] = "";
        bool ok = passwd_acceptable(pw, user, why, sizeof(why));

        FUZZ_ASSERT(ok == (why[0] == '\0'));
        if (ok)
                FUZZ_ASSERT(strlen(pw) >= PASSWD_MIN_LEN && strlen(pw) <= PASSWD_MAX_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        char *f[F_N];

        for (int i = 0; i < F_N; i++)
                f[i] = fuzz_line(&in);
        check_credential(f[F_AUTHZ], f[F_COOKIE]);
        check_origin(f[F_ORIGIN], f[F_SITE], f[F_HOST]);
        check_perms(f[F_ROLE], f[F_PERMS], f[F_PERM]);
        check_password(f[F_PW], f[F_USER]);
        for (int i = 0; i < F_N; i++)
                free(f[i]);
        return 0;
}
