/*
 * workspace — one repository per project, one git worktree per bead; see workspace.h.
 *
 * git runs through proc (argv, scrubbed environment, timeout) with -c safe.directory=* because
 * the repository may belong to another user.  Ids become path components and ref names, so
 * they are checked before anything touches the disk.
 */
#include "workspace.h"
#include "err.h"
#include "log.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WS_GIT_TIMEOUT_S 600 /* a clone or fetch of a big repository */
#define WS_OUTPUT_CAP    8192
#define WS_ID_MAX        128
#define WS_MAX_ARGS      24
#define WS_PATH_MAX      (PATH_MAX + 512) /* a path under the project directory */

/* Formats a path into out; false when it does not fit (the caller refuses it). */
static bool ws_path(char *out, size_t outlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static bool ws_path(char *out, size_t outlen, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(out, outlen, fmt, ap);
        va_end(ap);
        return n >= 0 && (size_t)n < outlen;
}

/* A path component we create: [A-Za-z0-9_.-], no leading '.', no "..", not a ".lock" ref. */
static bool ws_valid_id(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > WS_ID_MAX || id[0] == '.' || strstr(id, ".."))
                return false;
        if (id[n - 1] == '.' || (n >= 5 && strcmp(id + n - 5, ".lock") == 0))
                return false;
        return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* A branch name safe to hand git as an argument (never an option). */
static bool ws_valid_branch(const char *b)
{
        size_t n = strlen(b);

        if (n == 0 || n > 200 || b[0] == '-' || b[0] == '/' || b[n - 1] == '/' || strstr(b, "..") ||
            strstr(b, "//"))
                return false;
        return strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/") == n;
}

/* The git subcommand in args (skipping -C dir and -c k=v), for messages. */
static const char *ws_subcommand(const char *const *args)
{
        for (size_t i = 0; args[i]; i++) {
                if (strcmp(args[i], "-C") == 0 || strcmp(args[i], "-c") == 0) {
                        if (!args[++i])
                                break;
                        continue;
                }
                return args[i];
        }
        return "git";
}

/*
 * Runs git -c safe.directory=* args... in cwd.  Returns git's exit status (0 = success), or a
 * negative err_code when git could not run.  On a non-zero status, err says what git printed;
 * out (optional) receives the output.
 */
static int ws_git(const char *cwd, const char *const *args, struct strbuf *out, char *err,
                  size_t errlen)
{
        const char *argv[WS_MAX_ARGS + 4] = {"git", "-c", "safe.directory=*"};
        struct proc_opts o = {
                .cwd = cwd, .timeout_s = WS_GIT_TIMEOUT_S, .output_cap = WS_OUTPUT_CAP};
        struct proc_result res;
        size_t n = 3;
        int rc;

        for (size_t i = 0; args[i] && i < WS_MAX_ARGS; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        rc = proc_run(argv, &o, &res, err, errlen);
        if (rc == ERR_OK) {
                rc = res.timed_out ? 124 : res.exit_code;
                while (res.output.len && (res.output.buf[res.output.len - 1] == '\n' ||
                                          res.output.buf[res.output.len - 1] == ' '))
                        res.output.buf[--res.output.len] = '\0';
                if (rc)
                        snprintf(err, errlen, "git %s failed%s: %s", ws_subcommand(args),
                                 res.timed_out ? " (timed out)" : "", res.output.buf);
                if (out)
                        strbuf_add(out, res.output.buf, res.output.len);
        }
        proc_result_release(&res);
        return rc;
}

/* mkdir -p with mode 0755; false with errno set when a component cannot be made. */
static bool ws_mkdirs(const char *path)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof(buf)) {
                errno = ENAMETOOLONG;
                return false;
        }
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                        return false;
                *p = '/';
        }
        return mkdir(buf, 0755) == 0 || errno == EEXIST;
}

static bool ws_exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

/* Opens and exclusively locks <projdir>/.lock; the descriptor, or -1 with err set. */
static int ws_lock(const char *projdir, char *err, size_t errlen)
{
        char path[PATH_MAX];
        int fd;

        if (!ws_path(path, sizeof(path), "%s/.lock", projdir)) {
                snprintf(err, errlen, "project directory path too long");
                return -1;
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
                return -1;
        }
        while (flock(fd, LOCK_EX) != 0) {
                if (errno != EINTR) {
                        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
                        close(fd);
                        return -1;
                }
        }
        return fd;
}

/* 0 when dir has a commit at HEAD; else makes the empty initial commit there. */
static int ws_ensure_commit(const char *projdir, const char *repo, char *err, size_t errlen)
{
        const char *head[] = {"-C", repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", NULL};
        const char *commit[] = {"-C",
                                repo,
                                "-c",
                                "user.name=Loom",
                                "-c",
                                "user.email=loom@localhost",
                                "-c",
                                "commit.gpgsign=false",
                                "commit",
                                "-q",
                                "--allow-empty",
                                "-m",
                                "Initial commit",
                                NULL};
        int rc = ws_git(projdir, head, NULL, err, errlen);

        if (rc <= 0)
                return rc;
        rc = ws_git(projdir, commit, NULL, err, errlen);
        return rc > 0 ? ERR_INTERNAL : rc;
}

/*
 * Clones git_repo (or makes a fresh repository) at repo unless it is there, and makes sure HEAD
 * has a commit to start worktrees from (an empty clone or a new repository has none).
 */
static int ws_ensure_repo(const char *projdir, const char *repo, const char *git_repo,
                          const char *branch, bool *fresh, char *err, size_t errlen)
{
        char src[PATH_MAX];
        int rc;

        *fresh = false;
        if (ws_exists(repo)) {
                const char *check[] = {"-C", repo, "rev-parse", "--git-dir", NULL};

                rc = ws_git(projdir, check, NULL, err, errlen);
                if (rc)
                        return rc > 0 ? ERR_CONFLICT : rc;
        } else if (*git_repo) {
                const char *clone[] = {"clone", "-q", "--no-hardlinks", "--", src, repo, NULL};

                /* A relative local path is relative to us, not to the project directory. */
                if (git_repo[0] == '/' || strstr(git_repo, "://") || !realpath(git_repo, src))
                        snprintf(src, sizeof(src), "%s", git_repo);
                *fresh = true;
                rc = ws_git(projdir, clone, NULL, err, errlen);
                if (rc)
                        return rc > 0 ? ERR_UNAVAILABLE : rc;
                log_info("workspace: cloned %s into %s", git_repo, repo);
        } else {
                const char *init[] = {"init", "-q", "-b", branch, repo, NULL};

                *fresh = true;
                rc = ws_git(projdir, init, NULL, err, errlen);
                if (rc)
                        return rc > 0 ? ERR_INTERNAL : rc;
                log_info("workspace: new repository %s on %s", repo, branch);
        }
        return ws_ensure_commit(projdir, repo, err, errlen);
}

/* Does ref exist in repo? */
static bool ws_has_ref(const char *projdir, const char *repo, const char *ref)
{
        const char *args[] = {"-C", repo, "rev-parse", "--verify", "-q", ref, NULL};
        char ignored[256];

        return ws_git(projdir, args, NULL, ignored, sizeof(ignored)) == 0;
}

/* Is wt a working worktree whose top level is wt itself (not some enclosing checkout)? */
static bool ws_worktree_ok(const char *projdir, const char *wt)
{
        const char *args[] = {"-C", wt, "rev-parse", "--is-inside-work-tree", "--show-toplevel",
                              NULL};
        char ignored[256], real[PATH_MAX], want[PATH_MAX + 8];
        struct strbuf out;
        bool ok;

        if (!realpath(wt, real))
                return false;
        if (!ws_path(want, sizeof(want), "true\n%s", real))
                return false;
        strbuf_init(&out, WS_OUTPUT_CAP);
        ok = ws_git(projdir, args, &out, ignored, sizeof(ignored)) == 0 &&
             strcmp(out.buf, want) == 0;
        strbuf_release(&out);
        return ok;
}

/* A directory in the worktree's place that is not one: keep it, out of the way. */
static int ws_move_aside(const char *projdir, const char *wt, const char *bead, char *err,
                         size_t errlen)
{
        char aside[PATH_MAX];

        if (!ws_path(aside, sizeof(aside), "%s/worktrees/.broken-%s-%ld", projdir, bead,
                     (long)time(NULL)) ||
            rename(wt, aside) != 0) {
                snprintf(err, errlen, "cannot move broken worktree %s aside: %s", wt,
                         strerror(errno));
                return ERR_INTERNAL;
        }
        log_warn("workspace: %s was not a worktree; moved to %s", wt, aside);
        return ERR_OK;
}

/* Adds the worktree on bead/<bead> from the best start point there is. */
static int ws_add_worktree(const char *projdir, const char *repo, const char *wt,
                           const char *bead_branch, const char *branch, bool has_remote, char *err,
                           size_t errlen)
{
        const char *prune[] = {"-C", repo, "worktree", "prune", NULL};
        char local[300], remote[300], remote_default[300], local_default[300];
        const char *start = "HEAD";
        bool track = false;
        int rc;

        if (!ws_path(local, sizeof(local), "refs/heads/%s", bead_branch) ||
            !ws_path(remote, sizeof(remote), "refs/remotes/origin/%s", bead_branch) ||
            !ws_path(remote_default, sizeof(remote_default), "refs/remotes/origin/%s", branch) ||
            !ws_path(local_default, sizeof(local_default), "refs/heads/%s", branch)) {
                snprintf(err, errlen, "branch name too long");
                return ERR_INVALID;
        }
        rc = ws_git(projdir, prune, NULL, err, errlen);
        if (rc)
                return rc > 0 ? ERR_INTERNAL : rc;
        if (ws_has_ref(projdir, repo, local)) {
                const char *add[] = {"-C", repo, "worktree", "add", "-q", wt, bead_branch, NULL};

                rc = ws_git(projdir, add, NULL, err, errlen);
                return rc > 0 ? ERR_CONFLICT : rc;
        }
        if (has_remote && ws_has_ref(projdir, repo, remote)) {
                start = remote + strlen("refs/remotes/");
                track = true;
        } else if (has_remote && ws_has_ref(projdir, repo, remote_default)) {
                start = remote_default + strlen("refs/remotes/");
        } else if (ws_has_ref(projdir, repo, local_default)) {
                start = branch;
        }
        const char *add[] = {
                "-C", repo,        "worktree", "add", "-q", track ? "--track" : "--no-track",
                "-b", bead_branch, wt,         start, NULL};
        rc = ws_git(projdir, add, NULL, err, errlen);
        if (rc == 0)
                log_info("workspace: worktree %s on %s from %s", wt, bead_branch, start);
        return rc > 0 ? ERR_CONFLICT : rc;
}

/* <projects_dir>/<project>, absolute; false with err set when it cannot be made. */
static bool ws_project_dir(const char *projects_dir, const char *project_id, bool create, char *out,
                           size_t outlen, char *err, size_t errlen)
{
        char base[PATH_MAX];

        if (create && !ws_mkdirs(projects_dir)) {
                snprintf(err, errlen, "cannot create %s: %s", projects_dir, strerror(errno));
                return false;
        }
        if (!realpath(projects_dir, base)) {
                snprintf(err, errlen, "%s: %s", projects_dir, strerror(errno));
                return false;
        }
        /* Room left for "/worktrees/<bead>" and git's own files under it. */
        if (!ws_path(out, outlen, "%s/%s", base, project_id) || strlen(out) >= outlen / 2) {
                snprintf(err, errlen, "projects directory path too long");
                return false;
        }
        if (create && !ws_mkdirs(out)) {
                snprintf(err, errlen, "cannot create %s: %s", out, strerror(errno));
                return false;
        }
        return true;
}

int workspace_prepare(const char *projects_dir, const char *project_id, const char *git_repo,
                      const char *default_branch, const char *bead_id, struct workspace *ws,
                      char *err, size_t errlen)
{
        const char *branch = default_branch && *default_branch ? default_branch : "main";
        char projdir[PATH_MAX], repo[WS_PATH_MAX], wtdir[WS_PATH_MAX], wt[WS_PATH_MAX];
        char bead_branch[256];
        char ignored[256];
        bool fresh = false;
        int lock = -1, rc;

        memset(ws, 0, sizeof(*ws));
        if (!ws_valid_id(project_id) || !ws_valid_id(bead_id)) {
                snprintf(err, errlen,
                         "invalid project or bead id (want [A-Za-z0-9_.-], not "
                         "starting with '.')");
                return ERR_INVALID;
        }
        if (!ws_valid_branch(branch) || (git_repo && git_repo[0] == '-')) {
                snprintf(err, errlen, "invalid default branch or repository");
                return ERR_INVALID;
        }
        if (!ws_project_dir(projects_dir, project_id, true, projdir, sizeof(projdir), err, errlen))
                return ERR_INTERNAL;
        if (!ws_path(repo, sizeof(repo), "%s/repo", projdir) ||
            !ws_path(wtdir, sizeof(wtdir), "%s/worktrees", projdir) ||
            !ws_path(wt, sizeof(wt), "%s/%s", wtdir, bead_id) ||
            !ws_path(bead_branch, sizeof(bead_branch), "bead/%s", bead_id)) {
                snprintf(err, errlen, "workspace path too long");
                return ERR_INVALID;
        }
        if (!ws_mkdirs(wtdir)) {
                snprintf(err, errlen, "cannot create %s: %s", wtdir, strerror(errno));
                return ERR_INTERNAL;
        }
        lock = ws_lock(projdir, err, errlen);
        if (lock < 0)
                return ERR_INTERNAL;
        rc = ws_ensure_repo(projdir, repo, git_repo ? git_repo : "", branch, &fresh, err, errlen);
        if (rc)
                goto out;
        {
                const char *get_url[] = {"-C", repo, "remote", "get-url", "origin", NULL};
                const char *fetch[] = {"-C", repo, "fetch", "-q", "--prune", "origin", NULL};
                char why[512];

                ws->has_remote = ws_git(projdir, get_url, NULL, ignored, sizeof(ignored)) == 0;
                if (ws->has_remote && !fresh && ws_git(projdir, fetch, NULL, why, sizeof(why)))
                        log_warn("workspace: fetch in %s: %s", repo, why);
        }
        if (ws_exists(wt) && !ws_worktree_ok(projdir, wt)) {
                rc = ws_move_aside(projdir, wt, bead_id, err, errlen);
                if (rc)
                        goto out;
        }
        if (!ws_exists(wt)) {
                rc = ws_add_worktree(projdir, repo, wt, bead_branch, branch, ws->has_remote, err,
                                     errlen);
                if (rc)
                        goto out;
        }
        if (!realpath(wt, ws->root)) {
                snprintf(err, errlen, "%s: %s", wt, strerror(errno));
                rc = ERR_INTERNAL;
                goto out;
        }
        snprintf(ws->branch, sizeof(ws->branch), "%s", bead_branch);
out:
        close(lock);
        return rc;
}

int workspace_release(const char *projects_dir, const char *project_id, const char *bead_id,
                      char *err, size_t errlen)
{
        char projdir[PATH_MAX], repo[WS_PATH_MAX], wt[WS_PATH_MAX];
        int lock, rc = ERR_OK;

        if (!ws_valid_id(project_id) || !ws_valid_id(bead_id)) {
                snprintf(err, errlen, "invalid project or bead id");
                return ERR_INVALID;
        }
        if (!ws_exists(projects_dir))
                return ERR_OK;
        if (!ws_project_dir(projects_dir, project_id, false, projdir, sizeof(projdir), err, errlen))
                return ERR_INTERNAL;
        if (!ws_path(repo, sizeof(repo), "%s/repo", projdir) ||
            !ws_path(wt, sizeof(wt), "%s/worktrees/%s", projdir, bead_id)) {
                snprintf(err, errlen, "workspace path too long");
                return ERR_INVALID;
        }
        if (!ws_exists(repo))
                return ERR_OK;
        lock = ws_lock(projdir, err, errlen);
        if (lock < 0)
                return ERR_INTERNAL;
        if (ws_exists(wt)) {
                const char *rm[] = {"-C", repo, "worktree", "remove", "--force", wt, NULL};

                rc = ws_git(projdir, rm, NULL, err, errlen);
                if (rc > 0)
                        rc = ERR_CONFLICT;
        }
        {
                const char *prune[] = {"-C", repo, "worktree", "prune", NULL};
                char why[512];

                if (ws_git(projdir, prune, NULL, why, sizeof(why)))
                        log_warn("workspace: prune in %s: %s", repo, why);
        }
        close(lock);
        return rc;
}

int workspace_merge(const char *projects_dir, const char *project_id, const char *default_branch,
                    const char *bead_id, const char *author_name, const char *author_email,
                    char *err, size_t errlen)
{
        const char *branch = default_branch && *default_branch ? default_branch : "main";
        char projdir[PATH_MAX], repo[WS_PATH_MAX], bead_branch[256], msg[300], remote_ref[300];
        char name_cfg[300], email_cfg[300], ignored[256];
        bool has_remote;
        int lock, rc;

        if (!ws_valid_id(project_id) || !ws_valid_id(bead_id) || !ws_valid_branch(branch)) {
                snprintf(err, errlen, "invalid project, bead or branch name");
                return ERR_INVALID;
        }
        if (!ws_project_dir(projects_dir, project_id, false, projdir, sizeof(projdir), err, errlen))
                return ERR_INTERNAL;
        if (!ws_path(repo, sizeof(repo), "%s/repo", projdir) ||
            !ws_path(bead_branch, sizeof(bead_branch), "bead/%s", bead_id) ||
            !ws_path(remote_ref, sizeof(remote_ref), "refs/remotes/origin/%s", branch)) {
                snprintf(err, errlen, "workspace path too long");
                return ERR_INVALID;
        }
        snprintf(msg, sizeof(msg), "Merge %s into %s", bead_branch, branch);
        snprintf(name_cfg, sizeof(name_cfg), "user.name=%s", author_name ? author_name : "Loom");
        snprintf(email_cfg, sizeof(email_cfg), "user.email=%s",
                 author_email ? author_email : "loom@localhost");
        lock = ws_lock(projdir, err, errlen);
        if (lock < 0)
                return ERR_INTERNAL;
        {
                const char *get_url[] = {"-C", repo, "remote", "get-url", "origin", NULL};
                const char *fetch[] = {"-C", repo, "fetch", "-q", "origin", NULL};

                has_remote = ws_git(projdir, get_url, NULL, ignored, sizeof(ignored)) == 0;
                if (has_remote && ws_git(projdir, fetch, NULL, err, errlen)) {
                        rc = ERR_UNAVAILABLE;
                        goto out;
                }
        }
        /* the main checkout, on the default branch as the remote has it (or as it is) */
        if (has_remote && ws_has_ref(projdir, repo, remote_ref)) {
                const char *co[] = {"-C", repo, "checkout", "-q",
                                    "-f", "-B", branch,     remote_ref + strlen("refs/remotes/"),
                                    NULL};

                rc = ws_git(projdir, co, NULL, err, errlen);
        } else {
                const char *co[] = {"-C", repo, "checkout", "-q", "-f", branch, NULL};

                rc = ws_git(projdir, co, NULL, err, errlen);
        }
        if (rc) {
                rc = rc > 0 ? ERR_CONFLICT : rc;
                goto out;
        }
        {
                const char *merge[] = {"-c", name_cfg,    "-c",      email_cfg, "-C",
                                       repo, "merge",     "--no-ff", "-q",      "-m",
                                       msg,  bead_branch, NULL};
                const char *abort_merge[] = {"-C", repo, "merge", "--abort", NULL};
                char why[512];

                rc = ws_git(projdir, merge, NULL, err, errlen);
                if (rc) {
                        if (ws_git(projdir, abort_merge, NULL, why, sizeof(why)))
                                log_warn("workspace: merge --abort in %s: %s", repo, why);
                        rc = rc > 0 ? ERR_CONFLICT : rc;
                        goto out;
                }
        }
        if (has_remote) {
                const char *push[] = {"-C", repo, "push", "-q", "origin", branch, NULL};

                rc = ws_git(projdir, push, NULL, err, errlen);
                if (rc)
                        rc = rc > 0 ? ERR_CONFLICT : rc;
        }
        if (!rc)
                log_info("workspace: merged %s into %s of %s", bead_branch, branch, project_id);
out:
        close(lock);
        return rc;
}
