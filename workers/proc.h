/*
 * proc — running a program for an agent: argv (never a shell unless asked), a working
 * directory, a scrubbed environment, resource limits, a timeout that kills the whole process
 * group, and output (stdout and stderr merged) kept up to a cap.
 */
#ifndef LOOM_PROC_H
#define LOOM_PROC_H

#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>

struct sandbox_job;

struct proc_opts {
        const char *cwd;        /* required */
        int timeout_s;          /* wall clock; the process group gets SIGTERM, then SIGKILL */
        size_t output_cap;      /* bytes of output kept; the rest is counted and dropped */
        const char *const *env; /* extra NAME=value entries added to the scrubbed set, or NULL */
        bool keep_tail;         /* past the cap keep the first and last halves of the output, with
                                   "[… N bytes omitted …]" between (test output ends usefully) */
        const struct sandbox_job *sandbox; /* limits, privileges, bwrap (sandbox.h); NULL: the
                                              base limits and no_new_privs only */
};

/* The environment a program gets, before opts->env (which may replace any of it). */
#define PROC_PATH "/usr/local/bin:/usr/bin:/bin"
/* timeout_s <= 0 means this; output_cap 0 means PROC_OUTPUT_CAP_DEFAULT. */
#define PROC_TIMEOUT_DEFAULT    300
#define PROC_OUTPUT_CAP_DEFAULT ((size_t)64 << 10)
/* After SIGTERM at the timeout the group has this long before SIGKILL. */
#define PROC_KILL_GRACE_MS 2000

struct proc_result {
        int exit_code;       /* the exit status; 128+N when killed by signal N */
        bool timed_out;      /* killed at the timeout */
        bool truncated;      /* output went past output_cap */
        size_t output_total; /* bytes the program wrote */
        long duration_ms;
        struct strbuf output; /* what was kept; caller releases */
};

/*
 * Runs argv[0] (looked up in a fixed PATH) with argv in opts->cwd and waits for it.  Returns
 * 0 when it ran (whatever its exit code), or ERR_INVALID/ERR_INTERNAL with why in err when it
 * could not start (no such program, fork failed).  stdin is /dev/null.
 *
 * The child leads a new session (setsid), so the timeout's signals reach everything it
 * started; when it exits, whatever it left running in its group is killed too.  Its
 * environment is PATH=PROC_PATH, HOME=opts->cwd, LANG=C.UTF-8, TERM=dumb,
 * GIT_TERMINAL_PROMPT=0 and opts->env, nothing inherited; signal dispositions and mask are
 * reset; no_new_privs is set; rlimits: opts->sandbox's, or without one no core files, 512 MiB
 * files, 1024 descriptors, CPU timeout+5 s.  A jailed sandbox job runs the program inside
 * bubblewrap (the exit code is the program's; its timeout kills bwrap, which takes the whole
 * jail with it).  No signal
 * handler is installed: the caller's SIGTERM handling stays as it is (an interrupted wait is
 * resumed).  res is always initialised (release it even on error); argv and opts are borrowed.
 */
int proc_run(const char *const *argv, const struct proc_opts *opts, struct proc_result *res,
             char *err, size_t errlen) __attribute__((warn_unused_result));

void proc_result_release(struct proc_result *res);

/*
 * The absolute path of prog: as given when it holds a '/', else the first executable hit in
 * PROC_PATH.  False when there is none (or it does not fit outlen).
 */
bool proc_find(const char *prog, char *out, size_t outlen) __attribute__((warn_unused_result));

#endif
