/*
 * loom-ralph — the maintenance loop (one active instance), every 10 s.
 *
 * Today it keeps the events table small: events older than LOOM_EVENTS_RETENTION_DAYS
 * (default 30) are deleted in batches, so the table streams read from stays bounded.  Resetting
 * stuck agents, re-queueing expired leases and blocking looping beads join it with the agents
 * work.  A tick never overlaps the previous one: the loop is single-threaded.
 */
#include "config.h"
#include "err.h"
#include "log.h"
#include "worker.h"

#include <stdio.h>

#define RALPH_PRUNE_BATCH "10000"

static struct db_stmt ralph_prune_events_stmt = {
        .name = "ralph_prune_events",
        .sql = "DELETE FROM events WHERE id IN (SELECT id FROM events"
               " WHERE created_at < now() - make_interval(days => $1::int)"
               " ORDER BY id LIMIT " RALPH_PRUNE_BATCH ")",
        .nparams = 1,
};

static int ralph_tick(struct worker *w)
{
        static long days = -1;
        char days_s[16];
        const char *params[1] = {days_s};
        PGresult *res;
        int rc;

        if (days < 0)
                days = config_long("LOOM_EVENTS_RETENTION_DAYS", 30, 1, 36500);
        snprintf(days_s, sizeof(days_s), "%ld", days);
        rc = db_exec(&w->db, &ralph_prune_events_stmt, params, &res);
        if (rc)
                return rc;
        if (*PQcmdTuples(res) && PQcmdTuples(res)[0] != '0')
                log_info("pruned %s events older than %ld days", PQcmdTuples(res), days);
        PQclear(res);
        return ERR_OK;
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-ralph",
                .channel = NULL,
                .needs_leader = true,
                .poll_ms = 10000,
                .tick = ralph_tick,
        };

        log_setup("loom-ralph");
        return worker_main(&def);
}
