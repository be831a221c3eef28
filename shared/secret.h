/*
 * secret — secrets at rest (provider API keys): libsodium secretbox, one key per process.
 *
 * A sealed value is text that fits a `text` column: "v1:" + base64(nonce || box), where the
 * nonce is 24 random bytes drawn for every value and box is XSalsa20-Poly1305 of the plaintext
 * (crypto_secretbox_easy).  "v1" names this format so a later one can sit beside it.
 *
 * The key is 32 bytes from LOOM_SECRET_KEY (64 hex digits or base64), else from the file
 * <LOOM_VAR>/secret.key (the same text; deploy/stack.sh makes it 0600 on the first start),
 * which must not be open to group or others.  A process loads it once at start, before its
 * threads run; sealing and opening only read it afterwards, so they are thread-safe.
 */
#ifndef LOOM_SECRET_H
#define LOOM_SECRET_H

#include "arena.h"

#include <stdbool.h>
#include <stddef.h>

#define SECRET_KEY_BYTES 32
#define SECRET_PREFIX    "v1:"
/* Longest plaintext sealed or opened: API keys are at most 4096 bytes. */
#define SECRET_MAX_PLAIN ((size_t)16384)

/*
 * Loads the process's key: LOOM_SECRET_KEY when set, else <LOOM_VAR>/secret.key.  Replaces
 * (and wipes) any key loaded before.  0, or with a message for people in err (which never
 * holds key material):
 *   ERR_NOT_FOUND  neither is configured (no LOOM_SECRET_KEY, no LOOM_VAR), or the file is absent
 *   ERR_INVALID    not 32 bytes in hex or base64; the file is not a regular file, is readable
 *                  or writable by group or others, or cannot be read
 */
int secret_key_load(char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * Parses text (hex or base64 of exactly 32 bytes; surrounding whitespace ignored) and makes it
 * the process's key.  0 or ERR_INVALID with err naming what (the value itself is never copied
 * into err).  what names the source in messages, e.g. "LOOM_SECRET_KEY".
 */
int secret_key_set(const char *text, const char *what, char *err, size_t errlen)
        __attribute__((warn_unused_result));
/* Whether a key is loaded. */
bool secret_key_loaded(void) __attribute__((warn_unused_result));
/* Wipes the key; later seals and opens fail until the next load. Cannot fail. */
void secret_key_forget(void);

/* Overwrites len bytes at p with zeros in a way the compiler keeps (sodium_memzero). */
void secret_wipe(void *p, size_t len);

/* Whether text has the form of a sealed value (the prefix; says nothing of authenticity). */
bool secret_is_sealed(const char *text) __attribute__((warn_unused_result));

/*
 * Seals the NUL-terminated plain into *out, text allocated in a (not secret: no wipe).
 * 0, ERR_TOO_LARGE past SECRET_MAX_PLAIN, ERR_INTERNAL when no key is loaded.
 */
int secret_seal(struct arena *a, const char *plain, const char **out)
        __attribute__((warn_unused_result));
/*
 * Opens a sealed text into *out: the plaintext, NUL-terminated, allocated in a and wiped with
 * sodium_memzero when a is reset or released.  0, or
 *   ERR_INVALID   not a "v1:" value, bad base64, too short or too long
 *   ERR_CONFLICT  authentication failed: tampered with, or sealed under another key
 *   ERR_INTERNAL  no key is loaded
 * Never crashes on any input.
 */
int secret_open(struct arena *a, const char *text, const char **out)
        __attribute__((warn_unused_result));
/* A message for people about secret_open's rc: what to do about it. Never NULL. */
const char *secret_open_strerror(int rc);

#endif
