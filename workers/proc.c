/*
 * proc — fork/exec with a scrubbed environment, rlimits, a process-group timeout and capped,
 * merged output; see proc.h.
 *
 * Everything the child needs (the resolved program path, envp) is built before fork, so the
 * child only makes async-signal-safe calls.  A second pipe, close-on-exec, tells the parent
 * why exec (or chdir) failed; EOF on it means the program is running.
 */
#include "proc.h"
#include "err.h"
#include "sandbox.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_MAX_ENV    64
#define PROC_READ_CHUNK 65536

/* Where the child reports a failure before exec: which step, and errno. */
enum proc_step { PROC_STEP_CHDIR = 1, PROC_STEP_STDIO, PROC_STEP_EXEC };

struct proc_child_msg {
        int step;
        int err;
};

/* Output kept: the head up to head_max, then (keep_tail) a ring of the last tail_max bytes. */
struct proc_capture {
        struct strbuf head;
        size_t head_max;
        char *ring;
        size_t tail_max, ring_len, ring_pos;
        size_t total;
};

static long proc_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool proc_find(const char *prog, char *out, size_t outlen)
{
        const char *dir = PROC_PATH;

        if (strchr(prog, '/')) {
                if ((size_t)snprintf(out, outlen, "%s", prog) >= outlen)
                        return false;
                return access(out, X_OK) == 0;
        }
        while (*dir) {
                size_t n = strcspn(dir, ":");
                int w = snprintf(out, outlen, "%.*s/%s", (int)n, dir, prog);

                if (w > 0 && (size_t)w < outlen && access(out, X_OK) == 0)
                        return true;
                dir += n;
                if (*dir == ':')
                        dir++;
        }
        return false;
}

/* Adds or replaces NAME=value in envp (owned strings). */
static void proc_env_set(char **envp, size_t *n, const char *entry)
{
        size_t name_len = strcspn(entry, "=");

        if (!entry[name_len] || name_len == 0)
                return;
        for (size_t i = 0; i < *n; i++) {
                if (strncmp(envp[i], entry, name_len + 1) == 0) {
                        free(envp[i]);
                        envp[i] = xstrdup(entry);
                        return;
                }
        }
        if (*n < PROC_MAX_ENV)
                envp[(*n)++] = xstrdup(entry);
}

/* The scrubbed environment; NULL-terminated, caller frees each entry and the array. */
static char **proc_build_env(const struct proc_opts *opts)
{
        char **envp = xcalloc(PROC_MAX_ENV + 1, sizeof(*envp));
        size_t n = 0;
        char home[4200];

        snprintf(home, sizeof(home), "HOME=%s", opts->cwd);
        proc_env_set(envp, &n, "PATH=" PROC_PATH);
        proc_env_set(envp, &n, home);
        proc_env_set(envp, &n, "LANG=C.UTF-8");
        proc_env_set(envp, &n, "TERM=dumb");
        proc_env_set(envp, &n, "GIT_TERMINAL_PROMPT=0");
        for (size_t i = 0; opts->env && opts->env[i]; i++)
                proc_env_set(envp, &n, opts->env[i]);
        return envp;
}

static void proc_free_env(char **envp)
{
        for (size_t i = 0; envp && envp[i]; i++)
                free(envp[i]);
        free(envp);
}

static void proc_child_fail(int fd, int step)
{
        struct proc_child_msg msg = {.step = step, .err = errno};
        ssize_t w;

        do {
                w = write(fd, &msg, sizeof(msg));
        } while (w < 0 && errno == EINTR);
        _exit(127);
}

/*
 * glibc keeps two real-time signals for itself (32, 33) and sigaction() refuses them, but an
 * ignored one is inherited across exec all the same (make ignores them, for one): reset them
 * with the system call.
 */
static void proc_child_default(int sig)
{
#if defined(__x86_64__) || defined(__aarch64__)
        struct {
                void (*handler)(int);
                unsigned long flags;
                void (*restorer)(void);
                unsigned long mask;
        } k = {.handler = SIG_DFL};

        (void)syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
#else
        (void)sig;
#endif
}

/* What the child executes: path with argv, in cwd, confined by job. */
struct proc_exec {
        const char *path;
        char *const *argv;
        char *const *envp;
        const char *cwd;
        const struct sandbox_job *job;
        int timeout_s;
};

/* In the child: async-signal-safe calls only, then exec. Never returns. */
static void proc_child(pid_t parent, const struct proc_exec *x, int out_w, int msg_w)
{
        struct sigaction sa;
        sigset_t none;
        int null_fd;

        (void)setsid();
        /* If the worker dies (SIGKILL after a stop timeout), its program goes with it. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
                if (sigaction(sig, &sa, NULL) != 0)
                        proc_child_default(sig);
        }
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);

        /* Move our two descriptors out of the way of 0-3 before arranging them there. */
        out_w = fcntl(out_w, F_DUPFD, 10);
        msg_w = fcntl(msg_w, F_DUPFD_CLOEXEC, 10);
        if (msg_w < 0)
                _exit(127);
        null_fd = open("/dev/null", O_RDONLY);
        if (out_w < 0 || null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_w, 1) < 0 ||
            dup2(out_w, 2) < 0 || dup3(msg_w, 3, O_CLOEXEC) < 0)
                proc_child_fail(msg_w, PROC_STEP_STDIO);
        msg_w = 3;
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
#endif
                for (int fd = 4; fd < 65536; fd++)
                        (void)close(fd);
        if (chdir(x->cwd) != 0)
                proc_child_fail(msg_w, PROC_STEP_CHDIR);
        sandbox_child_enter(x->job, x->timeout_s);
        execve(x->path, x->argv, x->envp);
        proc_child_fail(msg_w, PROC_STEP_EXEC);
}

static void proc_capture_add(struct proc_capture *cap, const char *data, size_t len)
{
        size_t room = cap->head_max - cap->head.len;
        size_t n = len < room ? len : room;

        cap->total += len;
        strbuf_add(&cap->head, data, n);
        data += n;
        len -= n;
        if (!cap->tail_max || !len)
                return;
        if (len > cap->tail_max) { /* only the end of this chunk can survive */
                data += len - cap->tail_max;
                len = cap->tail_max;
        }
        while (len) {
                size_t step = cap->tail_max - cap->ring_pos;

                if (step > len)
                        step = len;
                memcpy(cap->ring + cap->ring_pos, data, step);
                cap->ring_pos = (cap->ring_pos + step) % cap->tail_max;
                cap->ring_len =
                        cap->ring_len + step > cap->tail_max ? cap->tail_max : cap->ring_len + step;
                data += step;
                len -= step;
        }
}

/* Head, the omission marker when bytes were dropped, then the ring in order. */
static void proc_capture_finish(struct proc_capture *cap, struct proc_result *res)
{
        size_t kept = cap->head.len + cap->ring_len;

        strbuf_init(&res->output, kept + 64);
        strbuf_add(&res->output, cap->head.buf, cap->head.len);
        res->output_total = cap->total;
        res->truncated = cap->total > kept;
        if (res->truncated && cap->tail_max)
                strbuf_addf(&res->output, "\n[… %zu bytes omitted …]\n", cap->total - kept);
        if (cap->ring_len) {
                size_t start = (cap->ring_pos + cap->tail_max - cap->ring_len) % cap->tail_max;
                size_t first = cap->tail_max - start;

                if (first > cap->ring_len)
                        first = cap->ring_len;
                strbuf_add(&res->output, cap->ring + start, first);
                strbuf_add(&res->output, cap->ring, cap->ring_len - first);
        }
        strbuf_release(&cap->head);
        free(cap->ring);
        cap->ring = NULL;
}

/* Reads what is there; false at EOF or a read error. */
static bool proc_read_some(int fd, struct proc_capture *cap, char *buf)
{
        ssize_t n;

        do {
                n = read(fd, buf, PROC_READ_CHUNK);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return true;
        if (n <= 0)
                return false;
        proc_capture_add(cap, buf, (size_t)n);
        return true;
}

/* Has pid exited?  Looks without reaping, so its pid (= the group id) cannot be reused yet. */
static bool proc_exited(pid_t pid)
{
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
                return errno != EINTR;
        return si.si_pid == pid;
}

/*
 * Collects output until the child exits and its pipe is drained, enforcing the timeout.  When
 * the child exits, what it left in its group is killed; a descendant that escaped the group
 * and holds the pipe gets half a second before we stop reading.
 */
static void proc_wait(pid_t pid, int out_r, int timeout_s, struct proc_capture *cap,
                      struct proc_result *res)
{
        long start = proc_now_ms(), deadline = start + (long)timeout_s * 1000;
        long kill_at = 0, drain_until = 0;
        bool exited = false, eof = false;
        char *buf = xmalloc(PROC_READ_CHUNK);
        int status = 0;

        while (!(exited && eof)) {
                long now = proc_now_ms(), wait_ms;
                struct pollfd pfd = {.fd = out_r, .events = POLLIN};

                if (!exited && proc_exited(pid)) {
                        exited = true;
                        (void)kill(-pid, SIGKILL);
                        drain_until = now + 500;
                }
                if (exited && !eof && now >= drain_until)
                        break;
                if (!exited && !res->timed_out && now >= deadline) {
                        res->timed_out = true;
                        (void)kill(-pid, SIGTERM);
                        kill_at = now + PROC_KILL_GRACE_MS;
                } else if (!exited && kill_at && now >= kill_at) {
                        (void)kill(-pid, SIGKILL);
                        kill_at = 0;
                }
                wait_ms = eof ? 10 : 100;
                if (poll(eof ? NULL : &pfd, eof ? 0 : 1, (int)wait_ms) > 0 &&
                    !proc_read_some(out_r, cap, buf))
                        eof = true;
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        free(buf);
        res->duration_ms = proc_now_ms() - start;
        if (WIFEXITED(status))
                res->exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                res->exit_code = 128 + WTERMSIG(status);
}

/* What the child said before exec, or 0 when exec happened (EOF). */
static int proc_child_report(int msg_r, struct proc_child_msg *msg)
{
        ssize_t n;

        do {
                n = read(msg_r, msg, sizeof(*msg));
        } while (n < 0 && errno == EINTR);
        return n == (ssize_t)sizeof(*msg) ? msg->step : 0;
}

static void proc_pipes_close(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (fds[i] >= 0)
                        close(fds[i]);
                fds[i] = -1;
        }
}

int proc_run(const char *const *argv, const struct proc_opts *opts, struct proc_result *res,
             char *err, size_t errlen)
{
        int timeout_s = opts->timeout_s > 0 ? opts->timeout_s : PROC_TIMEOUT_DEFAULT;
        size_t cap_bytes = opts->output_cap ? opts->output_cap : PROC_OUTPUT_CAP_DEFAULT;
        struct proc_capture cap;
        struct proc_child_msg msg;
        int fds[4] = {-1, -1, -1, -1}; /* out_r, out_w, msg_r, msg_w */
        char path[4096];
        char **envp = NULL, **jail = NULL;
        struct proc_exec x = {.path = path,
                              .argv = (char *const *)argv,
                              .cwd = opts->cwd,
                              .job = opts->sandbox,
                              .timeout_s = timeout_s};
        pid_t pid, parent;
        int rc = ERR_OK, step;

        memset(res, 0, sizeof(*res));
        strbuf_init(&res->output, cap_bytes + 64);
        if (!argv || !argv[0] || !opts->cwd) {
                snprintf(err, errlen, "no program or no working directory");
                return ERR_INVALID;
        }
        if (!proc_find(argv[0], path, sizeof(path))) {
                snprintf(err, errlen, "%s: program not found in %s", argv[0], PROC_PATH);
                return ERR_INVALID;
        }
        if (pipe2(fds, O_CLOEXEC) != 0 || pipe2(fds + 2, O_CLOEXEC) != 0) {
                snprintf(err, errlen, "pipe: %s", strerror(errno));
                proc_pipes_close(fds, 4);
                return ERR_INTERNAL;
        }
        envp = proc_build_env(opts);
        x.envp = envp;
        if (sandbox_jailed(opts->sandbox)) {
                jail = sandbox_argv(opts->sandbox, path, argv, opts->cwd);
                x.path = opts->sandbox->sb->bwrap;
                x.argv = jail;
        }
        parent = getpid();
        pid = fork();
        if (pid == 0)
                proc_child(parent, &x, fds[1], fds[3]);
        proc_free_env(envp);
        sandbox_argv_free(jail);
        close(fds[1]);
        close(fds[3]);
        fds[1] = fds[3] = -1;
        if (pid < 0) {
                snprintf(err, errlen, "fork: %s", strerror(errno));
                rc = ERR_INTERNAL;
                goto out;
        }
        step = proc_child_report(fds[2], &msg);
        if (step) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                snprintf(err, errlen, "%s %s: %s", step == PROC_STEP_CHDIR ? "chdir" : "exec",
                         step == PROC_STEP_CHDIR ? opts->cwd : x.path, strerror(msg.err));
                rc = step == PROC_STEP_STDIO ? ERR_INTERNAL : ERR_INVALID;
                goto out;
        }
        memset(&cap, 0, sizeof(cap));
        cap.head_max = opts->keep_tail ? cap_bytes - cap_bytes / 2 : cap_bytes;
        cap.tail_max = opts->keep_tail ? cap_bytes / 2 : 0;
        strbuf_init(&cap.head, cap.head_max);
        cap.ring = cap.tail_max ? xmalloc(cap.tail_max) : NULL;
        (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
        proc_wait(pid, fds[0], timeout_s, &cap, res);
        strbuf_release(&res->output);
        proc_capture_finish(&cap, res);
out:
        proc_pipes_close(fds, 4);
        return rc;
}

void proc_result_release(struct proc_result *res)
{
        if (res)
                strbuf_release(&res->output);
}
