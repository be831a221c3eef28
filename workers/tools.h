/*
 * tools — the actions that touch the worktree: files, commands, builds, tests and git.
 *
 * Every path an agent names is resolved inside env->root; "..", absolute paths and symlinks
 * that lead out are refused with a message the model can act on.  Commands run through proc
 * (allowlisted binaries, timeout, output cap, scrubbed environment, cwd in the worktree) in
 * env->sandbox: run_command, build_project and run_tests inside bubblewrap when it works here
 * (only the worktree, its HOME and /tmp writable; no network unless env->allow_network), the
 * git_* actions outside it (see sandbox.h); all with its rlimits and no privileges.
 * Results are text for the model, capped; the executor logs them (actions, command_logs).
 *
 * The actions and their fields (paths are relative to the worktree root):
 *   read_file, read_code   path, start_line?, end_line?  (1-based, inclusive; 32000 chars shown)
 *   write_file             path, content                 (parent directories are made)
 *   edit_code              path, old_text|old, new_text|new  (old text must occur exactly once);
 *                          or patch (as apply_patch)
 *   apply_patch            patch                         (unified diff; git apply --check first)
 *   read_tree              path? ("."), max_depth? (2, <= 6), limit? (200, <= 2000)
 *   search_text            query|pattern, path? ("."), limit? (50, <= 500), regex?, ignore_case?
 *   move_file, rename_file source_path|path, target_path | new_name
 *   delete_file            path                          (a file, a symlink or an empty directory)
 *   run_command            command, working_dir?, timeout_seconds? (<= 3600)
 *   build_project          build_command?, timeout_seconds?
 *   run_tests              test_command?, test_pattern?, timeout_seconds?
 *   git_status             -
 *   git_diff               staged?, path?
 *   git_log                max_count? (20, <= 200)
 *   git_commit             commit_message|message, files? (array; default: everything)
 *   git_push               -                             (env->branch to origin, never forced)
 * Programs get HOME in "<worktree>/../.home-<worktree name>" (made on first use), so caches
 * stay out of the worktree and out of commits.
 */
#ifndef LOOM_TOOLS_H
#define LOOM_TOOLS_H

#include "sandbox.h"
#include "strbuf.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

struct tool_env {
        const char *root; /* the run's worktree (absolute, resolved) */
        const char *bead_id;
        const char *branch;                     /* bead/<id> */
        bool has_remote;                        /* git_push allowed */
        int command_timeout_s;                  /* run_command/build/test default (300) */
        size_t output_cap;                      /* command output kept for the model (16 KiB) */
        const char *author_name, *author_email; /* commit identity (the agent) */
        const char *default_branch;    /* git_push refuses it; NULL: main/master and origin/HEAD */
        const struct sandbox *sandbox; /* NULL: proc's base limits and no_new_privs only */
        bool allow_network;            /* the project's context.allow_network */
};

struct tool_result {
        bool ok;            /* "executed" (true) or "error" (false) */
        struct strbuf text; /* what the model is told; capped */
        bool mutated;       /* a file in the worktree changed, or a commit was made */
        char path[512];     /* the path the action named, "" when none (loop keys) */
        /* When a program ran (run_command, build_project, run_tests, git_*): */
        bool ran_command;
        char command[1024]; /* as shown in command_logs */
        int exit_code;
        bool timed_out;
        long duration_ms;
};

/* Empty result (text capped at 512 KiB); cannot fail.  Release frees the text; NULL-safe. */
void tool_result_init(struct tool_result *res);
void tool_result_release(struct tool_result *res);

/* What a failed build or test run teaches, for the lessons table. */
struct tool_lesson {
        const char *category; /* "compiler_error" (build_project) or "test_failure" (run_tests) */
        char title[320];      /* "Build failed: <the first error line>" */
        char key[700];        /* what makes two failures the same: the command and that line */
        char detail[1600];    /* the command, its exit code and the end of its output */
};

/*
 * True when res is a build_project or run_tests that ran and failed (non-zero exit or timeout);
 * out then says what to record.  False for anything else (out untouched).  Cannot fail.
 */
bool tools_lesson(const char *type, const struct tool_result *res, struct tool_lesson *out)
        __attribute__((warn_unused_result));

/* True for the types tools_run() carries out. */
bool tools_handles(const char *type);

/*
 * Carries out one action.  Returns 0 when res describes the outcome (ok or not: a refused path
 * or a failing build is a result the model sees), or a negative err_code for an internal
 * failure (ERR_INTERNAL: the worktree cannot be opened; res->text says so).  res must have been
 * set up by tool_result_init(); its previous content is replaced.  env and action are borrowed.
 */
int tools_run(const struct tool_env *env, const char *type, json_object *action,
              struct tool_result *res) __attribute__((warn_unused_result));

#endif
