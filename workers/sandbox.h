/*
 * sandbox — the confinement an agent's command runs in; proc applies it in the child.
 *
 * Three layers:
 *   limits      rlimits: CPU seconds, address space, file size, processes, descriptors, no
 *               core files (LOOM_SANDBOX_CPU_SECONDS, _MEMORY_MB, _FILE_MB, _NPROC, _NOFILE);
 *   privileges  no_new_privs, and outside bubblewrap every capability dropped (bounding set,
 *               ambient, permitted), so neither a setuid program nor uid 0 gains anything;
 *   bubblewrap  (SANDBOX_BWRAP) a new mount namespace holding /usr, /etc (no shadow files),
 *               /opt and LOOM_SANDBOX_RO_PATHS read-only, the worktree and its HOME read-write,
 *               the repository's git directories read-only, a private /tmp (tmpfs), its own
 *               /proc, a minimal /dev; every namespace unshared — the network too unless the
 *               project allows it (context.allow_network) —, no capabilities, no nested user
 *               namespaces, a new session, killed when the worker dies.
 * The first two always apply to a job; the third when bwrap works here and the job is not
 * "outside".
 *
 * Git: inside bubblewrap the repository's metadata (<worktree>/.git and the directories it
 * points at) is read-only, so an agent cannot plant hooks or configuration that our own git
 * would run later, nor repoint the worktree.  That is why the git_* actions (fixed argv of
 * ours) run outside bubblewrap, with limits and privileges dropped: they can write the
 * repository.  git through run_command reads (status, diff, log, show) but cannot commit.
 *
 * LOOM_SANDBOX=auto (default) probes bwrap at start and falls back to limits, privileges and
 * the program allowlist when it cannot run (no user namespaces, a container); bwrap refuses
 * to start without it; off never uses it.  LOOM_SANDBOX_BWRAP names the program.
 */
#ifndef LOOM_SANDBOX_H
#define LOOM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

enum sandbox_mode {
        SANDBOX_OFF,      /* LOOM_SANDBOX=off: limits and privileges only */
        SANDBOX_FALLBACK, /* auto, and bwrap cannot run here: limits and privileges only */
        SANDBOX_BWRAP,    /* every layer */
};

/* What a command may use; 0 leaves the inherited limit. */
struct sandbox_limits {
        long cpu_s;                   /* RLIMIT_CPU; 0: the command's timeout + 5 s */
        unsigned long long memory;    /* RLIMIT_AS, bytes */
        unsigned long long file_size; /* RLIMIT_FSIZE, bytes */
        long nproc;                   /* RLIMIT_NPROC: per user, counts threads; root is exempt */
        long nofile;                  /* RLIMIT_NOFILE */
};

/* Defaults of the LOOM_SANDBOX_* settings. */
#define SANDBOX_MEMORY_MB_DEFAULT 4096
#define SANDBOX_FILE_MB_DEFAULT   512
#define SANDBOX_NPROC_DEFAULT     2048
#define SANDBOX_NOFILE_DEFAULT    1024
#define SANDBOX_TMP_MB_DEFAULT    1024

struct sandbox {
        enum sandbox_mode mode;
        bool userns;         /* bwrap makes its own user namespace (and forbids nested ones) */
        char bwrap[256];     /* the program, absolute */
        char ro_paths[1024]; /* extra read-only binds, ':'-separated (toolchains) */
        unsigned long long tmp_size; /* bytes of the private /tmp */
        struct sandbox_limits limits;
        char reason[512]; /* why bwrap is not used (FALLBACK, OFF), for the log */
};

/* One command's place in the sandbox; borrowed by proc_run for the call. */
struct sandbox_job {
        const struct sandbox *sb;
        const char *worktree; /* bound read-write, its git metadata read-only; NULL: none */
        const char *home;     /* bound read-write too (outside the worktree), or NULL */
        bool allow_network;   /* keep the host's network */
        bool outside;         /* never bubblewrap (our own git): limits and privileges only */
};

/* The built-in settings: mode OFF, default limits, "bwrap" looked up in PROC_PATH.  Cannot fail. */
void sandbox_init(struct sandbox *sb);

/*
 * sandbox_init(), then the LOOM_SANDBOX* settings, then (auto, bwrap) the probe.  Returns 0
 * (sb->mode says what was chosen, sb->reason why not bwrap), or ERR_INVALID with why in err:
 * LOOM_SANDBOX is not auto|bwrap|off, or it is bwrap and bwrap cannot run.  A malformed
 * number exits(2) (config_long).
 */
int sandbox_setup(struct sandbox *sb, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Runs `true` in the jail a command would get (no network, no worktree).  True when it ran;
 * sets sb->userns to the variant that worked.  False with bwrap's own words in why.
 */
bool sandbox_probe(struct sandbox *sb, char *why, size_t whylen)
        __attribute__((warn_unused_result));

/* "bwrap", "fallback" or "off".  Never NULL. */
const char *sandbox_mode_name(enum sandbox_mode mode);

/* For the start-up log: bwrap and its options (BWRAP), then the limits. */
void sandbox_describe(const struct sandbox *sb, char *out, size_t outlen);

/* Does job run inside bubblewrap? */
bool sandbox_jailed(const struct sandbox_job *job) __attribute__((warn_unused_result));

/*
 * The argv that runs path (argv[0] resolved) with argv[1..] in cwd inside the jail; execute
 * it with job->sb->bwrap.  NULL-terminated, owned: free with sandbox_argv_free().  Cannot fail
 * (a path that does not exist is left out of the binds).
 */
char **sandbox_argv(const struct sandbox_job *job, const char *path, const char *const *argv,
                    const char *cwd);
void sandbox_argv_free(char **argv);

/*
 * In the child, after fork and before exec: rlimits (job's, or for job NULL the base set: no
 * core, 512 MiB files, 1024 descriptors, CPU timeout_s + 5), no_new_privs, and for a job
 * outside bubblewrap every capability dropped.  Async-signal-safe; failures are ignored (a
 * limit above the hard one is lowered to it).
 */
void sandbox_child_enter(const struct sandbox_job *job, int timeout_s);

#endif
