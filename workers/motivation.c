/*
 * motivation — loom-ralph's motivations phase; see motivation.h.
 */
#include "motivation.h"
#include "cron.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* One statement, one snapshot: the oldest running transaction, our own (pg_current_xact_id
 * assigns one), the newest visible event, the database's clock. */
static struct db_stmt motivation_observe_stmt = {
        .name = "motivation_observe",
        .sql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text,"
               " pg_current_xact_id()::text, (SELECT coalesce(max(id), 0) FROM events)::text,"
               " extract(epoch FROM now())::bigint::text",
        .nparams = 0,
};

static struct db_stmt motivation_due_stmt = {
        .name = "motivation_due",
        .sql = "SELECT id, type, CASE WHEN type = 'calendar' THEN condition ->> 'cron' END"
               " FROM motivations WHERE status <> 'disabled'"
               " ORDER BY evaluated_at NULLS FIRST, id LIMIT $1::int",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt motivation_evaluate_stmt = {
        .name = "motivation_evaluate",
        .sql = "SELECT loom_motivation_evaluate($1::bigint, $2::bigint, to_timestamp($3::bigint))",
        .nparams = 3,
};

void motivation_horizon_step(struct motivation_horizon *h, uint64_t xmin, uint64_t xid,
                             int64_t newest)
{
        if (h->has_pending && xmin > h->pending_xid) {
                if (h->pending > h->safe)
                        h->safe = h->pending;
                h->has_pending = false;
        }
        if (!h->has_pending && newest > h->safe) {
                h->pending = newest;
                h->pending_xid = xid;
                h->has_pending = true;
        }
}

/* Observes the event table and moves the horizon on; *now: the database's time (epoch s). */
static int motivation_observe(struct worker *w, struct motivation_horizon *h, int64_t *now)
{
        PGresult *res;
        int rc = db_exec(&w->db, &motivation_observe_stmt, NULL, &res);

        if (rc) {
                log_warn("motivations: cannot observe the event horizon: %s", w->db.errmsg);
                return rc;
        }
        motivation_horizon_step(h, strtoull(PQgetvalue(res, 0, 0), NULL, 10),
                                strtoull(PQgetvalue(res, 0, 1), NULL, 10),
                                strtoll(PQgetvalue(res, 0, 2), NULL, 10));
        *now = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        PQclear(res);
        return ERR_OK;
}

/* The next time of a cron schedule after now, as epoch seconds in buf; NULL when none. */
static const char *motivation_cron_at(const char *id, const char *expr, int64_t now, char *buf,
                                      size_t len)
{
        struct cron c;
        char err[160];
        time_t t;

        if (!expr)
                return NULL;
        if (cron_parse(expr, &c, err, sizeof(err)) != 0) {
                log_warn("motivation %s: cron '%s' is invalid: %s", id, expr, err);
                return NULL;
        }
        t = cron_next(&c, (time_t)now);
        if (t < 0)
                return NULL;
        snprintf(buf, len, "%lld", (long long)t);
        return buf;
}

/* Evaluates one motivation in its own transaction; adds its firings to *fired. */
static int motivation_evaluate(struct worker *w, const PGresult *due, int row, int64_t now,
                               const char *safe, int *fired)
{
        char cron_at[24];
        const char *id = PQgetvalue(due, row, 0);
        const char *params[3] = {id, safe, NULL};
        PGresult *res;
        long n;
        int rc;

        params[2] = motivation_cron_at(id, db_value(due, row, 2), now, cron_at, sizeof(cron_at));
        rc = db_exec(&w->db, &motivation_evaluate_stmt, params, &res);
        if (rc) {
                log_warn("motivation %s: evaluation failed: %s", id, w->db.errmsg);
                return rc;
        }
        n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (n > 0)
                log_info("motivation %s (%s) fired %ld time%s", id, PQgetvalue(due, row, 1), n,
                         n == 1 ? "" : "s");
        *fired += (int)n;
        return ERR_OK;
}

int motivation_phase(struct worker *w)
{
        static struct motivation_horizon horizon;
        char batch[16], safe[24];
        const char *params[1] = {batch};
        PGresult *due;
        int64_t now;
        int fired = 0, rc = motivation_observe(w, &horizon, &now);

        if (rc)
                return rc;
        snprintf(batch, sizeof(batch), "%d", MOTIVATION_BATCH);
        snprintf(safe, sizeof(safe), "%lld", (long long)horizon.safe);
        rc = db_exec(&w->db, &motivation_due_stmt, params, &due);
        if (rc)
                return rc;
        for (int i = 0; i < PQntuples(due) && fired < MOTIVATION_MAX_FIRINGS; i++) {
                rc = motivation_evaluate(w, due, i, now, safe, &fired);
                if (rc == ERR_UNAVAILABLE)
                        break;
                rc = ERR_OK; /* one broken motivation does not hold up the others */
        }
        PQclear(due);
        return rc;
}
