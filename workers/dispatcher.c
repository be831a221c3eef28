/*
 * loom-dispatcher — matches ready beads to agents and enqueues runs (one active instance).
 *
 * Leadership is a PostgreSQL advisory lock held for the life of the connection, so a second
 * dispatcher on another host idles until the first one's connection goes away.  It wakes on
 * loom_events notifications and polls every second.  The matching and run queue arrive with the
 * agents work (runs, personas); until then a tick only observes the ready queue.
 */
#include "err.h"
#include "log.h"
#include "worker.h"

static struct db_stmt dispatch_ready_count_stmt = {
        .name = "dispatch_ready_count",
        .sql = "SELECT count(*) FROM beads b WHERE b.status = 'open'"
               " AND cardinality(loom_open_blockers(b.id)) = 0",
        .nparams = 0,
        .readonly = true,
};

static int dispatcher_tick(struct worker *w)
{
        PGresult *res;
        int rc = db_exec(&w->db, &dispatch_ready_count_stmt, NULL, &res);

        if (rc)
                return rc;
        log_debug("ready beads: %s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return ERR_OK;
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-dispatcher",
                .channel = "loom_events",
                .needs_leader = true,
                .poll_ms = 1000,
                .tick = dispatcher_tick,
        };

        log_setup("loom-dispatcher");
        return worker_main(&def);
}
