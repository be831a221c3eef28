/*
 * motivation — loom-ralph's motivations phase: evaluates every enabled motivation once per tick
 * (sql/014_motivations.sql has the rules) and keeps the event horizon the event motivations
 * read up to.
 *
 * The horizon: events.id comes from a sequence, so a transaction can hold an id below one that
 * another has already committed.  A cursor that moved past the newest visible id could skip
 * that event for good.  So each tick observes (the newest visible id, this statement's own
 * transaction id, the oldest running transaction id); an observation is settled, and its newest
 * id becomes the horizon, once the oldest running transaction id has passed the observation's
 * own: every transaction that could still add an event below that id has ended by then.  The
 * one case this cannot see (as in fcgi/sse_gap.h): an event written by a transaction that took
 * its id before it had a transaction id of its own; Loom writes its row before its event.
 */
#ifndef LOOM_MOTIVATION_H
#define LOOM_MOTIVATION_H

#include "worker.h"

#include <stdbool.h>
#include <stdint.h>

/* At most this many successful firings per tick (Loom's engine: 10); the rest wait a tick. */
#define MOTIVATION_MAX_FIRINGS 10
/* Motivations evaluated per tick, least recently evaluated first. */
#define MOTIVATION_BATCH 100

struct motivation_horizon {
        int64_t safe;         /* every event id up to this one is settled */
        int64_t pending;      /* the newest id of the observation waiting to settle */
        uint64_t pending_xid; /* settled once the oldest running transaction id passes it */
        bool has_pending;
};

/*
 * One observation: xmin the oldest running transaction id, xid the observing statement's own
 * transaction id, newest the newest visible event id.  Settles the waiting observation when
 * xmin > its xid, then starts a new one when newer events exist.  Pure; cannot fail.
 */
void motivation_horizon_step(struct motivation_horizon *h, uint64_t xmin, uint64_t xid,
                             int64_t newest);

/*
 * The phase: advances the horizon, then evaluates up to MOTIVATION_BATCH motivations, each in
 * its own transaction, until MOTIVATION_MAX_FIRINGS fired.  Returns 0, or the err_code of a
 * database failure (a motivation whose evaluation fails is logged and skipped).
 */
int motivation_phase(struct worker *w) __attribute__((warn_unused_result));

#endif
