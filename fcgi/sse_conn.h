/*
 * sse_conn — one FastCGI connection from nginx: records in, STDOUT records out.
 *
 * nginx opens one connection per request (no fastcgi_keep_conn), so a connection is a request
 * and, for the stream paths, a long-lived stream.  This module reads and decodes records
 * (sse_fcgi), collects PARAMS (at most SSE_FCGI_MAX_PARAMS bytes) and hands a complete request
 * to sse_stream; it answers GET_VALUES, refuses a second concurrent request on the connection
 * (CANT_MPX_CONN), ends the stream on ABORT_REQUEST, and closes the connection on a malformed
 * record, on EPOLLRDHUP/HUP/ERR, on a read or write error, and when a stream cannot keep up:
 * its queue would pass SSE_QUEUE_MAX, or bytes are queued and the socket took nothing for two
 * heartbeat intervals (the client resumes with Last-Event-ID).  Bursts do not count: a stream
 * whose queue passes SSE_QUEUE_LOW goes on from the ring at its client's pace (sse_stream).
 *
 * Output is written straight to the socket (writev of record headers plus the shared event
 * bytes); only what the socket does not take is copied into the connection's queue, which is
 * freed again once it drains, so an idle stream holds no buffer.  Every connection is
 * edge-triggered (EPOLLIN | EPOLLRDHUP | EPOLLET), and watches EPOLLOUT only while bytes are
 * queued: a socket that takes everything would otherwise report EPOLLOUT again each time nginx
 * reads what was written, one wake-up per stream per event (make bench-sse).
 *
 * A closed connection is unlinked at once but freed at the end of the loop turn, because the
 * same turn may still hold epoll events that point at it.
 */
#ifndef LOOM_SSE_CONN_H
#define LOOM_SSE_CONN_H

#include "sse_fcgi.h"
#include "sse_server.h"
#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSE_QUEUE_MAX          ((size_t)1 << 20)   /* unwritten bytes of one connection */
#define SSE_QUEUE_LOW          ((size_t)256 << 10) /* catch-up pauses above this */
#define SSE_REQUEST_TIMEOUT_MS 10000 /* to send a whole request, or to close after a response */
#define SSE_IOV_RECORDS        16    /* STDOUT records per writev */

enum sse_conn_state {
        SSE_CONN_IDLE,        /* no request open: waiting for BEGIN_REQUEST (on srv->waiting) */
        SSE_CONN_PARAMS,      /* a request is open, its PARAMS are arriving (on srv->waiting) */
        SSE_CONN_CATCHING_UP, /* a stream sending older events, from the ring or the table */
        SSE_CONN_LIVE,        /* a stream on srv->live: new matching events are written at once */
        SSE_CONN_CLOSING,     /* the response is complete: flush, shut down writing, await EOF */
};

/* Bytes the socket did not take yet: buf[off..len). */
struct sse_outq {
        char *buf;
        size_t len;
        size_t off;
        size_t alloc;
};

struct sse_conn {
        struct sse_watch watch;
        struct sse_server *srv;
        enum sse_conn_state state;
        bool dead;            /* closed; on srv->graveyard until the end of the turn */
        bool keep_conn;       /* BEGIN_REQUEST asked to keep the connection after the response */
        bool is_stream;       /* counted in srv->nstreams */
        bool parked;          /* catching up, waiting for the queue to drain below SSE_QUEUE_LOW */
        bool in_read;         /* catching up, a table read is queued or running in the hub */
        bool wr_shut;         /* CLOSING: everything written, shutdown(SHUT_WR) done */
        bool want_out;        /* EPOLLOUT is watched: bytes are queued */
        uint16_t request_id;  /* the open request; 0 = none */
        struct sse_list all;  /* srv->all */
        struct sse_list link; /* srv->waiting, srv->live, the hub's read queue or the graveyard */
        struct sse_list lru;  /* streams: srv->lru */
        int64_t stamp_ms;     /* on waiting: when it got there; on lru: last time all written */
        int64_t progress_ms;  /* the socket last took bytes */
        int64_t last_id;      /* streams: every matching event up to this id was sent */
        char *project_id;     /* stream filters; NULL = any */
        char *projects;       /* the projects the user may watch: ",a,b,"; NULL = all */
        char *type;           /* exact event type */
        const char *type_prefix; /* static; "log." for the logs stream */
        char *user;              /* personal streams: the user whose events they carry */
        bool activity;           /* sends events' activity frames, and only events with one */
        bool personal;           /* only events whose recipient is user (notifications) */
        struct strbuf *params;   /* PARAMS bytes while they arrive */
        struct sse_outq out;
        struct sse_fcgi_decoder dec;
};

/* Takes ownership of a connected, non-blocking socket. Closes it when it cannot be watched. */
void sse_conn_accept(struct sse_server *srv, int fd);

/*
 * Writes data as STDOUT records of the open request, queueing what the socket does not take.
 * May close c (write error; the queue would pass SSE_QUEUE_MAX): check c->dead afterwards.
 * A stream whose socket took everything moves to the tail of srv->lru (heartbeat due later).
 */
void sse_conn_send(struct sse_conn *c, const char *data, size_t len);
/*
 * Ends the open request (a response, a stream on ABORT_REQUEST or at shutdown): an empty
 * STDOUT and END_REQUEST (REQUEST_COMPLETE).  The connection then waits for the next
 * BEGIN_REQUEST (keep_conn) or half-closes once written and closes at the peer's EOF.
 */
void sse_conn_finish(struct sse_conn *c);
/* Closes at once; why is logged at debug level. Idempotent. */
void sse_conn_close(struct sse_conn *c, const char *why);
/* Unwritten bytes. */
size_t sse_conn_queued(const struct sse_conn *c);

/* Heartbeats for idle streams, deadlines for connections on srv->waiting. */
void sse_conn_tick(struct sse_server *srv);
/* When sse_conn_tick next has work (INT64_MAX: never). */
int64_t sse_conn_deadline(const struct sse_server *srv);
/* Frees the connections closed during this turn. */
void sse_conn_reap(struct sse_server *srv);
/* SIGTERM: ends every stream with END_REQUEST and closes connections without a request. */
void sse_conn_shutdown(struct sse_server *srv);

#endif
