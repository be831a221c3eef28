/*
 * loom-sse — the FastCGI program behind nginx's stream locations: Server-Sent Event streams of
 * the events table, many per process on one epoll loop (sse_server.h has the map).
 *
 *   LOOM_DATABASE_URL       libpq connection string (one connection per process: LISTEN)
 *   LOOM_FCGI_LISTEN        unix path or host:port; unset = fd 0 from supervisord [fcgi-program]
 *   LOOM_SSE_MAX_STREAMS    streams held at once (default 10000); beyond it 503 + retry:
 *   LOOM_SSE_RING_SIZE      recent events kept in memory for resuming clients (default 4096)
 *   LOOM_SSE_HEARTBEAT_MS   ": ping" on a stream idle this long (default 15000)
 */
#include "config.h"
#include "log.h"
#include "sse_server.h"

int main(void)
{
        struct sse_config cfg;

        log_setup("loom-sse");
        cfg.max_streams = config_long("LOOM_SSE_MAX_STREAMS", SSE_DEFAULT_STREAMS, 1, 1000000);
        cfg.ring_size = config_long("LOOM_SSE_RING_SIZE", SSE_DEFAULT_RING, 16, 1 << 20);
        cfg.heartbeat_ms =
                config_long("LOOM_SSE_HEARTBEAT_MS", SSE_DEFAULT_HEARTBEAT, 100, 3600 * 1000);
        cfg.conninfo = config_database_url();
        cfg.listen = config_str("LOOM_FCGI_LISTEN", NULL);
        return sse_server_run(&cfg);
}
