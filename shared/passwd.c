/*
 * passwd — Argon2id hashes, the password policy and random tokens; see passwd.h.
 */
#include "passwd.h"
#include "err.h"

#include <argon2.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PASSWD_T_COST   2
#define PASSWD_M_COST   19456 /* KiB: 19 MiB */
#define PASSWD_PARALLEL 1
#define PASSWD_SALT     16
#define PASSWD_HASHLEN  32

static const char *const passwd_common[] = {
#include "passwd_common.inc"
};

/* A valid hash of a random password: what an unknown user is checked against. */
static const char passwd_dummy[] = "$argon2id$v=19$m=19456,t=2,p=1$bG9vbS1kdW1teS1zYWx0$"
                                   "9nN5yK8hq3m0ZC3S0k7m2A6l8bQpV2fWc7jZ5b9yH1A";

/* Fills buf with len bytes from the kernel's CSPRNG.  Returns 0 or ERR_INTERNAL. */
static int passwd_random(unsigned char *buf, size_t len)
{
        size_t got = 0;

        while (got < len) {
                ssize_t n = getrandom(buf + got, len - got, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return ERR_INTERNAL;
                got += (size_t)n;
        }
        return ERR_OK;
}

int passwd_hash(const char *pw, char *out, size_t outlen)
{
        unsigned char salt[PASSWD_SALT];
        int rc;

        out[0] = '\0';
        if (passwd_random(salt, sizeof(salt)) != ERR_OK)
                return ERR_INTERNAL;
        rc = argon2id_hash_encoded(PASSWD_T_COST, PASSWD_M_COST, PASSWD_PARALLEL, pw, strlen(pw),
                                   salt, sizeof(salt), PASSWD_HASHLEN, out, outlen);
        if (rc != ARGON2_OK) {
                out[0] = '\0';
                return ERR_INTERNAL;
        }
        return ERR_OK;
}

bool passwd_verify(const char *encoded, const char *pw)
{
        bool real = encoded && strncmp(encoded, "$argon2id$", 10) == 0;
        int rc = argon2id_verify(real ? encoded : passwd_dummy, pw, strlen(pw));

        return real && rc == ARGON2_OK;
}

static int passwd_cmp(const void *key, const void *elem)
{
        return strcmp(key, *(const char *const *)elem);
}

static bool passwd_is_common(const char *s)
{
        return *s && bsearch(s, passwd_common, sizeof(passwd_common) / sizeof(passwd_common[0]),
                             sizeof(passwd_common[0]), passwd_cmp) != NULL;
}

/* Lower-cases pw into low and its core (digits and punctuation trimmed at both ends) into core. */
static void passwd_fold(const char *pw, char *low, char *core)
{
        size_t n = strlen(pw), b = 0, e;

        for (size_t i = 0; i <= n; i++)
                low[i] = (char)tolower((unsigned char)pw[i]);
        while (b < n && !isalpha((unsigned char)low[b]))
                b++;
        e = n;
        while (e > b && !isalpha((unsigned char)low[e - 1]))
                e--;
        memcpy(core, low + b, e - b);
        core[e - b] = '\0';
}

static bool passwd_one_char(const char *pw)
{
        for (const char *p = pw; *p; p++)
                if (*p != pw[0])
                        return false;
        return true;
}

bool passwd_acceptable(const char *pw, const char *username, char *why, size_t whylen)
{
        char low[PASSWD_MAX_LEN + 1], core[PASSWD_MAX_LEN + 1];
        size_t n = strlen(pw);
        const char *reason = NULL;

        if (n < PASSWD_MIN_LEN)
                reason = "password is too short (at least 8 characters)";
        else if (n > PASSWD_MAX_LEN)
                reason = "password is too long (at most 128 characters)";
        else if (passwd_one_char(pw))
                reason = "password is one character repeated";
        if (!reason) {
                passwd_fold(pw, low, core);
                if (passwd_is_common(low) || passwd_is_common(core))
                        reason = "password is too common; choose a less guessable one";
                else if (username && *username &&
                         (strcmp(low, username) == 0 || strcmp(core, username) == 0))
                        reason = "password must not be the user name";
        }
        if (reason && whylen)
                snprintf(why, whylen, "%s", reason);
        return reason == NULL;
}

int passwd_token(const char *prefix, char *out, size_t outlen)
{
        static const char hex[] = "0123456789abcdef";
        unsigned char raw[PASSWD_TOKEN_BYTES];
        size_t plen = strlen(prefix), i;

        if (outlen < plen + 2 * sizeof(raw) + 1 || passwd_random(raw, sizeof(raw)) != ERR_OK)
                return ERR_INTERNAL;
        memcpy(out, prefix, plen);
        for (i = 0; i < sizeof(raw); i++) {
                out[plen + 2 * i] = hex[raw[i] >> 4];
                out[plen + 2 * i + 1] = hex[raw[i] & 15];
        }
        out[plen + 2 * i] = '\0';
        return ERR_OK;
}
