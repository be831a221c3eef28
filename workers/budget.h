/*
 * budget — what loom-executor asks before it spends, and how a run stops for a person.
 *
 * Before every LLM call, budget_reserve() reserves the call's estimated cost (prompt characters
 * / 4 at the model's input price + max_tokens at its output price, from model_prices) with one
 * statement, loom_budget_reserve (sql/012_budgets.sql), that checks the project's limits (all
 * time, this month), the bead's and the spend gate while it holds the project's budgets row.
 * The call's llm_calls record (loom_llm_call_record, given the reservation id) reconciles it
 * with the real cost.  No transaction is open during the call or while waiting.
 *
 * budget_gate() ends a run that waits for a person — a used-up budget, spending past the
 * allowance, a merge to approve — in one transaction: the run's end, the bead blocked on a
 * decision bead (loom_run_gate).  The executor is free at once.
 */
#ifndef LOOM_BUDGET_H
#define LOOM_BUDGET_H

#include "arena.h"
#include "db.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Waits at least this long are worth a log line. */
#define BUDGET_WAIT_LOG_MS 200

enum budget_verdict {
        BUDGET_GRANTED,  /* reserved: make the call, record it with hold.reservation */
        BUDGET_WAIT,     /* calls in flight hold what is left, still so after wait_ms */
        BUDGET_REFUSED,  /* a budget is used up: the run ends, terminal reason "budget" */
        BUDGET_APPROVAL, /* past the bead's spend allowance: the run ends awaiting approval */
        BUDGET_LOST,     /* the run is no longer ours (lease gone, canceled) */
};

/* One call to reserve for, and how to behave while the budget is busy. */
struct budget_call {
        const char *run_id, *owner, *model;
        size_t prompt_chars;
        int max_tokens;
        long wait_ms;                 /* how long a busy budget is waited for */
        bool (*keepalive)(void *arg); /* every keepalive_ms while waiting; false: stop */
        void *keepalive_arg;
        long keepalive_ms;
        const volatile sig_atomic_t *cancel; /* set: stop waiting */
};

/* The answer.  Strings are in the arena given to budget_reserve. */
struct budget_hold {
        enum budget_verdict verdict;
        char reservation[24]; /* the reservation's id; "" when there is none */
        bool priced;          /* false: the model has no price, so nothing was reserved */
        const char *amount;   /* USD reserved, or needed by the refused call */
        const char *message;  /* refusals and waits: why, in words */
        const char *detail;   /* refusals: JSON figures for the decision ("{}" otherwise) */
        long waited_ms;       /* how long calls in flight held the budget before this answer */
};

/*
 * Reserves the estimated cost of one call.  BUDGET_WAIT answers are asked again every 200 ms
 * (the keepalive renews the run's lease) until granted, refused, wait_ms passes or cancel is
 * set.  Returns 0 with *hold filled, or a negative err_code when the database failed (db's
 * errmsg says why; nothing was reserved).
 */
int budget_reserve(struct db *db, struct arena *arena, const struct budget_call *call,
                   struct budget_hold *hold) __attribute__((warn_unused_result));

/*
 * Ends run_id (held by owner) for a person: kind "budget" (terminal reason budget), "spend" or
 * "merge" (awaiting_approval); question is what the person is asked, detail JSON figures for
 * the decision (NULL: none).  *decision gets the decision bead's id, "" when the run was no
 * longer ours.  Returns 0 or a negative err_code (nothing changed).
 */
int budget_gate(struct db *db, const char *run_id, const char *owner, const char *kind,
                const char *question, const char *detail, int iterations, char *decision,
                size_t len) __attribute__((warn_unused_result));

/* The name of a verdict ("granted", "wait", ...).  Cannot fail. */
const char *budget_verdict_name(enum budget_verdict v);

#endif
