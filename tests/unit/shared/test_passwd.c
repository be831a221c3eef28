/*
 * test_passwd — Argon2id hashing and checking, the password policy, tokens.
 */
#include "err.h"
#include "passwd.h"
#include "testlib.h"

TEST(hash_and_verify)
{
        char h1[PASSWD_HASH_MAX], h2[PASSWD_HASH_MAX];

        CHECK_INT(passwd_hash("Correct-horse-9", h1, sizeof(h1)), ERR_OK);
        CHECK_INT(passwd_hash("Correct-horse-9", h2, sizeof(h2)), ERR_OK);
        CHECK(strncmp(h1, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
        CHECK(strcmp(h1, h2) != 0); /* a fresh salt each time */
        CHECK(passwd_verify(h1, "Correct-horse-9"));
        CHECK(passwd_verify(h2, "Correct-horse-9"));
        CHECK(!passwd_verify(h1, "correct-horse-9"));
        CHECK(!passwd_verify(h1, ""));
        CHECK(!passwd_verify(NULL, "Correct-horse-9"));
        CHECK(!passwd_verify("$2b$10$bcrypt-is-not-argon", "x"));
        CHECK(!passwd_verify("plain-text", "plain-text"));
}

TEST(policy)
{
        char why[128];

        CHECK(passwd_acceptable("Tq7-zebra-lamp", "alice", why, sizeof(why)));
        CHECK(!passwd_acceptable("short1", "alice", why, sizeof(why)));
        CHECK(strstr(why, "too short") != NULL);
        CHECK(!passwd_acceptable("password", "alice", why, sizeof(why)));
        CHECK(strstr(why, "too common") != NULL);
        CHECK(!passwd_acceptable("Password123!", "alice", why, sizeof(why)));
        CHECK(!passwd_acceptable("!!Qwerty2026", "alice", why, sizeof(why)));
        CHECK(!passwd_acceptable("12345678", "alice", why, sizeof(why)));
        CHECK(!passwd_acceptable("zzzzzzzzzz", "alice", why, sizeof(why)));
        CHECK(strstr(why, "repeated") != NULL);
        CHECK(!passwd_acceptable("alicealice", "alicealice", why, sizeof(why)));
        CHECK(strstr(why, "user name") != NULL);
        CHECK(!passwd_acceptable("Alicealice99", "alicealice", why, sizeof(why)));
        {
                char longpw[PASSWD_MAX_LEN + 2];

                memset(longpw, 'a', sizeof(longpw) - 1);
                longpw[0] = 'b';
                longpw[sizeof(longpw) - 1] = '\0';
                CHECK(!passwd_acceptable(longpw, "alice", why, sizeof(why)));
                CHECK(strstr(why, "too long") != NULL);
                longpw[PASSWD_MAX_LEN] = '\0';
                CHECK(passwd_acceptable(longpw, "alice", why, sizeof(why)));
        }
}

TEST(tokens)
{
        char a[PASSWD_TOKEN_MAX], b[PASSWD_TOKEN_MAX], tiny[8];

        CHECK_INT(passwd_token("lms_", a, sizeof(a)), ERR_OK);
        CHECK_INT(passwd_token("lms_", b, sizeof(b)), ERR_OK);
        CHECK_INT(strlen(a), 36);
        CHECK(strncmp(a, "lms_", 4) == 0);
        CHECK(strspn(a + 4, "0123456789abcdef") == 32);
        CHECK(strcmp(a, b) != 0);
        CHECK_INT(passwd_token("lmk_", tiny, sizeof(tiny)), ERR_INTERNAL);
}

TESTS(TESTLIB_CASE(hash_and_verify), TESTLIB_CASE(policy), TESTLIB_CASE(tokens))
