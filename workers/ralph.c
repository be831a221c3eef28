/*
 * loom-ralph — the maintenance loop (one active instance): at least every 10 s, and at once
 * when a provider is registered or changed (NOTIFY loom_providers).
 *
 * Each beat (ralph_tick):
 *   - re-queues runs whose lease expired (their executor died), blocking the bead after three;
 *   - releases budget reservations no live run holds any more (sql/012_budgets.sql);
 *   - resets agents stuck "working" with no live run; blocks beads whose errors loop; gives
 *     beads blocked for a transient cause another chance after a cool-down;
 *   - registers the provider from LOOM_PROVIDER_URL / LOOM_PROVIDER_API_KEY /
 *     LOOM_PROVIDER_MODEL when no provider exists yet (id "default"), the key sealed
 *     (shared/secret.c) like every stored key;
 *   - probes providers that are new, changed, or last checked over 60 s ago (10 s when the
 *     last probe failed), with
 *     GET {endpoint}/models (no tokens spent), and records healthy/failed, latency and error;
 *   - evaluates the motivations (workers/motivation.c): calendar, event, threshold and idle
 *     conditions, each motivation in its own transaction, firing at most 10 per tick;
 *   - keeps the events table bounded (LOOM_EVENTS_RETENTION_DAYS, default 30, with the activity
 *     feed and read notifications) and the logs table (LOOM_LOGS_RETENTION_DAYS, default 7), in
 *     batches;
 *   - drops pair sessions 7 days after their last use, injected messages after 7 days, and
 *     lessons whose relevance has faded below 2 % (loom_pair_prune);
 *   - folds the metric rows of loom-api / loom-sse processes silent for an hour into the
 *     database's own (counters keep growing across restarts, the table stays small).
 * Every change it makes is an event, and a line in the logs table (shared/dblog.h).  Ticks
 * never overlap: the loop is single-threaded.
 */
#include "config.h"
#include "dblog.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "motivation.h"
#include "secret.h"
#include "worker.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RALPH_PROBE_EVERY_S  "60"
#define RALPH_PROBE_FAILED_S "10" /* a failed provider is retried sooner */
#define RALPH_PROBE_TIMEOUT  10000
#define RALPH_PROBE_MAX_BODY ((size_t)4 << 20)
#define RALPH_METRICS_STALE  "3600" /* seconds before a silent process's metrics are folded */

/* The oldest 10,000 events by id, of which those past retention go: bounded work per tick. */
static struct db_stmt ralph_prune_events_stmt = {
        .name = "ralph_prune_events",
        .sql = "DELETE FROM events WHERE id IN (SELECT s.id FROM"
               " (SELECT id, created_at FROM events ORDER BY id LIMIT 10000) s"
               " WHERE s.created_at < now() - make_interval(days => $1::int))",
        .nparams = 1,
};

/* The activity feed and read notifications, with the same retention (sql/013_activity.sql). */
static struct db_stmt ralph_prune_activity_stmt = {
        .name = "ralph_prune_activity",
        .sql = "SELECT loom_activity_prune($1::int)",
        .nparams = 1,
};

static struct db_stmt ralph_prune_logs_stmt = {
        .name = "ralph_prune_logs",
        .sql = "SELECT loom_logs_prune($1::int)",
        .nparams = 1,
};

static struct db_stmt ralph_fold_metrics_stmt = {
        .name = "ralph_fold_metrics",
        .sql = "SELECT loom_metrics_fold(" RALPH_METRICS_STALE ")",
        .nparams = 0,
};

static struct db_stmt ralph_due_stmt = {
        .name = "ralph_probe_due",
        .sql = "SELECT id, endpoint, api_key_sealed FROM providers"
               " WHERE status = 'pending' OR (status <> 'inactive' AND (last_heartbeat_at IS NULL"
               "       OR last_heartbeat_at < now() - interval '" RALPH_PROBE_EVERY_S " seconds'"
               "       OR (status = 'failed' AND last_heartbeat_at < now() - interval "
               "'" RALPH_PROBE_FAILED_S " seconds')))"
               " ORDER BY id LIMIT 20",
        .nparams = 0,
        .readonly = true,
};

static struct db_stmt ralph_probed_stmt = {
        .name = "ralph_probed",
        .sql = "SELECT loom_provider_probed($1, $2::boolean, $3::int, $4)",
        .nparams = 4,
};

static struct db_stmt ralph_bootstrap_stmt = {
        .name = "ralph_bootstrap",
        .sql = "SELECT loom_provider_create(jsonb_build_object('id', 'default', 'name',"
               " 'Default provider', 'endpoint', $1::text, 'api_key_sealed', $2::text, 'model',"
               " coalesce($3::text, '')), 'loom-ralph')"
               " WHERE NOT EXISTS (SELECT 1 FROM providers)",
        .nparams = 3,
};

/* Records a probe's outcome: err "" for healthy. */
static int ralph_probed(struct worker *w, const char *id, double ms, const char *err)
{
        char latency[24];
        const char *params[4] = {id, *err ? "false" : "true", latency, *err ? err : NULL};
        PGresult *out;
        int rc;

        snprintf(latency, sizeof(latency), "%.0f", ms);
        if (*err)
                dblog_write(LOG_LEVEL_WARN, NULL, "provider %s failed its probe: %s", id, err);
        rc = db_exec(&w->db, &ralph_probed_stmt, params, &out);
        PQclear(out);
        return rc;
}

/* Probes one provider (sealed: its stored key, or NULL) and records the outcome. */
static int ralph_probe(struct worker *w, const char *id, const char *endpoint, const char *sealed)
{
        struct httpc_request hr = {
                .method = "GET", .connect_timeout_ms = 3000, .timeout_ms = RALPH_PROBE_TIMEOUT};
        struct httpc_response res;
        char url[1100], err[320];
        int rc = sealed ? secret_open(&w->arena, sealed, &hr.bearer) : ERR_OK;

        if (rc)
                return ralph_probed(w, id, 0, secret_open_strerror(rc));
        snprintf(url, sizeof(url), "%s/models", endpoint);
        hr.url = url;
        strbuf_init(&res.body, RALPH_PROBE_MAX_BODY);
        rc = httpc_perform(&hr, &res);
        strbuf_release(&res.body);
        err[0] = '\0';
        if (rc)
                snprintf(err, sizeof(err), "%s", res.error);
        else if (res.status != 200)
                snprintf(err, sizeof(err), "GET /models answered HTTP %ld", res.status);
        return ralph_probed(w, id, res.total_ms, err);
}

static int ralph_probe_due(struct worker *w)
{
        PGresult *due;
        int rc = db_exec(&w->db, &ralph_due_stmt, NULL, &due);

        if (rc)
                return rc;
        for (int i = 0; !rc && i < PQntuples(due); i++)
                rc = ralph_probe(w, PQgetvalue(due, i, 0), PQgetvalue(due, i, 1),
                                 db_value(due, i, 2));
        PQclear(due);
        return rc;
}

static int ralph_bootstrap_provider(struct worker *w)
{
        static bool done;
        const char *params[3] = {NULL}, *key;
        PGresult *res;
        int rc;

        params[0] = config_str("LOOM_PROVIDER_URL", NULL);
        if (done || !params[0])
                return ERR_OK;
        key = config_str("LOOM_PROVIDER_API_KEY", NULL);
        if (key) {
                rc = secret_seal(&w->arena, key, &params[1]);
                if (rc) {
                        dblog_write(LOG_LEVEL_ERROR, NULL, "cannot seal LOOM_PROVIDER_API_KEY: %s",
                                    err_strerror(rc));
                        done = true;
                        return rc;
                }
        }
        params[2] = config_str("LOOM_PROVIDER_MODEL", NULL);
        rc = db_exec(&w->db, &ralph_bootstrap_stmt, params, &res);
        if (rc) {
                dblog_write(LOG_LEVEL_ERROR, NULL,
                            "cannot register LOOM_PROVIDER_URL as a provider: %s", w->db.errmsg);
                done = true; /* a bad URL will not get better by retrying */
                return rc;
        }
        if (PQntuples(res) > 0)
                dblog_write(LOG_LEVEL_INFO, NULL,
                            "registered provider 'default' from LOOM_PROVIDER_URL");
        PQclear(res);
        done = true;
        return ERR_OK;
}

static int ralph_prune_events(struct worker *w)
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
                dblog_write(LOG_LEVEL_INFO, NULL, "pruned %s events older than %ld days",
                            PQcmdTuples(res), days);
        PQclear(res);
        rc = db_exec(&w->db, &ralph_prune_activity_stmt, params, &res);
        if (rc)
                return rc;
        if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
                log_info("pruned %s activities and read notifications older than %ld days",
                         PQgetvalue(res, 0, 0), days);
        PQclear(res);
        return ERR_OK;
}

static int ralph_prune_logs(struct worker *w)
{
        static long days = -1;
        char days_s[16];
        const char *params[1] = {days_s};
        PGresult *res;
        int rc;

        if (days < 0)
                days = config_long("LOOM_LOGS_RETENTION_DAYS", 7, 1, 36500);
        snprintf(days_s, sizeof(days_s), "%ld", days);
        rc = db_exec(&w->db, &ralph_prune_logs_stmt, params, &res);
        if (rc)
                return rc;
        if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
                dblog_write(LOG_LEVEL_INFO, NULL, "pruned %s log lines older than %ld days",
                            PQgetvalue(res, 0, 0), days);
        PQclear(res);
        return ERR_OK;
}

static struct db_stmt ralph_expire_stmt = {
        .name = "ralph_expire_runs",
        .sql = "SELECT loom_runs_expire($1::int)",
        .nparams = 1,
};

static struct db_stmt ralph_release_budget_stmt = {
        .name = "ralph_release_budget",
        .sql = "SELECT loom_budget_release_stale()",
        .nparams = 0,
};

static struct db_stmt ralph_reset_agents_stmt = {
        .name = "ralph_reset_agents",
        .sql = "SELECT loom_agents_reset_stuck($1::int)",
        .nparams = 1,
};

static struct db_stmt ralph_block_loops_stmt = {
        .name = "ralph_block_loops",
        .sql = "SELECT loom_beads_block_loops()",
        .nparams = 0,
};

/* Expired pair sessions, week-old injections, faded lessons (015_pair.sql). */
static struct db_stmt ralph_pair_prune_stmt = {
        .name = "ralph_pair_prune",
        .sql = "SELECT loom_pair_prune()",
        .nparams = 0,
};

static struct db_stmt ralph_recover_stmt = {
        .name = "ralph_recover",
        .sql = "SELECT loom_beads_recover($1::int, $2::int)",
        .nparams = 2,
};

/* Runs one maintenance statement that returns how many things it did; logs at level when any. */
static int ralph_phase(struct worker *w, struct db_stmt *st, const char *const *params,
                       enum log_level level, const char *what)
{
        PGresult *res;
        int rc = db_exec(&w->db, st, params, &res);

        if (rc)
                return rc;
        if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
                dblog_write(level, NULL, "%s %s", PQgetvalue(res, 0, 0), what);
        PQclear(res);
        return ERR_OK;
}

struct ralph_settings {
        char attempts[16], stuck_s[16], recover_s[16], auth_recover_s[16];
        long recover_every_s;
};

static void ralph_settings_load(struct ralph_settings *cfg)
{
        snprintf(cfg->attempts, sizeof(cfg->attempts), "%ld",
                 config_long("LOOM_MAX_ATTEMPTS", 3, 1, 100));
        snprintf(cfg->stuck_s, sizeof(cfg->stuck_s), "%ld",
                 config_long("LOOM_RALPH_STUCK_SECONDS", 300, 10, 86400));
        snprintf(cfg->recover_s, sizeof(cfg->recover_s), "%ld",
                 config_long("LOOM_RALPH_RECOVER_SECONDS", 1800, 10, 864000));
        snprintf(cfg->auth_recover_s, sizeof(cfg->auth_recover_s), "%ld",
                 config_long("LOOM_RALPH_AUTH_RECOVER_SECONDS", 7200, 10, 864000));
        cfg->recover_every_s = config_long("LOOM_RALPH_RECOVER_EVERY_SECONDS", 100, 1, 86400);
}

/*
 * One beat, Loom's phases in order: runs whose executor vanished go back to the queue (or
 * their bead is blocked after LOOM_MAX_ATTEMPTS), and what they had reserved of a budget is
 * released; agents "working" with no live run for 5 min
 * go idle; beads whose error history shows a loop are blocked; every 100 s, beads blocked for
 * a transient cause get another chance (30 min; auth errors 2 h; budget blocks never).  Then
 * providers: the bootstrap one, health probes; then motivations; then pruning.
 */
static int ralph_tick(struct worker *w)
{
        static struct ralph_settings cfg;
        static time_t last_recover;
        const char *params[2];
        time_t now = time(NULL);
        int rc;

        if (!cfg.attempts[0])
                ralph_settings_load(&cfg);
        params[0] = cfg.attempts;
        rc = ralph_phase(w, &ralph_expire_stmt, params, LOG_LEVEL_WARN,
                         "runs had expired leases (re-queued, or their beads blocked)");
        if (!rc)
                rc = ralph_phase(w, &ralph_release_budget_stmt, NULL, LOG_LEVEL_INFO,
                                 "stale budget reservations released");
        params[0] = cfg.stuck_s;
        if (!rc)
                rc = ralph_phase(w, &ralph_reset_agents_stmt, params, LOG_LEVEL_WARN,
                                 "stuck agents reset to idle");
        if (!rc)
                rc = ralph_phase(w, &ralph_block_loops_stmt, NULL, LOG_LEVEL_WARN,
                                 "looping beads blocked");
        if (!rc && now - last_recover >= cfg.recover_every_s) {
                params[0] = cfg.recover_s;
                params[1] = cfg.auth_recover_s;
                rc = ralph_phase(w, &ralph_recover_stmt, params, LOG_LEVEL_INFO,
                                 "blocked beads recovered for another try");
                if (!rc)
                        last_recover = now;
        }
        if (!rc)
                rc = ralph_bootstrap_provider(w);
        if (!rc)
                rc = ralph_probe_due(w);
        if (!rc)
                rc = motivation_phase(w);
        if (!rc)
                rc = ralph_prune_events(w);
        if (!rc)
                rc = ralph_phase(w, &ralph_pair_prune_stmt, NULL, LOG_LEVEL_INFO,
                                 "expired pair sessions, old injections and faded lessons pruned");
        if (!rc)
                rc = ralph_prune_logs(w);
        if (!rc)
                rc = ralph_phase(w, &ralph_fold_metrics_stmt, NULL, LOG_LEVEL_DEBUG,
                                 "silent processes' metrics folded");
        return rc;
}

int main(void)
{
        static struct worker_def def = {
                .name = "loom-ralph",
                .channel = "loom_providers",
                .needs_leader = true,
                .min_gap_ms = 100,
                .tick = ralph_tick,
        };
        char err[512];

        log_setup("loom-ralph");
        if (secret_key_load(err, sizeof(err)) != 0) {
                log_error("%s", err);
                return 1;
        }
        def.poll_ms = (int)config_long("LOOM_RALPH_INTERVAL_MS", 10000, 100, 600000);
        if (httpc_global_init() != 0) {
                log_error("cannot initialise libcurl");
                return 1;
        }
        return worker_main(&def);
}
