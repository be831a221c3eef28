/* Unit tests for tools_lesson() (workers/tools.c): what a failed build or test run teaches. */
#include "testlib.h"
#include "tools.h"

static void fake(struct tool_result *tr, const char *command, int exit_code, const char *text)
{
        tool_result_init(tr);
        tr->ran_command = true;
        snprintf(tr->command, sizeof(tr->command), "%s", command);
        tr->exit_code = exit_code;
        strbuf_addstr(&tr->text, text);
}

TEST(a_failing_test_run_names_its_first_error_line)
{
        struct tool_result tr;
        struct tool_lesson l;

        fake(&tr, "make test", 2,
             "$ make test\nexit code 2 (31 ms)\nrunning 3 tests\nok 1\nFAIL: test_greeting: "
             "expected hello\nmake: *** [Makefile:2: test] Error 1\n");
        CHECK(tools_lesson("run_tests", &tr, &l));
        CHECK_STR(l.category, "test_failure");
        CHECK_STR(l.title, "Tests failed: FAIL: test_greeting: expected hello");
        CHECK_STR(l.key, "make test | FAIL: test_greeting: expected hello");
        CHECK_HAS(l.detail, "`make test` failed (exit code 2)");
        CHECK_HAS(l.detail, "running 3 tests");
        tool_result_release(&tr);
}

TEST(a_build_without_error_words_uses_its_last_line)
{
        struct tool_result tr;
        struct tool_lesson l;

        fake(&tr, "cargo build", 101,
             "$ cargo build\nexit code 101 (5 ms)\nCompiling x\nstopped here\n");
        CHECK(tools_lesson("build_project", &tr, &l));
        CHECK_STR(l.category, "compiler_error");
        CHECK_STR(l.title, "Build failed: stopped here");
        tool_result_release(&tr);
        fake(&tr, "make", 0, "$ make\ntimed out after 5 s; the command was killed\n");
        tr.timed_out = true;
        CHECK(tools_lesson("build_project", &tr, &l));
        CHECK_STR(l.title, "Build timed out: exit code 0");
        tool_result_release(&tr);
}

TEST(successes_and_other_actions_teach_nothing)
{
        struct tool_result tr;
        struct tool_lesson l;

        fake(&tr, "make test", 0, "$ make test\nexit code 0 (3 ms)\nall good\n");
        CHECK(!tools_lesson("run_tests", &tr, &l));
        tool_result_release(&tr);
        fake(&tr, "ls", 2, "$ ls\nexit code 2\nerror: nope\n");
        CHECK(!tools_lesson("run_command", &tr, &l));
        tr.ran_command = false;
        CHECK(!tools_lesson("run_tests", &tr, &l));
        tool_result_release(&tr);
}

TESTS(TESTLIB_CASE(a_failing_test_run_names_its_first_error_line),
      TESTLIB_CASE(a_build_without_error_words_uses_its_last_line),
      TESTLIB_CASE(successes_and_other_actions_teach_nothing))
