/*
 * worker — what every Loom daemon shares: signals, the database connection, LISTEN wake-ups,
 * leader election and the tick loop.
 *
 * A daemon is a struct worker_def (name, channel to LISTEN on, whether it needs leadership,
 * tick function).  worker_main() connects (retrying with backoff while the database is down),
 * LISTENs, and calls tick on every notification and at least every poll interval, because a
 * notification sent while we reconnect is lost: a notification is a doorbell, never data.
 * Notifications libpq already buffered (read along with the last statement's results) count as
 * a wake-up at once.  Ticks start at least min_gap_ms apart, so a burst of wake-ups costs one
 * tick.  A tick that found work returns a positive value and is called again at once, without
 * waiting.  A process that needs leadership and lacks it only retries the lock every poll
 * interval.  SIGTERM/SIGINT end the loop after the current tick.  worker_main() also runs the
 * database log writer (shared/dblog.h) with the worker's name as the lines' source, and gives
 * it a moment to flush at exit.
 */
#ifndef LOOM_WORKER_H
#define LOOM_WORKER_H

#include "arena.h"
#include "db.h"

#include <signal.h>
#include <stdbool.h>

struct worker {
        const struct worker_def *def;
        const char *name; /* LOOM_WORKER_NAME or def->name */
        /* name@host:pid — this process alone, even when a restarted process or another host
         * has the same name: the lease owner of the runs it claims, so a process that lost
         * its lease can never renew or finish the run another process now holds */
        const char *owner;
        struct db db;
        struct arena arena; /* reset after every tick */
        bool leader;        /* holds the advisory lock for def->name */
        unsigned long ticks;
};

struct worker_def {
        const char *name;
        const char *channel; /* LISTEN channel, or NULL */
        bool needs_leader;   /* only the lock holder ticks */
        int poll_ms;         /* longest sleep between ticks */
        int min_gap_ms;      /* shortest time from one tick's start to the next one's */
        /*
         * One unit of work.  Returns 0 when idle (wait for a notification or poll_ms), a
         * positive value when it found work and more may be ready (tick again at once), or a
         * negative err_code on failure (logged, then the loop waits as for 0).
         */
        int (*tick)(struct worker *w);
        /* Optional: called once when the loop ends (SIGTERM/SIGINT), before the database
         * connection is closed, to give back what the process still holds. */
        void (*stop)(struct worker *w);
};

/* The flag SIGTERM/SIGINT set: long work (an LLM call, a run) checks it to stop early. */
/* CLOCK_MONOTONIC in milliseconds. */
long long worker_now_ms(void);

const volatile sig_atomic_t *worker_stop_flag(void);

/* Runs def until SIGTERM/SIGINT; returns the process exit status. */
int worker_main(const struct worker_def *def);

#endif
