/*
 * api_metrics — GET /metrics: Prometheus text (version 0.0.4) with Loom's loom_* names.
 *
 * Permission system:read (admins; for Prometheus, an API key narrowed to ["system:read"] sent
 * as a bearer token).  The numbers come from one statement, loom_metrics_scrape
 * (sql/011_observability.sql, 018_metrics_families.sql): gauges read from the tables (beads,
 * agents, providers, runs, the queue, the database's connections), counters and histograms
 * counted by triggers where things happen (finished runs and their durations by persona, bead
 * status changes and durations, lease expiries, dispatch hops, provider requests, tokens, cost,
 * latency) and the reports of every loom-api and loom-sse process (HTTP requests and latency
 * by route, open streams).
 * This process reports its own counters first (metrics.h), so they are exact; the others'
 * are at most LOOM_METRICS_FLUSH_MS old.  The families' types and help texts live here; a
 * family the database returns but this table does not know is left out.
 */
#include "api.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "prom.h"
#include "query.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_LABELS  8
#define METRICS_MAX_BOUNDS  64
#define METRICS_MAX_PAYLOAD ((size_t)32 << 20)

struct metric_family {
        const char *name;
        const char *type;
        const char *help;
};

static const struct metric_family families[] = {
        {"loom_agent_status", "gauge", "Agents by status."},
        {"loom_agent_task_duration_seconds", "histogram",
         "Time a run took from its start to its end, by persona."},
        {"loom_agent_tasks_total", "counter",
         "Runs that ended, by persona and result (the run's final state)."},
        {"loom_agents_total", "gauge", "Agents."},
        {"loom_bead_duration_seconds", "histogram",
         "Time a bead took from its creation to its close, observed when it closes."},
        {"loom_bead_status", "gauge", "Beads by status."},
        {"loom_bead_transitions_total", "counter", "Bead status changes, by from and to."},
        {"loom_beads_processed_total", "counter", "Beads closed."},
        {"loom_beads_total", "gauge", "Beads."},
        {"loom_database_connections", "gauge",
         "Connections to Loom's database by state (active, idle, idle in transaction)."},
        {"loom_dispatch_hop_limit_total", "counter",
         "Beads blocked by the dispatcher for reaching the hop limit (LOOM_MAX_HOPS)."},
        {"loom_dispatch_hops_total", "counter", "Dispatch hops: runs queued for a bead."},
        {"loom_events_published_total", "counter", "Events published (the events id sequence)."},
        {"loom_http_request_duration_seconds", "histogram",
         "Time loom-api took to answer a request, by method and route pattern."},
        {"loom_http_requests_total", "counter",
         "Requests loom-api answered, by method, route pattern and status code."},
        {"loom_lease_expiries_total", "counter",
         "Run leases that expired: requeued for another attempt, or failed after the last."},
        {"loom_processes", "gauge",
         "loom-api and loom-sse processes that reported in the last 30 seconds."},
        {"loom_provider_cost_usd_cents", "counter",
         "Cost of LLM calls in US cents (the provider's figure or the price table)."},
        {"loom_provider_errors_total", "counter", "Failed LLM calls by provider, model and class."},
        {"loom_provider_request_duration_seconds", "histogram",
         "LLM call latency by provider and model."},
        {"loom_provider_requests_total", "counter", "LLM calls by provider and model."},
        {"loom_provider_status", "gauge", "Providers by health status."},
        {"loom_provider_tokens_total", "counter",
         "Tokens of LLM calls by provider, model and type (prompt, completion, cached)."},
        {"loom_providers_total", "gauge", "Providers."},
        {"loom_run_queue_depth", "gauge", "Runs queued and waiting for an executor."},
        {"loom_runs", "gauge", "Runs by state (rows of the runs table)."},
        {"loom_runs_finished_total", "counter", "Runs that ended, by state and terminal reason."},
        {"loom_sse_streams", "gauge", "Open event streams across the loom-sse processes."},
        {"loom_sse_streams_rejected_total", "counter",
         "Event streams refused because a loom-sse process was full."},
        {"loom_sse_streams_started_total", "counter", "Event streams opened."},
};

static struct db_stmt scrape_stmt = {
        .name = "metrics_scrape",
        .sql = "SELECT family, labels::text, value, bounds::text, buckets::text, hsum, hcount"
               " FROM loom_metrics_scrape()",
        .nparams = 0,
        .readonly = true,
};

static const struct metric_family *metrics_family(const char *name)
{
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
                if (strcmp(families[i].name, name) == 0)
                        return &families[i];
        }
        return NULL;
}

/* Parses PostgreSQL's text of a number array ("{0.5,1,2}"); the count, or -1 when malformed. */
static int metrics_parse_array(const char *text, double *out, int max)
{
        const char *p = text;
        int n = 0;

        if (*p++ != '{')
                return -1;
        while (*p && *p != '}') {
                char *end;

                if (n == max)
                        return -1;
                out[n++] = strtod(p, &end);
                if (end == p)
                        return -1;
                p = end;
                if (*p == ',')
                        p++;
        }
        return *p == '}' ? n : -1;
}

/* The labels of a row (a JSON object of strings), valid names only; the count. */
static size_t metrics_labels(json_object *obj, struct prom_label *labels)
{
        size_t n = 0;

        if (!obj || !json_object_is_type(obj, json_type_object))
                return 0;
        json_object_object_foreach(obj, key, val)
        {
                if (n == METRICS_MAX_LABELS || !prom_valid_label_name(key) ||
                    strcmp(key, "le") == 0)
                        continue;
                labels[n].name = key;
                labels[n].value = json_object_get_string(val);
                n++;
        }
        return n;
}

/* One histogram row; false when its arrays do not fit together. */
static bool metrics_histogram(struct strbuf *sb, const char *name, const struct prom_label *labels,
                              size_t n, const PGresult *res, int row)
{
        double bounds[METRICS_MAX_BOUNDS], counts[METRICS_MAX_BOUNDS + 1];
        uint64_t buckets[METRICS_MAX_BOUNDS + 1];
        int nb = metrics_parse_array(PQgetvalue(res, row, 3), bounds, METRICS_MAX_BOUNDS);
        int nc = metrics_parse_array(PQgetvalue(res, row, 4), counts, METRICS_MAX_BOUNDS + 1);

        if (nb < 0 || nc != nb + 1)
                return false;
        for (int i = 0; i <= nb; i++)
                buckets[i] = counts[i] > 0 ? (uint64_t)counts[i] : 0;
        prom_histogram(sb, name, labels, n, bounds, buckets, (size_t)nb,
                       strtod(PQgetvalue(res, row, 5), NULL));
        return true;
}

/* One row of the scrape: a sample or a histogram, under its family's header. */
static void metrics_row(struct strbuf *sb, const PGresult *res, int row, const char **family)
{
        const char *name = PQgetvalue(res, row, 0);
        const struct metric_family *f = metrics_family(name);
        struct prom_label labels[METRICS_MAX_LABELS];
        json_object *obj;
        size_t n;

        if (!f)
                return;
        if (!*family || strcmp(*family, name) != 0) {
                prom_family(sb, f->name, f->type, f->help);
                *family = f->name;
        }
        obj = json_tokener_parse(PQgetvalue(res, row, 1));
        n = metrics_labels(obj, labels);
        if (PQgetisnull(res, row, 3))
                prom_sample(sb, f->name, "", labels, n, NULL,
                            PQgetisnull(res, row, 2) ? 0 : strtod(PQgetvalue(res, row, 2), NULL));
        else if (!metrics_histogram(sb, f->name, labels, n, res, row))
                log_warn("metrics: histogram %s %s has mismatched buckets; left out", name,
                         PQgetvalue(res, row, 1));
        json_object_put(obj);
}

/* Rows come ordered by family and labels; a repeat of the same series (a histogram whose
 * processes disagree on the bounds) keeps the first, the one with most observations. */
static void metrics_render(struct strbuf *sb, const PGresult *res)
{
        const char *family = NULL;

        for (int i = 0; i < PQntuples(res); i++) {
                if (i > 0 && strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i - 1, 0)) == 0 &&
                    strcmp(PQgetvalue(res, i, 1), PQgetvalue(res, i - 1, 1)) == 0)
                        continue;
                metrics_row(sb, res, i, &family);
        }
}

int api_metrics(struct request *req)
{
        struct strbuf sb;
        PGresult *res;
        int rc = query_done(req);

        if (rc)
                return rc;
        rc = metrics_flush(req->db);
        if (rc == ERR_UNAVAILABLE)
                return http_fail_db(req);
        if (rc)
                log_warn("metrics: cannot report this process's counters: %s", req->db->errmsg);
        if (db_exec(req->db, &scrape_stmt, NULL, &res) != ERR_OK)
                return http_fail_db(req);
        strbuf_init(&sb, METRICS_MAX_PAYLOAD);
        metrics_render(&sb, res);
        PQclear(res);
        if (sb.failed) {
                strbuf_release(&sb);
                return http_fail(req, ERR_INTERNAL, "the metrics are over %zu MiB",
                                 METRICS_MAX_PAYLOAD >> 20);
        }
        http_send_body(req, 200, PROM_CONTENT_TYPE, sb.buf, sb.len);
        strbuf_release(&sb);
        return ERR_OK;
}
