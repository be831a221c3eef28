/*
 * sse_hub — loom-sse's one database connection: LISTEN, new events, and catch-up reads.
 *
 * The connection runs `LISTEN loom_events` and is driven by the epoll loop through PQsocket
 * (PQconnectStart/PQconnectPoll, PQsendQueryParams, PQconsumeInput: nothing blocks).  A
 * notification is a doorbell, never data: it only makes the hub fetch `events WHERE id > head`
 * (1000 at a time), so a lost notification loses nothing.  The hub also fetches every
 * SSE_HUB_POLL_MS anyway, and after every reconnect, because notifications sent while it was
 * away are gone.  Rows are delivered in id order (sse_gap holds back rows behind a hole),
 * pushed into the ring once, and fanned out to every live stream: one query per event batch,
 * whatever the number of streams.  Streams never hold a database connection.
 *
 * Streams resuming from before the ring ask for table reads: bounded batches (ids after the
 * stream's position up to the ring's head, filters applied in SQL) through this same
 * connection, queued FIFO and interleaved with fetches, so neither starves the other.
 *
 * Every SSE_HUB_REPORT_MS the same connection reports this process's open streams and its
 * started / refused counts (loom_metrics_report) for GET /metrics; a failed report is logged
 * and never costs the feed its connection.
 *
 * States: DOWN (reconnect at retry_at, backoff 100 ms doubling to 5 s), CONNECTING, IDLE
 * (listening, nothing in flight), BUSY (one query in flight: setup, head, fetch or read).
 * Until the first connection has read the head (max(events.id)), no stream can start.
 */
#ifndef LOOM_SSE_HUB_H
#define LOOM_SSE_HUB_H

#include "sse_server.h"

#include <stdbool.h>
#include <stdint.h>

#define SSE_HUB_BATCH   1000
#define SSE_HUB_POLL_MS 5000 /* fetch this often even without a doorbell */
#define SSE_HUB_FETCH_GAP_MS                                                                       \
        20                        /* doorbells within this of a fetch wait for one batch: a busy   \
                                   * system rings per event, a fetch per event would cost the      \
                                   * writers a third of their throughput */
#define SSE_HUB_GAP_POLL_MS 25    /* while delivery is held at a hole */
#define SSE_HUB_GAP_WAIT_MS 5000  /* a hole older than this is skipped (and logged) */
#define SSE_HUB_CONNECT_MS  5000  /* a connection attempt that takes longer is abandoned */
#define SSE_HUB_QUERY_MS    30000 /* a query that takes longer drops the connection */
#define SSE_HUB_REPORT_MS   5000  /* stream counts go to the metric tables this often */
#define SSE_HUB_BACKOFF_MIN 100
#define SSE_HUB_BACKOFF_MAX 5000

struct sse_conn;

/* A hub for conninfo (copied); it connects at the first sse_hub_tick. Cannot fail. */
struct sse_hub *sse_hub_new(struct sse_server *srv, const char *conninfo);
/* Closes the connection and frees. NULL-safe. */
void sse_hub_free(struct sse_hub *h);
/* True once the head is known: streams may start. */
bool sse_hub_ready(const struct sse_hub *h);
/* True while connected and listening. */
bool sse_hub_connected(const struct sse_hub *h);
/* Timers: reconnect, connect and query deadlines, polling. */
void sse_hub_tick(struct sse_hub *h);
/* When sse_hub_tick next has work (INT64_MAX: never). */
int64_t sse_hub_deadline(const struct sse_hub *h);
/* Queues a table read for c, a stream catching up from c->last_id. */
void sse_hub_want_read(struct sse_hub *h, struct sse_conn *c);
/* Forgets c's queued or running read (c is closing). */
void sse_hub_cancel_read(struct sse_hub *h, struct sse_conn *c);

#endif
