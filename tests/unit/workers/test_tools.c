/* Unit tests for workers/tools.c: every action in a throw-away git worktree, refusals included. */
#include "err.h"
#include "testlib.h"
#include "testshell.h"
#include "tools.h"

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT "git -c safe.directory=* -c user.name=T -c user.email=t@t -c commit.gpgsign=false"

static char base[PATH_MAX], root[PATH_MAX + 8];
static struct tool_env env;
static struct tool_result res;

/* Carries out {"type": type, <fields>}; fields is JSON members text (formatted). */
static bool act(const char *type, const char *fields, ...) __attribute__((format(printf, 2, 3)));

static bool act(const char *type, const char *fields, ...)
{
        char body[70000], json[70100];
        json_object *a;
        va_list ap;
        int rc;

        va_start(ap, fields);
        vsnprintf(body, sizeof(body), fields, ap);
        va_end(ap);
        snprintf(json, sizeof(json), "{\"type\":\"%s\"%s%s}", type, *body ? "," : "", body);
        a = json_tokener_parse(json);
        if (!a) {
                printf("#   bad test JSON: %s\n", json);
                return false;
        }
        rc = tools_run(&env, type, a, &res);
        json_object_put(a);
        if (rc != ERR_OK)
                printf("#   tools_run returned %d: %s\n", rc, res.text.buf);
        return rc == ERR_OK && res.ok;
}

/* The contents of root/name, or "(missing)". */
static const char *slurp(const char *name)
{
        static char buf[65536];
        char path[PATH_MAX * 2];
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", root, name);
        f = fopen(path, "r");
        if (!f)
                return "(missing)";
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static bool exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

TEST(setup)
{
        char made[PATH_MAX];

        snprintf(base, sizeof(base), "/tmp/loom-tools-test-XXXXXX");
        CHECK(mkdtemp(base) != NULL);
        CHECK(realpath(base, made) != NULL);
        snprintf(base, sizeof(base), "%s", made);
        snprintf(root, sizeof(root), "%s/wt", base);
        CHECK_INT(shf("cd %s && git init -q -b main wt && cd wt && " GIT
                      " commit -q --allow-empty -m init && git checkout -q -b bead/t1 && "
                      "echo secret > %s/secret.txt && mkdir %s/outside",
                      base, base, base),
                  0);
        env.root = root;
        env.bead_id = "t1";
        env.branch = "bead/t1";
        env.command_timeout_s = 30;
        env.output_cap = 16384;
        env.author_name = "Agent Smith";
        env.author_email = "smith@agents.test";
        tool_result_init(&res);
}

TEST(handles_exactly_the_tool_types)
{
        static const char *const yes[] = {
                "read_file",   "read_code",     "write_file", "edit_code",   "apply_patch",
                "read_tree",   "search_text",   "move_file",  "rename_file", "delete_file",
                "run_command", "build_project", "run_tests",  "git_status",  "git_diff",
                "git_log",     "git_commit",    "git_push"};

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                CHECK(tools_handles(yes[i]));
        CHECK(!tools_handles("done"));
        CHECK(!tools_handles("close_bead"));
        CHECK(!tools_handles(""));
        CHECK(!act("done", "%s", ""));
        CHECK_HAS(res.text.buf, "unknown action");
}

TEST(write_then_read)
{
        CHECK(act("write_file", "\"path\":\"src/a/b.txt\",\"content\":\"one\\ntwo\\nthree\\n\""));
        CHECK(res.mutated);
        CHECK_STR(res.path, "src/a/b.txt");
        CHECK_HAS(res.text.buf, "created");
        CHECK_STR(slurp("src/a/b.txt"), "one\ntwo\nthree\n");
        CHECK(act("read_file", "\"path\":\"src/a/b.txt\""));
        CHECK(!res.mutated);
        CHECK_STR(res.text.buf, "one\ntwo\nthree\n");
        CHECK(act("read_code", "\"path\":\"./src//a/b.txt\",\"start_line\":2,\"end_line\":2"));
        CHECK_STR(res.text.buf, "two\n");
        CHECK(act("read_file", "\"path\":\"src/a/b.txt\",\"start_line\":\"3\""));
        CHECK_STR(res.text.buf, "three\n");
        CHECK(!act("read_file", "\"path\":\"src/a/b.txt\",\"start_line\":9"));
        CHECK_HAS(res.text.buf, "has 3 lines");
        CHECK(act("write_file", "\"path\":\"src/a/b.txt\",\"content\":\"\""));
        CHECK_HAS(res.text.buf, "wrote");
        CHECK_STR(slurp("src/a/b.txt"), "");
        CHECK(!act("read_file", "\"path\":\"src/nope.txt\""));
        CHECK_HAS(res.text.buf, "does not exist");
        CHECK(!act("read_file", "\"path\":\"src\""));
        CHECK_HAS(res.text.buf, "is a directory");
        CHECK(!act("write_file", "\"path\":\"x.txt\""));
        CHECK_HAS(res.text.buf, "\"content\" is required");
}

TEST(read_file_caps_long_files)
{
        CHECK_INT(shf("awk 'BEGIN{for(i=1;i<=5000;i++)print \"line \" i \" xxxxxxxxx\"}' > "
                      "%s/long.txt && printf 'a\\0b' > %s/bin.dat",
                      root, root),
                  0);
        CHECK(act("read_file", "\"path\":\"long.txt\""));
        CHECK(res.text.len <= 32000 + 200);
        CHECK(strncmp(res.text.buf, "line 1 xxxxxxxxx\n", 17) == 0);
        CHECK_HAS(res.text.buf, "truncated at 32000 characters; continue with start_line=");
        CHECK(act("read_file", "\"path\":\"long.txt\",\"start_line\":4999"));
        CHECK_STR(res.text.buf, "line 4999 xxxxxxxxx\nline 5000 xxxxxxxxx\n");
        CHECK(act("read_file", "\"path\":\"bin.dat\""));
        CHECK_HAS(res.text.buf, "binary file");
        CHECK_INT(shf("rm %s/long.txt %s/bin.dat", root, root), 0);
}

TEST(paths_that_leave_are_refused)
{
        CHECK(!act("read_file", "\"path\":\"../secret.txt\""));
        CHECK_HAS(res.text.buf, "contains \"..\"");
        CHECK_STR(res.path, "../secret.txt");
        CHECK(!act("read_file", "\"path\":\"src/../../secret.txt\""));
        CHECK_HAS(res.text.buf, "contains \"..\"");
        CHECK(!act("read_file", "\"path\":\"/etc/passwd\""));
        CHECK_HAS(res.text.buf, "is absolute");
        CHECK(!act("read_file", "\"path\":\".git/config\""));
        CHECK_HAS(res.text.buf, "inside .git");
        CHECK(!act("read_file", "\"path\":\"./.git/HEAD\""));
        CHECK_HAS(res.text.buf, "inside .git");
        CHECK(!act("read_file", "\"path\":\"\""));
        CHECK_HAS(res.text.buf, "empty");
        CHECK(!act("read_file", "%s", ""));
        CHECK_HAS(res.text.buf, "\"path\" is required");
        CHECK(!act("write_file", "\"path\":\"a\\u0000b\",\"content\":\"x\""));
        CHECK_HAS(res.text.buf, "NUL");
        CHECK(!act("write_file", "\"path\":\"../escape.txt\",\"content\":\"x\""));
        CHECK_INT(shf("ls %s", base), 0);
        CHECK(strstr(out, "escape") == NULL);
        CHECK(!act("write_file", "\"path\":\".git/hooks/pre-commit\",\"content\":\"x\""));
        CHECK(!act("delete_file", "\"path\":\"../secret.txt\""));
        CHECK_STR(slurp("../secret.txt"), "secret\n");
}

TEST(symlinks_are_never_followed)
{
        char p[PATH_MAX * 2];

        CHECK_INT(shf("cd %s && ln -s %s/secret.txt out.txt && ln -s /etc/passwd passwd && "
                      "ln -s %s/outside linkdir && mkdir -p real && ln -s ../real real/loop",
                      root, base, base),
                  0);
        CHECK(!act("read_file", "\"path\":\"out.txt\""));
        CHECK_HAS(res.text.buf, "is a symlink; paths must stay inside the worktree");
        CHECK(!act("read_file", "\"path\":\"passwd\""));
        CHECK_HAS(res.text.buf, "is a symlink");
        CHECK(!act("write_file", "\"path\":\"out.txt\",\"content\":\"pwned\""));
        CHECK_HAS(res.text.buf, "is a symlink");
        CHECK_STR(slurp("../secret.txt"), "secret\n");
        /* a symlinked directory in the middle of the path */
        CHECK(!act("write_file", "\"path\":\"linkdir/new.txt\",\"content\":\"x\""));
        CHECK_HAS(res.text.buf, "\"linkdir\" is a symlink");
        snprintf(p, sizeof(p), "%s/outside/new.txt", base);
        CHECK(!exists(p));
        CHECK(!act("read_file", "\"path\":\"real/loop/x\""));
        CHECK_HAS(res.text.buf, "\"real/loop\" is a symlink");
        CHECK(!act("edit_code", "\"path\":\"out.txt\",\"old_text\":\"secret\",\"new_text\":\"x\""));
        CHECK(!act("move_file", "\"source_path\":\"src\",\"target_path\":\"linkdir/src\""));
        CHECK_HAS(res.text.buf, "is a symlink");
        CHECK(!act("run_command", "\"command\":\"ls\",\"working_dir\":\"linkdir\""));
        CHECK_HAS(res.text.buf, "is a symlink");
        CHECK(!act("search_text", "\"query\":\"secret\",\"path\":\"linkdir\""));
        /* search and tree list links but never enter them */
        CHECK(act("search_text", "\"query\":\"secret\""));
        CHECK_HAS(res.text.buf, "no matches");
        CHECK(act("read_tree", "%s", ""));
        CHECK_HAS(res.text.buf, "linkdir -> ");
        /* deleting a link removes the link, not its target */
        CHECK(act("delete_file", "\"path\":\"out.txt\""));
        CHECK_STR(slurp("../secret.txt"), "secret\n");
        CHECK_INT(shf("cd %s && rm -rf passwd linkdir real", root), 0);
}

TEST(edit_code_exactly_once)
{
        CHECK(act("write_file", "\"path\":\"e.py\",\"content\":\"x = 1\\ny = 1\\n\""));
        CHECK(!act("edit_code", "\"path\":\"e.py\",\"old_text\":\"= 1\",\"new_text\":\"= 2\""));
        CHECK_HAS(res.text.buf, "matches 2 times");
        CHECK(!res.mutated);
        CHECK(!act("edit_code", "\"path\":\"e.py\",\"old_text\":\"z = 1\",\"new_text\":\"z\""));
        CHECK_HAS(res.text.buf, "found 0 times");
        CHECK(!act("edit_code", "\"path\":\"e.py\",\"old_text\":\"\",\"new_text\":\"z\""));
        CHECK(act("edit_code", "\"path\":\"e.py\",\"old_text\":\"y = 1\",\"new_text\":\"y = 3\""));
        CHECK(res.mutated);
        CHECK_HAS(res.text.buf, "line 2");
        CHECK_STR(slurp("e.py"), "x = 1\ny = 3\n");
        CHECK(act("edit_code", "\"path\":\"e.py\",\"old\":\"x = 1\\n\",\"new\":\"\""));
        CHECK_STR(slurp("e.py"), "y = 3\n");
}

TEST(apply_patch_good_and_bad)
{
        CHECK(act("write_file", "\"path\":\"p.txt\",\"content\":\"a\\nb\\nc\\n\""));
        CHECK(act("apply_patch",
                  "\"patch\":\"--- a/p.txt\\n+++ b/p.txt\\n@@ -1,3 +1,3 @@\\n a\\n-b\\n"
                  "+B\\n c\\n\""));
        CHECK(res.mutated);
        CHECK_STR(res.path, "p.txt");
        CHECK_STR(slurp("p.txt"), "a\nB\nc\n");
        /* the same hunk again no longer applies: git says why, nothing changes */
        CHECK(!act("apply_patch", "\"patch\":\"--- a/p.txt\\n+++ b/p.txt\\n@@ -1,3 +1,3 @@\\n "
                                  "a\\n-b\\n+B\\n c\\n\""));
        CHECK_HAS(res.text.buf, "does not apply");
        CHECK_HAS(res.text.buf, "patch failed");
        CHECK(!res.mutated);
        CHECK_STR(slurp("p.txt"), "a\nB\nc\n");
        CHECK(!act("apply_patch", "\"patch\":\"--- a/../x\\n+++ b/../x\\n@@ -0,0 +1 @@\\n+x\\n\""));
        CHECK_HAS(res.text.buf, "contains \"..\"");
        CHECK(!act("apply_patch", "\"patch\":\"this is not a diff\""));
        /* a new file, through edit_code's patch field, without a final newline */
        CHECK(act("edit_code", "\"patch\":\"--- /dev/null\\n+++ b/new/n.txt\\n@@ -0,0 +1 @@\\n"
                               "+hello\""));
        CHECK_STR(slurp("new/n.txt"), "hello\n");
}

TEST(read_tree_lists_with_depth_and_limit)
{
        CHECK_INT(shf("mkdir -p %s/d1/d2/d3 && touch %s/d1/d2/d3/deep.txt %s/d1/top.txt", root,
                      root, root),
                  0);
        CHECK(act("read_tree", "\"path\":\"d1\""));
        CHECK_STR(res.text.buf, "d1/d2/\nd1/d2/d3/\nd1/top.txt\n");
        CHECK(act("read_tree", "\"path\":\"d1\",\"max_depth\":6"));
        CHECK_HAS(res.text.buf, "d1/d2/d3/deep.txt\n");
        CHECK(act("read_tree", "%s", ""));
        CHECK(strstr(res.text.buf, ".git") == NULL);
        CHECK_HAS(res.text.buf, "src/\nsrc/a/\n");
        CHECK(act("read_tree", "\"path\":\"d1\",\"limit\":1"));
        CHECK_HAS(res.text.buf, "d1/d2/\n[… stopped at 1 entries");
        CHECK(!act("read_tree", "\"path\":\"e.py\""));
        CHECK_HAS(res.text.buf, "not a directory");
}

TEST(search_text_in_files)
{
        CHECK(act("write_file", "\"path\":\"s/one.c\",\"content\":\"int needle;\\nint x;\\n"
                                "char *s = \\\"Needle\\\";\\n\""));
        CHECK_INT(shf("printf 'needle\\0' > %s/s/bin.o && echo needle > %s/.git/needle.txt", root,
                      root),
                  0);
        CHECK(act("search_text", "\"query\":\"needle\",\"path\":\"s\""));
        CHECK_STR(res.text.buf, "s/one.c:1: int needle;\n");
        CHECK(act("search_text", "\"query\":\"needle\",\"path\":\"s\",\"ignore_case\":true"));
        CHECK_STR(res.text.buf, "s/one.c:1: int needle;\ns/one.c:3: char *s = \"Needle\";\n");
        CHECK(act("search_text", "\"query\":\"^int [a-z]+;\",\"regex\":true,\"limit\":1"));
        CHECK_HAS(res.text.buf,
                  "s/one.c:1: int needle;\n[… more matches; stopped at limit 1 (max 500)");
        CHECK(act("search_text", "\"query\":\"x;\",\"path\":\"s/one.c\""));
        CHECK_STR(res.text.buf, "s/one.c:2: int x;\n");
        CHECK(act("search_text", "\"query\":\"no-such-text-anywhere\""));
        CHECK_HAS(res.text.buf, "no matches");
        CHECK(!act("search_text", "\"path\":\"s\""));
        CHECK_HAS(res.text.buf, "\"query\" is required");
}

TEST(move_and_delete)
{
        CHECK(act("write_file", "\"path\":\"m/a.txt\",\"content\":\"A\""));
        CHECK(act("move_file", "\"source_path\":\"m/a.txt\",\"target_path\":\"m2/b.txt\""));
        CHECK(res.mutated);
        CHECK_STR(slurp("m2/b.txt"), "A");
        CHECK_STR(slurp("m/a.txt"), "(missing)");
        CHECK(act("rename_file", "\"source_path\":\"m2/b.txt\",\"new_name\":\"c.txt\""));
        CHECK_STR(slurp("m2/c.txt"), "A");
        CHECK(act("write_file", "\"path\":\"m2/d.txt\",\"content\":\"D\""));
        CHECK(!act("move_file", "\"source_path\":\"m2/c.txt\",\"target_path\":\"m2/d.txt\""));
        CHECK_HAS(res.text.buf, "already exists");
        CHECK(!act("move_file", "\"source_path\":\"m2/c.txt\",\"target_path\":\"../c.txt\""));
        CHECK(!act("rename_file", "\"source_path\":\"m2/c.txt\",\"new_name\":\"../c.txt\""));
        CHECK(!act("move_file", "\"source_path\":\"m2/zzz\",\"target_path\":\"m2/y\""));
        CHECK_HAS(res.text.buf, "does not exist");
        CHECK(!act("delete_file", "\"path\":\"m2\""));
        CHECK_HAS(res.text.buf, "not empty");
        CHECK(act("delete_file", "\"path\":\"m2/c.txt\""));
        CHECK(res.mutated);
        CHECK(act("delete_file", "\"path\":\"m2/d.txt\""));
        CHECK(act("delete_file", "\"path\":\"m2\""));
        CHECK(!act("delete_file", "\"path\":\"m2\""));
        CHECK_HAS(res.text.buf, "does not exist");
        CHECK(!act("delete_file", "\"path\":\".\""));
}

TEST(run_command_runs_allowed_programs)
{
        CHECK(act("run_command", "\"command\":\"echo hi && echo 'a b' | wc -w\""));
        CHECK(res.ran_command);
        CHECK(!res.mutated);
        CHECK_STR(res.command, "echo hi && echo 'a b' | wc -w");
        CHECK_INT(res.exit_code, 0);
        CHECK(strncmp(res.text.buf, "exit code 0 (", 13) == 0);
        CHECK_HAS(res.text.buf, "ms)\nhi\n2\n");
        CHECK(act("run_command", "\"command\":\"echo made > made.txt 2>&1; cat made.txt "
                                 "2>/dev/null\""));
        CHECK_STR(slurp("made.txt"), "made\n");
        CHECK(act("run_command", "\"command\":\"pwd\",\"working_dir\":\"src/a\""));
        CHECK_HAS(res.text.buf, "/wt/src/a\n");
        CHECK(!act("run_command", "\"command\":\"false\""));
        CHECK(res.ran_command);
        CHECK_INT(res.exit_code, 1);
        CHECK_HAS(res.text.buf, "exit code 1 (");
        CHECK(!act("run_command", "\"command\":\"ls no-such-file\""));
        CHECK_HAS(res.text.buf, "No such file");
        /* the environment is scrubbed: HOME is not the worktree, no secrets */
        setenv("LOOM_SECRET", "hunter2", 1);
        CHECK(act("run_command", "\"command\":\"echo \\\"[$HOME] [$LOOM_SECRET]\\\"\""));
        CHECK_HAS(res.text.buf, "/.home-wt] []");
}

TEST(run_command_refusals)
{
        static const struct {
                const char *cmd, *why;
        } bad[] = {
                {"curl http://example.com", "\"curl\" is not an allowed program"},
                {"sh -c ls", "\"sh\" is not an allowed program"},
                {"bash x.sh", "not an allowed program"},
                {"env", "not an allowed program"},
                {"sudo ls", "not an allowed program"},
                {"ls && wget x", "\"wget\" is not"},
                {"ls | nc host 1", "\"nc\" is not"},
                {"echo $(id)", "command substitution ($(...))"},
                {"echo \\\"$(id)\\\"", "command substitution"},
                {"echo `id`", "backticks"},
                {"echo hi > /tmp/x", "absolute path (/tmp/x)"},
                {"echo hi >> ../x", "leaves the worktree"},
                {"cat < /etc/passwd", "absolute path"},
                {"echo hi > .git/config", "leaves the worktree or enters .git"},
                {"echo hi >$HOME/x", "no $ or ~"},
                {"cat <<EOF", "here-documents"},
                {"ls &", "background"},
                {"ls & curl x", "background"},
                {"FOO=1 ls", "environment assignments (FOO=1)"},
                {"cd / && ls", "working_dir"},
                {"(curl x)", "subshells"},
                {"git push origin main", "git_push action"},
                {"git -C . push", "git_push action"},
                {"rm -rf /", "not a path inside the worktree"},
                {"rm -rf ../x", "not a path inside the worktree"},
                {"cp x ~/y", "not a path inside the worktree"},
                {"rm -rf .git", "not a path inside the worktree"},
                {"echo 'unterminated", "unterminated"},
                {"./run.sh", "not an allowed program"},
                {"/usr/bin/curl x", "not an allowed program"},
        };
        char prev[64];

        CHECK(strlen(slurp("made.txt")) < sizeof(prev));
        memcpy(prev, slurp("made.txt"), strlen(slurp("made.txt")) + 1);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (act("run_command", "\"command\":\"%s\"", bad[i].cmd)) {
                        printf("#   allowed: %s\n", bad[i].cmd);
                        CHECK(false);
                }
                CHECK(!res.ran_command);
                if (!strstr(res.text.buf, bad[i].why)) {
                        printf("#   %s -> %s\n", bad[i].cmd, res.text.buf);
                        CHECK(false);
                }
        }
        /* the messages name what was wrong */
        CHECK(!act("run_command", "\"command\":\"curl http://x\""));
        CHECK_HAS(res.text.buf, "\"curl\" is not an allowed program. Allowed: go, make");
        CHECK(!act("run_command", "\"command\":\"echo $(id)\""));
        CHECK_HAS(res.text.buf, "command substitution ($(...)) is not allowed");
        CHECK(!act("run_command", "\"command\":\"echo hi > /tmp/x\""));
        CHECK_HAS(res.text.buf, "absolute path (/tmp/x)");
        CHECK(!act("run_command", "\"command\":\"ls\",\"working_dir\":\"../\""));
        CHECK(!act("run_command", "\"command\":\"\""));
        CHECK_STR(slurp("made.txt"), prev);
        /* quoted, the same characters are data */
        CHECK(act("run_command", "\"command\":\"echo '$(id) `id` > /tmp/x &' \\\"a;b\\\"\""));
        CHECK_HAS(res.text.buf, "$(id) `id` > /tmp/x & a;b\n");
}

TEST(run_command_timeout_and_output_cap)
{
        size_t cap = env.output_cap;
        long n;

        CHECK(!act("run_command", "\"command\":\"tail -f made.txt\",\"timeout_seconds\":1"));
        CHECK(res.timed_out);
        CHECK(res.duration_ms < 4000);
        CHECK_HAS(res.text.buf, "timed out after 1 s");
        env.output_cap = 200;
        CHECK(act("run_command", "\"command\":\"awk 'BEGIN{for(i=1;i<=20000;i++)print i}'\""));
        env.output_cap = cap;
        CHECK_HAS(res.text.buf, "\n1\n2\n3\n");
        CHECK_HAS(res.text.buf, "bytes omitted");
        n = (long)res.text.len;
        CHECK(n > 12 && strcmp(res.text.buf + n - 12, "19999\n20000\n") == 0);
        CHECK(n < 400);
}

TEST(build_and_test_detection)
{
        CHECK(!act("build_project", "%s", ""));
        CHECK_HAS(res.text.buf, "no build system found (looked for Makefile, package.json, "
                                "Cargo.toml, go.mod)");
        CHECK(!act("run_tests", "%s", ""));
        CHECK_HAS(res.text.buf, "no test command found");
        CHECK(act("write_file", "\"path\":\"Makefile\",\"content\":\"all:\\n\\t@echo built\\n"
                                "check:\\n\\t@echo checked\\n\""));
        CHECK(act("build_project", "%s", ""));
        CHECK(res.ran_command);
        CHECK_STR(res.command, "make");
        CHECK_HAS(res.text.buf, "$ make\nexit code 0");
        CHECK_HAS(res.text.buf, "built\n");
        CHECK(act("run_tests", "%s", ""));
        CHECK_STR(res.command, "make check");
        CHECK_HAS(res.text.buf, "checked\n");
        CHECK(act("write_file", "\"path\":\"Makefile\",\"content\":\"all:\\n\\t@echo built\\n"
                                "unit test: all\\n\\t@echo tested; exit 3\\n\""));
        CHECK(!act("run_tests", "\"test_pattern\":\"foo\""));
        CHECK_STR(res.command, "make test");
        CHECK_INT(res.exit_code, 2);
        CHECK_HAS(res.text.buf, "tested\n");
        CHECK_HAS(res.text.buf, "test_pattern is not passed to make");
        CHECK(act("build_project", "\"build_command\":\"echo custom\""));
        CHECK_HAS(res.text.buf, "$ echo custom\n");
        CHECK(!act("run_tests", "\"test_command\":\"curl x\""));
        CHECK(!res.ran_command);
        CHECK(!act("run_tests", "\"test_pattern\":\"--config=x\""));
        CHECK(act("delete_file", "\"path\":\"Makefile\""));
        CHECK(act("write_file", "\"path\":\"tests/test_x.py\",\"content\":\"\""));
        CHECK(!act("run_tests", "\"test_pattern\":\"smoke\",\"timeout_seconds\":60"));
        CHECK_STR(res.command, "python3 -m pytest -k smoke");
        CHECK(act("delete_file", "\"path\":\"tests/test_x.py\""));
        CHECK(act("delete_file", "\"path\":\"tests\""));
}

TEST(git_status_diff_commit_log)
{
        char sha[64];

        CHECK(act("git_status", "%s", ""));
        CHECK(res.ran_command);
        CHECK_STR(res.command, "git status --short --branch");
        CHECK_HAS(res.text.buf, "## bead/t1\n");
        CHECK_HAS(res.text.buf, "?? e.py\n");
        CHECK(act("git_commit", "\"commit_message\":\"feat: first files\""));
        CHECK(res.mutated);
        CHECK_INT(shf("cd %s && git rev-parse --short HEAD", root), 0);
        CHECK(strlen(out) < sizeof(sha));
        memcpy(sha, out, strlen(out) + 1);
        CHECK_HAS(res.text.buf, sha);
        CHECK_HAS(res.text.buf, "committed ");
        CHECK_HAS(res.command, "git commit");
        CHECK_INT(shf("cd %s && git log -1 --format='%%an <%%ae>|%%B'", root), 0);
        CHECK_STR(out, "Agent Smith <smith@agents.test>|feat: first files\n\nLoom-Bead: t1");
        CHECK(!act("git_commit", "\"commit_message\":\"again\""));
        CHECK_HAS(res.text.buf, "nothing to commit");
        CHECK(!res.mutated);
        CHECK(!act("git_commit", "%s", ""));
        CHECK_HAS(res.text.buf, "commit_message");
        /* diff of a tracked change, then staged */
        CHECK(act("edit_code", "\"path\":\"e.py\",\"old_text\":\"y = 3\",\"new_text\":\"y = 4\""));
        CHECK(act("write_file", "\"path\":\"other.txt\",\"content\":\"o\""));
        CHECK(act("git_diff", "%s", ""));
        CHECK_HAS(res.text.buf, "-y = 3\n+y = 4\n");
        CHECK(act("git_diff", "\"staged\":true"));
        CHECK_HAS(res.text.buf, "nothing staged");
        CHECK(act("git_diff", "\"path\":\"p.txt\""));
        CHECK_HAS(res.text.buf, "no differences");
        CHECK(!act("git_diff", "\"path\":\"../x\""));
        /* only the listed files, after HEAD wandered off the branch */
        CHECK_INT(shf("cd %s && git checkout -q --detach", root), 0);
        CHECK(!act("git_commit", "\"message\":\"x\",\"files\":[\"../x\"]"));
        CHECK(act("git_commit", "\"message\":\"fix: y\",\"files\":[\"e.py\"]"));
        CHECK_INT(shf("cd %s && git rev-parse --abbrev-ref HEAD && git status --short", root), 0);
        CHECK_STR(out, "bead/t1\n?? other.txt");
        CHECK(act("git_log", "\"max_count\":1"));
        CHECK_HAS(res.text.buf, "fix: y\nLoom-Bead: t1\n");
        CHECK(strstr(res.text.buf, "feat: first files") == NULL);
        CHECK(act("git_log", "%s", ""));
        CHECK_HAS(res.text.buf, "feat: first files");
        CHECK_HAS(res.text.buf, "init");
}

TEST(git_push_only_the_bead_branch)
{
        CHECK(!act("git_push", "%s", ""));
        CHECK_STR(res.text.buf, "this project has no remote to push to");
        CHECK(!res.ran_command);
        CHECK_INT(shf("cd %s && git init -q --bare remote.git && cd wt && git remote add origin "
                      "%s/remote.git",
                      base, base),
                  0);
        env.has_remote = true;
        CHECK(act("git_push", "%s", ""));
        CHECK_STR(res.command, "git push -u origin bead/t1");
        CHECK_INT(shf("git --git-dir=%s/remote.git rev-parse bead/t1 && cd %s && git rev-parse "
                      "HEAD",
                      base, root),
                  0);
        CHECK(strncmp(out, out + strcspn(out, "\n") + 1, 40) == 0);
        env.branch = "main";
        CHECK(!act("git_push", "%s", ""));
        CHECK_HAS(res.text.buf, "refusing to push main");
        env.branch = "trunk";
        env.default_branch = "trunk";
        CHECK(!act("git_push", "%s", ""));
        CHECK_HAS(res.text.buf, "refusing to push trunk");
        env.branch = "bead/t1";
        env.default_branch = NULL;
        env.has_remote = false;
        CHECK_INT(shf("git --git-dir=%s/remote.git rev-parse --verify -q main", base), 1);
}

TEST(cleanup)
{
        tool_result_release(&res);
        CHECK_INT(shf("rm -rf %s", base), 0);
}

TESTS(TESTLIB_CASE(setup), TESTLIB_CASE(handles_exactly_the_tool_types),
      TESTLIB_CASE(write_then_read), TESTLIB_CASE(read_file_caps_long_files),
      TESTLIB_CASE(paths_that_leave_are_refused), TESTLIB_CASE(symlinks_are_never_followed),
      TESTLIB_CASE(edit_code_exactly_once), TESTLIB_CASE(apply_patch_good_and_bad),
      TESTLIB_CASE(read_tree_lists_with_depth_and_limit), TESTLIB_CASE(search_text_in_files),
      TESTLIB_CASE(move_and_delete), TESTLIB_CASE(run_command_runs_allowed_programs),
      TESTLIB_CASE(run_command_refusals), TESTLIB_CASE(run_command_timeout_and_output_cap),
      TESTLIB_CASE(build_and_test_detection), TESTLIB_CASE(git_status_diff_commit_log),
      TESTLIB_CASE(git_push_only_the_bead_branch), TESTLIB_CASE(cleanup))
