/*
 * sandbox — rlimits, dropped privileges and a bubblewrap jail for agent commands; see
 * sandbox.h.
 *
 * The bwrap command line is built before fork (it reads the worktree's .git file to find the
 * repository); the child only sets limits and privileges, with async-signal-safe calls, and
 * proc execs bwrap.  The probe goes through proc_run with the very options a command gets, so
 * "bwrap works here" means exactly that.
 */
#include "sandbox.h"
#include "config.h"
#include "err.h"
#include "proc.h"
#include "xalloc.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SANDBOX_MIB             (1024ULL * 1024ULL)
#define SANDBOX_PROBE_TIMEOUT_S 10
#define SANDBOX_BASE_FSIZE      (512 * SANDBOX_MIB)
#define SANDBOX_BASE_NOFILE     1024
#define SANDBOX_CAP_LAST        63

/* A growing, NULL-terminated argv of owned strings. */
struct sandbox_vec {
        char **v;
        size_t n, cap;
};

/* ---- settings --------------------------------------------------------------------------- */

void sandbox_init(struct sandbox *sb)
{
        memset(sb, 0, sizeof(*sb));
        sb->mode = SANDBOX_OFF;
        sb->userns = true;
        if (!proc_find("bwrap", sb->bwrap, sizeof(sb->bwrap)))
                sb->bwrap[0] = '\0';
        sb->tmp_size = SANDBOX_TMP_MB_DEFAULT * SANDBOX_MIB;
        sb->limits = (struct sandbox_limits){
                .memory = SANDBOX_MEMORY_MB_DEFAULT * SANDBOX_MIB,
                .file_size = SANDBOX_FILE_MB_DEFAULT * SANDBOX_MIB,
                .nproc = SANDBOX_NPROC_DEFAULT,
                .nofile = SANDBOX_NOFILE_DEFAULT,
        };
}

/* The LOOM_SANDBOX_* numbers and paths. */
static void sandbox_settings(struct sandbox *sb)
{
        const char *bwrap = config_str("LOOM_SANDBOX_BWRAP", NULL);
        const char *ro = config_str("LOOM_SANDBOX_RO_PATHS", "");
        struct sandbox_limits *l = &sb->limits;

        if (bwrap && !proc_find(bwrap, sb->bwrap, sizeof(sb->bwrap)))
                snprintf(sb->bwrap, sizeof(sb->bwrap), "%s", bwrap); /* the probe says why */
        snprintf(sb->ro_paths, sizeof(sb->ro_paths), "%s", ro);
        l->cpu_s = config_long("LOOM_SANDBOX_CPU_SECONDS", 0, 0, 86400);
        l->memory = (unsigned long long)config_long("LOOM_SANDBOX_MEMORY_MB",
                                                    SANDBOX_MEMORY_MB_DEFAULT, 0, 1 << 24) *
                    SANDBOX_MIB;
        l->file_size = (unsigned long long)config_long("LOOM_SANDBOX_FILE_MB",
                                                       SANDBOX_FILE_MB_DEFAULT, 0, 1 << 24) *
                       SANDBOX_MIB;
        l->nproc = config_long("LOOM_SANDBOX_NPROC", SANDBOX_NPROC_DEFAULT, 0, 1 << 22);
        l->nofile = config_long("LOOM_SANDBOX_NOFILE", SANDBOX_NOFILE_DEFAULT, 0, 1 << 20);
        sb->tmp_size = (unsigned long long)config_long("LOOM_SANDBOX_TMP_MB",
                                                       SANDBOX_TMP_MB_DEFAULT, 1, 1 << 24) *
                       SANDBOX_MIB;
}

int sandbox_setup(struct sandbox *sb, char *err, size_t errlen)
{
        const char *mode = config_str("LOOM_SANDBOX", "auto");
        char why[sizeof(sb->reason)];

        sandbox_init(sb);
        if (strcmp(mode, "off") != 0 && strcmp(mode, "auto") != 0 && strcmp(mode, "bwrap") != 0) {
                snprintf(err, errlen, "LOOM_SANDBOX must be auto, bwrap or off, not '%s'", mode);
                return ERR_INVALID;
        }
        sandbox_settings(sb);
        if (strcmp(mode, "off") == 0) {
                snprintf(sb->reason, sizeof(sb->reason), "LOOM_SANDBOX=off");
                return ERR_OK;
        }
        if (sandbox_probe(sb, why, sizeof(why))) {
                sb->mode = SANDBOX_BWRAP;
                return ERR_OK;
        }
        snprintf(sb->reason, sizeof(sb->reason), "%s", why);
        if (strcmp(mode, "bwrap") == 0) {
                snprintf(err, errlen, "LOOM_SANDBOX=bwrap but bwrap cannot run here: %s", why);
                return ERR_INVALID;
        }
        sb->mode = SANDBOX_FALLBACK;
        return ERR_OK;
}

/* Runs `true` jailed with the given user-namespace choice; why gets bwrap's first line. */
static bool sandbox_try(const struct sandbox *sb, bool userns, char *why, size_t whylen)
{
        static const char *const argv[] = {"true", NULL};
        struct sandbox trial = *sb;
        struct sandbox_job job = {.sb = &trial};
        struct proc_opts o = {.cwd = "/",
                              .timeout_s = SANDBOX_PROBE_TIMEOUT_S,
                              .output_cap = 1024,
                              .sandbox = &job};
        struct proc_result res;
        char err[512];
        bool ok = false;

        trial.mode = SANDBOX_BWRAP;
        trial.userns = userns;
        if (proc_run(argv, &o, &res, err, sizeof(err)) != ERR_OK) {
                snprintf(why, whylen, "%s", err);
        } else if (res.exit_code != 0 || res.timed_out) {
                size_t n = strcspn(res.output.buf, "\n");

                snprintf(why, whylen, "%s exited with %d%s: %.*s", sb->bwrap, res.exit_code,
                         res.timed_out ? " (timed out)" : "", n ? (int)n : 11,
                         n ? res.output.buf : "(no output)");
        } else {
                ok = true;
        }
        proc_result_release(&res);
        return ok;
}

bool sandbox_probe(struct sandbox *sb, char *why, size_t whylen)
{
        char second[256];

        if (!sb->bwrap[0]) {
                snprintf(why, whylen, "bwrap is not installed (Debian package bubblewrap)");
                return false;
        }
        /* A user namespace of its own lets bwrap forbid nested ones; as root without user
         * namespaces (some containers) it can still build the jail with its capabilities. */
        if (sandbox_try(sb, true, why, whylen)) {
                sb->userns = true;
                return true;
        }
        if (sandbox_try(sb, false, second, sizeof(second))) {
                sb->userns = false;
                return true;
        }
        return false;
}

const char *sandbox_mode_name(enum sandbox_mode mode)
{
        switch (mode) {
        case SANDBOX_BWRAP:
                return "bwrap";
        case SANDBOX_FALLBACK:
                return "fallback";
        case SANDBOX_OFF:
                break;
        }
        return "off";
}

void sandbox_describe(const struct sandbox *sb, char *out, size_t outlen)
{
        const struct sandbox_limits *l = &sb->limits;
        char cpu[32], jail[400] = "";

        if (l->cpu_s)
                snprintf(cpu, sizeof(cpu), "%ld s", l->cpu_s);
        else
                snprintf(cpu, sizeof(cpu), "timeout + 5 s");
        if (sb->mode == SANDBOX_BWRAP)
                snprintf(jail, sizeof(jail), "%s (%s a user namespace, /tmp %llu MiB); ", sb->bwrap,
                         sb->userns ? "with" : "without", sb->tmp_size / SANDBOX_MIB);
        snprintf(out, outlen,
                 "%slimits: cpu %s, memory %llu MiB, files %llu MiB, %ld processes, "
                 "%ld descriptors (0: inherited)",
                 jail, cpu, l->memory / SANDBOX_MIB, l->file_size / SANDBOX_MIB, l->nproc,
                 l->nofile);
}

bool sandbox_jailed(const struct sandbox_job *job)
{
        return job && job->sb && job->sb->mode == SANDBOX_BWRAP && !job->outside;
}

/* ---- the bwrap command line ---------------------------------------------------------------- */

static void vec_push(struct sandbox_vec *a, const char *s)
{
        if (a->n + 2 > a->cap) {
                a->cap = a->cap ? a->cap * 2 : 64;
                a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
        }
        a->v[a->n++] = xstrdup(s);
        a->v[a->n] = NULL;
}

/* Appends the arguments up to NULL. */
static void vec_add(struct sandbox_vec *a, ...) __attribute__((sentinel));

static void vec_add(struct sandbox_vec *a, ...)
{
        va_list ap;
        const char *s;

        va_start(ap, a);
        while ((s = va_arg(ap, const char *)))
                vec_push(a, s);
        va_end(ap);
}

static bool path_is_dir(const char *p)
{
        struct stat st;

        return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Is p inside dir (or dir itself)? */
static bool path_within(const char *p, const char *dir)
{
        size_t n = strlen(dir);

        return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* The programs and libraries, read-only: /usr, the top-level links or directories into it,
 * /etc without the password hashes, /opt and the configured extras. */
static void sandbox_system(struct sandbox_vec *a, const struct sandbox *sb)
{
        static const char *const top[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
        static const char *const hidden[] = {"/etc/shadow", "/etc/gshadow", "/etc/shadow-",
                                             "/etc/gshadow-"};
        char target[PATH_MAX], size[32];
        struct stat st;

        vec_add(a, "--ro-bind", "/usr", "/usr", NULL);
        for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
                ssize_t n;

                if (lstat(top[i], &st) != 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        vec_add(a, "--ro-bind", top[i], top[i], NULL);
                } else if (S_ISLNK(st.st_mode) &&
                           (n = readlink(top[i], target, sizeof(target) - 1)) > 0) {
                        target[n] = '\0';
                        vec_add(a, "--symlink", target, top[i], NULL);
                }
        }
        vec_add(a, "--ro-bind", "/etc", "/etc", NULL);
        for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
                if (lstat(hidden[i], &st) == 0 && S_ISREG(st.st_mode))
                        vec_add(a, "--ro-bind", "/dev/null", hidden[i], NULL);
        }
        vec_add(a, "--proc", "/proc", "--dev", "/dev", NULL);
        snprintf(size, sizeof(size), "%llu", sb->tmp_size);
        vec_add(a, "--size", size, "--tmpfs", "/tmp", "--dir", "/var", "--symlink", "../tmp",
                "/var/tmp", NULL);
        if (path_is_dir("/opt"))
                vec_add(a, "--ro-bind", "/opt", "/opt", NULL);
        for (const char *p = sb->ro_paths; *p;) {
                size_t n = strcspn(p, ":");

                if (p[0] == '/' && n < sizeof(target)) {
                        memcpy(target, p, n);
                        target[n] = '\0';
                        vec_add(a, "--ro-bind-try", target, target, NULL);
                }
                p += n;
                p += *p == ':';
        }
}

/* Reads a small file holding one path (a gitfile "gitdir: X", a commondir "X"), resolved
 * against base when relative and made canonical; false when absent or odd. */
static bool sandbox_read_link(const char *file, const char *prefix, const char *base, char *out,
                              size_t outlen)
{
        char buf[PATH_MAX + 16], joined[PATH_MAX * 2 + 2], *p = buf;
        size_t plen = strlen(prefix), n;
        FILE *f;

        if (outlen < PATH_MAX || !(f = fopen(file, "re")))
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strncmp(p, prefix, plen) != 0)
                return false;
        p += plen;
        if (!*p)
                return false;
        if (p[0] == '/')
                snprintf(joined, sizeof(joined), "%s", p);
        else
                snprintf(joined, sizeof(joined), "%s/%s", base, p);
        return realpath(joined, out) != NULL;
}

/*
 * The worktree's git metadata, read-only on top of the read-write worktree: <worktree>/.git
 * (a directory, or the file naming the worktree's admin directory), that admin directory and
 * the common directory it names.
 */
static void sandbox_git(struct sandbox_vec *a, const char *worktree)
{
        char dotgit[PATH_MAX + 8], admin[PATH_MAX], common[PATH_MAX], file[PATH_MAX + 16];
        struct stat st;

        snprintf(dotgit, sizeof(dotgit), "%s/.git", worktree);
        if (lstat(dotgit, &st) != 0)
                return;
        vec_add(a, "--ro-bind", dotgit, dotgit, NULL);
        if (!S_ISREG(st.st_mode) ||
            !sandbox_read_link(dotgit, "gitdir: ", worktree, admin, sizeof(admin)))
                return;
        snprintf(file, sizeof(file), "%s/commondir", admin);
        if (sandbox_read_link(file, "", admin, common, sizeof(common))) {
                vec_add(a, "--ro-bind", common, common, NULL);
                if (path_within(admin, common))
                        return;
        }
        vec_add(a, "--ro-bind", admin, admin, NULL);
}

char **sandbox_argv(const struct sandbox_job *job, const char *path, const char *const *argv,
                    const char *cwd)
{
        const struct sandbox *sb = job->sb;
        struct sandbox_vec a = {0};

        vec_add(&a, sb->bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop",
                "ALL", NULL);
        if (sb->userns)
                vec_add(&a, "--unshare-user", "--disable-userns", NULL);
        if (job->allow_network)
                vec_add(&a, "--share-net", "--ro-bind-try", "/run/systemd/resolve",
                        "/run/systemd/resolve", NULL);
        sandbox_system(&a, sb);
        if (job->worktree && path_is_dir(job->worktree))
                vec_add(&a, "--bind", job->worktree, job->worktree, NULL);
        if (job->home && path_is_dir(job->home) &&
            !(job->worktree && path_within(job->home, job->worktree)))
                vec_add(&a, "--bind", job->home, job->home, NULL);
        if (job->worktree)
                sandbox_git(&a, job->worktree);
        vec_add(&a, "--chdir", cwd, "--", path, NULL);
        for (size_t i = 1; argv[0] && argv[i]; i++)
                vec_push(&a, argv[i]);
        return a.v;
}

void sandbox_argv_free(char **argv)
{
        for (size_t i = 0; argv && argv[i]; i++)
                free(argv[i]);
        free(argv);
}

/* ---- in the child ------------------------------------------------------------------------ */

/* Sets a limit, lowered to the hard limit we already have (raising it would fail). */
static void sandbox_limit(int resource, rlim_t soft, rlim_t hard)
{
        struct rlimit rl;

        if (getrlimit(resource, &rl) == 0 && rl.rlim_max != RLIM_INFINITY) {
                if (hard > rl.rlim_max)
                        hard = rl.rlim_max;
                if (soft > hard)
                        soft = hard;
        }
        rl.rlim_cur = soft;
        rl.rlim_max = hard;
        (void)setrlimit(resource, &rl);
}

/* Bounding set, ambient set, then effective/permitted/inheritable: an exec (even as uid 0,
 * even of a setuid or file-capability program) then starts without capabilities. */
static void sandbox_drop_caps(void)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2];

        memset(data, 0, sizeof(data));
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        for (int cap = 0; cap <= SANDBOX_CAP_LAST; cap++) {
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL)
                        break; /* past the last capability this kernel knows */
        }
        (void)syscall(SYS_capset, &hdr, data);
}

void sandbox_child_enter(const struct sandbox_job *job, int timeout_s)
{
        static const struct sandbox_limits base = {.file_size = SANDBOX_BASE_FSIZE,
                                                   .nofile = SANDBOX_BASE_NOFILE};
        const struct sandbox_limits *l = job && job->sb ? &job->sb->limits : &base;
        rlim_t cpu = l->cpu_s > 0 ? (rlim_t)l->cpu_s : (rlim_t)timeout_s + 5;

        sandbox_limit(RLIMIT_CORE, 0, 0);
        /* SIGXCPU at the soft limit says why; SIGKILL a second later if it is ignored */
        sandbox_limit(RLIMIT_CPU, cpu, cpu + 1);
        if (l->memory)
                sandbox_limit(RLIMIT_AS, l->memory, l->memory);
        if (l->file_size)
                sandbox_limit(RLIMIT_FSIZE, l->file_size, l->file_size);
        if (l->nproc > 0)
                sandbox_limit(RLIMIT_NPROC, (rlim_t)l->nproc, (rlim_t)l->nproc);
        if (l->nofile > 0)
                sandbox_limit(RLIMIT_NOFILE, (rlim_t)l->nofile, (rlim_t)l->nofile);
        (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (job && job->sb && !sandbox_jailed(job))
                sandbox_drop_caps();
}
