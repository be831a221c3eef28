/* Unit tests for shared/strbuf.c: invariants, the cap, JSON escaping. */
#include "strbuf.h"
#include "testlib.h"

#include <stdlib.h>

TEST(empty_is_terminated)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        CHECK(sb.buf != NULL);
        CHECK_STR(sb.buf, "");
        CHECK_INT(sb.len, 0);
        strbuf_release(&sb);
        CHECK_STR(sb.buf, "");
}

TEST(appends_grow)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        for (int i = 0; i < 1000; i++)
                strbuf_addf(&sb, "%d,", i % 10);
        CHECK_INT(sb.len, 2000);
        CHECK_INT(sb.buf[sb.len], '\0');
        CHECK(!sb.failed);
        strbuf_release(&sb);
}

TEST(cap_is_sticky)
{
        struct strbuf sb;

        strbuf_init(&sb, 8);
        strbuf_addstr(&sb, "12345");
        strbuf_addstr(&sb, "6789"); /* would pass the cap: refused whole */
        CHECK(sb.failed);
        CHECK_STR(sb.buf, "12345");
        strbuf_addstr(&sb, "a"); /* still refused: sticky */
        CHECK_STR(sb.buf, "12345");
        strbuf_reset(&sb);
        CHECK(!sb.failed);
        strbuf_addstr(&sb, "abcdefgh");
        CHECK_STR(sb.buf, "abcdefgh");
        strbuf_release(&sb);
}

TEST(take_hands_over)
{
        struct strbuf sb;
        size_t len;
        char *s;

        strbuf_init(&sb, 0);
        strbuf_addstr(&sb, "hello");
        s = strbuf_take(&sb, &len);
        CHECK_STR(s, "hello");
        CHECK_INT(len, 5);
        CHECK_STR(sb.buf, "");
        free(s);
        s = strbuf_take(&sb, NULL); /* empty buffer still gives a freeable string */
        CHECK_STR(s, "");
        free(s);
}

TEST(json_escaping)
{
        struct strbuf sb;
        const char in[] = "a\"b\\c\nd\x01\te";

        strbuf_init(&sb, 0);
        strbuf_add_json_str(&sb, in, sizeof(in) - 1);
        CHECK_STR(sb.buf, "\"a\\\"b\\\\c\\nd\\u0001\\te\"");
        strbuf_reset(&sb);
        strbuf_add_json_str(&sb, "nul\0x", 5);
        CHECK_STR(sb.buf, "\"nul\\u0000x\"");
        strbuf_release(&sb);
}

/* JSON text is UTF-8: characters pass, bytes that are not part of one become U+FFFD. */
TEST(json_utf8)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        strbuf_add_json_str(&sb, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9); /* é € 😀 */
        CHECK_STR(sb.buf, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
        strbuf_reset(&sb);
        strbuf_add_json_str(&sb,
                            "a\xff\xfe"
                            "b",
                            4);
        CHECK_STR(sb.buf, "\"a\\ufffd\\ufffdb\"");
        strbuf_reset(&sb);
        strbuf_add_json_str(&sb, "x\xc3", 2); /* a character cut in half, e.g. by %.64s */
        CHECK_STR(sb.buf, "\"x\\ufffd\"");
        strbuf_reset(&sb);
        /* overlong '/', a surrogate, past U+10FFFF */
        strbuf_add_json_str(&sb, "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", 9);
        CHECK_STR(sb.buf, "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
        strbuf_release(&sb);
}

TESTS(TESTLIB_CASE(empty_is_terminated), TESTLIB_CASE(appends_grow), TESTLIB_CASE(cap_is_sticky),
      TESTLIB_CASE(take_hands_over), TESTLIB_CASE(json_escaping), TESTLIB_CASE(json_utf8))
