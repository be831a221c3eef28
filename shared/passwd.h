/*
 * passwd — passwords and tokens: Argon2id hashing and verification (libargon2), the password
 * policy, and random tokens from the kernel's CSPRNG.
 *
 * Linked into loom-api (login, users, password changes) and loom-migrate (the first admin).
 * Parameters follow OWASP's Argon2id floor: m = 19 MiB, t = 2, p = 1, 16-byte salt, 32-byte
 * hash, stored in the PHC string format ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"), so they
 * can be raised later without invalidating stored hashes.
 */
#ifndef LOOM_PASSWD_H
#define LOOM_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWD_MIN_LEN     8
#define PASSWD_MAX_LEN     128
#define PASSWD_HASH_MAX    128 /* an encoded hash fits, NUL included */
#define PASSWD_TOKEN_BYTES 16  /* 128 bits */
#define PASSWD_TOKEN_MAX   48  /* "lmk_" + 32 hex digits + NUL, with room */

/*
 * Hashes pw into out (PASSWD_HASH_MAX bytes) as an encoded Argon2id string.  Returns 0, or
 * ERR_INTERNAL when the CSPRNG or libargon2 fails (out is then empty).
 */
int passwd_hash(const char *pw, char *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * True when pw matches encoded.  A NULL or malformed encoded hash still costs one Argon2id
 * computation, so a login for an unknown user takes as long as one with a wrong password.
 */
bool passwd_verify(const char *encoded, const char *pw) __attribute__((warn_unused_result));

/*
 * Checks pw against the policy: PASSWD_MIN_LEN..PASSWD_MAX_LEN characters, not in the list of
 * common passwords, not the user name, not one repeated character.  Returns true, or false
 * with the reason in why (a sentence fragment, e.g. "password is too common").
 */
bool passwd_acceptable(const char *pw, const char *username, char *why, size_t whylen)
        __attribute__((warn_unused_result));

/*
 * Fills out with prefix followed by PASSWD_TOKEN_BYTES random bytes in lower-case hex.
 * Returns 0, or ERR_INTERNAL when the kernel's CSPRNG fails or out is too small.
 */
int passwd_token(const char *prefix, char *out, size_t outlen) __attribute__((warn_unused_result));

#endif
