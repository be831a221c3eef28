/*
 * loom-dispatcher — matches ready beads to agents and enqueues runs (one active instance).
 *
 * Leadership is a PostgreSQL advisory lock held for the life of the connection, so a second
 * dispatcher on another host idles until the first one's connection goes away.  It wakes on
 * loom_events notifications (at most one tick per 200 ms however many arrive) and polls every
 * second.  The matching and the run queue arrive with the agents work (runs, personas); until
 * then the tick does nothing.
 */
#include "err.h"
#include "log.h"
#include "worker.h"

static int dispatcher_tick(struct worker *w)
{
        log_debug("%s tick %lu", w->name, w->ticks);
        return ERR_OK;
}

int main(void)
{
        static const struct worker_def def = {
                .name = "loom-dispatcher",
                .channel = "loom_events",
                .needs_leader = true,
                .poll_ms = 1000,
                .min_gap_ms = 200,
                .tick = dispatcher_tick,
        };

        log_setup("loom-dispatcher");
        return worker_main(&def);
}
