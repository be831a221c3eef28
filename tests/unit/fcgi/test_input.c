/* Unit tests for fcgi/input.c: strict JSON and the field table, one case per bad-input class. */
#include "err.h"
#include "input.h"
#include "testlib.h"

static struct arena arena;
static struct request req;

static const char *const colours[] = {"red", "green", NULL};

static const struct field_spec specs[] = {
        {"title", FIELD_STRING, FIELD_REQUIRED, 1, 10, NULL},
        {"count", FIELD_INT, 0, 0, 3, NULL},
        {"flag", FIELD_BOOL, 0, 0, 0, NULL},
        {"colour", FIELD_STRING, 0, 0, 0, colours},
        {"tags", FIELD_STRING_ARRAY, 0, 0, 2, NULL},
        {"ctx", FIELD_OBJECT, 0, 0, 2, NULL},
        {"when", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"deps", FIELD_BEAD_ID_ARRAY, 0, 0, 5, NULL},
        {"id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"conf", FIELD_NUMBER, 0, 0, 1, NULL},
};

/* Parses and checks body; returns the error code, message in req.error. */
static int run(const char *body, bool partial)
{
        json_object *obj;
        int rc;

        arena_reset(&arena);
        memset(&req, 0, sizeof(req));
        req.arena = &arena;
        rc = input_parse(&req, body, strlen(body), false, &obj);
        if (rc)
                return rc;
        return input_check(&req, obj, specs, INPUT_NFIELDS(specs), partial);
}

TEST(good_body_passes)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"title\":\"hi\",\"count\":3,\"flag\":true,\"colour\":\"red\","
                      "\"tags\":[\"a\"],\"ctx\":{\"k\":1},\"when\":\"2026-01-31T12:00:00Z\","
                      "\"deps\":[\"lm-1\",\"ab2-30\"]}",
                      false),
                  ERR_OK);
        CHECK_INT(run("  {\"title\":\"x\"}\n", false), ERR_OK);
        CHECK_INT(run("{\"when\":null}", true), ERR_OK);
        arena_release(&arena);
}

TEST(malformed_json)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"title\":", false), ERR_INVALID);
        CHECK_HAS(req.error, "malformed JSON");
        CHECK_INT(run("{\"title\":\"x\"} trailing", false), ERR_INVALID);
        CHECK_INT(run("{'title':'x'}", false), ERR_INVALID);
        CHECK_INT(run("[1,2]", false), ERR_INVALID);
        CHECK_HAS(req.error, "must be a JSON object");
        CHECK_INT(run("\"\xff\xfe\"", false), ERR_INVALID); /* invalid UTF-8 */
        CHECK_INT(run("", false), ERR_INVALID);
        arena_release(&arena);
}

/* JSON text holds no raw NUL anywhere: not inside, not after the value (found by fuzz_body). */
TEST(nul_bytes_refused)
{
        static const char *const bodies[] = {"{}\0", "{}\n\0\0", "{\0}", "\0{}"};
        static const size_t lens[] = {3, 5, 3, 3};
        json_object *obj;

        arena_init(&arena, 0);
        for (size_t i = 0; i < 4; i++) {
                memset(&req, 0, sizeof(req));
                req.arena = &arena;
                CHECK_INT(input_parse(&req, bodies[i], lens[i], true, &obj), ERR_INVALID);
                CHECK_HAS(req.error, "malformed JSON");
                arena_reset(&arena);
        }
        arena_release(&arena);
}

/* RFC 8259 and nothing more: json-c's strict mode alone takes the first four (found by e2e). */
TEST(json_grammar_is_strict)
{
        static const char *const bad[] = {
                "{'title':1}",
                "{\"count\":NaN}",
                "{\"count\":Infinity}",
                "{\"count\":1.}",
                "{\"count\":-Infinity}",
                "{\"count\":01}",
                "{\"count\":.5}",
                "{\"count\":+1}",
                "{\"count\":1e}",
                "{\"count\":-}",
                "{\"t\":\"a\\q\"}",
                "{\"t\":\"\\u12\"}",
                "{\"t\":\"a\tb\"}",
                "{\"t\":1,}",
                "{,}",
                "{\"t\" 1}",
                "{\"t\":[1,]}",
                "{\"t\":tru}",
                "{\"t\":1}}",
                "{\"t\":[}",
        };
        static const char *const good[] = {
                "{\"ctx\":{\"a\":[1,-0.5e-3,1E+2,0,true,false,null,\"\\\"\\\\/"
                "\\b\\f\\n\\r\\t\\u00e9\"]}}",
                " {\"ctx\" : { } } ",
        };

        arena_init(&arena, 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (run(bad[i], true) != ERR_INVALID || !strstr(req.error, "malformed JSON")) {
                        printf("#   accepted or wrong message for %s: %s\n", bad[i], req.error);
                        CHECK(0);
                }
        }
        CHECK_INT(run(bad[0], true), ERR_INVALID);
        CHECK_STR(req.error, "malformed JSON at byte 1: a member name in double quotes expected");
        CHECK_INT(run(bad[3], true), ERR_INVALID);
        CHECK_STR(req.error, "malformed JSON at byte 10: bad number");
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                CHECK_INT(run(good[i], true), ERR_OK);
        arena_release(&arena);
}

TEST(deep_nesting_refused)
{
        char deep[400];
        int i, n = 0;

        arena_init(&arena, 0);
        n += snprintf(deep, sizeof(deep), "{\"ctx\":");
        for (i = 0; i < 40; i++)
                deep[n++] = '[';
        for (i = 0; i < 40; i++)
                deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        CHECK_INT(run(deep, true), ERR_INVALID);
        CHECK_HAS(req.error, "malformed JSON");
        arena_release(&arena);
}

TEST(wrong_types)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"title\":5}", false), ERR_INVALID);
        CHECK_STR(req.error, "title: must be a string");
        CHECK_INT(run("{\"title\":\"x\",\"count\":\"2\"}", false), ERR_INVALID);
        CHECK_STR(req.error, "count: must be an integer");
        CHECK_INT(run("{\"title\":\"x\",\"count\":1.5}", false), ERR_INVALID);
        CHECK_INT(run("{\"title\":\"x\",\"flag\":1}", false), ERR_INVALID);
        CHECK_STR(req.error, "flag: must be true or false");
        CHECK_INT(run("{\"title\":\"x\",\"tags\":[1]}", false), ERR_INVALID);
        CHECK_STR(req.error, "tags[0]: must be a string");
        CHECK_INT(run("{\"title\":\"x\",\"ctx\":[]}", false), ERR_INVALID);
        CHECK_INT(run("{\"title\":null}", false), ERR_INVALID);
        CHECK_STR(req.error, "title: must not be null");
        arena_release(&arena);
}

TEST(ranges_enums_and_limits)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"title\":\"x\",\"count\":4}", false), ERR_INVALID);
        CHECK_STR(req.error, "count: must be an integer from 0 to 3");
        CHECK_INT(run("{\"title\":\"x\",\"count\":99999999999999999999}", false), ERR_INVALID);
        CHECK_INT(run("{\"title\":\"x\",\"colour\":\"blue\"}", false), ERR_INVALID);
        CHECK_STR(req.error, "colour: 'blue' is not one of red, green");
        CHECK_INT(run("{\"title\":\"\"}", false), ERR_INVALID);
        CHECK_INT(run("{\"title\":\"12345678901\"}", false), ERR_INVALID);
        CHECK_STR(req.error, "title: must be 1 to 10 bytes long");
        CHECK_INT(run("{\"title\":\"x\",\"tags\":[\"a\",\"b\",\"c\"]}", false), ERR_INVALID);
        CHECK_STR(req.error, "tags: at most 2 items");
        CHECK_INT(run("{\"title\":\"x\",\"ctx\":{\"a\":1,\"b\":2,\"c\":3}}", false), ERR_INVALID);
        CHECK_INT(run("{\"title\":\"a\\u0000b\"}", false), ERR_INVALID);
        CHECK_HAS(req.error, "NUL");
        CHECK_INT(run("{\"when\":\"yesterday\"}", true), ERR_INVALID);
        CHECK_INT(run("{\"deps\":[\"not an id\"]}", true), ERR_INVALID);
        CHECK_STR(req.error, "deps[0]: 'not an id' is not a bead id");
        arena_release(&arena);
}

TEST(required_unknown_readonly)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"count\":1}", false), ERR_INVALID);
        CHECK_STR(req.error, "title: is required");
        CHECK_INT(run("{\"count\":1}", true), ERR_OK); /* partial update */
        CHECK_INT(run("{\"title\":\"x\",\"titel\":\"y\"}", false), ERR_INVALID);
        CHECK_STR(req.error, "unknown field 'titel'");
        CHECK_INT(run("{\"title\":\"x\",\"id\":\"lm-1\"}", false), ERR_INVALID);
        CHECK_STR(req.error, "id: is read-only");
        arena_release(&arena);
}

TEST(id_syntax)
{
        CHECK(input_is_bead_id("lm-1"));
        CHECK(input_is_bead_id("Ab9-123456789012345678"));
        CHECK(!input_is_bead_id("lm-"));
        CHECK(!input_is_bead_id("-1"));
        CHECK(!input_is_bead_id("1a-1"));
        CHECK(!input_is_bead_id("lm-1x"));
        CHECK(!input_is_bead_id("abcdefghijklmnopq-1"));
        CHECK(!input_is_bead_id("lm-1234567890123456789"));
        CHECK(input_is_project_id("my-project_2"));
        CHECK(!input_is_project_id("My"));
        CHECK(!input_is_project_id("-x"));
        CHECK(!input_is_project_id(""));
        CHECK(input_is_name("agent 7"));
        CHECK(!input_is_name("bad\nname"));
        CHECK(!input_is_name(""));
        CHECK(input_is_timestamp("2026-01-31"));
        CHECK(input_is_timestamp("2026-01-31T12:00:00Z"));
        CHECK(input_is_timestamp("2026-01-31 12:00:00+02"));
        CHECK(!input_is_timestamp("yesterday"));
        CHECK(!input_is_timestamp("2026-1-31"));
        CHECK(!input_is_timestamp("2026-01-31X"));
}

TEST(numbers_may_be_fractions)
{
        arena_init(&arena, 0);
        CHECK_INT(run("{\"title\":\"x\",\"conf\":0.25}", false), ERR_OK);
        CHECK_INT(run("{\"title\":\"x\",\"conf\":1}", false), ERR_OK);
        CHECK_INT(run("{\"title\":\"x\",\"conf\":0}", false), ERR_OK);
        CHECK_INT(run("{\"title\":\"x\",\"conf\":1.5}", false), ERR_INVALID);
        CHECK_STR(req.error, "conf: must be a number from 0 to 1");
        CHECK_INT(run("{\"title\":\"x\",\"conf\":-0.1}", false), ERR_INVALID);
        CHECK_INT(run("{\"title\":\"x\",\"conf\":\"0.5\"}", false), ERR_INVALID);
        CHECK_STR(req.error, "conf: must be a number from 0 to 1");
        CHECK_INT(run("{\"title\":\"x\",\"conf\":true}", false), ERR_INVALID);
        arena_release(&arena);
}

TESTS(TESTLIB_CASE(numbers_may_be_fractions), TESTLIB_CASE(good_body_passes),
      TESTLIB_CASE(malformed_json), TESTLIB_CASE(nul_bytes_refused),
      TESTLIB_CASE(json_grammar_is_strict), TESTLIB_CASE(deep_nesting_refused),
      TESTLIB_CASE(wrong_types), TESTLIB_CASE(ranges_enums_and_limits),
      TESTLIB_CASE(required_unknown_readonly), TESTLIB_CASE(id_syntax))
