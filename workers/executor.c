/*
 * loom-executor — claims queued runs and drives the agent action loop (N processes).
 *
 * Each executor claims work with one UPDATE … FOR UPDATE SKIP LOCKED statement and holds a
 * lease renewed by heartbeat.  The run queue and the action loop arrive with the agents work;
 * until then the process keeps its database connection and LISTEN channel warm.
 */
#include "err.h"
#include "log.h"
#include "worker.h"

static int executor_tick(struct worker *w)
{
        log_debug("%s idle (tick %lu)", w->name, w->ticks);
        return ERR_OK;
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-executor",
                .channel = "loom_runs",
                .needs_leader = false,
                .poll_ms = 1000,
                .tick = executor_tick,
        };

        log_setup("loom-executor");
        return worker_main(&def);
}
