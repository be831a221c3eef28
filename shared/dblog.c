/*
 * dblog — a bounded queue of log lines and the thread that writes them; see dblog.h.
 */
#include "dblog.h"
#include "db.h"
#include "err.h"
#include "strbuf.h"
#include "xalloc.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DBLOG_RETRY_MIN_MS 100
#define DBLOG_RETRY_MAX_MS 5000

static const char *const dblog_levels[] = {"debug", "info", "warn", "error"};

struct dblog_line {
        enum log_level level;
        char project[DBLOG_ID_MAX + 1];
        char bead[DBLOG_ID_MAX + 1];
        char agent[DBLOG_ID_MAX + 1];
        char msg[DBLOG_MSG_MAX + 1];
};

static struct {
        pthread_mutex_t lock;
        pthread_cond_t wake; /* a line was queued, or stop was asked */
        struct dblog_line *ring;
        size_t head, count; /* the oldest line and how many wait */
        bool running, stopping, exited;
        pthread_t thread;
        struct db db;
        char source[128];
        uint64_t written, dropped, dropped_told;
} dblog = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static struct db_stmt dblog_stmt = {
        .name = "dblog_write",
        .sql = "SELECT loom_logs_write($1::jsonb)",
        .nparams = 1,
};

/* Copies s into a fixed field; ids that do not fit are dropped rather than cut. */
static void dblog_id(char *dst, const char *s)
{
        size_t n = s ? strlen(s) : 0;

        if (n > DBLOG_ID_MAX)
                n = 0;
        memcpy(dst, s ? s : "", n);
        dst[n] = '\0';
}

static void dblog_add_field(struct strbuf *sb, const char *key, const char *value, bool comma)
{
        strbuf_addf(sb, "%s\"%s\":", comma ? "," : "", key);
        if (value && *value)
                strbuf_add_json_str(sb, value, strlen(value));
        else
                strbuf_addstr(sb, "null");
}

static void dblog_add_line(struct strbuf *sb, const struct dblog_line *l)
{
        strbuf_addch(sb, '{');
        dblog_add_field(sb, "level", dblog_levels[l->level], false);
        dblog_add_field(sb, "source", dblog.source, true);
        dblog_add_field(sb, "message", l->msg, true);
        dblog_add_field(sb, "project_id", l->project, true);
        dblog_add_field(sb, "bead_id", l->bead, true);
        dblog_add_field(sb, "agent_id", l->agent, true);
        strbuf_addch(sb, '}');
}

/* The batch as the JSON array loom_logs_write takes, with a note of lines lost before it. */
static void dblog_batch_json(struct strbuf *sb, const struct dblog_line *batch, size_t n,
                             uint64_t lost)
{
        strbuf_addch(sb, '[');
        if (lost) {
                struct dblog_line note = {.level = LOG_LEVEL_WARN};

                snprintf(note.msg, sizeof(note.msg),
                         "%llu log lines were dropped (the queue was full or the database "
                         "refused them)",
                         (unsigned long long)lost);
                dblog_add_line(sb, &note);
        }
        for (size_t i = 0; i < n; i++) {
                if (i || lost)
                        strbuf_addch(sb, ',');
                dblog_add_line(sb, &batch[i]);
        }
        strbuf_addch(sb, ']');
}

/* Runs one batch; 0 when the database took it. */
static int dblog_send(const struct dblog_line *batch, size_t n, uint64_t lost)
{
        struct strbuf sb;
        const char *params[1];
        PGresult *res;
        int rc;

        strbuf_init(&sb, 0);
        dblog_batch_json(&sb, batch, n, lost);
        params[0] = sb.buf;
        rc = sb.failed ? ERR_TOO_LARGE : db_exec(&dblog.db, &dblog_stmt, params, &res);
        if (rc == ERR_OK)
                PQclear(res);
        strbuf_release(&sb);
        return rc;
}

/* Waits on the condition until ms pass or stop is asked; the lock is held. */
static void dblog_wait_locked(int ms)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&dblog.wake, &dblog.lock, &ts);
}

/* Takes up to DBLOG_BATCH lines off the head into batch (lock held); returns how many. */
static size_t dblog_peek_locked(struct dblog_line *batch, uint64_t *lost)
{
        size_t n = dblog.count < DBLOG_BATCH ? dblog.count : DBLOG_BATCH;

        for (size_t i = 0; i < n; i++)
                batch[i] = dblog.ring[(dblog.head + i) % DBLOG_QUEUE];
        *lost = dblog.dropped - dblog.dropped_told;
        return n;
}

static void *dblog_main(void *arg)
{
        struct dblog_line *batch = xcalloc(DBLOG_BATCH, sizeof(*batch));
        int retry_ms = DBLOG_RETRY_MIN_MS;

        (void)arg;
        pthread_mutex_lock(&dblog.lock);
        for (;;) {
                uint64_t lost;
                size_t n;
                int rc;

                while (dblog.count == 0 && !dblog.stopping)
                        dblog_wait_locked(1000);
                if (dblog.count == 0)
                        break; /* stopping, and nothing left */
                n = dblog_peek_locked(batch, &lost);
                pthread_mutex_unlock(&dblog.lock);
                rc = dblog_send(batch, n, lost);
                pthread_mutex_lock(&dblog.lock);
                if (rc == ERR_OK || rc == ERR_INVALID || rc == ERR_TOO_LARGE || dblog.stopping) {
                        /* written, refused for good, or no time left: the batch is done */
                        dblog.head = (dblog.head + n) % DBLOG_QUEUE;
                        dblog.count -= n;
                        if (rc == ERR_OK) {
                                dblog.written += n;
                                dblog.dropped_told += lost;
                        } else {
                                dblog.dropped += n;
                        }
                        retry_ms = DBLOG_RETRY_MIN_MS;
                        continue;
                }
                /* the database is away: keep the lines, try again later */
                dblog_wait_locked(retry_ms);
                retry_ms = retry_ms * 2 > DBLOG_RETRY_MAX_MS ? DBLOG_RETRY_MAX_MS : retry_ms * 2;
        }
        dblog.exited = true;
        pthread_cond_broadcast(&dblog.wake);
        pthread_mutex_unlock(&dblog.lock);
        free(batch);
        return NULL;
}

int dblog_start(const char *conninfo, const char *source)
{
        sigset_t all, old;
        bool created;
        int rc = ERR_OK;

        pthread_mutex_lock(&dblog.lock);
        if (dblog.running)
                goto out;
        if (!dblog.ring)
                dblog.ring = xcalloc(DBLOG_QUEUE, sizeof(*dblog.ring));
        snprintf(dblog.source, sizeof(dblog.source), "%s", source);
        db_init(&dblog.db, conninfo);
        dblog.stopping = false;
        dblog.exited = false;
        /* signals stay with the daemon's main thread (its handlers and poll wake-ups) */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        created = pthread_create(&dblog.thread, NULL, dblog_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!created) {
                db_release(&dblog.db);
                rc = ERR_INTERNAL;
                goto out;
        }
        dblog.running = true;
out:
        pthread_mutex_unlock(&dblog.lock);
        return rc;
}

static void dblog_queue(enum log_level level, const struct dblog_where *where, const char *msg)
{
        struct dblog_line *l;

        pthread_mutex_lock(&dblog.lock);
        if (!dblog.running || dblog.stopping) {
                pthread_mutex_unlock(&dblog.lock);
                return;
        }
        if (dblog.count == DBLOG_QUEUE) {
                dblog.dropped++;
                pthread_mutex_unlock(&dblog.lock);
                return;
        }
        l = &dblog.ring[(dblog.head + dblog.count) % DBLOG_QUEUE];
        l->level = level;
        dblog_id(l->project, where ? where->project_id : NULL);
        dblog_id(l->bead, where ? where->bead_id : NULL);
        dblog_id(l->agent, where ? where->agent_id : NULL);
        snprintf(l->msg, sizeof(l->msg), "%s", msg);
        dblog.count++;
        pthread_cond_signal(&dblog.wake);
        pthread_mutex_unlock(&dblog.lock);
}

void dblog_write(enum log_level level, const struct dblog_where *where, const char *fmt, ...)
{
        char msg[DBLOG_MSG_MAX + 1];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (level >= log_threshold)
                log_write(level, "%s", msg);
        if (level >= LOG_LEVEL_INFO)
                dblog_queue(level, where, msg);
}

void dblog_stop(int wait_ms)
{
        struct timespec until;
        size_t left;
        bool exited;

        pthread_mutex_lock(&dblog.lock);
        if (!dblog.running) {
                pthread_mutex_unlock(&dblog.lock);
                return;
        }
        dblog.stopping = true;
        pthread_cond_broadcast(&dblog.wake);
        pthread_mutex_unlock(&dblog.lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(dblog.thread, NULL, &until) != 0) {
                /* stuck in a statement: leave it to the process's exit */
                pthread_detach(dblog.thread);
                pthread_mutex_lock(&dblog.lock);
                exited = dblog.exited;
                left = dblog.count;
                dblog.running = false;
                pthread_mutex_unlock(&dblog.lock);
                if (!exited)
                        log_warn("dblog: %zu log lines were not written before stopping", left);
                return;
        }
        pthread_mutex_lock(&dblog.lock);
        dblog.running = false;
        pthread_mutex_unlock(&dblog.lock);
        db_release(&dblog.db);
}

void dblog_get_stats(struct dblog_stats *out)
{
        pthread_mutex_lock(&dblog.lock);
        out->written = dblog.written;
        out->dropped = dblog.dropped;
        out->queued = dblog.count;
        pthread_mutex_unlock(&dblog.lock);
}
