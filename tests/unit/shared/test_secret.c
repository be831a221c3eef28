/*
 * Unit tests for shared/secret.c: round trip, tampering, the wrong key, key formats, the key
 * file's permissions, and wiping the plaintext with its arena.
 */
#include "arena.h"
#include "err.h"
#include "secret.h"
#include "testlib.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_HEX   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_HEX_B "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* KEY_HEX's bytes in base64, standard and URL-safe without padding */
#define KEY_B64     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B64_URL "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define PLAIN       "sk-test-0123456789abcdef"

static char err[512];

static bool use_key(const char *text)
{
        return secret_key_set(text, "test key", err, sizeof(err)) == ERR_OK;
}

TEST(seal_then_open_gives_the_plaintext_back)
{
        struct arena a;
        const char *sealed, *again, *plain;

        CHECK(use_key(KEY_HEX));
        arena_init(&a, 0);
        CHECK_INT(secret_seal(&a, PLAIN, &sealed), ERR_OK);
        CHECK(secret_is_sealed(sealed));
        CHECK(strstr(sealed, PLAIN) == NULL);
        CHECK_INT(secret_open(&a, sealed, &plain), ERR_OK);
        CHECK_STR(plain, PLAIN);
        /* a fresh nonce for every value: the same plaintext never seals the same way twice */
        CHECK_INT(secret_seal(&a, PLAIN, &again), ERR_OK);
        CHECK(strcmp(sealed, again) != 0);
        CHECK_INT(secret_seal(&a, "", &again), ERR_OK);
        CHECK_INT(secret_open(&a, again, &plain), ERR_OK);
        CHECK_STR(plain, "");
        arena_release(&a);
}

TEST(a_tampered_value_is_refused)
{
        struct arena a;
        const char *sealed, *plain;
        char *bad;
        size_t mid;

        CHECK(use_key(KEY_HEX));
        arena_init(&a, 0);
        CHECK_INT(secret_seal(&a, PLAIN, &sealed), ERR_OK);
        bad = arena_strdup(&a, sealed);
        mid = strlen(bad) / 2;
        bad[mid] = bad[mid] == 'A' ? 'B' : 'A'; /* still base64, one bit of the box differs */
        CHECK_INT(secret_open(&a, bad, &plain), ERR_CONFLICT);
        bad = arena_strdup(&a, sealed);
        bad[3] = bad[3] == 'A' ? 'B' : 'A'; /* the nonce */
        CHECK_INT(secret_open(&a, bad, &plain), ERR_CONFLICT);
        CHECK(secret_open(&a, arena_strndup(&a, sealed, strlen(sealed) - 8), &plain) != ERR_OK);
        CHECK_HAS(secret_open_strerror(ERR_CONFLICT), "set the API key again");
        arena_release(&a);
}

TEST(malformed_values_are_refused_without_a_crash)
{
        static const char *const bad[] = {"",
                                          "v1:",
                                          "v1:AAAA",
                                          "v2:AAAA",
                                          PLAIN,
                                          "v1:!!!!",
                                          "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj*"};
        struct arena a;
        const char *plain;

        CHECK(use_key(KEY_HEX));
        arena_init(&a, 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                CHECK_INT(secret_open(&a, bad[i], &plain), ERR_INVALID);
        CHECK(!secret_is_sealed(PLAIN));
        CHECK(!secret_is_sealed(NULL));
        arena_release(&a);
}

TEST(the_wrong_key_does_not_open_it)
{
        struct arena a;
        const char *sealed, *plain;

        CHECK(use_key(KEY_HEX));
        arena_init(&a, 0);
        CHECK_INT(secret_seal(&a, PLAIN, &sealed), ERR_OK);
        CHECK(use_key(KEY_HEX_B));
        CHECK_INT(secret_open(&a, sealed, &plain), ERR_CONFLICT);
        CHECK(use_key(KEY_B64)); /* the first key again, written in base64 */
        CHECK_INT(secret_open(&a, sealed, &plain), ERR_OK);
        CHECK_STR(plain, PLAIN);
        arena_release(&a);
}

TEST(key_formats)
{
        static const char *const good[] = {KEY_HEX, KEY_B64, KEY_B64_URL, "  " KEY_HEX "\n",
                                           "000102030405060708090A0B0C0D0E0F"
                                           "101112131415161718191A1B1C1D1E1F"};
        static const char *const bad[] = {
                "",
                "   ",
                "short",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",    /* 63 */
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00", /* 33 bytes */
                "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",         /* 30 bytes */
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", /* 34 bytes */
                "00010203 0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"};

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                CHECK(use_key(good[i]));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK_INT(secret_key_set(bad[i], "LOOM_SECRET_KEY", err, sizeof(err)), ERR_INVALID);
                CHECK_HAS(err, "LOOM_SECRET_KEY is not a secret key: want 32 bytes");
                CHECK(!*bad[i] || strstr(err, bad[i]) == NULL); /* never echoes the value */
        }
}

TEST(no_key_no_sealing)
{
        struct arena a;
        const char *out;

        secret_key_forget();
        CHECK(!secret_key_loaded());
        arena_init(&a, 0);
        CHECK_INT(secret_seal(&a, PLAIN, &out), ERR_INTERNAL);
        CHECK_INT(secret_open(&a, "v1:AAAA", &out), ERR_INTERNAL);
        CHECK(use_key(KEY_HEX));
        CHECK(secret_key_loaded());
        arena_release(&a);
}

TEST(too_large_a_plaintext_is_refused)
{
        struct arena a;
        const char *out;
        char *big;

        CHECK(use_key(KEY_HEX));
        arena_init(&a, 0);
        big = arena_alloc(&a, SECRET_MAX_PLAIN + 2);
        memset(big, 'k', SECRET_MAX_PLAIN + 1);
        big[SECRET_MAX_PLAIN + 1] = '\0';
        CHECK_INT(secret_seal(&a, big, &out), ERR_TOO_LARGE);
        big[SECRET_MAX_PLAIN] = '\0';
        CHECK_INT(secret_seal(&a, big, &out), ERR_OK);
        arena_release(&a);
}

TEST(the_plaintext_is_wiped_when_its_arena_resets)
{
        struct arena a;
        const char *sealed, *plain;
        char *copy;

        CHECK(use_key(KEY_HEX));
        arena_init(&a, 1 << 16);
        CHECK_INT(secret_seal(&a, PLAIN, &sealed), ERR_OK);
        copy = strdup(sealed);
        arena_reset(&a);
        CHECK_INT(secret_open(&a, copy, &plain), ERR_OK);
        free(copy);
        CHECK_STR(plain, PLAIN);
        if (ARENA_EXACT) { /* ASan builds free every block at reset: nothing left to look at */
                arena_release(&a);
                return;
        }
        arena_reset(&a); /* the first block is kept: its bytes can be looked at */
        for (size_t i = 0; i < strlen(PLAIN); i++)
                CHECK_INT(plain[i], 0);
        arena_release(&a);
}

/* Writes text to dir/secret.key with mode. */
static bool write_key_file(const char *dir, const char *text, mode_t mode)
{
        char path[512];
        int fd;
        bool ok;

        snprintf(path, sizeof(path), "%s/secret.key", dir);
        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
                return false;
        ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
        close(fd);
        return ok && chmod(path, mode) == 0;
}

TEST(key_from_the_environment_first)
{
        unsetenv("LOOM_VAR");
        setenv("LOOM_SECRET_KEY", KEY_B64, 1);
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_OK);
        setenv("LOOM_SECRET_KEY", "0123", 1);
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_INVALID);
        CHECK_HAS(err, "LOOM_SECRET_KEY is not a secret key");
        unsetenv("LOOM_SECRET_KEY");
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_NOT_FOUND);
        CHECK_HAS(err, "set LOOM_SECRET_KEY");
}

TEST(key_file_in_loom_var)
{
        char dir[] = "/tmp/loom-secret-test.XXXXXX", path[512];

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/secret.key", dir);
        unsetenv("LOOM_SECRET_KEY");
        setenv("LOOM_VAR", dir, 1);
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_NOT_FOUND);
        CHECK_HAS(err, "secret.key");
        CHECK(write_key_file(dir, KEY_HEX "\n", 0600));
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_OK);
        CHECK(write_key_file(dir, KEY_HEX "\n", 0400));
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_OK);
        /* the environment wins over the file */
        setenv("LOOM_SECRET_KEY", "bad", 1);
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_INVALID);
        unsetenv("LOOM_SECRET_KEY");
        CHECK(write_key_file(dir, "not a key\n", 0600));
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_INVALID);
        CHECK_HAS(err, "is not a secret key");
        unlink(path);
        rmdir(dir);
}

TEST(a_key_file_open_to_others_is_refused)
{
        static const mode_t modes[] = {0640, 0604, 0644, 0620, 0602, 0610};
        char dir[] = "/tmp/loom-secret-test.XXXXXX", path[512];

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/secret.key", dir);
        unsetenv("LOOM_SECRET_KEY");
        setenv("LOOM_VAR", dir, 1);
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                CHECK(write_key_file(dir, KEY_HEX "\n", modes[i]));
                CHECK_INT(secret_key_load(err, sizeof(err)), ERR_INVALID);
                CHECK_HAS(err, "group or others");
                CHECK_HAS(err, "chmod 600");
                CHECK(strstr(err, KEY_HEX) == NULL);
        }
        unlink(path);
        CHECK(mkdir(path, 0700) == 0); /* not a regular file */
        CHECK_INT(secret_key_load(err, sizeof(err)), ERR_INVALID);
        CHECK_HAS(err, "not a regular file");
        rmdir(path);
        rmdir(dir);
}

TESTS(TESTLIB_CASE(seal_then_open_gives_the_plaintext_back),
      TESTLIB_CASE(a_tampered_value_is_refused),
      TESTLIB_CASE(malformed_values_are_refused_without_a_crash),
      TESTLIB_CASE(the_wrong_key_does_not_open_it), TESTLIB_CASE(key_formats),
      TESTLIB_CASE(no_key_no_sealing), TESTLIB_CASE(too_large_a_plaintext_is_refused),
      TESTLIB_CASE(the_plaintext_is_wiped_when_its_arena_resets),
      TESTLIB_CASE(key_from_the_environment_first), TESTLIB_CASE(key_file_in_loom_var),
      TESTLIB_CASE(a_key_file_open_to_others_is_refused))
