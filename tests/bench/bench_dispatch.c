/*
 * bench_dispatch — the load program of `make bench-dispatch` (tests/bench/bench-dispatch.sh).
 *
 * It works Loom's queue the way loom-executor does — `loom_run_claim`, then for as long as
 * runs come, `loom_run_finish_claim` (the end of one run with 'completed' and the claim of
 * the next, one transaction) — with trivial runs (nothing happens in between), and prints what it
 * measured as "RESULT ..." lines on stdout for the driver; progress goes to stderr.
 *
 *   bench_dispatch setup
 *       a healthy provider "bench"; project "lat" (its default agents idle on that provider);
 *       project "tput" with 64 idle agents, so that runs in flight never share an agent row
 *   bench_dispatch latency SAMPLES EXECUTORS GAP_MIN_MS GAP_MAX_MS
 *       EXECUTORS idle executor threads LISTEN loom_runs and claim on every notification.  The
 *       main thread creates a bead (loom_bead_create); loom-dispatcher, running beside us,
 *       queues its run; one sample is the time from just before the insert to the return of
 *       the claim that took that bead's run.  Samples are sequential: the next bead comes
 *       GAP ms (uniform in [MIN, MAX]) after the previous run finished.
 *         RESULT latency loom P50 P99 MAX N               (ms)
 *         RESULT stage insert|dispatch|claim P50 P99      (ms; see lat_stages)
 *   bench_dispatch throughput LABEL RUNS SECONDS E [E ...]
 *       for each E: RUNS beads with one queued run each (set-based INSERT … generate_series),
 *       then E executor threads claim → finish+claim → … until the queue is empty (the last
 *       run after the window: finish alone); the rate is runs finished per second over
 *       SECONDS after a warm-up (or until the queue ran dry).
 *         RESULT throughput LABEL E RUNS_PER_S CLAIM_MS FINISH_MS     (mean call times: a
 *         claim on its own, a finish with the next claim)
 *
 * Every thread has its own connection (LOOM_DATABASE_URL); every statement is autocommit, so
 * every call is one durable commit when the server is configured so.  Times
 * are CLOCK_MONOTONIC in this one process.  Any database error ends the program with status 1.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_ID_MAX         64
#define BENCH_MAX_EXECUTORS  64
#define BENCH_MAX_SAMPLES    100000
#define BENCH_WARMUP_MS      250
#define BENCH_SAMPLE_WAIT_MS 10000 /* a bead whose run is not claimed by then is an error */

static const char bench_claim_sql[] =
        "SELECT r.id, r.bead_id FROM loom_run_claim($1, 60) r WHERE r.id IS NOT NULL";
static const char bench_finish_sql[] = "SELECT loom_run_finish($1, $2, 'completed', NULL, 1, 0, 0)";
/* what loom-executor sends at the end of a run while it keeps working */
static const char bench_finish_claim_sql[] =
        "SELECT f.finished, (f.claimed).id, (f.claimed).bead_id"
        " FROM loom_run_finish_claim($1, $2, 'completed', NULL, 1, 0, 0, 60) f";
static const char bench_create_sql[] =
        "SELECT loom_bead_create(json_build_object('project_id', 'lat', 'title', $1::text)::jsonb,"
        " 'bench') ->> 'id'";

/* One transaction (a multi-statement simple query); the agents of "lat" come from its trigger. */
static const char bench_setup_sql[] =
        "SELECT loom_provider_create('{\"id\": \"bench\", \"endpoint\": \"http://127.0.0.1:9\","
        " \"model\": \"none\"}', 'bench');"
        "SELECT loom_provider_probed('bench', true, 1, NULL);"
        "SELECT loom_project_create('{\"id\": \"lat\", \"name\": \"Latency\"}', 'bench');"
        "SELECT loom_project_create('{\"id\": \"tput\", \"name\": \"Throughput\"}', 'bench');"
        "INSERT INTO agents (name, role, persona_name, project_id, provider_id, status)"
        " SELECT 'bench-' || i, 'bench', 'engineering-manager', 'tput', 'bench', 'idle'"
        " FROM generate_series(1, 64 - (SELECT count(*) FROM agents WHERE project_id = 'tput')) i;";
static const char bench_setup_check_sql[] =
        "SELECT count(*) FILTER (WHERE project_id = 'lat'),"
        "       count(*) FILTER (WHERE project_id = 'tput')"
        " FROM agents a JOIN providers p ON p.id = a.provider_id"
        " WHERE a.status = 'idle' AND p.status = 'healthy'";

/* The throughput queue, rebuilt for every level: beads in progress, each with a queued run on
 * one of the project's agents in turn (what loom_dispatch would have written). */
static const char *const bench_seed_sql[] = {
        "BEGIN",
        "DELETE FROM runs WHERE project_id = 'tput'",
        "DELETE FROM beads WHERE project_id = 'tput'",
        "DELETE FROM events WHERE project_id = 'tput'",
        "INSERT INTO beads (id, project_id, title, status, priority)"
        " SELECT 'tput-' || i, 'tput', 'trivial run ' || i, 'in_progress', 2"
        " FROM generate_series(1, $1::int) i",
        "INSERT INTO runs (bead_id, project_id, agent_id, provider_id, persona_name, priority)"
        " SELECT 'tput-' || i, 'tput', ag.ids[1 + i % cardinality(ag.ids)], 'bench',"
        "        'engineering-manager', 2"
        " FROM generate_series(1, $1::int) i,"
        "      (SELECT array_agg(id ORDER BY id) ids FROM agents WHERE project_id = 'tput') ag",
        "COMMIT",
        "VACUUM ANALYZE runs, beads, events, agents",
};
static const char bench_done_sql[] =
        "SELECT count(*) FROM runs WHERE project_id = 'tput' AND state = 'succeeded'";

/* Server-side stages of the latency samples: bead insert → run row → claim, by now() of each
 * transaction (one machine, one clock). */
static const char bench_stages_sql[] =
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d),"
        "       percentile_disc(0.99) WITHIN GROUP (ORDER BY d),"
        "       percentile_disc(0.5) WITHIN GROUP (ORDER BY c),"
        "       percentile_disc(0.99) WITHIN GROUP (ORDER BY c)"
        " FROM (SELECT round(extract(epoch FROM r.created_at - b.created_at) * 1000, 2) d,"
        "              round(extract(epoch FROM r.started_at - r.created_at) * 1000, 2) c"
        "       FROM runs r JOIN beads b ON b.id = r.bead_id WHERE r.project_id = 'lat') s";

struct executor {
        pthread_t thread;
        PGconn *conn;
        char owner[32];
        double claimed_at; /* when the last successful claim returned */
        double claim_ms, finish_ms;
        long claims, finishes;
};

/* The latency samples' hand-off from the executor threads to the main thread. */
struct lat_handoff {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        char bead[BENCH_ID_MAX]; /* the bead of the run claimed last */
        double claimed_at;
        bool finished; /* its loom_run_finish has returned */
};

static atomic_bool bench_stop;
static atomic_long bench_finished;
static pthread_barrier_t bench_start;
static struct lat_handoff lat = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bench_die(const char *fmt, ...)
{
        va_list ap;

        fputs("bench_dispatch: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static double bench_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void bench_sleep_ms(double ms)
{
        struct timespec ts = {.tv_sec = (time_t)(ms / 1e3),
                              .tv_nsec = (long)((ms - (double)(long)(ms / 1e3) * 1e3) * 1e6)};

        while (nanosleep(&ts, &ts) != 0)
                ;
}

/* A non-negative integer argument in [lo, hi], or the program ends. */
static long bench_arg(const char *s, long lo, long hi, const char *what)
{
        char *end;
        long v = strtol(s, &end, 10);

        if (end == s || *end || v < lo || v > hi)
                bench_die("%s: %s is not a number in [%ld, %ld]", what, s, lo, hi);
        return v;
}

static PGconn *bench_connect(void)
{
        const char *url = getenv("LOOM_DATABASE_URL");
        PGconn *conn;

        if (!url || !*url)
                bench_die("LOOM_DATABASE_URL is not set");
        conn = PQconnectdb(url);
        if (PQstatus(conn) != CONNECTION_OK)
                bench_die("cannot connect: %s", PQerrorMessage(conn));
        return conn;
}

/* Ends the program unless res succeeded; returns res (the caller PQclears it). */
static PGresult *bench_checked(PGresult *res, const char *what)
{
        ExecStatusType st = PQresultStatus(res);

        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
                bench_die("%s failed: %s", what, PQresultErrorMessage(res));
        return res;
}

static void bench_exec(PGconn *conn, const char *sql)
{
        PQclear(bench_checked(PQexec(conn, sql), sql));
}

static void bench_prepare(PGconn *conn, const char *name, const char *sql, int nparams)
{
        PQclear(bench_checked(PQprepare(conn, name, sql, nparams, NULL), name));
}

static int bench_cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile q of n sorted values. */
static double bench_pct(const double *v, int n, double q)
{
        long rank = (long)(q * n);

        if ((double)rank < q * n)
                rank++;
        if (rank < 1)
                rank = 1;
        return v[rank - 1];
}

/* ---- executors ------------------------------------------------------------------------- */

static void executor_open(struct executor *ex, int i, bool listen)
{
        memset(ex, 0, sizeof(*ex));
        snprintf(ex->owner, sizeof(ex->owner), "bench-executor-%d", i);
        ex->conn = bench_connect();
        bench_prepare(ex->conn, "claim", bench_claim_sql, 1);
        bench_prepare(ex->conn, "finish", bench_finish_sql, 2);
        bench_prepare(ex->conn, "finish_claim", bench_finish_claim_sql, 2);
        if (listen)
                bench_exec(ex->conn, "LISTEN loom_runs");
}

/* The run in res's columns col (id) and col + 1 (bead): true, copied to rid and bead, when
 * there is one; false for no row or NULLs (nothing was queued). */
static bool executor_took(struct executor *ex, PGresult *res, int col, char *rid, char *bead)
{
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, col))
                return false;
        snprintf(rid, BENCH_ID_MAX, "%s", PQgetvalue(res, 0, col));
        snprintf(bead, BENCH_ID_MAX, "%s", PQgetvalue(res, 0, col + 1));
        ex->claimed_at = bench_now_ms();
        return true;
}

/* Claims the next queued run: true with its id and bead, false when none is queued. */
static bool executor_claim(struct executor *ex, char *rid, char *bead)
{
        const char *params[1] = {ex->owner};
        double t0 = bench_now_ms();
        PGresult *res = PQexecPrepared(ex->conn, "claim", 1, params, NULL, NULL, 0);
        bool got;

        ex->claim_ms += bench_now_ms() - t0;
        bench_checked(res, "loom_run_claim");
        got = executor_took(ex, res, 0, rid, bead);
        ex->claims += got;
        PQclear(res);
        return got;
}

static void executor_finish(struct executor *ex, const char *rid)
{
        const char *params[2] = {rid, ex->owner};
        double t0 = bench_now_ms();
        PGresult *res = PQexecPrepared(ex->conn, "finish", 2, params, NULL, NULL, 0);

        ex->finish_ms += bench_now_ms() - t0;
        bench_checked(res, "loom_run_finish");
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
                bench_die("run %s: loom_run_finish says %s no longer owns it", rid, ex->owner);
        PQclear(res);
        ex->finishes++;
}

/*
 * Finishes run rid and claims the next in one call, as loom-executor does: true with the next
 * run's id and bead in rid and bead, false when none was queued.
 */
static bool executor_finish_claim(struct executor *ex, char *rid, char *bead)
{
        const char *params[2] = {rid, ex->owner};
        double t0 = bench_now_ms();
        PGresult *res = PQexecPrepared(ex->conn, "finish_claim", 2, params, NULL, NULL, 0);
        bool got;

        ex->finish_ms += bench_now_ms() - t0;
        bench_checked(res, "loom_run_finish_claim");
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
                bench_die("run %s: loom_run_finish_claim says %s no longer owns it", rid,
                          ex->owner);
        ex->finishes++;
        got = executor_took(ex, res, 1, rid, bead);
        PQclear(res);
        return got;
}

/* Waits up to ms for a notification; one that libpq read during the last statement counts. */
static void executor_wait(struct executor *ex, int ms)
{
        struct pollfd pfd = {.fd = PQsocket(ex->conn), .events = POLLIN};
        PGnotify *n;
        bool pending = false;

        while ((n = PQnotifies(ex->conn))) {
                PQfreemem(n);
                pending = true;
        }
        if (pending)
                return;
        if (poll(&pfd, 1, ms) > 0 && !PQconsumeInput(ex->conn))
                bench_die("%s: connection lost: %s", ex->owner, PQerrorMessage(ex->conn));
        while ((n = PQnotifies(ex->conn)))
                PQfreemem(n);
}

/* ---- setup ----------------------------------------------------------------------------- */

static void bench_setup(void)
{
        PGconn *conn = bench_connect();
        PGresult *res;

        bench_exec(conn, bench_setup_sql);
        res = bench_checked(PQexec(conn, bench_setup_check_sql), "setup check");
        fprintf(stderr, "setup: idle agents on a healthy provider: lat %s, tput %s\n",
                PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        if (strcmp(PQgetvalue(res, 0, 0), "0") == 0 || strcmp(PQgetvalue(res, 0, 1), "64") != 0)
                bench_die("setup: the projects do not have idle agents on a healthy provider");
        PQclear(res);
        PQfinish(conn);
}

/* ---- latency --------------------------------------------------------------------------- */

static void *lat_executor_main(void *arg)
{
        struct executor *ex = arg;
        char rid[BENCH_ID_MAX], bead[BENCH_ID_MAX];

        pthread_barrier_wait(&bench_start);
        while (!atomic_load(&bench_stop)) {
                bool held = executor_claim(ex, rid, bead);

                while (held) {
                        pthread_mutex_lock(&lat.mu);
                        snprintf(lat.bead, sizeof(lat.bead), "%s", bead);
                        lat.claimed_at = ex->claimed_at;
                        lat.finished = false;
                        pthread_mutex_unlock(&lat.mu);
                        held = executor_finish_claim(ex, rid, bead);
                        pthread_mutex_lock(&lat.mu);
                        lat.finished = true;
                        pthread_cond_broadcast(&lat.cv);
                        pthread_mutex_unlock(&lat.mu);
                }
                executor_wait(ex, 100);
        }
        return NULL;
}

/* Waits until bead's run was claimed and finished; returns when the claim returned. */
static double lat_wait_claimed(const char *bead)
{
        double deadline = bench_now_ms() + BENCH_SAMPLE_WAIT_MS, at;
        struct timespec ts;

        pthread_mutex_lock(&lat.mu);
        while (strcmp(lat.bead, bead) != 0 || !lat.finished) {
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += 50 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&lat.cv, &lat.mu, &ts);
                if (bench_now_ms() > deadline)
                        bench_die("bead %s: no run claimed within %d ms (is loom-dispatcher up?)",
                                  bead, BENCH_SAMPLE_WAIT_MS);
        }
        at = lat.claimed_at;
        pthread_mutex_unlock(&lat.mu);
        return at;
}

/* One sample: a bead through loom_bead_create; *insert_ms is that call's round trip. */
static double lat_sample(PGconn *conn, int i, double *insert_ms)
{
        char title[64], bead[BENCH_ID_MAX];
        const char *params[1] = {title};
        PGresult *res;
        double t0;

        snprintf(title, sizeof(title), "latency sample %d", i);
        t0 = bench_now_ms();
        res = PQexecPrepared(conn, "create", 1, params, NULL, NULL, 0);
        *insert_ms = bench_now_ms() - t0;
        bench_checked(res, "loom_bead_create");
        snprintf(bead, sizeof(bead), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return lat_wait_claimed(bead) - t0;
}

static void lat_print(const char *name, double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
        if (strcmp(name, "latency") == 0)
                printf("RESULT latency loom %.2f %.2f %.2f %d\n", bench_pct(v, n, 0.5),
                       bench_pct(v, n, 0.99), v[n - 1], n);
        else
                printf("RESULT stage %s %.2f %.2f\n", name, bench_pct(v, n, 0.5),
                       bench_pct(v, n, 0.99));
}

/* The server's view of where the time went: dispatch = bead insert → run row (loom-dispatcher),
 * claim = run row → claimed (the notification and an executor). */
static void lat_stages(PGconn *conn)
{
        PGresult *res = bench_checked(PQexec(conn, bench_stages_sql), "latency stages");

        printf("RESULT stage dispatch %s %s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        printf("RESULT stage claim %s %s\n", PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
        PQclear(res);
}

static void bench_latency(int n, int k, long gap_min, long gap_max)
{
        struct executor *ex = calloc((size_t)k, sizeof(*ex));
        double *lat_ms = calloc((size_t)n, sizeof(double));
        double *ins_ms = calloc((size_t)n, sizeof(double));
        unsigned seed = 7606203;
        pthread_condattr_t ca;
        PGconn *conn;

        if (!ex || !lat_ms || !ins_ms)
                bench_die("out of memory");
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&lat.cv, &ca);
        conn = bench_connect();
        bench_prepare(conn, "create", bench_create_sql, 1);
        pthread_barrier_init(&bench_start, NULL, (unsigned)k + 1);
        for (int i = 0; i < k; i++) {
                executor_open(&ex[i], i, true);
                if (pthread_create(&ex[i].thread, NULL, lat_executor_main, &ex[i]))
                        bench_die("cannot start an executor thread");
        }
        pthread_barrier_wait(&bench_start);
        for (int i = 0; i < n; i++) {
                bench_sleep_ms((double)(gap_min + rand_r(&seed) % (gap_max - gap_min + 1)));
                lat_ms[i] = lat_sample(conn, i, &ins_ms[i]);
                if ((i + 1) % 50 == 0)
                        fprintf(stderr, "latency: %d/%d samples\n", i + 1, n);
        }
        atomic_store(&bench_stop, true);
        for (int i = 0; i < k; i++) {
                pthread_join(ex[i].thread, NULL);
                PQfinish(ex[i].conn);
        }
        lat_print("latency", lat_ms, n);
        lat_print("insert", ins_ms, n);
        lat_stages(conn);
        PQfinish(conn);
        free(ins_ms);
        free(lat_ms);
        free(ex);
}

/* ---- throughput ------------------------------------------------------------------------ */

static void *tput_executor_main(void *arg)
{
        struct executor *ex = arg;
        char rid[BENCH_ID_MAX], bead[BENCH_ID_MAX];

        bool held;

        pthread_barrier_wait(&bench_start);
        held = executor_claim(ex, rid, bead);
        while (held) {
                if (atomic_load(&bench_stop)) {
                        executor_finish(ex, rid); /* the last one: claim nothing more */
                        held = false;
                } else {
                        held = executor_finish_claim(ex, rid, bead);
                }
                atomic_fetch_add(&bench_finished, 1);
        }
        return NULL;
}

static void tput_seed(PGconn *conn, long runs)
{
        char n[24];
        const char *params[1] = {n};

        snprintf(n, sizeof(n), "%ld", runs);
        for (size_t i = 0; i < sizeof(bench_seed_sql) / sizeof(bench_seed_sql[0]); i++) {
                const char *sql = bench_seed_sql[i];
                int np = strstr(sql, "$1") ? 1 : 0;
                PGresult *res = PQexecParams(conn, sql, np, NULL, params, NULL, NULL, 0);

                PQclear(bench_checked(res, sql));
        }
}

/* Runs finished per second over the window; *drained when the queue ran dry inside it. */
static double tput_window(long runs, int secs, bool *drained)
{
        double t0, t1;
        long c0, c1;

        bench_sleep_ms(BENCH_WARMUP_MS);
        c0 = atomic_load(&bench_finished);
        t0 = bench_now_ms();
        if (c0 >= runs)
                bench_die("the queue of %ld runs drained in the warm-up: raise BENCH_RUNS", runs);
        do {
                bench_sleep_ms(10);
                c1 = atomic_load(&bench_finished);
                t1 = bench_now_ms();
        } while (t1 - t0 < secs * 1e3 && c1 < runs);
        *drained = c1 >= runs;
        return (double)(c1 - c0) * 1e3 / (t1 - t0);
}

static void tput_check_done(PGconn *conn)
{
        PGresult *res = bench_checked(PQexec(conn, bench_done_sql), "count finished runs");
        long done = strtol(PQgetvalue(res, 0, 0), NULL, 10);

        PQclear(res);
        if (done != atomic_load(&bench_finished))
                bench_die("%ld runs finished by the executors, %ld succeeded in the table",
                          atomic_load(&bench_finished), done);
}

static void tput_level(PGconn *conn, const char *label, long runs, int secs, int e)
{
        struct executor ex[BENCH_MAX_EXECUTORS];
        double rate, claim_ms = 0, finish_ms = 0;
        long claims = 0, finishes = 0;
        bool drained;

        tput_seed(conn, runs);
        atomic_store(&bench_finished, 0);
        atomic_store(&bench_stop, false);
        pthread_barrier_init(&bench_start, NULL, (unsigned)e + 1);
        for (int i = 0; i < e; i++) {
                executor_open(&ex[i], i, false);
                if (pthread_create(&ex[i].thread, NULL, tput_executor_main, &ex[i]))
                        bench_die("cannot start an executor thread");
        }
        pthread_barrier_wait(&bench_start);
        rate = tput_window(runs, secs, &drained);
        atomic_store(&bench_stop, true);
        for (int i = 0; i < e; i++) {
                pthread_join(ex[i].thread, NULL);
                PQfinish(ex[i].conn);
                claim_ms += ex[i].claim_ms;
                finish_ms += ex[i].finish_ms;
                claims += ex[i].claims;
                finishes += ex[i].finishes;
        }
        pthread_barrier_destroy(&bench_start);
        tput_check_done(conn);
        fprintf(stderr, "throughput %s: %d executors: %.0f runs/s%s\n", label, e, rate,
                drained ? " (queue drained inside the window)" : "");
        printf("RESULT throughput %s %d %.1f %.3f %.3f\n", label, e, rate,
               claims ? claim_ms / (double)claims : 0, finishes ? finish_ms / (double)finishes : 0);
        fflush(stdout);
}

int main(int argc, char **argv)
{
        const char *cmd = argc > 1 ? argv[1] : "";

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(cmd, "setup") == 0 && argc == 2) {
                bench_setup();
        } else if (strcmp(cmd, "latency") == 0 && argc == 6) {
                long lo = bench_arg(argv[4], 0, 60000, "GAP_MIN_MS");

                bench_latency((int)bench_arg(argv[2], 1, BENCH_MAX_SAMPLES, "SAMPLES"),
                              (int)bench_arg(argv[3], 1, BENCH_MAX_EXECUTORS, "EXECUTORS"), lo,
                              bench_arg(argv[5], lo, 60000, "GAP_MAX_MS"));
        } else if (strcmp(cmd, "throughput") == 0 && argc >= 6) {
                long runs = bench_arg(argv[3], 1, 10000000, "RUNS");
                int secs = (int)bench_arg(argv[4], 1, 3600, "SECONDS");
                PGconn *conn = bench_connect();

                for (int i = 5; i < argc; i++)
                        tput_level(conn, argv[2], runs, secs,
                                   (int)bench_arg(argv[i], 1, BENCH_MAX_EXECUTORS, "E"));
                PQfinish(conn);
        } else {
                fprintf(stderr,
                        "usage: %s setup\n"
                        "       %s latency SAMPLES EXECUTORS GAP_MIN_MS GAP_MAX_MS\n"
                        "       %s throughput LABEL RUNS SECONDS E [E ...]\n",
                        argv[0], argv[0], argv[0]);
                return 2;
        }
        return 0;
}
