/* Unit tests for workers/proc.c: exit codes, merged capped output, timeouts, a scrubbed child. */
#include "err.h"
#include "proc.h"
#include "testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static struct proc_result res;
static char err[300];

/* Runs argv in /tmp with the given timeout and cap; returns proc_run's code. */
static int run(const char *const *argv, int timeout_s, size_t cap, bool keep_tail,
               const char *const *env)
{
        struct proc_opts o = {.cwd = "/tmp",
                              .timeout_s = timeout_s,
                              .output_cap = cap,
                              .env = env,
                              .keep_tail = keep_tail};

        proc_result_release(&res);
        err[0] = '\0';
        return proc_run(argv, &o, &res, err, sizeof(err));
}

static int sh(const char *script, int timeout_s, size_t cap)
{
        const char *argv[] = {"sh", "-c", script, NULL};

        return run(argv, timeout_s, cap, false, NULL);
}

/* The state letter of pid in /proc, or 0 when it is gone. */
static char proc_state(long pid)
{
        char path[64], buf[256], *p;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : 0;
}

TEST(exit_codes)
{
        const char *t[] = {"true", NULL}, *f[] = {"false", NULL};

        CHECK_INT(run(t, 10, 0, false, NULL), ERR_OK);
        CHECK_INT(res.exit_code, 0);
        CHECK_INT(run(f, 10, 0, false, NULL), ERR_OK);
        CHECK_INT(res.exit_code, 1);
        CHECK_INT(sh("exit 7", 10, 0), ERR_OK);
        CHECK_INT(res.exit_code, 7);
        CHECK_INT(sh("kill -9 $$", 10, 0), ERR_OK);
        CHECK_INT(res.exit_code, 137);
        CHECK(!res.timed_out);
}

TEST(cannot_start)
{
        const char *nope[] = {"no-such-program-loom", NULL}, *t[] = {"true", NULL};
        struct proc_opts o = {.cwd = "/nonexistent/dir", .timeout_s = 5};

        CHECK_INT(run(nope, 10, 0, false, NULL), ERR_INVALID);
        CHECK_HAS(err, "not found");
        proc_result_release(&res);
        CHECK_INT(proc_run(t, &o, &res, err, sizeof(err)), ERR_INVALID);
        CHECK_HAS(err, "chdir /nonexistent/dir");
}

TEST(output_merged_and_stdin_empty)
{
        const char *cat[] = {"cat", NULL};

        CHECK_INT(sh("echo out; echo err >&2; pwd", 10, 0), ERR_OK);
        CHECK_STR(res.output.buf, "out\nerr\n/tmp\n");
        CHECK_INT(res.output_total, 13);
        CHECK(!res.truncated);
        CHECK_INT(run(cat, 5, 0, false, NULL), ERR_OK);
        CHECK_INT(res.exit_code, 0);
        CHECK_INT(res.output.len, 0);
}

TEST(output_cap_counts_dropped)
{
        CHECK_INT(sh("yes | head -c 100000", 10, 1000), ERR_OK);
        CHECK_INT(res.output.len, 1000);
        CHECK(res.truncated);
        CHECK_INT(res.output_total, 100000);
        CHECK_INT(res.exit_code, 0);
}

TEST(output_keep_tail)
{
        const char *seq[] = {"seq", "1", "20000", NULL};
        size_t n;

        CHECK_INT(run(seq, 10, 200, true, NULL), ERR_OK);
        CHECK(res.truncated);
        CHECK_INT(res.output_total, 108894);
        CHECK(strncmp(res.output.buf, "1\n2\n3\n", 6) == 0);
        n = res.output.len;
        CHECK(n > 12 && strcmp(res.output.buf + n - 12, "19999\n20000\n") == 0);
        CHECK_HAS(res.output.buf, "[… 108694 bytes omitted …]");
        /* Under the cap nothing is omitted. */
        CHECK_INT(sh("seq 1 5", 10, 200), ERR_OK);
        CHECK_STR(res.output.buf, "1\n2\n3\n4\n5\n");
}

TEST(timeout_kills_the_group)
{
        char pidfile[] = "/tmp/loom-proc-test-XXXXXX", script[200];
        long bg = 0;
        FILE *f;
        int fd = mkstemp(pidfile);

        CHECK(fd >= 0);
        close(fd);
        snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; sleep 30", pidfile);
        CHECK_INT(sh(script, 1, 0), ERR_OK);
        CHECK(res.timed_out);
        CHECK_INT(res.exit_code, 128 + SIGTERM);
        CHECK(res.duration_ms >= 900 && res.duration_ms < 2500);
        f = fopen(pidfile, "r");
        CHECK(f != NULL);
        CHECK_INT(fscanf(f, "%ld", &bg), 1);
        fclose(f);
        unlink(pidfile);
        usleep(100000);
        /* The background sleep got SIGTERM too: gone, or a zombie awaiting its reaper. */
        CHECK(proc_state(bg) == 0 || proc_state(bg) == 'Z');
}

TEST(timeout_escalates_to_sigkill)
{
        CHECK_INT(sh("trap '' TERM; sleep 30", 1, 0), ERR_OK);
        CHECK(res.timed_out);
        CHECK_INT(res.exit_code, 128 + SIGKILL);
        CHECK(res.duration_ms >= 2900 && res.duration_ms < 5000);
}

TEST(leftovers_killed_when_the_leader_exits)
{
        /* A background job holding the pipe must not keep us waiting for its 30 s. */
        CHECK_INT(sh("sleep 30 & echo started", 20, 0), ERR_OK);
        CHECK_STR(res.output.buf, "started\n");
        CHECK(!res.timed_out);
        CHECK(res.duration_ms < 3000);
}

TEST(environment_scrubbed)
{
        const char *env[] = {"env", NULL};
        const char *extra[] = {"FOO=bar", "TERM=xterm", NULL};

        setenv("LOOM_SECRET", "hunter2", 1);
        setenv("OPENAI_API_KEY", "sk-test", 1);
        CHECK_INT(run(env, 10, 0, false, extra), ERR_OK);
        CHECK(strstr(res.output.buf, "LOOM_SECRET") == NULL);
        CHECK(strstr(res.output.buf, "hunter2") == NULL);
        CHECK(strstr(res.output.buf, "OPENAI_API_KEY") == NULL);
        CHECK_HAS(res.output.buf, "PATH=/usr/local/bin:/usr/bin:/bin\n");
        CHECK_HAS(res.output.buf, "HOME=/tmp\n");
        CHECK_HAS(res.output.buf, "LANG=C.UTF-8\n");
        CHECK_HAS(res.output.buf, "GIT_TERMINAL_PROMPT=0\n");
        CHECK_HAS(res.output.buf, "FOO=bar\n");
        CHECK_HAS(res.output.buf, "TERM=xterm\n");
        CHECK(strstr(res.output.buf, "TERM=dumb") == NULL);
}

TEST(program_dies_with_the_worker)
{
        char pidfile[] = "/tmp/loom-proc-test-XXXXXX", script[200];
        long pid = 0;
        pid_t worker;
        FILE *f = NULL;
        int fd = mkstemp(pidfile);

        CHECK(fd >= 0);
        close(fd);
        unlink(pidfile);
        snprintf(script, sizeof(script), "echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 30",
                 pidfile, pidfile, pidfile);
        worker = fork();
        if (worker == 0) {
                const char *argv[] = {"sh", "-c", script, NULL};

                (void)run(argv, 60, 0, false, NULL);
                _exit(0);
        }
        for (int i = 0; i < 100 && !(f = fopen(pidfile, "r")); i++)
                usleep(20000);
        CHECK(f != NULL);
        CHECK_INT(fscanf(f, "%ld", &pid), 1);
        fclose(f);
        unlink(pidfile);
        CHECK(proc_state(pid) == 'S');
        kill(worker, SIGKILL);
        waitpid(worker, NULL, 0);
        usleep(200000);
        CHECK(proc_state(pid) == 0 || proc_state(pid) == 'Z');
}

TEST(descriptors_limits_and_signals)
{
        int fd = open("/dev/null", O_RDONLY); /* inheritable on purpose */
        int high = dup2(fd, 77);

        CHECK(high == 77);
        signal(SIGPIPE, SIG_IGN); /* as the workers do; the child must not inherit it */
        CHECK_INT(sh("ls /proc/$$/fd | tr '\\n' ' '; echo; ulimit -n; ulimit -c; "
                     "grep SigIgn /proc/$$/status",
                     10, 0),
                  ERR_OK);
        close(fd);
        close(high);
        signal(SIGPIPE, SIG_DFL);
        CHECK(strstr(res.output.buf, "77") == NULL);
        CHECK_HAS(res.output.buf, "0 1 2 ");
        CHECK_HAS(res.output.buf, "\n1024\n0\n");
        CHECK_HAS(res.output.buf, "SigIgn:\t0000000000000000");
}

TESTS(TESTLIB_CASE(exit_codes), TESTLIB_CASE(cannot_start),
      TESTLIB_CASE(output_merged_and_stdin_empty), TESTLIB_CASE(output_cap_counts_dropped),
      TESTLIB_CASE(output_keep_tail), TESTLIB_CASE(timeout_kills_the_group),
      TESTLIB_CASE(timeout_escalates_to_sigkill),
      TESTLIB_CASE(leftovers_killed_when_the_leader_exits), TESTLIB_CASE(environment_scrubbed),
      TESTLIB_CASE(program_dies_with_the_worker), TESTLIB_CASE(descriptors_limits_and_signals))
