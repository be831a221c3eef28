/*
 * workspace — the git checkouts agents work in.
 *
 *   <projects_dir>/<project>/repo              a clone of projects.git_repo (or a fresh
 *                                              repository when the project has none)
 *   <projects_dir>/<project>/worktrees/<bead>  a worktree of it on branch bead/<bead>
 *
 * One worktree per bead lets runs of one project proceed in parallel; a later run of the same
 * bead reuses its worktree and branch, so work survives a lost lease.  Changes to the shared
 * repository (clone, fetch, worktree add/remove) hold an flock on <projects_dir>/<project>/.lock
 * so executors on one host never race git.
 */
#ifndef LOOM_WORKSPACE_H
#define LOOM_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>

struct workspace {
        char root[4096];  /* the worktree, absolute, symlinks resolved */
        char branch[256]; /* bead/<bead> */
        bool has_remote;  /* the repository has an "origin" to push to */
};

/*
 * Makes (or reuses) the bead's worktree.  git_repo may be "" (a local repository is made with
 * one empty commit on default_branch), a path or a URL.  Returns 0, or a negative err_code with
 * why in err.
 */
int workspace_prepare(const char *projects_dir, const char *project_id, const char *git_repo,
                      const char *default_branch, const char *bead_id, struct workspace *ws,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Merges bead/<bead> into default_branch in the project's repository (a merge commit by the
 * given author) and pushes default_branch when there is a remote, so later beads start from
 * the work of earlier ones.  A conflict leaves everything as it was: ERR_CONFLICT with git's
 * words in err.
 */
int workspace_merge(const char *projects_dir, const char *project_id, const char *default_branch,
                    const char *bead_id, const char *author_name, const char *author_email,
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Removes the bead's worktree (the branch stays); 0 when gone or never there. */
int workspace_release(const char *projects_dir, const char *project_id, const char *bead_id,
                      char *err, size_t errlen);

#endif
