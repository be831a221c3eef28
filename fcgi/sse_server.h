/*
 * sse_server — loom-sse's single-threaded epoll loop and the state its modules share.
 *
 * One process holds many streams: every file descriptor (the listening socket, each FastCGI
 * connection, the PostgreSQL LISTEN connection, a signalfd) is a `struct sse_watch` registered
 * with one epoll instance; the loop calls the watch's handler, then runs the timers (stream
 * heartbeats and request deadlines in sse_conn, reconnects and polling in sse_hub).  Nothing
 * blocks: sockets are non-blocking and libpq is driven asynchronously, so a slow client or a
 * slow query never holds up the other streams.
 *
 * Modules: sse_fcgi (record protocol, pure), sse_ring (events and the ring, pure), sse_gap
 * (delivery order, pure), sse_conn (one FastCGI connection: records, output queue, close),
 * sse_stream (what a request asks for: routes, filters, catch-up, fan-out), sse_hub (the one
 * database connection: LISTEN, fetching new events, table reads for resuming streams).
 */
#ifndef LOOM_SSE_SERVER_H
#define LOOM_SSE_SERVER_H

#include "arena.h"
#include "sse_ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSE_READ_BUF           16384
#define SSE_DEFAULT_STREAMS    10000
#define SSE_DEFAULT_RING       4096
#define SSE_DEFAULT_HEARTBEAT  15000 /* ms between comments on an idle stream */
#define SSE_STOP_MS            800   /* time given to streams to flush END_REQUEST on SIGTERM */
#define SSE_STATS_MS           60000 /* stream counts are logged this often (when they changed) */
#define SSE_LISTEN_BACKLOG     4096
#define SSE_ACCEPT_PAUSE_MS    100 /* accept() ran out of descriptors: try again after this */
#define SSE_MAX_ACCEPT_PER_RUN 256 /* accepted per wake-up, so a burst cannot starve streams */

/* An intrusive, circular, doubly linked list; a node linked to itself is in no list. */
struct sse_list {
        struct sse_list *prev;
        struct sse_list *next;
};

#define sse_container(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void sse_list_init(struct sse_list *l)
{
        l->prev = l;
        l->next = l;
}

static inline bool sse_list_empty(const struct sse_list *l)
{
        return l->next == l;
}

/* Unlinks n (harmless when it is in no list) and leaves it self-linked. */
static inline void sse_list_remove(struct sse_list *n)
{
        n->prev->next = n->next;
        n->next->prev = n->prev;
        sse_list_init(n);
}

/* Moves n to the tail of head (from whatever list it was in). */
static inline void sse_list_append(struct sse_list *head, struct sse_list *n)
{
        sse_list_remove(n);
        n->prev = head->prev;
        n->next = head;
        head->prev->next = n;
        head->prev = n;
}

static inline void sse_list_prepend(struct sse_list *head, struct sse_list *n)
{
        sse_list_remove(n);
        n->prev = head;
        n->next = head->next;
        head->next->prev = n;
        head->next = n;
}

struct sse_watch;
typedef void (*sse_watch_fn)(struct sse_watch *w, uint32_t events);

/* A file descriptor in the loop; epoll's data.ptr points here. */
struct sse_watch {
        int fd;
        sse_watch_fn on_ready;
};

struct sse_config {
        long max_streams;
        long ring_size;
        long heartbeat_ms;
        const char *conninfo;
        const char *listen; /* NULL: fd 0 is the listening socket (supervisord [fcgi-program]) */
};

/* Counters since start, logged with the stream counts. */
struct sse_stats {
        uint64_t accepted;
        uint64_t streams_started;
        uint64_t rejected_full; /* 503: LOOM_SSE_MAX_STREAMS reached */
        uint64_t dropped_slow;  /* output queue passed its cap */
        uint64_t malformed;     /* connections closed for a protocol error */
        uint64_t events;        /* events fetched and fanned out */
        uint64_t table_reads;   /* catch-up batches read from the events table */
        uint64_t gaps_skipped;  /* holes passed after the wait limit */
};

struct sse_hub;

struct sse_server {
        int epfd;
        int64_t now_ms; /* CLOCK_MONOTONIC, read once per loop turn */
        bool stopping;
        struct sse_config cfg;
        struct sse_ring ring;
        struct sse_hub *hub;
        struct sse_list all;     /* every open connection (sse_conn.all) */
        struct sse_list waiting; /* connections without a request yet or lingering, oldest first */
        struct sse_list live;    /* streams that get new events as they arrive */
        struct sse_list lru;     /* streams by last write, oldest first: heartbeats */
        struct sse_list graveyard; /* closed this turn, freed at its end */
        long nconns;
        long nstreams;
        struct arena arena; /* reset after every loop turn */
        struct sse_stats stats;
        uint8_t rbuf[SSE_READ_BUF]; /* every read() lands here first */
};

/* Monotonic milliseconds. */
int64_t sse_now_ms(void);

/* Adds w->fd to the loop with these epoll events. 0, or -1 with errno. */
int sse_watch_add(struct sse_server *srv, struct sse_watch *w, uint32_t events)
        __attribute__((warn_unused_result));
/* Changes the events of a watched fd (adds it when epoll has forgotten it). 0, or -1. */
int sse_watch_mod(struct sse_server *srv, struct sse_watch *w, uint32_t events)
        __attribute__((warn_unused_result));
/* Removes w->fd from the loop; errors are ignored (the fd may be closed already). */
void sse_watch_del(struct sse_server *srv, struct sse_watch *w);

/* Serves until SIGTERM/SIGINT; returns the exit status (0, or 1 when it cannot start). */
int sse_server_run(const struct sse_config *cfg);

#endif
