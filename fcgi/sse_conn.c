/*
 * sse_conn — FastCGI connections: decoding, output queue, lifecycle; see sse_conn.h.
 */
#include "sse_conn.h"
#include "log.h"
#include "sse_stream.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

static void conn_on_ready(struct sse_watch *w, uint32_t events);

/* Puts c at the tail of srv->waiting: it must make progress within SSE_REQUEST_TIMEOUT_MS. */
static void conn_wait(struct sse_conn *c)
{
        c->stamp_ms = c->srv->now_ms;
        sse_list_append(&c->srv->waiting, &c->link);
}

void sse_conn_accept(struct sse_server *srv, int fd)
{
        struct sse_conn *c = xcalloc(1, sizeof(*c));

        c->watch.fd = fd;
        c->watch.on_ready = conn_on_ready;
        c->srv = srv;
        c->state = SSE_CONN_IDLE;
        c->progress_ms = srv->now_ms;
        sse_list_init(&c->all);
        sse_list_init(&c->link);
        sse_list_init(&c->lru);
        sse_fcgi_decoder_init(&c->dec);
        /* EPOLLOUT only while bytes are queued (conn_want_out) */
        if (sse_watch_add(srv, &c->watch, CONN_EVENTS) != 0) {
                log_warn("cannot watch a new connection: %s", strerror(errno));
                close(fd);
                free(c);
                return;
        }
        sse_list_append(&srv->all, &c->all);
        conn_wait(c);
        srv->nconns++;
        srv->stats.accepted++;
}

size_t sse_conn_queued(const struct sse_conn *c)
{
        return c->out.len - c->out.off;
}

static void outq_add(struct sse_outq *q, const void *data, size_t len)
{
        if (q->off && q->len + len > q->alloc) {
                memmove(q->buf, q->buf + q->off, q->len - q->off);
                q->len -= q->off;
                q->off = 0;
        }
        if (q->len + len > q->alloc) {
                size_t want = q->alloc ? q->alloc * 2 : 4096;

                while (want < q->len + len)
                        want *= 2;
                q->buf = xrealloc(q->buf, want);
                q->alloc = want;
        }
        memcpy(q->buf + q->len, data, len);
        q->len += len;
}

static void outq_release(struct sse_outq *q)
{
        free(q->buf);
        memset(q, 0, sizeof(*q));
}

static void conn_params_free(struct sse_conn *c)
{
        if (!c->params)
                return;
        strbuf_release(c->params);
        free(c->params);
        c->params = NULL;
}

void sse_conn_close(struct sse_conn *c, const char *why)
{
        struct sse_server *srv = c->srv;

        if (c->dead)
                return;
        log_debug("connection %d closed: %s", c->watch.fd, why);
        sse_stream_forget(c);
        c->dead = true;
        close(c->watch.fd); /* also leaves the epoll set */
        sse_list_remove(&c->all);
        sse_list_remove(&c->lru);
        sse_list_append(&srv->graveyard, &c->link);
        srv->nconns--;
}

static void conn_malformed(struct sse_conn *c, const char *why)
{
        c->srv->stats.malformed++;
        log_info("closing a FastCGI connection: %s", why);
        sse_conn_close(c, why);
}

static bool conn_would_block(void)
{
        return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* Streams: heartbeats are due SSE heartbeat_ms after the socket last took everything. */
static void conn_touch(struct sse_conn *c)
{
        c->stamp_ms = c->srv->now_ms;
        sse_list_append(&c->srv->lru, &c->lru);
}

static void conn_drop_slow(struct sse_conn *c, const char *why)
{
        c->srv->stats.dropped_slow++;
        log_info("dropping a stream at event %lld: the client cannot keep up (%s, %zu bytes "
                 "queued)",
                 (long long)c->last_id, why, sse_conn_queued(c));
        sse_conn_close(c, "client too slow");
}

/* Watches EPOLLOUT while bytes are queued, and only then. */
static void conn_want_out(struct sse_conn *c, bool on)
{
        if (c->dead || c->want_out == on)
                return;
        /* edge-triggered MOD re-checks readiness: space freed meanwhile is still reported */
        if (sse_watch_mod(c->srv, &c->watch, CONN_EVENTS | (on ? EPOLLOUT : 0)) != 0) {
                sse_conn_close(c, strerror(errno));
                return;
        }
        c->want_out = on;
}

/*
 * Writes iov[0..n) (total bytes) unless bytes are queued already, and queues what is left.
 * What is queued already plus the rest may not pass SSE_QUEUE_MAX; an empty queue takes
 * anything, so one event larger than the cap still gets through.
 */
static void conn_write(struct sse_conn *c, const struct iovec *iov, int n, size_t total)
{
        size_t done = 0;

        if (c->dead)
                return;
        if (!sse_conn_queued(c)) {
                ssize_t w;

                /* edge-triggered: only a full socket may leave bytes for EPOLLOUT */
                do
                        w = writev(c->watch.fd, iov, n);
                while (w < 0 && errno == EINTR);
                if (w < 0 && !conn_would_block()) {
                        sse_conn_close(c, strerror(errno));
                        return;
                }
                done = w > 0 ? (size_t)w : 0;
                if (w > 0)
                        c->progress_ms = c->srv->now_ms;
        }
        if (done == total)
                return;
        if (sse_conn_queued(c) && sse_conn_queued(c) + (total - done) > SSE_QUEUE_MAX) {
                conn_drop_slow(c, "queue full");
                return;
        }
        for (int i = 0; i < n; i++) {
                if (done >= iov[i].iov_len) {
                        done -= iov[i].iov_len;
                        continue;
                }
                outq_add(&c->out, (const char *)iov[i].iov_base + done, iov[i].iov_len - done);
                done = 0;
        }
        conn_want_out(c, true);
}

static void conn_write_raw(struct sse_conn *c, const void *data, size_t len)
{
        struct iovec iov = {(void *)data, len};

        conn_write(c, &iov, 1, len);
}

void sse_conn_send(struct sse_conn *c, const char *data, size_t len)
{
        uint8_t head[SSE_IOV_RECORDS][SSE_FCGI_HEADER_LEN];
        struct iovec iov[2 * SSE_IOV_RECORDS];

        while (len && !c->dead) {
                size_t total = 0;
                int n = 0;

                for (int r = 0; r < SSE_IOV_RECORDS && len; r++) {
                        size_t chunk = len < SSE_FCGI_MAX_CONTENT ? len : SSE_FCGI_MAX_CONTENT;

                        sse_fcgi_header_put(head[r], SSE_FCGI_STDOUT, c->request_id,
                                            (uint16_t)chunk, 0);
                        iov[n++] = (struct iovec){head[r], SSE_FCGI_HEADER_LEN};
                        iov[n++] = (struct iovec){(void *)data, chunk};
                        total += SSE_FCGI_HEADER_LEN + chunk;
                        data += chunk;
                        len -= chunk;
                }
                conn_write(c, iov, n, total);
        }
        if (!c->dead && c->is_stream && !sse_conn_queued(c))
                conn_touch(c);
}

/* CLOSING and written out: half-close, so nginx reads everything and then closes its end. */
static void conn_shut_if_flushed(struct sse_conn *c)
{
        if (c->dead || c->state != SSE_CONN_CLOSING || c->wr_shut || sse_conn_queued(c))
                return;
        c->wr_shut = true;
        /* closing with unread input would send RST and could cut the response short */
        if (shutdown(c->watch.fd, SHUT_WR) != 0)
                sse_conn_close(c, "shutdown failed");
}

/* END_REQUEST for a request this connection does not serve (a second one, an unknown role). */
static void conn_refuse(struct sse_conn *c, uint16_t request_id, uint8_t status)
{
        struct strbuf sb;

        strbuf_init(&sb, 64);
        sse_fcgi_add_end_request(&sb, request_id, 0, status);
        conn_write_raw(c, sb.buf, sb.len);
        strbuf_release(&sb);
}

static void conn_after_request(struct sse_conn *c)
{
        conn_params_free(c);
        c->request_id = 0;
        if (c->dead)
                return;
        if (c->keep_conn) {
                c->state = SSE_CONN_IDLE;
                conn_wait(c);
                return;
        }
        c->state = SSE_CONN_CLOSING;
        conn_wait(c);
        conn_shut_if_flushed(c);
}

void sse_conn_finish(struct sse_conn *c)
{
        struct strbuf sb;

        if (c->dead || !c->request_id)
                return;
        sse_stream_forget(c);
        strbuf_init(&sb, 64);
        sse_fcgi_add_records(&sb, SSE_FCGI_STDOUT, c->request_id, "", 0);
        sse_fcgi_add_end_request(&sb, c->request_id, 0, SSE_FCGI_REQUEST_COMPLETE);
        conn_write_raw(c, sb.buf, sb.len);
        strbuf_release(&sb);
        conn_after_request(c);
}

static void conn_begin(struct sse_conn *c, const struct sse_fcgi_piece *p)
{
        uint16_t id = p->hdr.request_id;
        unsigned role;

        if (id == 0 || p->len != 8 || id == c->request_id) {
                conn_malformed(c, "malformed BEGIN_REQUEST");
                return;
        }
        if (c->request_id) {
                conn_refuse(c, id, SSE_FCGI_CANT_MPX_CONN);
                return;
        }
        role = (unsigned)p->data[0] << 8 | p->data[1];
        c->keep_conn = (p->data[2] & SSE_FCGI_KEEP_CONN) != 0;
        if (role != SSE_FCGI_RESPONDER) {
                conn_refuse(c, id, SSE_FCGI_UNKNOWN_ROLE);
                conn_after_request(c);
                return;
        }
        c->request_id = id;
        c->state = SSE_CONN_PARAMS;
        c->params = xmalloc(sizeof(*c->params));
        strbuf_init(c->params, SSE_FCGI_MAX_PARAMS);
}

static void conn_get_values(struct sse_conn *c, const struct sse_fcgi_piece *p)
{
        struct sse_fcgi_values v = {c->srv->cfg.max_streams, c->srv->cfg.max_streams};
        struct strbuf sb;

        strbuf_init(&sb, 4096);
        if (sse_fcgi_add_values_result(&sb, p->data, p->len, &v) != 0)
                conn_malformed(c, "malformed GET_VALUES");
        else
                conn_write_raw(c, sb.buf, sb.len);
        strbuf_release(&sb);
}

static void conn_on_record(struct sse_conn *c, const struct sse_fcgi_piece *p)
{
        struct strbuf sb;

        switch (p->hdr.type) {
        case SSE_FCGI_BEGIN_REQUEST:
                conn_begin(c, p);
                return;
        case SSE_FCGI_ABORT_REQUEST:
                if (c->request_id && p->hdr.request_id == c->request_id)
                        sse_conn_finish(c);
                return;
        case SSE_FCGI_GET_VALUES:
                if (p->hdr.request_id == 0)
                        conn_get_values(c, p);
                return;
        default:
                /* application records of types a web server never sends are ignored */
                if (p->hdr.request_id != 0)
                        return;
                strbuf_init(&sb, 64);
                sse_fcgi_add_unknown_type(&sb, p->hdr.type);
                conn_write_raw(c, sb.buf, sb.len);
                strbuf_release(&sb);
        }
}

/* PARAMS are complete: the request leaves the waiting list and is answered or streamed. */
static void conn_dispatch(struct sse_conn *c)
{
        struct strbuf *params = c->params;

        c->params = NULL;
        sse_list_remove(&c->link);
        sse_stream_request(c, (const uint8_t *)params->buf, params->len);
        strbuf_release(params);
        free(params);
}

static void conn_on_content(struct sse_conn *c, const struct sse_fcgi_piece *p)
{
        /* STDIN and DATA are dropped: no stream route takes a body */
        if (!c->request_id || p->hdr.request_id != c->request_id || p->hdr.type != SSE_FCGI_PARAMS)
                return;
        if (c->state != SSE_CONN_PARAMS) {
                conn_malformed(c, "PARAMS after the end of PARAMS");
                return;
        }
        if (p->len == 0) {
                conn_dispatch(c);
                return;
        }
        strbuf_add(c->params, p->data, p->len);
        if (c->params->failed)
                conn_malformed(c, "PARAMS longer than 64 KiB");
}

static void conn_feed(struct sse_conn *c, const uint8_t *buf, size_t len)
{
        size_t off = 0;

        while (off < len && !c->dead && c->state != SSE_CONN_CLOSING) {
                struct sse_fcgi_piece p;

                off += sse_fcgi_decode(&c->dec, buf + off, len - off, &p);
                switch (p.kind) {
                case SSE_FCGI_RECORD:
                        conn_on_record(c, &p);
                        break;
                case SSE_FCGI_CONTENT:
                        conn_on_content(c, &p);
                        break;
                case SSE_FCGI_ERROR:
                        conn_malformed(c, p.error);
                        return;
                case SSE_FCGI_NEED_MORE:
                        break;
                }
        }
}

/* Edge-triggered: read until the socket is empty. */
static void conn_read(struct sse_conn *c)
{
        struct sse_server *srv = c->srv;

        while (!c->dead) {
                ssize_t n = read(c->watch.fd, srv->rbuf, sizeof(srv->rbuf));

                if (n == 0) {
                        sse_conn_close(c, "peer closed");
                        return;
                }
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                sse_conn_close(c, strerror(errno));
                        return;
                }
                /* after the response only EOF matters: whatever else arrives is dropped */
                if (c->state != SSE_CONN_CLOSING)
                        conn_feed(c, srv->rbuf, (size_t)n);
        }
}

static void conn_flush(struct sse_conn *c)
{
        while (sse_conn_queued(c)) {
                ssize_t w = write(c->watch.fd, c->out.buf + c->out.off, sse_conn_queued(c));

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                sse_conn_close(c, strerror(errno));
                        return;
                }
                c->out.off += (size_t)w;
                c->progress_ms = c->srv->now_ms;
        }
        outq_release(&c->out); /* an idle stream keeps no buffer */
        conn_want_out(c, false);
        if (c->dead)
                return;
        if (c->is_stream)
                conn_touch(c);
}

static void conn_on_writable(struct sse_conn *c)
{
        conn_flush(c);
        if (c->dead)
                return;
        if (c->state == SSE_CONN_CLOSING)
                conn_shut_if_flushed(c);
        else if (c->parked && sse_conn_queued(c) <= SSE_QUEUE_LOW)
                sse_stream_drained(c);
}

static void conn_on_ready(struct sse_watch *w, uint32_t events)
{
        struct sse_conn *c = sse_container(w, struct sse_conn, watch);

        if (c->dead)
                return;
        if (events & (EPOLLERR | EPOLLHUP)) {
                sse_conn_close(c, "connection error or hang-up");
                return;
        }
        /* input first: a request and a half-close can arrive together */
        if (events & EPOLLIN)
                conn_read(c);
        if (c->dead)
                return;
        if (events & EPOLLRDHUP) {
                sse_conn_close(c, "peer closed");
                return;
        }
        if (events & EPOLLOUT)
                conn_on_writable(c);
}

void sse_conn_tick(struct sse_server *srv)
{
        while (!sse_list_empty(&srv->waiting)) {
                struct sse_conn *c = sse_container(srv->waiting.next, struct sse_conn, link);

                if (c->stamp_ms + SSE_REQUEST_TIMEOUT_MS > srv->now_ms)
                        break;
                sse_conn_close(c, c->state == SSE_CONN_CLOSING ? "peer did not close"
                                                               : "request timed out");
        }
        while (!sse_list_empty(&srv->lru)) {
                struct sse_conn *c = sse_container(srv->lru.next, struct sse_conn, lru);
                int64_t hb = srv->cfg.heartbeat_ms;

                if (c->stamp_ms + hb > srv->now_ms)
                        break;
                if (!sse_conn_queued(c)) {
                        sse_conn_send(c, ": ping\n\n", 8);
                } else if (c->progress_ms + 2 * hb <= srv->now_ms) {
                        conn_drop_slow(c, "nothing written for two heartbeats");
                        continue;
                }
                if (!c->dead)
                        conn_touch(c); /* whatever happened, c is looked at again later */
        }
}

int64_t sse_conn_deadline(const struct sse_server *srv)
{
        int64_t d = INT64_MAX;

        if (!sse_list_empty(&srv->waiting)) {
                const struct sse_conn *c = sse_container(srv->waiting.next, struct sse_conn, link);

                d = c->stamp_ms + SSE_REQUEST_TIMEOUT_MS;
        }
        if (!sse_list_empty(&srv->lru)) {
                const struct sse_conn *c = sse_container(srv->lru.next, struct sse_conn, lru);

                if (c->stamp_ms + srv->cfg.heartbeat_ms < d)
                        d = c->stamp_ms + srv->cfg.heartbeat_ms;
        }
        return d;
}

void sse_conn_reap(struct sse_server *srv)
{
        while (!sse_list_empty(&srv->graveyard)) {
                struct sse_conn *c = sse_container(srv->graveyard.next, struct sse_conn, link);

                sse_list_remove(&c->link);
                outq_release(&c->out);
                conn_params_free(c);
                free(c);
        }
}

void sse_conn_shutdown(struct sse_server *srv)
{
        struct sse_list *n, *next;

        for (n = srv->all.next; n != &srv->all; n = next) {
                struct sse_conn *c = sse_container(n, struct sse_conn, all);

                next = n->next;
                if (c->is_stream) {
                        c->keep_conn = false;
                        sse_conn_finish(c);
                } else if (c->state != SSE_CONN_CLOSING) {
                        sse_conn_close(c, "shutting down");
                }
        }
}
