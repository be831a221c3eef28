/*
 * metrics — per-process HTTP counters and their flusher; see metrics.h.
 */
#include "metrics.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const double metrics_http_bounds[METRICS_HTTP_BOUNDS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10};

#define METRICS_STOP_S 2 /* the last flush at exit gets this long */

/* The statuses loom-api answers with (http_status_line); anything else counts as "other". */
static const int metrics_codes[] = {200, 201, 204, 400, 401, 403, 404, 405,
                                    409, 413, 415, 429, 500, 502, 503, 504};
#define METRICS_NCODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]) + 1)

/* One route's counters; every field is updated with atomic adds. */
struct metrics_route {
        uint64_t codes[METRICS_NCODES];
        uint64_t buckets[METRICS_HTTP_BOUNDS + 1];
        uint64_t sum_us;
};

static struct {
        const struct route *table;
        size_t n;                     /* routes; slot n is "unmatched" */
        struct metrics_route *routes; /* n + 1 */
        uint64_t changes;             /* bumped by every request: "something to flush" */
        char process[160];
        pthread_mutex_t flush_lock; /* one flush at a time, so reports never go backwards */
        uint64_t flushed_changes;
        struct timespec flushed_at;
        /* the flusher */
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool running, stopping;
        bool failing; /* the flusher's last report failed (logged once) */
        pthread_t thread;
        struct db db;
        long flush_ms;
} metrics = {
        .flush_lock = PTHREAD_MUTEX_INITIALIZER,
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
};

static struct db_stmt metrics_report_stmt = {
        .name = "metrics_report",
        .sql = "SELECT loom_metrics_report($1, 'loom-api', $2::jsonb)",
        .nparams = 2,
};

void metrics_init(const struct route *table, size_t n)
{
        char host[128];

        metrics.table = table;
        metrics.n = n;
        metrics.routes = xcalloc(n + 1, sizeof(*metrics.routes));
        if (gethostname(host, sizeof(host)) != 0)
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(metrics.process, sizeof(metrics.process), "%.100s:%d:%lld", host, (int)getpid(),
                 (long long)time(NULL));
}

const char *metrics_process(void)
{
        return metrics.process;
}

static size_t metrics_code_slot(int status)
{
        for (size_t i = 0; i + 1 < METRICS_NCODES; i++) {
                if (metrics_codes[i] == status)
                        return i;
        }
        return METRICS_NCODES - 1;
}

void metrics_http_record(const struct route *route, int status, double seconds)
{
        struct metrics_route *m;
        size_t slot = METRICS_HTTP_BOUNDS;

        if (!metrics.routes)
                return;
        m = &metrics.routes[route && route >= metrics.table && route < metrics.table + metrics.n
                                    ? (size_t)(route - metrics.table)
                                    : metrics.n];
        for (size_t i = 0; i < METRICS_HTTP_BOUNDS; i++) {
                if (seconds <= metrics_http_bounds[i]) {
                        slot = i;
                        break;
                }
        }
        __atomic_fetch_add(&m->codes[metrics_code_slot(status)], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->buckets[slot], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->sum_us, (uint64_t)(seconds > 0 ? seconds * 1e6 : 0),
                           __ATOMIC_RELAXED);
        __atomic_fetch_add(&metrics.changes, 1, __ATOMIC_RELEASE);
}

static uint64_t metrics_load(const uint64_t *p)
{
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void metrics_labels(struct strbuf *sb, size_t i)
{
        const char *method = i < metrics.n ? metrics.table[i].method : "any";
        const char *route = i < metrics.n ? metrics.table[i].pattern : "unmatched";

        strbuf_addstr(sb, "{\"method\":");
        strbuf_add_json_str(sb, method, strlen(method));
        strbuf_addstr(sb, ",\"route\":");
        strbuf_add_json_str(sb, route, strlen(route));
}

static void metrics_route_counters(struct strbuf *sb, size_t i, bool *first)
{
        for (size_t c = 0; c < METRICS_NCODES; c++) {
                uint64_t v = metrics_load(&metrics.routes[i].codes[c]);

                if (!v)
                        continue;
                strbuf_addstr(sb, *first ? "" : ",");
                *first = false;
                strbuf_addstr(sb, "{\"name\":\"loom_http_requests_total\",\"labels\":");
                metrics_labels(sb, i);
                if (c + 1 < METRICS_NCODES)
                        strbuf_addf(sb, ",\"code\":\"%d\"}", metrics_codes[c]);
                else
                        strbuf_addstr(sb, ",\"code\":\"other\"}");
                strbuf_addf(sb, ",\"value\":%llu}", (unsigned long long)v);
        }
}

static void metrics_route_histogram(struct strbuf *sb, size_t i, bool *first)
{
        const struct metrics_route *m = &metrics.routes[i];
        uint64_t b[METRICS_HTTP_BOUNDS + 1], count = 0;

        for (size_t k = 0; k <= METRICS_HTTP_BOUNDS; k++)
                count += b[k] = metrics_load(&m->buckets[k]);
        if (!count)
                return;
        strbuf_addstr(sb, *first ? "" : ",");
        *first = false;
        strbuf_addstr(sb, "{\"name\":\"loom_http_request_duration_seconds\",\"labels\":");
        metrics_labels(sb, i);
        strbuf_addstr(sb, "},\"bounds\":[");
        for (size_t k = 0; k < METRICS_HTTP_BOUNDS; k++)
                strbuf_addf(sb, "%s%g", k ? "," : "", metrics_http_bounds[k]);
        strbuf_addstr(sb, "],\"buckets\":[");
        for (size_t k = 0; k <= METRICS_HTTP_BOUNDS; k++)
                strbuf_addf(sb, "%s%llu", k ? "," : "", (unsigned long long)b[k]);
        strbuf_addf(sb, "],\"sum\":%.6f,\"count\":%llu}", (double)metrics_load(&m->sum_us) / 1e6,
                    (unsigned long long)count);
}

void metrics_report_json(struct strbuf *sb)
{
        bool first = true;

        strbuf_addstr(sb, "{\"counters\":[");
        for (size_t i = 0; metrics.routes && i <= metrics.n; i++)
                metrics_route_counters(sb, i, &first);
        strbuf_addstr(sb, "],\"histograms\":[");
        first = true;
        for (size_t i = 0; metrics.routes && i <= metrics.n; i++)
                metrics_route_histogram(sb, i, &first);
        strbuf_addstr(sb, "]}");
}

int metrics_flush(struct db *db)
{
        struct strbuf sb;
        const char *params[2] = {metrics.process};
        uint64_t changes;
        PGresult *res;
        int rc;

        strbuf_init(&sb, 0);
        pthread_mutex_lock(&metrics.flush_lock);
        changes = __atomic_load_n(&metrics.changes, __ATOMIC_ACQUIRE);
        metrics_report_json(&sb);
        params[1] = sb.buf;
        rc = sb.failed ? ERR_TOO_LARGE : db_exec(db, &metrics_report_stmt, params, &res);
        if (rc == ERR_OK) {
                PQclear(res);
                metrics.flushed_changes = changes;
                clock_gettime(CLOCK_MONOTONIC, &metrics.flushed_at);
        }
        pthread_mutex_unlock(&metrics.flush_lock);
        strbuf_release(&sb);
        return rc;
}

static long metrics_ms_since(const struct timespec *t)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Flushes when requests came since the last flush, or the heartbeat is due. */
static void metrics_maybe_flush(void)
{
        bool due;

        pthread_mutex_lock(&metrics.flush_lock);
        due = __atomic_load_n(&metrics.changes, __ATOMIC_ACQUIRE) != metrics.flushed_changes ||
              metrics.flushed_at.tv_sec == 0 ||
              metrics_ms_since(&metrics.flushed_at) >= METRICS_HEARTBEAT_MS;
        pthread_mutex_unlock(&metrics.flush_lock);
        if (!due)
                return;
        if (metrics_flush(&metrics.db) != ERR_OK) {
                if (!metrics.failing)
                        log_warn("metrics: cannot report this process's counters: %s",
                                 metrics.db.errmsg);
                metrics.failing = true;
        } else if (metrics.failing) {
                log_info("metrics: reporting this process's counters again");
                metrics.failing = false;
        }
}

static void *metrics_main(void *arg)
{
        (void)arg;
        metrics_maybe_flush(); /* at once: the process counts as live from its start */
        pthread_mutex_lock(&metrics.lock);
        while (!metrics.stopping) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += metrics.flush_ms / 1000;
                ts.tv_nsec += (metrics.flush_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                (void)pthread_cond_timedwait(&metrics.wake, &metrics.lock, &ts);
                pthread_mutex_unlock(&metrics.lock);
                metrics_maybe_flush(); /* also the last one, when stopping */
                pthread_mutex_lock(&metrics.lock);
        }
        pthread_mutex_unlock(&metrics.lock);
        return NULL;
}

int metrics_start(const char *conninfo)
{
        sigset_t all, old;
        int rc;

        metrics.flush_ms = config_long("LOOM_METRICS_FLUSH_MS", METRICS_FLUSH_MS, 100, 600000);
        db_init(&metrics.db, conninfo);
        /* signals belong to the main thread (server_run waits for them) */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&metrics.thread, NULL, metrics_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
                db_release(&metrics.db);
                return ERR_INTERNAL;
        }
        metrics.running = true;
        return ERR_OK;
}

void metrics_stop(void)
{
        struct timespec until;

        if (!metrics.running)
                return;
        pthread_mutex_lock(&metrics.lock);
        metrics.stopping = true;
        pthread_cond_broadcast(&metrics.wake);
        pthread_mutex_unlock(&metrics.lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += METRICS_STOP_S;
        metrics.running = false;
        if (pthread_timedjoin_np(metrics.thread, NULL, &until) != 0) {
                /* stuck in a statement: the process exits around it */
                pthread_detach(metrics.thread);
                return;
        }
        db_release(&metrics.db);
}
