/*
 * Unit tests for workers/sandbox.c, through proc_run and tools_run as the executor uses them:
 * limits, no_new_privs and dropped capabilities, path refusals (always), then the bwrap jail
 * (writes, network, privileges, limits, git metadata, timeouts; each prints a SKIP line with
 * the reason when bwrap cannot run here), and the LOOM_SANDBOX* settings.
 */
#include "err.h"
#include "proc.h"
#include "sandbox.h"
#include "testlib.h"
#include "testshell.h"
#include "tools.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT "git -c safe.directory=* -c user.name=T -c user.email=t@t -c commit.gpgsign=false"
#define MIB (1024ULL * 1024ULL)

static char base[PATH_MAX], wt[PATH_MAX + 32], home[PATH_MAX + 32];
static struct sandbox fallback, jail; /* FALLBACK; BWRAP when have_bwrap */
static bool have_bwrap;
static char no_bwrap[512];
static struct proc_result res;
static char err[512];
static struct tool_env env;
static struct tool_result tres;

/* Prints the SKIP line and leaves the test when bwrap cannot run here. */
#define NEED_BWRAP()                                                                               \
        do {                                                                                       \
                if (!have_bwrap) {                                                                 \
                        printf("#   SKIP %s: bwrap cannot run here: %s\n", __func__, no_bwrap);    \
                        return;                                                                    \
                }                                                                                  \
        } while (0)

/* Runs argv in the worktree as job (NULL: no sandbox); returns proc_run's code. */
static int run_argv(const struct sandbox_job *job, const char *const *argv, int timeout_s)
{
        char home_env[PATH_MAX + 40];
        const char *envv[] = {home_env, NULL};
        struct proc_opts o = {.cwd = wt, .timeout_s = timeout_s, .env = envv, .sandbox = job};

        snprintf(home_env, sizeof(home_env), "HOME=%s", home);
        proc_result_release(&res);
        err[0] = '\0';
        return proc_run(argv, &o, &res, err, sizeof(err));
}

static int run_sh(const struct sandbox_job *job, const char *script, int timeout_s)
{
        const char *argv[] = {"sh", "-c", script, NULL};

        return run_argv(job, argv, timeout_s);
}

/* The soft value of a /proc/self/limits row; -1 for unlimited, -2 when the row is missing. */
static long long limit_soft(const char *text, const char *row)
{
        const char *p = strstr(text, row);

        if (!p)
                return -2;
        p += strlen(row);
        while (*p == ' ')
                p++;
        if (strncmp(p, "unlimited", 9) == 0)
                return -1;
        return strtoll(p, NULL, 10);
}

static bool exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

/* Carries out {"type": type, <fields>} with env; fields is JSON members text. */
static bool act(const char *type, const char *fields)
{
        char json[8192];
        json_object *a;
        int rc;

        snprintf(json, sizeof(json), "{\"type\":\"%s\"%s%s}", type, *fields ? "," : "", fields);
        a = json_tokener_parse(json);
        if (!a) {
                printf("#   bad test JSON: %s\n", json);
                return false;
        }
        rc = tools_run(&env, type, a, &tres);
        json_object_put(a);
        return rc == ERR_OK && tres.ok;
}

/* A TCP listener on 127.0.0.1; its port in *port. */
static int listen_local(int *port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        *port = ntohs(sa.sin_port);
        return fd;
}

/* How many processes have needle as an argument. */
static int count_procs(const char *needle)
{
        DIR *d = opendir("/proc");
        struct dirent *e;
        int n = 0;

        while (d && (e = readdir(d))) {
                char path[300], buf[4096];
                FILE *f;
                size_t len;

                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
                f = fopen(path, "r");
                if (!f)
                        continue;
                len = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
                        buf[len] = '\0';
                        if (strcmp(buf + i, needle) == 0)
                                n++;
                }
        }
        if (d)
                closedir(d);
        return n;
}

TEST(setup)
{
        char made[PATH_MAX];

        snprintf(base, sizeof(base), "/tmp/loom-sandbox-test-XXXXXX");
        CHECK(mkdtemp(base) != NULL);
        CHECK(realpath(base, made) != NULL);
        snprintf(base, sizeof(base), "%s", made);
        snprintf(wt, sizeof(wt), "%s/worktrees/b1", base);
        snprintf(home, sizeof(home), "%s/worktrees/.home-b1", base);
        CHECK_INT(shf("cd %s && git init -q -b main repo && cd repo && " GIT
                      " commit -q --allow-empty -m init && " GIT
                      " worktree add -q -b bead/b1 %s && mkdir %s",
                      base, wt, home),
                  0);
        sandbox_init(&fallback);
        fallback.mode = SANDBOX_FALLBACK;
        jail = fallback;
        have_bwrap = sandbox_probe(&jail, no_bwrap, sizeof(no_bwrap));
        jail.mode = SANDBOX_BWRAP;
        printf("# bwrap: %s%s\n",
               have_bwrap ? "works here" : "cannot run here: ", have_bwrap ? "" : no_bwrap);
        env.root = wt;
        env.bead_id = "b1";
        env.branch = "bead/b1";
        env.command_timeout_s = 30;
        env.output_cap = 16384;
        env.author_name = "Agent Smith";
        env.author_email = "smith@agents.test";
        tool_result_init(&tres);
}

/* ---- always: limits, privileges, refusals --------------------------------------------------- */

TEST(fallback_sets_no_new_privs_and_drops_capabilities)
{
        struct sandbox_job job = {.sb = &fallback, .worktree = wt, .home = home};
        char uid[32], nobody[PATH_MAX + 40], cmd[PATH_MAX + 80];

        CHECK_INT(run_sh(&job, "cat /proc/self/status; echo uid=$(id -u)", 10), ERR_OK);
        CHECK_INT(res.exit_code, 0);
        CHECK_HAS(res.output.buf, "NoNewPrivs:\t1\n");
        CHECK_HAS(res.output.buf, "CapEff:\t0000000000000000\n");
        CHECK_HAS(res.output.buf, "CapPrm:\t0000000000000000\n");
        CHECK_HAS(res.output.buf, "CapAmb:\t0000000000000000\n");
        snprintf(uid, sizeof(uid), "uid=%u\n", (unsigned)getuid());
        CHECK_HAS(res.output.buf, uid);
        if (getuid() != 0)
                return;
        /* uid 0 without capabilities is an ordinary owner: another user's file is closed */
        CHECK_HAS(res.output.buf, "CapBnd:\t0000000000000000\n");
        snprintf(nobody, sizeof(nobody), "%s/nobody.txt", base);
        if (shf("(echo private > %s && chown 65534:65534 %s && chmod 600 %s) 2>/dev/null", nobody,
                nobody, nobody) != 0) {
                printf("#   SKIP %s (another user's file): uid 0 cannot chown here\n", __func__);
                return;
        }
        snprintf(cmd, sizeof(cmd), "cat %s", nobody);
        CHECK_INT(run_sh(NULL, cmd, 10), ERR_OK); /* without a sandbox job root reads it */
        CHECK_HAS(res.output.buf, "private");
        CHECK_INT(run_sh(&job, cmd, 10), ERR_OK);
        CHECK(res.exit_code != 0);
        CHECK_HAS(res.output.buf, "Permission denied");
}

TEST(fallback_sets_every_limit)
{
        struct sandbox sb = fallback;
        struct sandbox_job job = {.sb = &sb, .worktree = wt};
        const char *argv[] = {"cat", "/proc/self/limits", NULL};

        sb.limits = (struct sandbox_limits){
                .cpu_s = 7, .memory = 256 * MIB, .file_size = MIB, .nproc = 99, .nofile = 77};
        CHECK_INT(run_argv(&job, argv, 10), ERR_OK);
        CHECK_INT(res.exit_code, 0);
        CHECK_INT(limit_soft(res.output.buf, "Max cpu time"), 7);
        CHECK_INT(limit_soft(res.output.buf, "Max address space"), 256 * MIB);
        CHECK_INT(limit_soft(res.output.buf, "Max file size"), MIB);
        CHECK_INT(limit_soft(res.output.buf, "Max processes"), 99);
        CHECK_INT(limit_soft(res.output.buf, "Max open files"), 77);
        CHECK_INT(limit_soft(res.output.buf, "Max core file size"), 0);
        /* no job: the base set, CPU from the timeout */
        CHECK_INT(run_argv(NULL, argv, 10), ERR_OK);
        CHECK_INT(limit_soft(res.output.buf, "Max cpu time"), 15);
        CHECK_INT(limit_soft(res.output.buf, "Max file size"), 512 * MIB);
}

TEST(fallback_file_size_limit_stops_a_writer)
{
        struct sandbox sb = fallback;
        struct sandbox_job job = {.sb = &sb, .worktree = wt};
        char big[PATH_MAX + 40];
        struct stat st;

        sb.limits.file_size = 64 * 1024;
        snprintf(big, sizeof(big), "%s/big.bin", wt);
        CHECK_INT(run_sh(&job, "head -c 200000 /dev/zero > big.bin", 10), ERR_OK);
        CHECK_INT(res.exit_code, 128 + SIGXFSZ);
        CHECK(stat(big, &st) == 0);
        CHECK_INT(st.st_size, 64 * 1024);
        unlink(big);
}

TEST(fallback_cpu_limit_stops_a_busy_loop)
{
        struct sandbox sb = fallback;
        struct sandbox_job job = {.sb = &sb, .worktree = wt};

        sb.limits.cpu_s = 1;
        CHECK_INT(run_sh(&job, "while :; do :; done", 60), ERR_OK);
        CHECK(!res.timed_out);
        CHECK(res.exit_code == 128 + SIGXCPU || res.exit_code == 128 + SIGKILL);
        CHECK(res.duration_ms < 30000);
}

TEST(fallback_memory_limit_stops_an_allocator)
{
        struct sandbox sb = fallback;
        struct sandbox_job job = {.sb = &sb, .worktree = wt};
        const char *argv[] = {"awk",
                              "BEGIN { s = \"x\"; for (i = 0; i < 26; i++) s = s s; "
                              "print length(s) }",
                              NULL};

        sb.limits.memory = 0; /* first without: the program does work */
        CHECK_INT(run_argv(&job, argv, 30), ERR_OK);
        CHECK_INT(res.exit_code, 0);
        CHECK_HAS(res.output.buf, "67108864");
        sb.limits.memory = 32 * MIB;
        CHECK_INT(run_argv(&job, argv, 30), ERR_OK);
        CHECK(res.exit_code != 0);
        CHECK(!strstr(res.output.buf, "67108864"));
}

TEST(fallback_refuses_paths_outside_the_worktree)
{
        char outside[PATH_MAX + 40];

        env.sandbox = &fallback;
        snprintf(outside, sizeof(outside), "%s/worktrees/outside.txt", base);
        CHECK(!act("run_command", "\"command\":\"echo x > /tmp/../etc/loom-sandbox-x\""));
        CHECK_HAS(tres.text.buf, "absolute path");
        CHECK(!act("run_command", "\"command\":\"touch ../outside.txt\""));
        CHECK_HAS(tres.text.buf, "not a path inside the worktree");
        CHECK(!act("run_command", "\"command\":\"cp /etc/hostname ../outside.txt\""));
        CHECK(!act("run_command", "\"command\":\"sh -c 'echo x > ../outside.txt'\""));
        CHECK_HAS(tres.text.buf, "not an allowed program");
        CHECK(!exists(outside));
        CHECK(!exists("/etc/loom-sandbox-x"));
        CHECK(act("run_command", "\"command\":\"echo fine > fine.txt\""));
        CHECK(!strstr(tres.text.buf, "[sandbox"));
        env.sandbox = NULL;
}

/* ---- bwrap ---------------------------------------------------------------------------------- */

TEST(bwrap_writes_stay_in_the_worktree)
{
        struct sandbox_job job = {.sb = &jail, .worktree = wt, .home = home};
        char p[PATH_MAX + 64];

        NEED_BWRAP();
        CHECK_INT(run_sh(&job,
                         "echo in > in.txt; echo home > \"$HOME/h.txt\"; "
                         "echo t > /tmp/loom-sandbox-probe && cat /tmp/loom-sandbox-probe; "
                         "echo x > /tmp/../etc/loom-sandbox-x; echo y > ../../outside.txt; "
                         "echo z > ../../repo/z.txt; touch /usr/loom-sandbox-x",
                         10),
                  ERR_OK);
        CHECK(res.exit_code != 0);
        CHECK_HAS(res.output.buf, "t\n");
        CHECK_HAS(res.output.buf, "Read-only file system");
        snprintf(p, sizeof(p), "%s/in.txt", wt);
        CHECK(exists(p));
        snprintf(p, sizeof(p), "%s/h.txt", home);
        CHECK(exists(p));
        CHECK(!exists("/etc/loom-sandbox-x"));
        CHECK(!exists("/usr/loom-sandbox-x"));
        CHECK(!exists("/tmp/loom-sandbox-probe")); /* /tmp is the jail's own */
        snprintf(p, sizeof(p), "%s/outside.txt", base);
        CHECK(!exists(p));
        snprintf(p, sizeof(p), "%s/repo/z.txt", base);
        CHECK(!exists(p));
        /* what is not bound is not there: the project's other directories, /root, /home */
        CHECK_INT(run_sh(&job, "ls ../../repo/.git/HEAD; ls /root /home /var/lib", 10), ERR_OK);
        CHECK_HAS(res.output.buf, "repo/.git/HEAD\n");
        CHECK_HAS(res.output.buf, "/root");
        CHECK_HAS(res.output.buf, "No such file");
}

TEST(bwrap_network_is_off_unless_allowed)
{
        struct sandbox_job job = {.sb = &jail, .worktree = wt};
        char script[200];
        const char *argv[] = {"bash", "-c", script, NULL};
        int port = 0, fd;

        NEED_BWRAP();
        fd = listen_local(&port);
        CHECK(fd >= 0);
        snprintf(script, sizeof(script),
                 "exec 3<>/dev/tcp/127.0.0.1/%d && echo connected || echo refused", port);
        job.allow_network = true;
        CHECK_INT(run_argv(&job, argv, 10), ERR_OK);
        CHECK_HAS(res.output.buf, "connected");
        job.allow_network = false;
        CHECK_INT(run_argv(&job, argv, 10), ERR_OK);
        close(fd);
        CHECK(!strstr(res.output.buf, "connected"));
        CHECK_HAS(res.output.buf, "refused");
}

TEST(bwrap_drops_privileges)
{
        struct sandbox_job job = {.sb = &jail, .worktree = wt};
        char uid[32], cmd[PATH_MAX + 200];

        NEED_BWRAP();
        CHECK_INT(run_sh(&job, "cat /proc/self/status; echo uid=$(id -u)", 10), ERR_OK);
        CHECK_INT(res.exit_code, 0);
        CHECK_HAS(res.output.buf, "NoNewPrivs:\t1\n");
        CHECK_HAS(res.output.buf, "CapEff:\t0000000000000000\n");
        CHECK_HAS(res.output.buf, "CapPrm:\t0000000000000000\n");
        CHECK_HAS(res.output.buf, "CapBnd:\t0000000000000000\n");
        snprintf(uid, sizeof(uid), "uid=%u\n", (unsigned)getuid());
        CHECK_HAS(res.output.buf, uid);
        if (jail.userns) { /* no nested user namespace to regain capabilities in */
                CHECK_INT(run_sh(&job, "unshare -U -r id -u", 10), ERR_OK);
                CHECK(res.exit_code != 0);
        }
        snprintf(cmd, sizeof(cmd),
                 "cp %s/nobody.txt nobody.txt && chmod 600 nobody.txt && chown "
                 "65534:65534 nobody.txt",
                 base);
        if (getuid() != 0 || shf("(cd %s && %s) 2>/dev/null", wt, cmd) != 0)
                return; /* not root, or a root that cannot chown (said above) */
        CHECK_INT(run_sh(&job, "cat nobody.txt", 10), ERR_OK);
        CHECK(res.exit_code != 0);
        CHECK(!strstr(res.output.buf, "private"));
        CHECK_INT(shf("rm -f %s/nobody.txt", wt), 0);
}

TEST(bwrap_limits_apply)
{
        struct sandbox sb = jail;
        struct sandbox_job job = {.sb = &sb, .worktree = wt};

        NEED_BWRAP();
        sb.limits = (struct sandbox_limits){
                .cpu_s = 9, .memory = 512 * MIB, .file_size = 64 * 1024, .nproc = 99, .nofile = 77};
        CHECK_INT(run_sh(&job, "cat /proc/self/limits; head -c 200000 /dev/zero > big.bin", 10),
                  ERR_OK);
        CHECK_INT(limit_soft(res.output.buf, "Max cpu time"), 9);
        CHECK_INT(limit_soft(res.output.buf, "Max address space"), 512 * MIB);
        CHECK_INT(limit_soft(res.output.buf, "Max file size"), 64 * 1024);
        CHECK_INT(limit_soft(res.output.buf, "Max processes"), 99);
        CHECK_INT(limit_soft(res.output.buf, "Max open files"), 77);
        CHECK_INT(res.exit_code, 128 + SIGXFSZ);
        CHECK_INT(shf("stat -c %%s %s/big.bin && rm %s/big.bin", wt, wt), 0);
        CHECK_STR(out, "65536");
}

TEST(bwrap_git_metadata_is_read_only)
{
        struct sandbox_job job = {.sb = &jail, .worktree = wt};
        char gitfile[PATH_MAX + 40], hook[PATH_MAX + 40], before[sizeof(out)];

        NEED_BWRAP();
        snprintf(gitfile, sizeof(gitfile), "%s/.git", wt);
        snprintf(hook, sizeof(hook), "%s/repo/.git/hooks/pre-commit", base);
        CHECK_INT(shf("cat %s", gitfile), 0);
        snprintf(before, sizeof(before), "%s", out);
        CHECK_INT(run_sh(&job,
                         "git status --short && echo status-ok; git -c user.name=a -c "
                         "user.email=a@a commit -q --allow-empty -m x; echo commit=$?; "
                         "echo evil > ../../repo/.git/hooks/pre-commit; "
                         "echo 'gitdir: /tmp' > .git; rm -f .git",
                         20),
                  ERR_OK);
        CHECK_HAS(res.output.buf, "status-ok");
        CHECK(!strstr(res.output.buf, "commit=0"));
        CHECK(!exists(hook));
        CHECK_INT(shf("cat %s", gitfile), 0);
        CHECK_STR(out, before);
        CHECK_INT(shf("cd %s && git log --oneline | wc -l", wt), 0);
        CHECK_STR(out, "1");
}

TEST(bwrap_timeout_kills_the_whole_jail)
{
        struct sandbox_job job = {.sb = &jail, .worktree = wt};
        int left = -1;

        NEED_BWRAP();
        CHECK_INT(run_sh(&job, "sleep 61.2345 & sleep 62.3456", 1), ERR_OK);
        CHECK(res.timed_out);
        CHECK(res.duration_ms < 6000);
        for (int i = 0; i < 40 && left != 0; i++) {
                left = count_procs("61.2345") + count_procs("62.3456");
                if (left)
                        poll(NULL, 0, 50);
        }
        CHECK_INT(left, 0);
}

TEST(bwrap_tools_run_commands_inside_and_git_outside)
{
        char marker[PATH_MAX + 40], fields[2 * PATH_MAX + 300];

        NEED_BWRAP();
        env.sandbox = &jail;
        CHECK(act("run_command", "\"command\":\"echo hi > a.txt && cat a.txt && git status "
                                 "--short\""));
        CHECK_HAS(tres.text.buf, "hi\n?? a.txt");
        CHECK(!act("run_command", "\"command\":\"git add a.txt\""));
        CHECK_HAS(tres.text.buf, "Read-only file system");
        CHECK_HAS(tres.text.buf, "commit with the git_commit action]");
        CHECK(act("git_commit", "\"message\":\"add a\""));
        CHECK(tres.mutated);
        CHECK_INT(shf("cd %s && git log --format=%%s -1", wt), 0);
        CHECK_STR(out, "add a");
        /* A repository made inside the worktree is committed as a gitlink; our git (outside the
         * jail) must not run what its configuration names: a fsmonitor, a clean filter. */
        snprintf(marker, sizeof(marker), "%s/pwned", base);
        snprintf(fields, sizeof(fields),
                 "\"command\":\"git init -q sub && git -C sub config core.fsmonitor 'touch "
                 "%s; false' && git -C sub config filter.x.clean 'touch %s; cat'\"",
                 marker, marker);
        CHECK(act("run_command", fields));
        CHECK(act("write_file", "\"path\":\"sub/.gitattributes\",\"content\":\"* filter=x\\n\""));
        CHECK(act("write_file", "\"path\":\"sub/x.txt\",\"content\":\"x\\n\""));
        CHECK(act("run_command", "\"command\":\"git -C sub add -A && git -C sub -c user.name=a "
                                 "-c user.email=a@a commit -q -m s\""));
        CHECK(act("git_commit", "\"message\":\"add sub\""));
        CHECK_INT(shf("cd %s && git ls-files -s sub", wt), 0);
        CHECK(strncmp(out, "160000 ", 7) == 0);
        CHECK(act("write_file", "\"path\":\"sub/x.txt\",\"content\":\"changed\\n\""));
        CHECK(act("write_file", "\"path\":\"b.txt\",\"content\":\"b\\n\""));
        CHECK(act("git_commit", "\"message\":\"b\""));
        CHECK(act("git_status", ""));
        CHECK(act("git_diff", ""));
        CHECK(!act("git_commit", "\"message\":\"nothing\",\"files\":[\"sub\"]"));
        CHECK(act("run_command", "\"command\":\"git -C sub -c user.name=a -c user.email=a@a "
                                 "commit -qam moved\""));
        CHECK(act("write_file", "\"path\":\"sub/x.txt\",\"content\":\"dirty again\\n\""));
        CHECK(act("write_file", "\"path\":\"c.txt\",\"content\":\"c\\n\""));
        CHECK(act("git_commit", "\"message\":\"c\""));
        CHECK(!exists(marker));
        CHECK_INT(shf("cd %s && git show --stat --format= HEAD", wt), 0);
        CHECK_HAS(out, "c.txt");
        CHECK(!strstr(out, "sub"));
        CHECK_INT(shf("cd %s && git -c safe.directory=* status --short >/dev/null", wt), 0);
        CHECK(exists(marker)); /* the same status without our guards would have run it */
        unlink(marker);
        env.sandbox = NULL;
}

/* ---- settings ------------------------------------------------------------------------------- */

static void settings_clear(void)
{
        static const char *const names[] = {
                "LOOM_SANDBOX",        "LOOM_SANDBOX_BWRAP",       "LOOM_SANDBOX_FILE_MB",
                "LOOM_SANDBOX_NPROC",  "LOOM_SANDBOX_CPU_SECONDS", "LOOM_SANDBOX_MEMORY_MB",
                "LOOM_SANDBOX_NOFILE", "LOOM_SANDBOX_RO_PATHS"};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                unsetenv(names[i]);
}

TEST(setup_reads_the_settings)
{
        struct sandbox sb;

        settings_clear();
        setenv("LOOM_SANDBOX", "off", 1);
        setenv("LOOM_SANDBOX_FILE_MB", "7", 1);
        setenv("LOOM_SANDBOX_NPROC", "33", 1);
        setenv("LOOM_SANDBOX_CPU_SECONDS", "9", 1);
        setenv("LOOM_SANDBOX_MEMORY_MB", "0", 1);
        CHECK_INT(sandbox_setup(&sb, err, sizeof(err)), ERR_OK);
        CHECK_INT(sb.mode, SANDBOX_OFF);
        CHECK_INT(sb.limits.file_size, 7 * MIB);
        CHECK_INT(sb.limits.nproc, 33);
        CHECK_INT(sb.limits.cpu_s, 9);
        CHECK_INT(sb.limits.memory, 0);
        CHECK_INT(sb.limits.nofile, SANDBOX_NOFILE_DEFAULT);
        settings_clear();
        setenv("LOOM_SANDBOX", "sometimes", 1);
        CHECK_INT(sandbox_setup(&sb, err, sizeof(err)), ERR_INVALID);
        CHECK_HAS(err, "auto, bwrap or off");
        /* bwrap demanded but missing: refuse; auto: fall back and say why */
        setenv("LOOM_SANDBOX", "bwrap", 1);
        setenv("LOOM_SANDBOX_BWRAP", "/nonexistent/bwrap", 1);
        CHECK_INT(sandbox_setup(&sb, err, sizeof(err)), ERR_INVALID);
        CHECK_HAS(err, "cannot run here");
        setenv("LOOM_SANDBOX", "auto", 1);
        CHECK_INT(sandbox_setup(&sb, err, sizeof(err)), ERR_OK);
        CHECK_INT(sb.mode, SANDBOX_FALLBACK);
        CHECK_HAS(sb.reason, "/nonexistent/bwrap");
        settings_clear();
        CHECK_INT(sandbox_setup(&sb, err, sizeof(err)), ERR_OK);
        CHECK_INT(sb.mode, have_bwrap ? SANDBOX_BWRAP : SANDBOX_FALLBACK);
        CHECK_INT(sb.limits.memory, SANDBOX_MEMORY_MB_DEFAULT * MIB);
        CHECK_INT(sb.limits.file_size, SANDBOX_FILE_MB_DEFAULT * MIB);
        CHECK_INT(sb.limits.nproc, SANDBOX_NPROC_DEFAULT);
        CHECK_STR(sandbox_mode_name(sb.mode), have_bwrap ? "bwrap" : "fallback");
}

TEST(cleanup)
{
        tool_result_release(&tres);
        proc_result_release(&res);
        CHECK_INT(shf("rm -rf %s", base), 0);
}

TESTS(TESTLIB_CASE(setup), TESTLIB_CASE(fallback_sets_no_new_privs_and_drops_capabilities),
      TESTLIB_CASE(fallback_sets_every_limit),
      TESTLIB_CASE(fallback_file_size_limit_stops_a_writer),
      TESTLIB_CASE(fallback_cpu_limit_stops_a_busy_loop),
      TESTLIB_CASE(fallback_memory_limit_stops_an_allocator),
      TESTLIB_CASE(fallback_refuses_paths_outside_the_worktree),
      TESTLIB_CASE(bwrap_writes_stay_in_the_worktree),
      TESTLIB_CASE(bwrap_network_is_off_unless_allowed), TESTLIB_CASE(bwrap_drops_privileges),
      TESTLIB_CASE(bwrap_limits_apply), TESTLIB_CASE(bwrap_git_metadata_is_read_only),
      TESTLIB_CASE(bwrap_timeout_kills_the_whole_jail),
      TESTLIB_CASE(bwrap_tools_run_commands_inside_and_git_outside),
      TESTLIB_CASE(setup_reads_the_settings), TESTLIB_CASE(cleanup))
