/*
 * secret — libsodium secretbox for secrets at rest; see secret.h.
 */
#include "secret.h"
#include "config.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_NONCE      crypto_secretbox_NONCEBYTES
#define SECRET_MAC        crypto_secretbox_MACBYTES
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)
/* The key file holds one line of text; anything longer is not a key. */
#define SECRET_FILE_MAX 256

static unsigned char secret_key[SECRET_KEY_BYTES];
static bool secret_have_key;

/* A plaintext in an arena: its length travels with it so the cleanup can wipe it. */
struct secret_plain {
        size_t len;
        char text[];
};

static void secret_plain_wipe(void *p)
{
        struct secret_plain *sp = p;

        sodium_memzero(sp->text, sp->len);
}

/* 32 bytes from 64 hex digits, exactly. */
static bool secret_parse_hex(const char *s, size_t len, unsigned char out[SECRET_KEY_BYTES])
{
        size_t got = 0;

        return len == 2 * SECRET_KEY_BYTES &&
               sodium_hex2bin(out, SECRET_KEY_BYTES, s, len, NULL, &got, NULL) == 0 &&
               got == SECRET_KEY_BYTES;
}

/* 32 bytes from base64, standard or URL-safe, padded or not. */
static bool secret_parse_base64(const char *s, size_t len, unsigned char out[SECRET_KEY_BYTES])
{
        static const int variants[] = {
                sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
        unsigned char buf[SECRET_KEY_BYTES * 2];
        bool ok = false;

        for (size_t i = 0; !ok && i < sizeof(variants) / sizeof(variants[0]); i++) {
                size_t got = 0;

                ok = sodium_base642bin(buf, sizeof(buf), s, len, NULL, &got, NULL, variants[i]) ==
                             0 &&
                     got == SECRET_KEY_BYTES;
        }
        if (ok)
                memcpy(out, buf, SECRET_KEY_BYTES);
        sodium_memzero(buf, sizeof(buf));
        return ok;
}

int secret_key_set(const char *text, const char *what, char *err, size_t errlen)
{
        unsigned char key[SECRET_KEY_BYTES];
        size_t len;

        if (sodium_init() < 0) {
                snprintf(err, errlen, "cannot initialise libsodium");
                return ERR_INTERNAL;
        }
        while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
                text++;
        len = strlen(text);
        while (len > 0 && strchr(" \t\r\n", text[len - 1]))
                len--;
        if (!secret_parse_hex(text, len, key) && !secret_parse_base64(text, len, key)) {
                snprintf(err, errlen,
                         "%s is not a secret key: want 32 bytes written as 64 hex digits or in "
                         "base64 (it holds %zu characters)",
                         what, len);
                return ERR_INVALID;
        }
        secret_key_forget();
        memcpy(secret_key, key, sizeof(key));
        sodium_memzero(key, sizeof(key));
        (void)sodium_mlock(secret_key, sizeof(secret_key)); /* best effort: keep it out of swap */
        secret_have_key = true;
        return ERR_OK;
}

/* Opens path for reading; the mode check is on the open file, not a name that may change. */
static int secret_file_open(const char *path, int *fd, char *err, size_t errlen)
{
        struct stat st;

        *fd = open(path, O_RDONLY | O_CLOEXEC);
        if (*fd < 0) {
                snprintf(err, errlen, "cannot open the secret key file %s: %s", path,
                         strerror(errno));
                return errno == ENOENT ? ERR_NOT_FOUND : ERR_INVALID;
        }
        if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "the secret key file %s is not a regular file", path);
                return ERR_INVALID;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                snprintf(err, errlen,
                         "refusing the secret key file %s: group or others may use it (mode "
                         "%04o); chmod 600 it",
                         path, (unsigned)(st.st_mode & 07777));
                return ERR_INVALID;
        }
        return ERR_OK;
}

static int secret_key_read_file(const char *path, char *err, size_t errlen)
{
        char buf[SECRET_FILE_MAX + 1];
        ssize_t got = 0;
        int fd = -1, rc = secret_file_open(path, &fd, err, errlen);

        if (!rc) {
                got = read(fd, buf, sizeof(buf) - 1);
                if (got < 0) {
                        snprintf(err, errlen, "cannot read the secret key file %s: %s", path,
                                 strerror(errno));
                        rc = ERR_INVALID;
                } else if ((size_t)got >= SECRET_FILE_MAX) {
                        snprintf(err, errlen, "the secret key file %s is too long for a key", path);
                        rc = ERR_INVALID;
                }
        }
        if (!rc) {
                buf[got] = '\0';
                rc = secret_key_set(buf, path, err, errlen);
        }
        sodium_memzero(buf, sizeof(buf));
        if (fd >= 0)
                close(fd);
        return rc;
}

int secret_key_load(char *err, size_t errlen)
{
        const char *env = config_str("LOOM_SECRET_KEY", NULL), *var;
        char path[4096];

        if (env)
                return secret_key_set(env, "LOOM_SECRET_KEY", err, errlen);
        var = config_str("LOOM_VAR", NULL);
        if (!var) {
                snprintf(err, errlen,
                         "no secret key: set LOOM_SECRET_KEY (32 bytes, hex or base64), or "
                         "LOOM_VAR to the directory whose secret.key holds it");
                return ERR_NOT_FOUND;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/secret.key", var) >= sizeof(path)) {
                snprintf(err, errlen, "LOOM_VAR is too long");
                return ERR_INVALID;
        }
        return secret_key_read_file(path, err, errlen);
}

bool secret_key_loaded(void)
{
        return secret_have_key;
}

void secret_key_forget(void)
{
        sodium_memzero(secret_key, sizeof(secret_key));
        secret_have_key = false;
}

void secret_wipe(void *p, size_t len)
{
        sodium_memzero(p, len);
}

bool secret_is_sealed(const char *text)
{
        return text && strncmp(text, SECRET_PREFIX, SECRET_PREFIX_LEN) == 0;
}

int secret_seal(struct arena *a, const char *plain, const char **out)
{
        size_t n = strlen(plain), boxlen = SECRET_NONCE + SECRET_MAC + n, b64len;
        unsigned char *box;
        char *text;

        if (!secret_have_key)
                return ERR_INTERNAL;
        if (n > SECRET_MAX_PLAIN)
                return ERR_TOO_LARGE;
        box = arena_alloc(a, boxlen);
        randombytes_buf(box, SECRET_NONCE);
        if (crypto_secretbox_easy(box + SECRET_NONCE, (const unsigned char *)plain, n, box,
                                  secret_key) != 0)
                return ERR_INTERNAL;
        b64len = sodium_base64_ENCODED_LEN(boxlen, sodium_base64_VARIANT_ORIGINAL);
        text = arena_alloc(a, SECRET_PREFIX_LEN + b64len);
        memcpy(text, SECRET_PREFIX, SECRET_PREFIX_LEN);
        sodium_bin2base64(text + SECRET_PREFIX_LEN, b64len, box, boxlen,
                          sodium_base64_VARIANT_ORIGINAL);
        *out = text;
        return ERR_OK;
}

/* The nonce and box of a "v1:" text, decoded into a. */
static int secret_decode(struct arena *a, const char *text, unsigned char **box, size_t *boxlen)
{
        size_t len, max;

        if (!secret_is_sealed(text))
                return ERR_INVALID;
        text += SECRET_PREFIX_LEN;
        len = strlen(text);
        if (len > sodium_base64_ENCODED_LEN(SECRET_NONCE + SECRET_MAC + SECRET_MAX_PLAIN,
                                            sodium_base64_VARIANT_ORIGINAL))
                return ERR_INVALID;
        max = len / 4 * 3 + 3;
        *box = arena_alloc(a, max);
        if (sodium_base642bin(*box, max, text, len, NULL, boxlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            *boxlen < SECRET_NONCE + SECRET_MAC)
                return ERR_INVALID;
        return ERR_OK;
}

int secret_open(struct arena *a, const char *text, const char **out)
{
        struct secret_plain *sp;
        unsigned char *box;
        size_t boxlen, n;
        int rc;

        if (!secret_have_key)
                return ERR_INTERNAL;
        rc = secret_decode(a, text, &box, &boxlen);
        if (rc)
                return rc;
        n = boxlen - SECRET_NONCE - SECRET_MAC;
        sp = arena_alloc(a, sizeof(*sp) + n + 1);
        sp->len = n + 1;
        arena_defer(a, secret_plain_wipe, sp);
        if (crypto_secretbox_open_easy((unsigned char *)sp->text, box + SECRET_NONCE,
                                       boxlen - SECRET_NONCE, box, secret_key) != 0)
                return ERR_CONFLICT;
        sp->text[n] = '\0';
        *out = sp->text;
        return ERR_OK;
}

const char *secret_open_strerror(int rc)
{
        switch (rc) {
        case ERR_OK:
                return "ok";
        case ERR_CONFLICT:
                return "the stored key does not open with this secret key (LOOM_SECRET_KEY or "
                       "<var>/secret.key changed, or the value was altered): set the API key "
                       "again";
        case ERR_INTERNAL:
                return "no secret key is loaded";
        }
        return "the stored key is not a sealed value: set the API key again";
}
