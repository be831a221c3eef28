/* Unit tests for fcgi/query.c: decoding, strictness, typed getters. */
#include "err.h"
#include "query.h"
#include "testlib.h"

static struct arena arena;

static void setup(struct request *req, const char *qs)
{
        memset(req, 0, sizeof(*req));
        arena_reset(&arena);
        req->arena = &arena;
        req->query = qs;
}

TEST(decodes_percent_and_plus)
{
        char out[64];

        CHECK_INT(query_decode("a%20b+c%2Fd", 11, out, true), 7);
        CHECK_STR(out, "a b c/d");
        CHECK_INT(query_decode("%zz", 3, out, true), -1);
        CHECK_INT(query_decode("%4", 2, out, true), -1);
        CHECK_INT(query_decode("%", 1, out, true), -1);
        CHECK_INT(query_decode("a%00b", 5, out, true), -1); /* NUL never gets through */
}

TEST(parses_and_reads)
{
        struct request req;
        long n;

        arena_init(&arena, 0);
        setup(&req, "project_id=alpha&limit=50&tag=a%2Bb&empty=");
        CHECK_INT(query_parse(&req), ERR_OK);
        CHECK_INT(req.nquery, 4);
        CHECK_STR(query_get(&req, "project_id"), "alpha");
        CHECK_STR(query_get(&req, "tag"), "a+b");
        CHECK_STR(query_get(&req, "empty"), "");
        CHECK(query_get(&req, "missing") == NULL);
        CHECK_INT(query_long(&req, "limit", 100, 1, 1000, &n), ERR_OK);
        CHECK_INT(n, 50);
        CHECK_INT(query_done(&req), ERR_OK);
        arena_release(&arena);
}

TEST(unused_parameter_is_an_error)
{
        struct request req;

        arena_init(&arena, 0);
        setup(&req, "status=open&stauts=open");
        CHECK_INT(query_parse(&req), ERR_OK);
        CHECK(query_get(&req, "status") != NULL);
        CHECK_INT(query_done(&req), ERR_INVALID);
        CHECK_HAS(req.error, "stauts");
        arena_release(&arena);
}

TEST(bad_query_strings)
{
        static const char *const bad[] = {"a=%zz", "a=1&a=2", "=x", "a=%", NULL};
        struct request req;

        arena_init(&arena, 0);
        for (int i = 0; bad[i]; i++) {
                setup(&req, bad[i]);
                CHECK_INT(query_parse(&req), ERR_INVALID);
                CHECK(req.error[0] != '\0');
        }
        arena_release(&arena);
}

TEST(typed_values)
{
        static const char *const colours[] = {"red", "green", NULL};
        struct request req;
        const char *c;
        long n;

        arena_init(&arena, 0);
        setup(&req, "limit=0&offset=abc&colour=blue");
        CHECK_INT(query_parse(&req), ERR_OK);
        CHECK_INT(query_long(&req, "limit", 100, 1, 1000, &n), ERR_INVALID);
        CHECK_HAS(req.error, "limit: must be an integer from 1 to 1000");
        CHECK_INT(query_long(&req, "offset", 0, 0, 10, &n), ERR_INVALID);
        CHECK_INT(query_enum(&req, "colour", colours, &c), ERR_INVALID);
        CHECK_HAS(req.error, "red, green");
        arena_release(&arena);
}

TESTS(TESTLIB_CASE(decodes_percent_and_plus), TESTLIB_CASE(parses_and_reads),
      TESTLIB_CASE(unused_parameter_is_an_error), TESTLIB_CASE(bad_query_strings),
      TESTLIB_CASE(typed_values))
