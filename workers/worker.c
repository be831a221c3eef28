/*
 * worker — daemon skeleton: signals, reconnects, LISTEN, leader lock, ticks; see worker.h.
 */
#include "worker.h"
#include "config.h"
#include "dblog.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKER_DBLOG_STOP_MS 2000 /* at exit, queued log lines get this long to be written */

static volatile sig_atomic_t worker_stop;

static void worker_on_signal(int sig)
{
        (void)sig;
        worker_stop = 1;
}

/* Advisory lock key for a daemon name: stable across processes and hosts. */
static long long worker_lock_key(const char *name)
{
        unsigned long long h = 1469598103934665603ULL;

        for (; *name; name++) {
                h ^= (unsigned char)*name;
                h *= 1099511628211ULL;
        }
        return (long long)(h >> 1);
}

static struct db_stmt worker_try_lock_stmt = {
        .name = "worker_try_lock",
        .sql = "SELECT pg_try_advisory_lock($1::bigint)",
        .nparams = 1,
};

/* (Re)connects, LISTENs and tries for leadership. */
static int worker_prepare(struct worker *w)
{
        uint64_t gen = w->db.generation;
        PGresult *res;
        char key[32];
        const char *params[1] = {key};
        int rc = db_connect(&w->db);

        if (rc)
                return rc;
        if (gen != w->db.generation) {
                w->leader = false;
                if (w->def->channel) {
                        char sql[128];

                        snprintf(sql, sizeof(sql), "LISTEN %s", w->def->channel);
                        rc = db_exec_sql(&w->db, sql, &res);
                        PQclear(res);
                        if (rc)
                                return rc;
                }
                log_info("connected to the database");
        }
        if (w->def->needs_leader && !w->leader) {
                snprintf(key, sizeof(key), "%lld", worker_lock_key(w->def->name));
                rc = db_exec(&w->db, &worker_try_lock_stmt, params, &res);
                if (rc)
                        return rc;
                w->leader = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
                PQclear(res);
                if (w->leader)
                        log_info("%s: this process is the leader", w->def->name);
        }
        return ERR_OK;
}

/* Milliseconds on the monotonic clock. */
long long worker_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads what the server sent without blocking and frees the notifications libpq holds,
 * including those it buffered while reading the last statement's results.  True when there
 * were any.  A broken connection is dropped (worker_prepare reconnects).
 */
static bool worker_drain(struct worker *w)
{
        PGconn *conn = w->db.conn;
        PGnotify *n;
        bool any = false;

        if (!conn)
                return false;
        if (!PQconsumeInput(conn)) {
                log_warn("database connection lost while waiting: %s", PQerrorMessage(conn));
                db_disconnect(&w->db);
                return false;
        }
        while ((n = PQnotifies(conn))) {
                PQfreemem(n);
                any = true;
        }
        return any;
}

/*
 * Sleeps until a notification arrives, ms pass or a signal comes.  Returns at once when a
 * notification is already buffered: it may stand for a commit the last tick did not see.
 */
static void worker_wait(struct worker *w, int ms)
{
        struct pollfd pfd;

        if (!w->db.conn) {
                poll(NULL, 0, ms);
                return;
        }
        if (worker_drain(w) || !w->db.conn)
                return;
        pfd.fd = PQsocket(w->db.conn);
        pfd.events = POLLIN;
        if (pfd.fd >= 0 && poll(&pfd, 1, ms) > 0)
                worker_drain(w);
}

/*
 * Keeps ticks at least def->min_gap_ms apart, counted from the start of the last tick, so a
 * burst of wake-ups costs one tick, not one each.  Notifications that arrive meanwhile are
 * covered by the next tick and dropped.
 */
static void worker_gap(struct worker *w, long long tick_start_ms)
{
        long long left = tick_start_ms + w->def->min_gap_ms - worker_now_ms();

        if (left <= 0 || worker_stop)
                return;
        poll(NULL, 0, (int)left);
        worker_drain(w);
}

/* name@host:pid (host cut at 64 bytes); a static buffer, made once per process. */
static const char *worker_owner(const char *name)
{
        static char owner[256];
        char host[65] = "";

        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
                snprintf(host, sizeof(host), "localhost");
        snprintf(owner, sizeof(owner), "%.150s@%s:%ld", name, host, (long)getpid());
        return owner;
}

const volatile sig_atomic_t *worker_stop_flag(void)
{
        return &worker_stop;
}

int worker_main(const struct worker_def *def)
{
        struct sigaction sa;
        struct worker w;
        long long tick_start;
        int backoff = 100;

        memset(&w, 0, sizeof(w));
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = worker_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        w.def = def;
        w.name = config_str("LOOM_WORKER_NAME", def->name);
        w.owner = worker_owner(w.name);
        db_init(&w.db, config_database_url());
        arena_init(&w.arena, 0);
        /* notable lines also go to the logs table (a daemon may have started it already) */
        if (dblog_start(config_database_url(), w.name) != ERR_OK)
                log_warn("cannot start the database log writer; logging to stderr only");
        log_info("%s starting as %s (lease owner %s)", def->name, w.name, w.owner);
        while (!worker_stop) {
                int rc = worker_prepare(&w);

                if (rc) {
                        worker_wait(&w, backoff);
                        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                        continue;
                }
                backoff = 100;
                if (def->needs_leader && !w.leader) {
                        /* a standby only retries the lock: wake-ups are the leader's business */
                        poll(NULL, 0, def->poll_ms);
                        worker_drain(&w);
                        continue;
                }
                tick_start = worker_now_ms();
                rc = def->tick(&w);
                w.ticks++;
                arena_reset(&w.arena);
                if (rc < 0)
                        log_warn("%s tick failed: %s (%s)", def->name, err_strerror(rc),
                                 w.db.errmsg);
                if (rc > 0) {
                        /* more work is ready; wake-ups that came meanwhile are covered by it */
                        worker_drain(&w);
                        continue;
                }
                worker_wait(&w, def->poll_ms);
                worker_gap(&w, tick_start);
        }
        log_info("%s stopping after %lu ticks", def->name, w.ticks);
        if (def->stop)
                def->stop(&w);
        dblog_stop(WORKER_DBLOG_STOP_MS);
        arena_release(&w.arena);
        db_release(&w.db);
        return 0;
}
