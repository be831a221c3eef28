/*
 * dblog — log lines that also land in the database (the `logs` table and a log.<level> event,
 * sql/011_observability.sql), for the notable things a daemon does: a run started or ended,
 * a provider failed, Ralph acted, the sandbox is weaker than asked.
 *
 * dblog_write() prints the line to stderr like log_write() and hands it to a writer thread that
 * owns its own database connection and writes queued lines in batches.  The caller never waits
 * for the database and never sees it fail: the queue is bounded (DBLOG_QUEUE lines); when it
 * is full (the database is down or slow) new lines are dropped and counted, and the next batch
 * that gets through says how many were lost.  Lines below info stay on stderr only.
 *
 * Never call it from a signal handler or between fork and exec.
 */
#ifndef LOOM_DBLOG_H
#define LOOM_DBLOG_H

#include "log.h"

#include <stdint.h>

#define DBLOG_QUEUE   512  /* lines waiting for the writer; more are dropped */
#define DBLOG_BATCH   100  /* lines per statement */
#define DBLOG_MSG_MAX 2000 /* a message longer than this is cut */
#define DBLOG_ID_MAX  64   /* project, bead and agent ids longer than this are dropped */

/* What a line is about; every field may be NULL. Borrowed for the duration of the call. */
struct dblog_where {
        const char *project_id;
        const char *bead_id;
        const char *agent_id;
};

struct dblog_stats {
        uint64_t written; /* lines the database took */
        uint64_t dropped; /* lines lost: queue full, or the database refused them */
        uint64_t queued;  /* lines waiting now */
};

/*
 * Starts the writer: a thread with a connection to conninfo (copied), writing lines with
 * source (copied; the worker's name, e.g. "executor-01") as their source.  Calling it again
 * while it runs does nothing.  0, or ERR_INTERNAL when the thread cannot start (lines then go
 * to stderr only).
 */
int dblog_start(const char *conninfo, const char *source) __attribute__((warn_unused_result));

/* Logs a line (stderr when level passes LOOM_LOG_LEVEL; the database when info or above and
 * the writer runs).  where may be NULL.  Cannot fail; never blocks on the database. */
void dblog_write(enum log_level level, const struct dblog_where *where, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Lets the writer flush what is queued, waiting at most wait_ms, then stops it.  Lines still
 * queued after that are dropped.  Harmless when the writer never started. */
void dblog_stop(int wait_ms);

/* Counters since start. Cannot fail. */
void dblog_get_stats(struct dblog_stats *out);

#endif
