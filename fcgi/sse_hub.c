/*
 * sse_hub — the LISTEN connection, event fetches and catch-up reads; see sse_hub.h.
 */
#include "sse_hub.h"
#include "db.h"
#include "log.h"
#include "sse_conn.h"
#include "sse_gap.h"
#include "sse_ring.h"
#include "sse_stream.h"
#include "xalloc.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum sse_hub_state {
        SSE_HUB_DOWN,       /* no connection; sse_hub_tick reconnects at retry_at_ms */
        SSE_HUB_CONNECTING, /* PQconnectPoll in progress, abandoned at retry_at_ms */
        SSE_HUB_IDLE,       /* connected and listening; nothing in flight */
        SSE_HUB_BUSY,       /* one query in flight (query says which), due by query_deadline_ms */
};

enum sse_hub_query {
        SSE_HUB_Q_SETUP,  /* session settings and LISTEN */
        SSE_HUB_Q_HEAD,   /* max(events.id): where the feed starts, once per process */
        SSE_HUB_Q_FETCH,  /* new events after the ring's head, with the snapshot */
        SSE_HUB_Q_READ,   /* a catch-up batch for one stream */
        SSE_HUB_Q_REPORT, /* this process's stream counts, for /metrics */
};

#define HUB_STR2(x) #x
#define HUB_STR(x)  HUB_STR2(x)

static const char *const hub_setup_sql = "SET application_name = 'loom-sse';"
                                         " SET statement_timeout = '10s';"
                                         " LISTEN loom_events";

static const char *const hub_head_sql = "SELECT coalesce(max(id), 0) FROM events";

/* An event's activity, when it is the newest event folded into one (sql/013_activity.sql). */
#define HUB_ACTIVITY_SQL                                                                           \
        "(SELECT loom_activity_json(a)::text FROM activities a WHERE a.event_id = e.id)"

/* the snapshot of the same statement tells sse_gap which holes may still fill */
static const char *const hub_fetch_sql =
        "SELECT e.id, e.type, e.project_id, loom_event_json(e)::text, e.recipient,"
        "       " HUB_ACTIVITY_SQL ","
        "       pg_snapshot_xmin(pg_current_snapshot())::text,"
        "       pg_snapshot_xmax(pg_current_snapshot())::text"
        "  FROM events e WHERE e.id > $1::bigint"
        " ORDER BY e.id LIMIT " HUB_STR(SSE_HUB_BATCH);

static const char *const hub_report_sql = "SELECT loom_metrics_report($1, 'loom-sse', $2::jsonb)";

/* $6: the personal stream's user (NULL: events with no recipient); $7: activities only */
static const char *const hub_read_sql =
        "SELECT e.id, e.type, e.project_id, loom_event_json(e)::text, e.recipient,"
        "       " HUB_ACTIVITY_SQL "  FROM events e WHERE e.id > $1::bigint AND e.id <= $2::bigint"
        "   AND ($3::text IS NULL OR e.project_id = $3)"
        "   AND ($4::text IS NULL OR e.type = $4)"
        "   AND ($5::text IS NULL OR starts_with(e.type, $5))"
        "   AND (($6::text IS NULL AND e.recipient IS NULL) OR e.recipient = $6)"
        "   AND (NOT $7::boolean OR EXISTS (SELECT 1 FROM activities a WHERE a.event_id = e.id))"
        " ORDER BY e.id LIMIT " HUB_STR(SSE_HUB_BATCH);

struct sse_hub {
        struct sse_watch watch; /* PQsocket; fd -1 while not watched */
        struct sse_server *srv;
        enum sse_hub_state state;
        enum sse_hub_query query;
        PGconn *conn;
        char *conninfo;
        uint32_t events;    /* what the socket is watched for */
        bool ready;         /* the head was read: streams may start */
        bool outage;        /* the connection was lost and is not back yet (logging) */
        bool fetch_wanted;  /* a doorbell rang, or the last fetch was a full batch */
        bool fetch_full;    /* the fetch in flight returned a full batch, all delivered */
        bool last_was_read; /* fetches and reads take turns */
        bool query_failed;
        int backoff_ms;
        int64_t retry_at_ms;
        int64_t query_deadline_ms;
        int64_t next_fetch_ms;
        int64_t last_fetch_ms; /* when the last fetch was sent (SSE_HUB_FETCH_GAP_MS) */
        struct sse_gap gap;
        struct sse_list reads;    /* streams waiting for a table read (sse_conn.link), FIFO */
        struct sse_conn *reading; /* the stream whose read is in flight; NULL if it closed */
        int64_t read_upto;        /* the read in flight covers ids up to here */
        int64_t read_through;     /* …and delivered everything up to here */
        int64_t next_report_ms;   /* when the stream counts are reported next */
        bool report_failed;       /* the last report failed (logged once) */
        char process[160];        /* this process in the metric tables: host:pid:start */
};

static void hub_on_ready(struct sse_watch *w, uint32_t events);

struct sse_hub *sse_hub_new(struct sse_server *srv, const char *conninfo)
{
        struct sse_hub *h = xcalloc(1, sizeof(*h));
        char host[128];

        h->srv = srv;
        h->conninfo = xstrdup(conninfo);
        h->watch.fd = -1;
        h->watch.on_ready = hub_on_ready;
        h->state = SSE_HUB_DOWN;
        h->backoff_ms = SSE_HUB_BACKOFF_MIN;
        sse_list_init(&h->reads);
        if (gethostname(host, sizeof(host)) != 0)
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(h->process, sizeof(h->process), "%.100s:%d:%lld", host, (int)getpid(),
                 (long long)time(NULL));
        return h;
}

void sse_hub_free(struct sse_hub *h)
{
        if (!h)
                return;
        if (h->watch.fd >= 0)
                sse_watch_del(h->srv, &h->watch);
        if (h->conn)
                PQfinish(h->conn);
        free(h->conninfo);
        free(h);
}

bool sse_hub_ready(const struct sse_hub *h)
{
        return h->ready;
}

bool sse_hub_connected(const struct sse_hub *h)
{
        return h->state == SSE_HUB_IDLE || h->state == SSE_HUB_BUSY;
}

/* Drops the connection; a read in flight goes back to the front of the queue. */
static void hub_fail(struct sse_hub *h, const char *why)
{
        if (h->reading) {
                sse_list_prepend(&h->reads, &h->reading->link);
                h->reading = NULL;
        }
        /* why may point into the connection: log before PQfinish */
        if (!h->outage)
                log_warn("event feed lost its database connection: %s", why);
        else
                log_debug("event feed still without a database connection: %s", why);
        h->outage = true;
        if (h->watch.fd >= 0)
                sse_watch_del(h->srv, &h->watch);
        h->watch.fd = -1;
        if (h->conn)
                PQfinish(h->conn);
        h->conn = NULL;
        h->state = SSE_HUB_DOWN;
        h->retry_at_ms = h->srv->now_ms + h->backoff_ms;
        h->backoff_ms =
                h->backoff_ms * 2 > SSE_HUB_BACKOFF_MAX ? SSE_HUB_BACKOFF_MAX : h->backoff_ms * 2;
}

/*
 * Watches PQsocket for events.  libpq may replace its socket while connecting (even under the
 * same number, which epoll then has forgotten), so `force` re-registers regardless.
 */
static int hub_watch(struct sse_hub *h, uint32_t events, bool force)
{
        int fd = PQsocket(h->conn);

        if (fd < 0)
                return -1;
        if (fd != h->watch.fd) {
                if (h->watch.fd >= 0)
                        sse_watch_del(h->srv, &h->watch);
                h->watch.fd = fd;
                h->events = events;
                return sse_watch_add(h->srv, &h->watch, events);
        }
        if (events == h->events && !force)
                return 0;
        h->events = events;
        return sse_watch_mod(h->srv, &h->watch, events);
}

static void hub_flush(struct sse_hub *h)
{
        int rc = PQflush(h->conn);

        if (rc < 0 || hub_watch(h, rc ? EPOLLIN | EPOLLOUT : EPOLLIN, false) != 0)
                hub_fail(h, PQerrorMessage(h->conn));
}

static void hub_send(struct sse_hub *h, enum sse_hub_query q, const char *sql, int nparams,
                     const char *const *params)
{
        int ok = nparams ? PQsendQueryParams(h->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                         : PQsendQuery(h->conn, sql);

        if (!ok) {
                hub_fail(h, PQerrorMessage(h->conn));
                return;
        }
        h->state = SSE_HUB_BUSY;
        h->query = q;
        h->query_failed = false;
        h->query_deadline_ms = h->srv->now_ms + SSE_HUB_QUERY_MS;
        hub_flush(h);
}

static void hub_send_fetch(struct sse_hub *h)
{
        char after[24];
        const char *params[1] = {after};

        snprintf(after, sizeof(after), "%lld", (long long)h->srv->ring.head);
        h->fetch_wanted = false;
        h->fetch_full = false;
        h->last_fetch_ms = h->srv->now_ms;
        hub_send(h, SSE_HUB_Q_FETCH, hub_fetch_sql, 1, params);
}

static void hub_send_read(struct sse_hub *h)
{
        struct sse_conn *c = sse_container(h->reads.next, struct sse_conn, link);
        char after[24], upto[24];
        const char *params[7] = {after,
                                 upto,
                                 c->project_id,
                                 c->type,
                                 c->type_prefix,
                                 c->personal ? c->user : NULL,
                                 c->activity ? "true" : "false"};

        sse_list_remove(&c->link);
        h->reading = c;
        h->read_upto = h->srv->ring.head;
        h->read_through = c->last_id;
        snprintf(after, sizeof(after), "%lld", (long long)c->last_id);
        snprintf(upto, sizeof(upto), "%lld", (long long)h->read_upto);
        hub_send(h, SSE_HUB_Q_READ, hub_read_sql, 7, params);
}

/* The stream counts as loom_metrics_report takes them (cumulative per process). */
static void hub_send_report(struct sse_hub *h)
{
        const struct sse_server *srv = h->srv;
        const char *params[2] = {h->process};
        char doc[512];

        snprintf(doc, sizeof(doc),
                 "{\"gauges\":[{\"name\":\"loom_sse_streams\",\"value\":%ld}],"
                 "\"counters\":[{\"name\":\"loom_sse_streams_started_total\",\"value\":%llu},"
                 "{\"name\":\"loom_sse_streams_rejected_total\",\"value\":%llu}]}",
                 srv->nstreams, (unsigned long long)srv->stats.streams_started,
                 (unsigned long long)srv->stats.rejected_full);
        params[1] = doc;
        h->next_report_ms = srv->now_ms + SSE_HUB_REPORT_MS;
        hub_send(h, SSE_HUB_Q_REPORT, hub_report_sql, 2, params);
}

/*
 * Starts the next query when idle: a due report first (one small statement every few
 * seconds), else fetches and reads take turns when both are waiting.
 */
static void hub_kick(struct sse_hub *h)
{
        bool fetch, read;

        if (h->state != SSE_HUB_IDLE || !h->ready)
                return;
        if (h->srv->now_ms >= h->next_report_ms) {
                hub_send_report(h);
                return;
        }
        fetch = (h->fetch_wanted && h->srv->now_ms >= h->last_fetch_ms + SSE_HUB_FETCH_GAP_MS) ||
                h->srv->now_ms >= h->next_fetch_ms;
        read = !sse_list_empty(&h->reads);
        if (fetch && (!read || h->last_was_read)) {
                h->last_was_read = false;
                hub_send_fetch(h);
        } else if (read) {
                h->last_was_read = true;
                hub_send_read(h);
        }
}

static void hub_on_head(struct sse_hub *h, const PGresult *res)
{
        int64_t head = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;

        sse_ring_reset(&h->srv->ring, head);
        h->ready = true;
        h->next_fetch_ms = h->srv->now_ms + SSE_HUB_POLL_MS;
        log_info("event feed ready at event %lld", (long long)head);
}

/* Columns 0-5 of a fetch or read row: id, type, project, event JSON, recipient, activity. */
static struct sse_event *hub_row_event(const PGresult *res, int row)
{
        struct sse_event_row r = {
                .id = strtoll(PQgetvalue(res, row, 0), NULL, 10),
                .type = PQgetvalue(res, row, 1),
                .project_id = db_value(res, row, 2),
                .json = PQgetvalue(res, row, 3),
                .json_len = (size_t)PQgetlength(res, row, 3),
                .recipient = db_value(res, row, 4),
                .activity = db_value(res, row, 5),
                .activity_len = (size_t)PQgetlength(res, row, 5),
        };

        return sse_event_build(&r);
}

/* New rows: deliver the prefix sse_gap allows, in order, into the ring and to live streams. */
static void hub_on_fetch(struct sse_hub *h, const PGresult *res)
{
        struct sse_server *srv = h->srv;
        int64_t ids[SSE_HUB_BATCH], skipped_after = 0;
        struct sse_gap_snapshot snap;
        size_t n = (size_t)PQntuples(res), ok;
        bool skipped;

        if (n > SSE_HUB_BATCH)
                n = SSE_HUB_BATCH;
        if (n == 0) {
                h->gap.open = false;
                return;
        }
        for (size_t i = 0; i < n; i++)
                ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        snap.xmin = strtoull(PQgetvalue(res, 0, 6), NULL, 10);
        snap.xmax = strtoull(PQgetvalue(res, 0, 7), NULL, 10);
        ok = sse_gap_accept(&h->gap, srv->ring.head, ids, n, &snap, srv->now_ms,
                            SSE_HUB_GAP_WAIT_MS, &skipped, &skipped_after);
        if (skipped) {
                srv->stats.gaps_skipped++;
                log_warn("an event id after %lld stayed missing for %d ms; delivering later "
                         "events without it",
                         (long long)skipped_after, SSE_HUB_GAP_WAIT_MS);
        }
        for (size_t i = 0; i < ok; i++) {
                struct sse_event *ev = hub_row_event(res, (int)i);

                if (sse_ring_push(&srv->ring, ev)) {
                        srv->stats.events++;
                        sse_stream_fanout(srv, ev);
                }
        }
        h->fetch_full = ok == n && n == SSE_HUB_BATCH;
}

/* A catch-up batch; delivery stops when the stream's queue is full, the rest is read again. */
static void hub_on_read(struct sse_hub *h, const PGresult *res)
{
        int n = PQntuples(res), i;

        h->srv->stats.table_reads++;
        for (i = 0; i < n && h->reading; i++) {
                struct sse_event *ev;

                if (sse_conn_queued(h->reading) > SSE_QUEUE_LOW)
                        return; /* read_through stays at the last delivered row */
                ev = hub_row_event(res, i);
                h->read_through = ev->id;
                sse_stream_deliver(h->reading, ev); /* may close the stream: reading = NULL */
                sse_event_free(ev);
        }
        if (i == n && n < SSE_HUB_BATCH)
                h->read_through = h->read_upto;
}

static void hub_result(struct sse_hub *h, const PGresult *res)
{
        ExecStatusType st = PQresultStatus(res);

        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && h->query == SSE_HUB_Q_REPORT) {
                /* metrics are not worth the event feed: note it and carry on */
                if (!h->report_failed)
                        log_warn("cannot report the stream counts: %s", PQresultErrorMessage(res));
                h->report_failed = true;
                return;
        }
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                log_error("event feed query failed: %s", PQresultErrorMessage(res));
                h->query_failed = true;
                return;
        }
        if (h->query == SSE_HUB_Q_REPORT)
                h->report_failed = false;
        if (h->query == SSE_HUB_Q_HEAD)
                hub_on_head(h, res);
        else if (h->query == SSE_HUB_Q_FETCH)
                hub_on_fetch(h, res);
        else if (h->query == SSE_HUB_Q_READ)
                hub_on_read(h, res);
}

static void hub_query_done(struct sse_hub *h)
{
        struct sse_conn *c;

        h->state = SSE_HUB_IDLE;
        if (h->query_failed) {
                hub_fail(h, "a query failed");
                return;
        }
        switch (h->query) {
        case SSE_HUB_Q_SETUP:
                h->backoff_ms = SSE_HUB_BACKOFF_MIN;
                if (h->outage)
                        log_info("event feed reconnected; catching up after event %lld",
                                 (long long)h->srv->ring.head);
                h->outage = false;
                h->fetch_wanted = true; /* notifications sent while we were away are lost */
                if (!h->ready)
                        hub_send(h, SSE_HUB_Q_HEAD, hub_head_sql, 0, NULL);
                return;
        case SSE_HUB_Q_HEAD:
        case SSE_HUB_Q_REPORT:
                return;
        case SSE_HUB_Q_FETCH:
                h->fetch_wanted = h->fetch_wanted || h->fetch_full;
                h->next_fetch_ms =
                        h->srv->now_ms + (h->gap.open ? SSE_HUB_GAP_POLL_MS : SSE_HUB_POLL_MS);
                return;
        case SSE_HUB_Q_READ:
                c = h->reading;
                h->reading = NULL;
                if (c)
                        sse_stream_read_done(c, h->read_through);
                return;
        }
}

static void hub_input(struct sse_hub *h)
{
        PGnotify *n;

        if (!PQconsumeInput(h->conn)) {
                hub_fail(h, PQerrorMessage(h->conn));
                return;
        }
        while (h->state == SSE_HUB_BUSY && !PQisBusy(h->conn)) {
                PGresult *res = PQgetResult(h->conn);

                if (!res) {
                        hub_query_done(h);
                        break;
                }
                hub_result(h, res);
                PQclear(res);
        }
        if (h->state == SSE_HUB_DOWN)
                return;
        /* a doorbell, never data: the fetch reads the rows */
        while ((n = PQnotifies(h->conn)) != NULL) {
                h->fetch_wanted = true;
                PQfreemem(n);
        }
        if (PQstatus(h->conn) != CONNECTION_OK)
                hub_fail(h, PQerrorMessage(h->conn));
}

static void hub_connected(struct sse_hub *h)
{
        if (PQsetnonblocking(h->conn, 1) != 0) {
                hub_fail(h, PQerrorMessage(h->conn));
                return;
        }
        h->state = SSE_HUB_IDLE;
        if (hub_watch(h, EPOLLIN, true) != 0) {
                hub_fail(h, "cannot watch the database socket");
                return;
        }
        hub_send(h, SSE_HUB_Q_SETUP, hub_setup_sql, 0, NULL);
}

static void hub_connect_step(struct sse_hub *h, PostgresPollingStatusType st)
{
        int rc = -1;

        if (st == PGRES_POLLING_OK) {
                hub_connected(h);
                return;
        }
        if (st == PGRES_POLLING_READING)
                rc = hub_watch(h, EPOLLIN, true);
        else if (st == PGRES_POLLING_WRITING)
                rc = hub_watch(h, EPOLLOUT, true);
        if (rc != 0)
                hub_fail(h, PQerrorMessage(h->conn));
}

/* libpq would print notices (and the server's FATAL on a terminated session) to stderr raw */
static void hub_notice(void *arg, const char *msg)
{
        (void)arg;
        log_info("event feed database notice: %s", msg);
}

static void hub_connect(struct sse_hub *h)
{
        const char *keys[] = {"dbname", NULL};
        const char *vals[] = {h->conninfo, NULL};

        h->conn = PQconnectStartParams(keys, vals, 1);
        if (!h->conn || PQstatus(h->conn) == CONNECTION_BAD) {
                hub_fail(h, h->conn ? PQerrorMessage(h->conn) : "out of memory");
                return;
        }
        PQsetNoticeProcessor(h->conn, hub_notice, NULL);
        h->state = SSE_HUB_CONNECTING;
        h->retry_at_ms = h->srv->now_ms + SSE_HUB_CONNECT_MS;
        hub_connect_step(h, PGRES_POLLING_WRITING);
}

static void hub_on_ready(struct sse_watch *w, uint32_t events)
{
        struct sse_hub *h = sse_container(w, struct sse_hub, watch);

        if (h->state == SSE_HUB_CONNECTING) {
                hub_connect_step(h, PQconnectPoll(h->conn));
                return;
        }
        if (h->state == SSE_HUB_DOWN)
                return;
        if (events & EPOLLOUT)
                hub_flush(h);
        if (h->state != SSE_HUB_DOWN && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                hub_input(h);
        hub_kick(h);
}

void sse_hub_tick(struct sse_hub *h)
{
        int64_t now = h->srv->now_ms;

        switch (h->state) {
        case SSE_HUB_DOWN:
                if (now >= h->retry_at_ms)
                        hub_connect(h);
                break;
        case SSE_HUB_CONNECTING:
                if (now >= h->retry_at_ms)
                        hub_fail(h, "connection attempt timed out");
                break;
        case SSE_HUB_BUSY:
                if (now >= h->query_deadline_ms)
                        hub_fail(h, "query timed out");
                break;
        case SSE_HUB_IDLE:
                hub_kick(h);
                break;
        }
}

int64_t sse_hub_deadline(const struct sse_hub *h)
{
        int64_t d;

        switch (h->state) {
        case SSE_HUB_DOWN:
        case SSE_HUB_CONNECTING:
                return h->retry_at_ms;
        case SSE_HUB_BUSY:
                return h->query_deadline_ms;
        case SSE_HUB_IDLE:
                break;
        }
        if (!h->ready)
                return INT64_MAX;
        d = h->next_fetch_ms;
        if (h->fetch_wanted && h->last_fetch_ms + SSE_HUB_FETCH_GAP_MS < d)
                d = h->last_fetch_ms + SSE_HUB_FETCH_GAP_MS;
        return h->next_report_ms < d ? h->next_report_ms : d;
}

void sse_hub_want_read(struct sse_hub *h, struct sse_conn *c)
{
        c->in_read = true;
        sse_list_append(&h->reads, &c->link);
        hub_kick(h);
}

void sse_hub_cancel_read(struct sse_hub *h, struct sse_conn *c)
{
        if (h->reading == c)
                h->reading = NULL;
        else
                sse_list_remove(&c->link);
        c->in_read = false;
}
