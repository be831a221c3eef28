/* Unit tests for workers/skill.c: the SKILL.md front matter subset and its errors. */
#include "err.h"
#include "skill.h"
#include "testlib.h"

static struct arena arena;
static struct skill sk;
static char err[256];

static int parse(const char *text)
{
        arena_reset(&arena);
        err[0] = '\0';
        return skill_parse(text, strlen(text), &arena, &sk, err, sizeof(err));
}

TEST(full_file)
{
        arena_init(&arena, 0);
        CHECK_INT(parse("---\n"
                        "name: qa-engineer\n"
                        "description: \"Tests things: all of them\"\n"
                        "license: Apache-2.0\n"
                        "# a comment\n"
                        "metadata:\n"
                        "  role: QA Engineer\n"
                        "  specialties:\n"
                        "    - test plans\n"
                        "    - 'release readiness'\n"
                        "  author: loom   # trailing comment\n"
                        "  version: \"1.0\"\n"
                        "  autonomy_level: full\n"
                        "unknown_key: ignored\n"
                        "---\n"
                        "\n"
                        "# QA Engineer\n"
                        "Body.\n"),
                  ERR_OK);
        CHECK_STR(sk.name, "qa-engineer");
        CHECK_STR(sk.description, "Tests things: all of them");
        CHECK_STR(sk.role, "QA Engineer");
        CHECK_INT(sk.nspecialties, 2);
        CHECK_STR(sk.specialties[1], "release readiness");
        CHECK_STR(sk.author, "loom");
        CHECK_STR(sk.version, "1.0");
        CHECK_STR(sk.autonomy_level, "full");
        CHECK_STR(sk.instructions, "# QA Engineer\nBody.\n");
        arena_release(&arena);
}

TEST(crlf_and_escapes)
{
        arena_init(&arena, 0);
        CHECK_INT(parse("---\r\nname: x\r\ndescription: \"say \\\"hi\\\"\"\r\n---\r\nbody"),
                  ERR_OK);
        CHECK_STR(sk.description, "say \"hi\"");
        CHECK_STR(sk.instructions, "body");
        arena_release(&arena);
}

TEST(errors_name_the_line)
{
        arena_init(&arena, 0);
        CHECK_INT(parse("name: x\n"), ERR_INVALID);
        CHECK_HAS(err, "line 1");
        CHECK_INT(parse("---\nname: x\n"), ERR_INVALID);
        CHECK_HAS(err, "not closed");
        CHECK_INT(parse("---\nname: x\njust words\n---\n"), ERR_INVALID);
        CHECK_HAS(err, "line 3");
        CHECK_INT(parse("---\ndescription: \"open\n---\n"), ERR_INVALID);
        CHECK_HAS(err, "unterminated");
        CHECK_INT(parse("---\ndescription: d\n---\nbody"), ERR_INVALID);
        CHECK_HAS(err, "name is required");
        CHECK_INT(parse(""), ERR_INVALID);
        arena_release(&arena);
}

TESTS(TESTLIB_CASE(full_file), TESTLIB_CASE(crlf_and_escapes), TESTLIB_CASE(errors_name_the_line))
