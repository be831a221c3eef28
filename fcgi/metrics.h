/*
 * metrics — loom-api's own counters: HTTP requests by method, route and status, and their
 * latency by method and route, counted in this process and reported to the database.
 *
 * Why a table per process and not one shared counter row: every request would otherwise
 * update the same rows (lock contention, a write per request, and a database outage would
 * lose counts or fail requests).  Here a request costs a few atomic increments; a flusher
 * thread (its own connection) writes this process's cumulative totals every
 * LOOM_METRICS_FLUSH_MS (5 s) when they changed, and at least every 10 s as a heartbeat, with
 * loom_metrics_report (sql/011_observability.sql), keyed by a process id (host:pid:start).
 * A scrape first flushes its own process, then sums every process's rows, so any loom-api
 * answers for all of them, one scrape sees the whole system, and a restart never makes a
 * counter go down (the old process's rows stay in the sum until Ralph folds them).
 */
#ifndef LOOM_METRICS_H
#define LOOM_METRICS_H

#include "db.h"
#include "router.h"
#include "strbuf.h"

#include <stddef.h>

#define METRICS_FLUSH_MS     5000  /* default of LOOM_METRICS_FLUSH_MS */
#define METRICS_HEARTBEAT_MS 10000 /* report even when idle, so the process counts as live */
#define METRICS_HTTP_BOUNDS  11

extern const double metrics_http_bounds[METRICS_HTTP_BOUNDS];

/*
 * Sets up the counters for the n routes of table (a request that matched none counts as
 * route "unmatched") and this process's id.  Call once, before any request.  Cannot fail.
 */
void metrics_init(const struct route *table, size_t n);
/* Counts one request: its route (NULL: none matched), its status and how long it took.
 * Thread-safe, lock-free. */
void metrics_http_record(const struct route *route, int status, double seconds);
/* Appends this process's report (the doc loom_metrics_report takes) to sb. */
void metrics_report_json(struct strbuf *sb);
/* Writes this process's counters now, on db.  0 or the err_code of the statement. */
int metrics_flush(struct db *db) __attribute__((warn_unused_result));
/* Starts the flusher thread with its own connection to conninfo (copied). 0, or ERR_INTERNAL. */
int metrics_start(const char *conninfo) __attribute__((warn_unused_result));
/* Stops the flusher after one last flush. Harmless when it never started. */
void metrics_stop(void);
/* This process's id in the metric tables: "host:pid:start". */
const char *metrics_process(void);

#endif
