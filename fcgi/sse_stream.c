/*
 * sse_stream — stream routes, filters, catch-up and fan-out; see sse_stream.h.
 */
#include "sse_stream.h"
#include "config.h"
#include "err.h"
#include "http.h"
#include "input.h"
#include "log.h"
#include "query.h"
#include "sse_hub.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_FULL_RETRY_S 5 /* Retry-After and `retry:` when the process is full */

struct stream_route {
        const char *path;
        bool type_filter;        /* accepts ?type= */
        const char *type_prefix; /* only events whose type starts with this */
        bool activity;           /* the activity frames of the events that have one */
        bool personal;           /* the signed-in user's own events; no project filter */
};

static const struct stream_route stream_routes[] = {
        {.path = "/api/v1/events/stream", .type_filter = true},
        {.path = "/api/v1/activity-feed/stream", .activity = true},
        {.path = "/api/v1/logs/stream", .type_prefix = "log."},
        {.path = "/api/v1/notifications/stream", .type_prefix = "notification", .personal = true},
};

/* The CGI parameters a stream request uses: NUL-terminated copies in srv->arena. */
struct stream_req {
        const char *method;
        const char *path;
        const char *script;
        const char *query;
        const char *last_event_id; /* the Last-Event-ID header; "" when absent */
        const char *request_id;
        const char *projects; /* LOOM_PROJECTS from nginx's auth_request: "*" or "a,b" */
        const char *user;     /* LOOM_USER from nginx's auth_request: the user name */
        bool head;
};

static const struct {
        const char *name;
        size_t offset;
} stream_params[] = {
        {"REQUEST_METHOD", offsetof(struct stream_req, method)},
        {"DOCUMENT_URI", offsetof(struct stream_req, path)},
        {"SCRIPT_NAME", offsetof(struct stream_req, script)},
        {"QUERY_STRING", offsetof(struct stream_req, query)},
        {"HTTP_LAST_EVENT_ID", offsetof(struct stream_req, last_event_id)},
        {"REQUEST_ID", offsetof(struct stream_req, request_id)},
        {"LOOM_PROJECTS", offsetof(struct stream_req, projects)},
        {"LOOM_USER", offsetof(struct stream_req, user)},
};

/* What the query string and Last-Event-ID ask for, validated. */
struct stream_filter {
        const char *project_id;
        const char *type;
        bool resume;
        int64_t after;
};

/* Fills r from the PARAMS body. 0, -1 when the pairs are malformed, -2 on a NUL in a value. */
static int stream_read_params(struct sse_server *srv, const uint8_t *buf, size_t len,
                              struct stream_req *r)
{
        struct sse_fcgi_nv nv;
        size_t pos = 0;
        int rc;

        *r = (struct stream_req){"", "", "", "", "", "", "", "", false};
        while ((rc = sse_fcgi_nv_next(buf, len, &pos, &nv)) == 1) {
                for (size_t i = 0; i < sizeof(stream_params) / sizeof(stream_params[0]); i++) {
                        const char **slot =
                                (const char **)(void *)((char *)r + stream_params[i].offset);

                        if (nv.name_len != strlen(stream_params[i].name) ||
                            memcmp(nv.name, stream_params[i].name, nv.name_len) != 0)
                                continue;
                        if (memchr(nv.value, '\0', nv.value_len))
                                return -2;
                        *slot = arena_strndup(&srv->arena, (const char *)nv.value, nv.value_len);
                }
        }
        if (!*r->path)
                r->path = r->script;
        if (strcmp(r->method, "HEAD") == 0)
                r->head = true;
        return rc;
}

/* nginx's $request_id is hex; anything else is not echoed into a header */
static bool stream_is_token(const char *s)
{
        size_t n = strspn(s, "0123456789abcdefABCDEF-");

        return n > 0 && n <= 64 && s[n] == '\0';
}

/* Sends a complete response and ends the request. extra: header lines, each ending in \r\n. */
static void stream_respond(struct sse_conn *c, const struct stream_req *r, int status,
                           const char *ctype, const char *extra, const char *body)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        strbuf_addf(&sb,
                    "Status: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\n%s",
                    http_status_line(status), ctype, r->head ? (size_t)0 : strlen(body), extra);
        if (stream_is_token(r->request_id))
                strbuf_addf(&sb, "X-Request-Id: %s\r\n", r->request_id);
        strbuf_addstr(&sb, "\r\n");
        if (!r->head)
                strbuf_addstr(&sb, body);
        sse_conn_send(c, sb.buf, sb.len);
        strbuf_release(&sb);
        sse_conn_finish(c);
}

static void stream_fail(struct sse_conn *c, const struct stream_req *r, int status,
                        const char *extra, const char *msg)
{
        struct strbuf body;

        strbuf_init(&body, 0);
        strbuf_addstr(&body, "{\"error\":");
        strbuf_add_json_str(&body, msg, strlen(msg));
        strbuf_addstr(&body, "}");
        stream_respond(c, r, status, "application/json", extra, body.buf);
        strbuf_release(&body);
}

/* 503 that an SSE client can read too: Retry-After for HTTP, `retry:` for EventSource. */
static void stream_unavailable(struct sse_conn *c, const struct stream_req *r, const char *msg)
{
        char extra[64];
        struct strbuf body;

        snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", STREAM_FULL_RETRY_S);
        strbuf_init(&body, 0);
        strbuf_addf(&body,
                    "retry: %d\nevent: error\ndata: {\"error\":", STREAM_FULL_RETRY_S * 1000);
        strbuf_add_json_str(&body, msg, strlen(msg));
        strbuf_addstr(&body, "}\n\n");
        stream_respond(c, r, 503, "text/event-stream", extra, body.buf);
        strbuf_release(&body);
}

/* The event type rule of GET /api/v1/events: lower-case words joined by dots. */
/* Reads the filters; on ERR_INVALID req->error says why. */
static int stream_parse_filters(struct request *req, const struct stream_req *r,
                                const struct stream_route *route, struct stream_filter *f)
{
        const char *leid;
        long after = 0;
        int rc;

        memset(f, 0, sizeof(*f));
        rc = query_parse(req);
        if (rc)
                return rc;
        if (!route->personal)
                f->project_id = query_get(req, "project_id");
        if (route->type_filter)
                f->type = query_get(req, "type");
        leid = query_get(req, "last_event_id");
        rc = query_done(req);
        if (rc)
                return rc;
        if (f->project_id && !input_is_project_id(f->project_id))
                return http_fail(req, ERR_INVALID, "project_id: '%.64s' is not a valid project id",
                                 f->project_id);
        if (f->type && !input_is_event_type(f->type))
                return http_fail(req, ERR_INVALID,
                                 "type: '%.64s' is not an event type (e.g. bead.created)", f->type);
        /* the header wins: EventSource sends it on reconnects, the URL keeps the first value */
        if (*r->last_event_id)
                leid = r->last_event_id;
        if (leid && config_parse_long(leid, 0, INT64_MAX, &after) != ERR_OK)
                return http_fail(req, ERR_INVALID,
                                 "last_event_id: '%.32s' is not an event id (a whole number >= 0)",
                                 leid);
        f->resume = leid != NULL;
        f->after = after;
        return ERR_OK;
}

static void stream_go_live(struct sse_conn *c)
{
        c->state = SSE_CONN_LIVE;
        c->parked = false;
        sse_list_append(&c->srv->live, &c->link);
}

/* LIVE with a full queue: CATCHING_UP, parked until the queue drains (no event is lost). */
static void stream_demote(struct sse_conn *c)
{
        sse_list_remove(&c->link);
        c->state = SSE_CONN_CATCHING_UP;
        c->parked = true;
}

/* Writes ev as c sends it: the event itself, or on the activity feed its activity. */
static void stream_send_event(struct sse_conn *c, const struct sse_event *ev)
{
        if (c->activity)
                sse_conn_send(c, ev->activity_frame, ev->activity_len);
        else
                sse_conn_send(c, ev->frame, ev->frame_len);
}

/* Sends ring events after last_id until the queue passes SSE_QUEUE_LOW or the ring ends. */
static void stream_send_ring(struct sse_conn *c)
{
        const struct sse_ring *ring = &c->srv->ring;

        for (size_t i = sse_ring_find(ring, c->last_id); i < ring->count; i++) {
                const struct sse_event *ev = sse_ring_get(ring, i);

                if (sse_stream_matches(c, ev))
                        stream_send_event(c, ev);
                c->last_id = ev->id;
                if (c->dead || sse_conn_queued(c) > SSE_QUEUE_LOW)
                        return;
        }
}

/* The catch-up: ring while it covers last_id, table reads while it does not, then live. */
static void stream_advance(struct sse_conn *c)
{
        struct sse_server *srv = c->srv;

        while (!c->dead && c->state == SSE_CONN_CATCHING_UP && !c->in_read) {
                if (sse_conn_queued(c) > SSE_QUEUE_LOW) {
                        c->parked = true; /* sse_stream_drained continues */
                        return;
                }
                if (c->last_id >= srv->ring.head) {
                        stream_go_live(c);
                        return;
                }
                if (!sse_ring_covers(&srv->ring, c->last_id)) {
                        sse_hub_want_read(srv->hub, c); /* sse_stream_read_done continues */
                        return;
                }
                stream_send_ring(c);
        }
}

/* ",a,b," from "a,b", so a member check is one strstr of ",id,". */
static char *stream_project_set(const char *list)
{
        size_t n = strlen(list);
        char *set = xmalloc(n + 3);

        set[0] = ',';
        memcpy(set + 1, list, n);
        set[n + 1] = ',';
        set[n + 2] = '\0';
        return set;
}

/* True when the projects set (NULL: all) holds id. */
static bool stream_project_in(const char *set, const char *id, size_t len)
{
        const char *p = set;

        if (!set)
                return true;
        while ((p = strstr(p, id)) != NULL) {
                if (p[-1] == ',' && p[len] == ',')
                        return true;
                p += len;
        }
        return false;
}

static void stream_start(struct sse_conn *c, const struct stream_req *r,
                         const struct stream_route *route, const struct stream_filter *f)
{
        static const char head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n";
        struct sse_server *srv = c->srv;
        int64_t from = f->resume ? f->after : srv->ring.head;
        struct strbuf sb;

        if (r->head) {
                sse_conn_send(c, head, sizeof(head) - 1);
                sse_conn_finish(c);
                return;
        }
        c->project_id = f->project_id ? xstrdup(f->project_id) : NULL;
        c->projects = strcmp(r->projects, "*") == 0 ? NULL : stream_project_set(r->projects);
        c->type = f->type ? xstrdup(f->type) : NULL;
        c->type_prefix = route->type_prefix;
        c->activity = route->activity;
        c->personal = route->personal;
        c->user = route->personal ? xstrdup(r->user) : NULL;
        c->last_id = from;
        c->is_stream = true;
        c->state = SSE_CONN_CATCHING_UP;
        srv->nstreams++;
        srv->stats.streams_started++;
        strbuf_init(&sb, 0);
        strbuf_add(&sb, head, sizeof(head) - 1);
        /* the id makes a reconnect before any event resume here, not at a later head */
        strbuf_addf(&sb,
                    "retry: %d\n\nid: %lld\nevent: connected\ndata: {\"last_event_id\":%lld}\n\n",
                    SSE_RETRY_MS, (long long)from, (long long)from);
        sse_conn_send(c, sb.buf, sb.len);
        strbuf_release(&sb);
        stream_advance(c);
}

static const struct stream_route *stream_route_find(const char *path)
{
        for (size_t i = 0; i < sizeof(stream_routes) / sizeof(stream_routes[0]); i++) {
                if (strcmp(stream_routes[i].path, path) == 0)
                        return &stream_routes[i];
        }
        return NULL;
}

/* Route, method and filters are fine: start the stream unless the process cannot take it. */
static void stream_admit(struct sse_conn *c, const struct stream_req *r,
                         const struct stream_route *route, const struct stream_filter *f)
{
        struct sse_server *srv = c->srv;
        char msg[128];

        if (srv->nstreams >= srv->cfg.max_streams) {
                srv->stats.rejected_full++;
                snprintf(msg, sizeof(msg), "too many event streams (%ld); retry later",
                         srv->cfg.max_streams);
                stream_unavailable(c, r, msg);
                return;
        }
        if (!sse_hub_ready(srv->hub)) {
                stream_unavailable(c, r, "the event feed is starting; retry shortly");
                return;
        }
        stream_start(c, r, route, f);
}

void sse_stream_request(struct sse_conn *c, const uint8_t *params, size_t len)
{
        const struct stream_route *route;
        struct stream_filter f;
        struct stream_req r;
        struct request req;
        char msg[HTTP_MAX_ERROR_MSG];
        int rc = stream_read_params(c->srv, params, len, &r);

        if (rc == -1) {
                c->srv->stats.malformed++;
                log_info("closing a FastCGI connection: malformed PARAMS");
                sse_conn_close(c, "malformed PARAMS");
                return;
        }
        if (rc == -2) {
                stream_fail(c, &r, 400, "", "request parameters contain a NUL byte");
                return;
        }
        route = stream_route_find(r.path);
        if (!route) {
                stream_fail(c, &r, 404, "", "no stream at this path");
                return;
        }
        if (strcmp(r.method, "GET") != 0 && !r.head) {
                snprintf(msg, sizeof(msg), "method %.10s is not allowed on %.200s (allowed: GET)",
                         r.method, r.path);
                stream_fail(c, &r, 405, "Allow: GET, HEAD\r\n", msg);
                return;
        }
        /*
         * nginx's auth_request vouches for the user; without it nobody does.  A user in no
         * project has LOOM_PROJECTS "" but a LOOM_USER: signed in, sees project-less events.
         */
        if ((!*r.projects && !*r.user) || (route->personal && !*r.user)) {
                stream_fail(c, &r, 401, "",
                            "authentication required: streams are served behind nginx's "
                            "auth_request (log in first)");
                return;
        }
        memset(&req, 0, sizeof(req));
        req.arena = &c->srv->arena;
        req.query = r.query;
        if (stream_parse_filters(&req, &r, route, &f) != ERR_OK) {
                stream_fail(c, &r, 400, "", req.error);
                return;
        }
        if (f.project_id && strcmp(r.projects, "*") != 0) {
                char *set = stream_project_set(r.projects);
                bool in = stream_project_in(set, f.project_id, strlen(f.project_id));

                free(set);
                if (!in) {
                        snprintf(msg, sizeof(msg), "project %.64s not found", f.project_id);
                        stream_fail(c, &r, 404, "", msg);
                        return;
                }
        }
        stream_admit(c, &r, route, &f);
}

bool sse_stream_matches(const struct sse_conn *c, const struct sse_event *ev)
{
        /* one user's events go to that user's personal streams and nowhere else */
        if (c->personal ? strcmp(c->user, ev->recipient) != 0 : ev->recipient[0] != '\0')
                return false;
        if (c->activity && !ev->activity_frame)
                return false;
        if (c->project_id && strcmp(c->project_id, ev->project_id) != 0)
                return false;
        if (c->projects && ev->project_id[0] &&
            !stream_project_in(c->projects, ev->project_id, strlen(ev->project_id)))
                return false;
        if (c->type && strcmp(c->type, ev->type) != 0)
                return false;
        return !c->type_prefix || strncmp(ev->type, c->type_prefix, strlen(c->type_prefix)) == 0;
}

void sse_stream_fanout(struct sse_server *srv, const struct sse_event *ev)
{
        struct sse_list *n, *next;

        for (n = srv->live.next; n != &srv->live; n = next) {
                struct sse_conn *c = sse_container(n, struct sse_conn, link);

                next = n->next; /* sending may close c, which unlinks it */
                if (ev->id <= c->last_id || !sse_stream_matches(c, ev))
                        continue;
                c->last_id = ev->id;
                stream_send_event(c, ev);
                /* a burst the socket cannot take now: go on from the ring at the client's pace */
                if (!c->dead && sse_conn_queued(c) > SSE_QUEUE_LOW)
                        stream_demote(c);
        }
}

void sse_stream_deliver(struct sse_conn *c, const struct sse_event *ev)
{
        if (c->dead || ev->id <= c->last_id)
                return;
        c->last_id = ev->id;
        if (sse_stream_matches(c, ev))
                stream_send_event(c, ev);
}

void sse_stream_read_done(struct sse_conn *c, int64_t through)
{
        c->in_read = false;
        if (through > c->last_id)
                c->last_id = through;
        stream_advance(c);
}

void sse_stream_drained(struct sse_conn *c)
{
        if (!c->parked)
                return;
        c->parked = false;
        stream_advance(c);
}

void sse_stream_forget(struct sse_conn *c)
{
        if (!c->is_stream)
                return;
        if (c->in_read)
                sse_hub_cancel_read(c->srv->hub, c);
        c->is_stream = false;
        c->parked = false;
        c->srv->nstreams--;
        sse_list_remove(&c->link);
        sse_list_remove(&c->lru);
        free(c->project_id);
        free(c->projects);
        free(c->type);
        free(c->user);
        c->project_id = NULL;
        c->projects = NULL;
        c->type = NULL;
        c->type_prefix = NULL;
        c->user = NULL;
        c->activity = false;
        c->personal = false;
}
