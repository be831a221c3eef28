/*
 * loom-dispatcher — matches ready beads to agents and enqueues runs (one active instance).
 *
 * Leadership is a PostgreSQL advisory lock held for the life of the connection, so a second
 * dispatcher on another host idles until the first one's connection goes away.  It wakes on
 * loom_dispatch notifications, which only the events that can make work dispatchable send
 * (sql/007_dispatch_wakeup.sql), at most one tick per 10 ms however many arrive; it polls every
 * second and ticks again at once after a full batch.  Each tick is one loom_dispatch() call
 * (sql/004_runs.sql): ready beads in priority order → the hinted persona's idle agent on a
 * healthy provider → a queued run.  Decision beads waiting for a person are skipped, a bead
 * past LOOM_MAX_HOPS (20) dispatches is blocked, a project runs at most LOOM_PROJECT_MAX_RUNS
 * (3) at once, and a bead whose run failed waits LOOM_DISPATCH_BACKOFF_SECONDS (120) before it
 * is tried again.
 */
#include "config.h"
#include "err.h"
#include "log.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

static struct db_stmt dispatch_stmt = {
        .name = "dispatch",
        .sql = "SELECT loom_dispatch($1::int, $2::int, $3::int, $4::int)",
        .nparams = 4,
};

static int dispatcher_tick(struct worker *w)
{
        static char batch[16], hops[16], cap[16], backoff[16];
        const char *params[4] = {batch, hops, cap, backoff};
        PGresult *res;
        int rc;

        if (!batch[0]) {
                snprintf(batch, sizeof(batch), "%ld",
                         config_long("LOOM_DISPATCH_BATCH", 20, 1, 1000));
                snprintf(hops, sizeof(hops), "%ld", config_long("LOOM_MAX_HOPS", 20, 1, 10000));
                snprintf(cap, sizeof(cap), "%ld", config_long("LOOM_PROJECT_MAX_RUNS", 3, 1, 1000));
                snprintf(backoff, sizeof(backoff), "%ld",
                         config_long("LOOM_DISPATCH_BACKOFF_SECONDS", 120, 0, 86400));
        }
        rc = db_exec(&w->db, &dispatch_stmt, params, &res);
        if (rc)
                return rc;
        if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
                log_info("queued %s runs", PQgetvalue(res, 0, 0));
        /* a full batch: more beads may be ready, so tick again at once */
        rc = strcmp(PQgetvalue(res, 0, 0), batch) == 0 ? 1 : ERR_OK;
        PQclear(res);
        return rc;
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-dispatcher",
                .channel = "loom_dispatch",
                .needs_leader = true,
                .poll_ms = 1000,
                .min_gap_ms = 10,
                .tick = dispatcher_tick,
        };

        log_setup("loom-dispatcher");
        return worker_main(&def);
}
