/*
 * budget — reservations before LLM calls and runs that stop for a person; see budget.h.
 */
#include "budget.h"
#include "err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BUDGET_RETRY_MS 200

static struct db_stmt budget_reserve_stmt = {
        .name = "budget_reserve",
        .sql = "SELECT r ->> 'verdict', coalesce(r ->> 'reservation_id', ''),"
               " coalesce(r ->> 'amount_usd', '0'), coalesce(r ->> 'priced', 'false'),"
               " coalesce(r ->> 'message', ''), coalesce(r ->> 'detail', '{}')"
               " FROM loom_budget_reserve($1, $2, $3, $4::bigint, $5::int) r",
        .nparams = 5,
};

static struct db_stmt budget_gate_stmt = {
        .name = "budget_gate",
        .sql = "SELECT coalesce(loom_run_gate($1, $2, $3, $4, $5::int, $6::jsonb), '')",
        .nparams = 6,
};

static const struct {
        const char *name;
        enum budget_verdict verdict;
} budget_verdicts[] = {
        {"granted", BUDGET_GRANTED},   {"wait", BUDGET_WAIT}, {"budget", BUDGET_REFUSED},
        {"approval", BUDGET_APPROVAL}, {"lost", BUDGET_LOST},
};

const char *budget_verdict_name(enum budget_verdict v)
{
        for (size_t i = 0; i < sizeof(budget_verdicts) / sizeof(budget_verdicts[0]); i++) {
                if (budget_verdicts[i].verdict == v)
                        return budget_verdicts[i].name;
        }
        return "unknown";
}

static long budget_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One question to the database. */
static int budget_ask(struct db *db, struct arena *arena, const struct budget_call *call,
                      struct budget_hold *hold)
{
        const char *params[5] = {call->run_id, call->owner, call->model,
                                 arena_printf(arena, "%zu", call->prompt_chars),
                                 arena_printf(arena, "%d", call->max_tokens)};
        PGresult *res;
        int rc = db_exec(db, &budget_reserve_stmt, params, &res);

        if (rc)
                return rc;
        hold->verdict = BUDGET_LOST;
        for (size_t i = 0; i < sizeof(budget_verdicts) / sizeof(budget_verdicts[0]); i++) {
                if (strcmp(PQgetvalue(res, 0, 0), budget_verdicts[i].name) == 0)
                        hold->verdict = budget_verdicts[i].verdict;
        }
        snprintf(hold->reservation, sizeof(hold->reservation), "%s", PQgetvalue(res, 0, 1));
        hold->amount = arena_strdup(arena, PQgetvalue(res, 0, 2));
        hold->priced = strcmp(PQgetvalue(res, 0, 3), "true") == 0;
        hold->message = arena_strdup(arena, PQgetvalue(res, 0, 4));
        hold->detail = arena_strdup(arena, PQgetvalue(res, 0, 5));
        PQclear(res);
        return ERR_OK;
}

int budget_reserve(struct db *db, struct arena *arena, const struct budget_call *call,
                   struct budget_hold *hold)
{
        long start = budget_now_ms(), renewed = start;
        const struct timespec pause = {.tv_nsec = BUDGET_RETRY_MS * 1000000L};

        for (;;) {
                int rc = budget_ask(db, arena, call, hold);

                hold->waited_ms = budget_now_ms() - start;
                if (rc || hold->verdict != BUDGET_WAIT)
                        return rc;
                if (budget_now_ms() - start >= call->wait_ms || (call->cancel && *call->cancel))
                        return ERR_OK;
                nanosleep(&pause, NULL);
                if (call->keepalive && budget_now_ms() - renewed >= call->keepalive_ms) {
                        renewed = budget_now_ms();
                        if (!call->keepalive(call->keepalive_arg)) {
                                hold->verdict = BUDGET_LOST;
                                return ERR_OK;
                        }
                }
        }
}

int budget_gate(struct db *db, const char *run_id, const char *owner, const char *kind,
                const char *question, const char *detail, int iterations, char *decision,
                size_t len)
{
        char iters[16];
        const char *params[6] = {run_id, owner, kind, question, iters, detail};
        PGresult *res;
        int rc;

        snprintf(iters, sizeof(iters), "%d", iterations);
        rc = db_exec(db, &budget_gate_stmt, params, &res);
        if (rc)
                return rc;
        snprintf(decision, len, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return ERR_OK;
}
