/* Unit tests for workers/workspace.c: repositories and per-bead worktrees in a temporary dir. */
#include "err.h"
#include "testlib.h"
#include "testshell.h"
#include "workspace.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT "git -c safe.directory=* -c user.name=T -c user.email=t@t -c commit.gpgsign=false"

static char tmp[PATH_MAX];
static char projects[PATH_MAX + 16];
static char err[600];
static struct workspace ws;

static bool is_file(const char *dir, const char *name)
{
        char path[PATH_MAX * 2];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int prepare(const char *project, const char *repo, const char *bead)
{
        err[0] = '\0';
        return workspace_prepare(projects, project, repo, "main", bead, &ws, err, sizeof(err));
}

static void setup(void)
{
        snprintf(tmp, sizeof(tmp), "/tmp/loom-ws-test-XXXXXX");
        if (!mkdtemp(tmp))
                exit(2);
        /* projects_dir does not exist yet: prepare creates it */
        snprintf(projects, sizeof(projects), "%s/projects", tmp);
        /* A source repository to clone: main with hello.txt, bead/b3 with only-b3.txt. */
        if (shf("cd %s && git init -q -b main src && cd src && echo hi > hello.txt && " GIT
                " add . && " GIT " commit -q -m first && git checkout -q -b bead/b3 && "
                "echo b3 > only-b3.txt && " GIT " add . && " GIT " commit -q -m b3 && "
                "git checkout -q main",
                tmp) != 0)
                exit(2);
}

TEST(fresh_repository)
{
        char want[PATH_MAX * 2];

        setup();
        CHECK_INT(prepare("p1", "", "b1"), ERR_OK);
        snprintf(want, sizeof(want), "%s/p1/worktrees/b1", projects);
        CHECK_STR(ws.root, want);
        CHECK_STR(ws.branch, "bead/b1");
        CHECK(!ws.has_remote);
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref HEAD", ws.root), 0);
        CHECK_STR(out, "bead/b1");
        CHECK_INT(shf(GIT " -C %s log --format=%%s", ws.root), 0);
        CHECK_STR(out, "Initial commit");
        CHECK_INT(shf(GIT " -C %s/p1/repo rev-parse --abbrev-ref HEAD", projects), 0);
        CHECK_STR(out, "main");
        CHECK_INT(access(ws.root, W_OK), 0);
}

TEST(clone_of_a_local_repository)
{
        char src[PATH_MAX + 8];

        snprintf(src, sizeof(src), "%s/src", tmp);
        CHECK_INT(prepare("p2", src, "b1"), ERR_OK);
        CHECK(ws.has_remote);
        CHECK(is_file(ws.root, "hello.txt"));
        CHECK(!is_file(ws.root, "only-b3.txt"));
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref HEAD", ws.root), 0);
        CHECK_STR(out, "bead/b1");
        /* no upstream: a plain "git push" could not land on main */
        CHECK(shf(GIT " -C %s rev-parse --abbrev-ref @{u} 2>/dev/null", ws.root) != 0);
}

TEST(existing_worktree_is_reused)
{
        char root[sizeof(ws.root)];

        CHECK_INT(prepare("p2", "unused-after-clone", "b1"), ERR_OK);
        snprintf(root, sizeof(root), "%s", ws.root);
        CHECK_INT(shf("echo wip > %s/wip.txt", root), 0);
        CHECK_INT(prepare("p2", "unused-after-clone", "b1"), ERR_OK);
        CHECK_STR(ws.root, root);
        CHECK(is_file(ws.root, "wip.txt"));
}

TEST(two_beads_two_worktrees)
{
        char first[sizeof(ws.root)];

        CHECK_INT(prepare("p2", "", "b1"), ERR_OK);
        snprintf(first, sizeof(first), "%s", ws.root);
        CHECK_INT(prepare("p2", "", "b2"), ERR_OK);
        CHECK(strcmp(first, ws.root) != 0);
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref HEAD", ws.root), 0);
        CHECK_STR(out, "bead/b2");
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref HEAD", first), 0);
        CHECK_STR(out, "bead/b1");
        CHECK_INT(shf(GIT " -C %s/p2/repo worktree list | wc -l", projects), 0);
        CHECK_STR(out, "3");
}

TEST(start_from_an_existing_bead_branch)
{
        char b1[sizeof(ws.root)];

        /* origin/bead/b3 exists in the source repository */
        CHECK_INT(prepare("p2", "", "b3"), ERR_OK);
        CHECK(is_file(ws.root, "only-b3.txt"));
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref @{u}", ws.root), 0);
        CHECK_STR(out, "origin/bead/b3");
        /* a local branch bead/b4, made from work committed on bead/b1 */
        CHECK_INT(prepare("p1", "", "b1"), ERR_OK);
        snprintf(b1, sizeof(b1), "%s", ws.root);
        CHECK_INT(shf("cd %s && echo x > work.txt && " GIT " add work.txt && " GIT
                      " commit -q -m work && " GIT " branch bead/b4",
                      b1),
                  0);
        CHECK_INT(prepare("p1", "", "b4"), ERR_OK);
        CHECK(is_file(ws.root, "work.txt"));
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref HEAD", ws.root), 0);
        CHECK_STR(out, "bead/b4");
}

TEST(new_commits_on_origin_are_fetched)
{
        CHECK_INT(shf("cd %s/src && echo 2 > second.txt && " GIT " add . && " GIT
                      " commit -q -m second",
                      tmp),
                  0);
        CHECK_INT(prepare("p2", "", "b5"), ERR_OK);
        CHECK(is_file(ws.root, "second.txt"));
}

TEST(release_and_prepare_again)
{
        char root[sizeof(ws.root)];

        CHECK_INT(prepare("p2", "", "b2"), ERR_OK);
        snprintf(root, sizeof(root), "%s", ws.root);
        CHECK_INT(shf("echo keep > %s/kept.txt && cd %s && " GIT " add kept.txt && " GIT
                      " commit -q -m kept",
                      root, root),
                  0);
        CHECK_INT(workspace_release(projects, "p2", "b2", err, sizeof(err)), ERR_OK);
        CHECK(access(root, F_OK) != 0);
        CHECK_INT(shf(GIT " -C %s/p2/repo worktree list | grep -c /b2", projects), 1);
        CHECK_INT(workspace_release(projects, "p2", "b2", err, sizeof(err)), ERR_OK);
        CHECK_INT(workspace_release(projects, "nope", "b2", err, sizeof(err)), ERR_OK);
        /* the branch stayed, so the work comes back */
        CHECK_INT(prepare("p2", "", "b2"), ERR_OK);
        CHECK(is_file(ws.root, "kept.txt"));
}

TEST(broken_worktree_directory_is_moved_aside)
{
        CHECK_INT(shf("mkdir -p %s/p1/worktrees/b9 && echo junk > %s/p1/worktrees/b9/junk",
                      projects, projects),
                  0);
        CHECK_INT(prepare("p1", "", "b9"), ERR_OK);
        CHECK(!is_file(ws.root, "junk"));
        CHECK_INT(shf(GIT " -C %s rev-parse --abbrev-ref HEAD", ws.root), 0);
        CHECK_STR(out, "bead/b9");
        CHECK_INT(shf("ls %s/p1/worktrees | grep -c '^.broken-b9-'", projects), 1);
}

TEST(invalid_ids_refused)
{
        static const char *const bad[] = {"",     "../x",   "a/b", ".hidden", "x y",
                                          "a..b", "x.lock", "..",  "é"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK_INT(prepare(bad[i], "", "b1"), ERR_INVALID);
                CHECK_INT(prepare("p1", "", bad[i]), ERR_INVALID);
                CHECK_INT(workspace_release(projects, "p1", bad[i], err, sizeof(err)), ERR_INVALID);
        }
        CHECK_INT(workspace_prepare(projects, "p1", "", "-x", "b1", &ws, err, sizeof(err)),
                  ERR_INVALID);
        CHECK_INT(workspace_prepare(projects, "p9", "--upload-pack=touch", "main", "b1", &ws, err,
                                    sizeof(err)),
                  ERR_INVALID);
        CHECK(access("../x", F_OK) != 0);
}

TEST(clone_failure_is_an_error)
{
        CHECK_INT(prepare("p3", "/nonexistent/repo.git", "b1"), ERR_UNAVAILABLE);
        CHECK_HAS(err, "git clone failed");
}

TEST(cleanup)
{
        CHECK_INT(shf("rm -rf %s", tmp), 0);
}

TESTS(TESTLIB_CASE(fresh_repository), TESTLIB_CASE(clone_of_a_local_repository),
      TESTLIB_CASE(existing_worktree_is_reused), TESTLIB_CASE(two_beads_two_worktrees),
      TESTLIB_CASE(start_from_an_existing_bead_branch),
      TESTLIB_CASE(new_commits_on_origin_are_fetched), TESTLIB_CASE(release_and_prepare_again),
      TESTLIB_CASE(broken_worktree_directory_is_moved_aside), TESTLIB_CASE(invalid_ids_refused),
      TESTLIB_CASE(clone_failure_is_an_error), TESTLIB_CASE(cleanup))
