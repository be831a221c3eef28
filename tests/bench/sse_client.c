/*
 * sse_client — the load program of `make bench-sse` (tests/bench/bench-sse.sh).
 *
 * One thread holds every stream on one epoll instance with plain non-blocking sockets (HTTP/1.1
 * through nginx, chunked bodies decoded by hand); a second thread inserts the events.  For each
 * level N given on the command line, in order:
 *
 *   1. opens N streams (GET BENCH_SSE_PATH, default /api/v1/events/stream), at most
 *      BENCH_SSE_RAMP (500) of them not yet past their `event: connected`, so the burst does
 *      not overflow listen backlogs; a stream that fails (connect error, non-200, closed) is
 *      counted, not retried; BENCH_SSE_CONNECT_S (120) bounds the whole ramp;
 *   2. lets them sit for a second, then reads VmRSS of loom-sse and of the nginx workers;
 *   3. BENCH_SSE_HEALTH (200) sequential GET /health, each on a new connection, timed from
 *      connect() to the end of the response;
 *   4. BENCH_SSE_EVENTS (20) events, BENCH_SSE_INTERVAL_MS (200) apart, each one
 *      `SELECT loom_event('bench.tick', …)` whose payload carries "bench_t", the CLOCK_MONOTONIC
 *      µs just before the statement was sent (plus BENCH_SSE_PAD (0) bytes of padding, to try
 *      event sizes), on its own connection to LOOM_DATABASE_URL (autocommit: the trigger's
 *      NOTIFY goes out at commit).  A sample is the time from that stamp to the read() that
 *      returned the event's data line on one stream: N samples per event.  The phase ends when
 *      every open stream has every event, or 15 s after the last one was sent.  Meanwhile
 *      another thread runs GET /health (as in 3) every 20 ms, and the CPU time of loom-sse, the
 *      nginx workers and this process over the phase is read from /proc;
 *   5. reads VmRSS again, closes every stream with a reset (no TIME_WAIT left behind) and
 *      waits BENCH_SSE_SETTLE_MS (2000) for nginx and loom-sse to let them go.
 *
 * The baseline RSS is read once, before the first level, with no stream open: the driver's
 * per-stream memory is (RSS with N open - baseline) / streams open, so memory kept from an
 * earlier level counts.  BENCH_SSE_VERBOSE=1 prints each event's first and last arrival.
 *
 *   sse_client HOST PORT SSE_PID NGINX_WORKER_PIDS N [N ...]     (pids: comma-separated)
 *
 * stdout, for the driver (times in ms, memory in KiB):
 *   RESULT base SSE_KB NGINX_KB
 *   RESULT open N CONNECTED FAILED SECONDS
 *   RESULT rss N SSE_KB NGINX_KB                   (idle, N open)
 *   RESULT fds N A,B,…                             (open descriptors of each nginx worker)
 *   RESULT rss_events N SSE_KB NGINX_KB            (right after the events)
 *   RESULT health N P50 P99 MAX OK COUNT
 *   RESULT latency N P50 P99 MAX DELIVERED EXPECTED
 *   RESULT health_events N P50 P99 MAX OK COUNT    (while the events go out)
 *   RESULT cpu N SSE_MS NGINX_MS CLIENT_MS          (CPU time over the events phase)
 * Progress goes to stderr.  Exits 1 when something failed outright (bad arguments, the
 * database); streams that do not connect or lose events are reported, not fatal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_LINE_MAX     1024 /* response head, then the start of one SSE line */
#define CLIENT_MAX_PIDS     64
#define CLIENT_MAX_STREAMS  100000
#define CLIENT_MAX_EVENTS   1000
#define CLIENT_EPOLL_BATCH  1024
#define CLIENT_DRAIN_MS     15000 /* after the last event was sent */
#define CLIENT_HEALTH_TO_MS 2000  /* one /health request, connect and read */
#define CLIENT_HEALTH_MAX_S 60    /* one phase of /health requests */
#define CLIENT_STAMP_KEY    "\"bench_t\":"
#define CLIENT_SEQ_KEY      "\"seq\":"

static const char client_fire_sql[] = "SELECT loom_event('bench.tick', NULL, NULL, 'bench',"
                                      " jsonb_build_object('bench_t', $1::bigint, 'seq', $2::int, "
                                      "'padding_to_size', repeat('x', $3::int)))";

enum stream_state {
        STREAM_CONNECTING, /* connect() in progress */
        STREAM_HEAD,       /* request sent, reading the response head */
        STREAM_BODY,       /* 200: reading events */
        STREAM_CLOSED,     /* failed, ended, or closed by us */
};

enum chunk_state {
        CHUNK_SIZE, /* hex digits of the next chunk size */
        CHUNK_EXT,  /* the rest of the size line, up to LF */
        CHUNK_DATA, /* chunk_left bytes of data */
        CHUNK_CRLF, /* the CR LF after the data */
};

struct stream {
        int fd;
        uint8_t state;
        uint8_t chunk_state;
        bool chunked;
        bool connected; /* saw `event: connected` */
        uint16_t line_len;
        uint32_t chunk_left;
        uint32_t events; /* bench events received */
        char line[CLIENT_LINE_MAX];
};

struct level {
        long n;
        long opened;
        long connected;
        long failed;
        long lost; /* connected streams that ended during the level */
        long events;
        uint32_t *lat_us;                      /* one sample per delivered event */
        uint32_t ev_max_us[CLIENT_MAX_EVENTS]; /* by seq: the slowest delivery */
        uint32_t ev_min_us[CLIENT_MAX_EVENTS]; /* by seq: the fastest delivery */
        size_t nlat;
        size_t lat_cap;
};

struct client {
        const char *host;
        int port;
        struct sockaddr_in addr;
        int epfd;
        long sse_pid;
        long nginx_pids[CLIENT_MAX_PIDS];
        int n_nginx;
        const char *path;
        const char *token; /* BENCH_SSE_TOKEN: the bearer credential of every stream */
        long ramp;
        long connect_s;
        long nevents;
        long interval_ms;
        long pad;
        long health;
        long settle_ms;
        PGconn *db;
        struct stream *streams;
        struct level lv;
};

/* Set by the event thread after its last event; read by the reader and the health thread. */
static atomic_bool fire_done;

static void client_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void client_die(const char *fmt, ...)
{
        va_list ap;

        fputs("sse_client: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static int64_t client_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void client_sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0)
                ;
}

/* A whole number in [lo, hi], or the program ends. */
static long client_num(const char *s, long lo, long hi, const char *what)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                client_die("%s: '%s' is not a number in [%ld, %ld]", what, s, lo, hi);
        return v;
}

static long client_env(const char *name, long def, long lo, long hi)
{
        const char *v = getenv(name);

        return v && *v ? client_num(v, lo, hi, name) : def;
}

/* "12,34": at most CLIENT_MAX_PIDS pids. */
static int client_pids(const char *s, long *out)
{
        int n = 0;

        while (*s) {
                char *end;
                long v = strtol(s, &end, 10);

                if (end == s || v <= 0 || n == CLIENT_MAX_PIDS || (*end && *end != ','))
                        client_die("NGINX_WORKER_PIDS: '%s' is not a list of pids", s);
                out[n++] = v;
                s = *end ? end + 1 : end;
        }
        return n;
}

/* VmRSS of pid in KiB; 0 when the process is gone. */
static long client_rss_kb(long pid)
{
        char path[64], buf[4096];
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%ld/status", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        p = strstr(buf, "\nVmRSS:");
        return p ? strtol(p + 7, NULL, 10) : 0;
}

/* utime + stime of pid in clock ticks; 0 when the process is gone. */
static long client_cpu_ticks(long pid)
{
        char path[64], buf[1024];
        const char *p;
        long t = 0;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* after "pid (comm) ": field 3 is the state; utime and stime are fields 14 and 15 */
        p = strrchr(buf, ')');
        for (int field = 2; p && field < 14; field++)
                p = strchr(p + 1, ' ');
        for (int i = 0; p && i < 2; i++) {
                char *end;

                t += strtol(p + 1, &end, 10);
                p = end;
        }
        return t;
}

/* CPU time of loom-sse, the nginx workers and this process, in ms. */
static void client_cpu_ms(const struct client *cl, double out[3])
{
        double ms_per_tick = 1000.0 / (double)sysconf(_SC_CLK_TCK);
        long nginx = 0;

        for (int i = 0; i < cl->n_nginx; i++)
                nginx += client_cpu_ticks(cl->nginx_pids[i]);
        out[0] = (double)client_cpu_ticks(cl->sse_pid) * ms_per_tick;
        out[1] = (double)nginx * ms_per_tick;
        out[2] = (double)client_cpu_ticks(getpid()) * ms_per_tick;
}

/* Open descriptors of pid (its connections, mostly); -1 when they cannot be read. */
static long client_fds(long pid)
{
        char path[64];
        struct dirent *de;
        long n = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static long client_nginx_rss_kb(const struct client *cl)
{
        long sum = 0;

        for (int i = 0; i < cl->n_nginx; i++)
                sum += client_rss_kb(cl->nginx_pids[i]);
        return sum;
}

/* Streams cost descriptors: take everything the hard limit allows. */
static void client_raise_nofile(long want)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return;
        if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < want + 64)
                fprintf(stderr, "sse_client: open-file limit %ld is below %ld streams\n",
                        (long)rl.rlim_cur, want);
}

static int client_cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile q of n sorted values. */
static uint32_t client_pct(const uint32_t *v, size_t n, double q)
{
        size_t rank = (size_t)(q * (double)n);

        if ((double)rank < q * (double)n)
                rank++;
        if (rank < 1)
                rank = 1;
        return n ? v[rank - 1] : 0;
}

/* ---- streams -------------------------------------------------------------------------- */

static void lat_add(struct level *lv, uint32_t us)
{
        if (lv->nlat == lv->lat_cap) {
                lv->lat_cap = lv->lat_cap ? lv->lat_cap * 2 : 65536;
                lv->lat_us = realloc(lv->lat_us, lv->lat_cap * sizeof(*lv->lat_us));
                if (!lv->lat_us)
                        client_die("out of memory");
        }
        lv->lat_us[lv->nlat++] = us;
}

static void stream_close(struct client *cl, struct stream *s, bool reset)
{
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        if (s->state == STREAM_CLOSED)
                return;
        if (reset)
                (void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(s->fd);
        if (!s->connected)
                cl->lv.failed++;
        else if (!reset)
                cl->lv.lost++;
        s->state = STREAM_CLOSED;
}

/* One complete SSE line (without its LF). */
static void stream_line(struct client *cl, struct stream *s, int64_t now)
{
        const char *p;
        uint32_t us;

        if (s->line_len && s->line[s->line_len - 1] == '\r')
                s->line_len--;
        s->line[s->line_len] = '\0';
        if (!s->connected && strcmp(s->line, "event: connected") == 0) {
                s->connected = true;
                cl->lv.connected++;
                return;
        }
        if (strncmp(s->line, "data: ", 6) != 0 || !(p = strstr(s->line, CLIENT_STAMP_KEY)))
                return;
        us = (uint32_t)(now - strtoll(p + strlen(CLIENT_STAMP_KEY), NULL, 10));
        s->events++;
        cl->lv.events++;
        lat_add(&cl->lv, us);
        if ((p = strstr(s->line, CLIENT_SEQ_KEY))) {
                long seq = strtol(p + strlen(CLIENT_SEQ_KEY), NULL, 10);

                if (seq >= 0 && seq < CLIENT_MAX_EVENTS) {
                        if (us > cl->lv.ev_max_us[seq])
                                cl->lv.ev_max_us[seq] = us;
                        if (!cl->lv.ev_min_us[seq] || us < cl->lv.ev_min_us[seq])
                                cl->lv.ev_min_us[seq] = us;
                }
        }
}

/* SSE bytes (chunk framing removed). */
static void stream_sse(struct client *cl, struct stream *s, const char *b, size_t n, int64_t now)
{
        for (size_t i = 0; i < n; i++) {
                /* a longer line keeps its start: jsonb puts the stamp before the padding */
                if (b[i] == '\n') {
                        stream_line(cl, s, now);
                        s->line_len = 0;
                } else if (s->line_len < CLIENT_LINE_MAX - 1) {
                        s->line[s->line_len++] = b[i];
                }
        }
}

static int client_hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Body bytes: chunked framing removed, the rest handed to stream_sse. */
static void stream_body(struct client *cl, struct stream *s, const char *b, size_t n, int64_t now)
{
        size_t i = 0;

        if (!s->chunked) {
                stream_sse(cl, s, b, n, now);
                return;
        }
        while (i < n) {
                if (s->chunk_state == CHUNK_DATA) {
                        size_t take = n - i < s->chunk_left ? n - i : s->chunk_left;

                        stream_sse(cl, s, b + i, take, now);
                        i += take;
                        s->chunk_left -= (uint32_t)take;
                        if (!s->chunk_left)
                                s->chunk_state = CHUNK_CRLF;
                        continue;
                }
                if (s->chunk_state == CHUNK_SIZE && client_hexval(b[i]) >= 0)
                        s->chunk_left = s->chunk_left * 16 + (uint32_t)client_hexval(b[i]);
                else if (s->chunk_state != CHUNK_CRLF && b[i] != '\n')
                        s->chunk_state = CHUNK_EXT;
                else if (b[i] == '\n' && s->chunk_state == CHUNK_CRLF)
                        s->chunk_state = CHUNK_SIZE;
                else if (b[i] == '\n')
                        s->chunk_state = s->chunk_left ? CHUNK_DATA : CHUNK_CRLF;
                i++;
        }
}

/* Response head bytes; returns how many were part of the head (the rest is body). */
static size_t stream_head(struct client *cl, struct stream *s, const char *b, size_t n)
{
        size_t i;

        for (i = 0; i < n && s->state == STREAM_HEAD; i++) {
                if (s->line_len >= CLIENT_LINE_MAX - 1) {
                        stream_close(cl, s, true);
                        return n;
                }
                s->line[s->line_len++] = b[i];
                if (s->line_len < 4 || memcmp(s->line + s->line_len - 4, "\r\n\r\n", 4) != 0)
                        continue;
                s->line[s->line_len] = '\0';
                if (strncmp(s->line, "HTTP/1.1 200 ", 13) != 0) {
                        stream_close(cl, s, true);
                        return n;
                }
                s->chunked = strstr(s->line, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
                s->state = STREAM_BODY;
                s->line_len = 0;
        }
        return i;
}

static void stream_read(struct client *cl, struct stream *s)
{
        static char buf[65536];

        while (s->state == STREAM_HEAD || s->state == STREAM_BODY) {
                ssize_t n = read(s->fd, buf, sizeof(buf));
                size_t off = 0;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                                stream_close(cl, s, false);
                        return;
                }
                if (s->state == STREAM_HEAD)
                        off = stream_head(cl, s, buf, (size_t)n);
                if (s->state == STREAM_BODY && off < (size_t)n)
                        stream_body(cl, s, buf + off, (size_t)n - off, client_now_us());
        }
}

static void stream_send_request(struct client *cl, struct stream *s)
{
        char req[640];
        int err = 0, len;
        socklen_t el = sizeof(err);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = s};

        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
                stream_close(cl, s, true);
                return;
        }
        len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                       "Cache-Control: no-cache\r\nAuthorization: Bearer %.64s\r\n\r\n",
                       cl->path, cl->host, cl->port, cl->token);
        if (write(s->fd, req, (size_t)len) != len ||
            epoll_ctl(cl->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0) {
                stream_close(cl, s, true);
                return;
        }
        s->state = STREAM_HEAD;
}

static void stream_on_ready(struct client *cl, struct stream *s, uint32_t events)
{
        if (s->state == STREAM_CONNECTING) {
                stream_send_request(cl, s);
                if (s->state == STREAM_CLOSED)
                        return;
        }
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                stream_read(cl, s);
}

static void stream_open(struct client *cl, struct stream *s)
{
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = s};
        int one = 1;

        memset(s, 0, sizeof(*s));
        cl->lv.opened++;
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                fprintf(stderr, "sse_client: socket: %s\n", strerror(errno));
                s->state = STREAM_CLOSED;
                cl->lv.failed++;
                return;
        }
        (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if ((connect(s->fd, (struct sockaddr *)&cl->addr, sizeof(cl->addr)) != 0 &&
             errno != EINPROGRESS) ||
            epoll_ctl(cl->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
                fprintf(stderr, "sse_client: connect: %s\n", strerror(errno));
                s->state = STREAM_CONNECTING;
                stream_close(cl, s, true);
        }
}

/* Waits at most ms for socket events and handles them. */
static void client_poll(struct client *cl, int ms)
{
        static struct epoll_event evs[CLIENT_EPOLL_BATCH];
        int n = epoll_wait(cl->epfd, evs, CLIENT_EPOLL_BATCH, ms);

        if (n < 0 && errno != EINTR)
                client_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
                stream_on_ready(cl, evs[i].data.ptr, evs[i].events);
}

static void client_pump_ms(struct client *cl, long ms)
{
        int64_t until = client_now_us() + ms * 1000;
        int64_t now;

        while ((now = client_now_us()) < until)
                client_poll(cl, (int)((until - now + 999) / 1000));
}

/* Opens lv.n streams, at most cl->ramp of them waiting for their `connected` at a time. */
static void client_ramp(struct client *cl)
{
        struct level *lv = &cl->lv;
        int64_t t0 = client_now_us(), until = t0 + cl->connect_s * 1000000;

        while (lv->connected + lv->failed < lv->n && client_now_us() < until) {
                while (lv->opened < lv->n && lv->opened - lv->connected - lv->failed < cl->ramp)
                        stream_open(cl, &cl->streams[lv->opened]);
                client_poll(cl, 50);
        }
        printf("RESULT open %ld %ld %ld %.2f\n", lv->n, lv->connected, lv->n - lv->connected,
               (double)(client_now_us() - t0) / 1e6);
        fprintf(stderr, "sse_client: %ld of %ld streams open (%ld failed)\n", lv->connected, lv->n,
                lv->n - lv->connected);
}

/* ---- /health ---------------------------------------------------------------------------- */

/* One GET /health on a new connection: its time in µs, or -1 when it was not a 200. */
static int64_t health_once(const struct client *cl)
{
        struct timeval tv = {.tv_sec = CLIENT_HEALTH_TO_MS / 1000};
        char req[256], buf[4096], first[16] = "";
        size_t got = 0;
        int64_t t0 = client_now_us();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), len;
        ssize_t n;

        if (fd < 0)
                return -1;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() */
        len = snprintf(req, sizeof(req),
                       "GET /health HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", cl->host,
                       cl->port);
        if (connect(fd, (const struct sockaddr *)&cl->addr, sizeof(cl->addr)) != 0 ||
            write(fd, req, (size_t)len) != len) {
                close(fd);
                return -1;
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                if (got < sizeof(first) - 1) {
                        size_t k = (size_t)n < sizeof(first) - 1 - got ? (size_t)n
                                                                       : sizeof(first) - 1 - got;

                        memcpy(first + got, buf, k);
                        first[got + k] = '\0';
                }
                got += (size_t)n;
        }
        close(fd);
        if (n < 0 || strncmp(first, "HTTP/1.1 200 ", 13) != 0)
                return -1;
        return client_now_us() - t0;
}

struct health_run {
        const struct client *cl;
        long max;          /* requests at most */
        atomic_bool *stop; /* or until this is set (may be NULL) */
        long gap_ms;       /* pause after each request */
        uint32_t *us;      /* the successful ones, sorted once done */
        size_t ok;
        long count;
};

/* Sequential requests until max are done, *stop is set or CLIENT_HEALTH_MAX_S have passed;
 * a thread body. */
static void *health_main(void *arg)
{
        struct health_run *h = arg;
        int64_t until = client_now_us() + (int64_t)CLIENT_HEALTH_MAX_S * 1000000;

        h->us = calloc((size_t)h->max + 1, sizeof(*h->us));
        if (!h->us)
                client_die("out of memory");
        while (h->count < h->max && !(h->stop && atomic_load(h->stop)) && client_now_us() < until) {
                int64_t us = health_once(h->cl);

                h->count++;
                if (us >= 0)
                        h->us[h->ok++] = (uint32_t)us;
                if (h->gap_ms)
                        client_sleep_ms(h->gap_ms);
        }
        qsort(h->us, h->ok, sizeof(*h->us), client_cmp_u32);
        return NULL;
}

static void health_print(const struct health_run *h, const char *what, long n)
{
        printf("RESULT %s %ld %.2f %.2f %.2f %zu %ld\n", what, n,
               client_pct(h->us, h->ok, 0.5) / 1e3, client_pct(h->us, h->ok, 0.99) / 1e3,
               (h->ok ? h->us[h->ok - 1] : 0) / 1e3, h->ok, h->count);
}

/* cl->health sequential requests with the streams open and quiet. */
static void client_health(const struct client *cl)
{
        struct health_run h = {.cl = cl, .max = cl->health};

        health_main(&h);
        health_print(&h, "health", cl->lv.n);
        free(h.us);
}

/* ---- events ----------------------------------------------------------------------------- */

struct fire_job {
        PGconn *db;
        long events;
        long interval_ms;
        long pad;
};

static void *fire_main(void *arg)
{
        const struct fire_job *job = arg;

        for (long k = 0; k < job->events; k++) {
                char stamp[32], seq[32], pad[32];
                const char *params[3] = {stamp, seq, pad};
                PGresult *res;

                client_sleep_ms(job->interval_ms);
                snprintf(seq, sizeof(seq), "%ld", k);
                snprintf(pad, sizeof(pad), "%ld", job->pad);
                snprintf(stamp, sizeof(stamp), "%lld", (long long)client_now_us());
                res = PQexecParams(job->db, client_fire_sql, 3, NULL, params, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK)
                        client_die("loom_event failed: %s", PQresultErrorMessage(res));
                PQclear(res);
        }
        atomic_store(&fire_done, true);
        return NULL;
}

static long client_open_streams(const struct client *cl)
{
        long open = 0;

        for (long i = 0; i < cl->lv.opened; i++)
                open += cl->streams[i].state == STREAM_BODY && cl->streams[i].connected;
        return open;
}

/* Reads until the event thread is done and every open stream has every event, or the drain
 * deadline passes. */
static void client_collect(struct client *cl)
{
        int64_t drain_until = 0;

        for (;;) {
                client_poll(cl, 20);
                if (!atomic_load(&fire_done))
                        continue;
                if (!drain_until)
                        drain_until = client_now_us() + CLIENT_DRAIN_MS * 1000;
                if (cl->lv.events >= client_open_streams(cl) * cl->nevents ||
                    client_now_us() >= drain_until)
                        return;
        }
}

/*
 * Fires the events (one thread) while GET /health runs back to back (another thread) and
 * this one reads the streams.  Prints the latencies, the health times meanwhile, and the CPU
 * each side used.
 */
static void client_events(struct client *cl)
{
        struct fire_job job = {cl->db, cl->nevents, cl->interval_ms, cl->pad};
        struct health_run h = {.cl = cl, .max = 1000000, .stop = &fire_done, .gap_ms = 20};
        struct level *lv = &cl->lv;
        double cpu0[3], cpu1[3];
        pthread_t fire_th, health_th;

        atomic_store(&fire_done, false);
        client_cpu_ms(cl, cpu0);
        if (pthread_create(&fire_th, NULL, fire_main, &job) != 0 ||
            pthread_create(&health_th, NULL, health_main, &h) != 0)
                client_die("cannot start a thread");
        client_collect(cl);
        pthread_join(fire_th, NULL);
        pthread_join(health_th, NULL);
        client_cpu_ms(cl, cpu1);
        qsort(lv->lat_us, lv->nlat, sizeof(*lv->lat_us), client_cmp_u32);
        /* streams that ended early count with every event they should have had */
        printf("RESULT latency %ld %.2f %.2f %.2f %ld %ld\n", lv->n,
               client_pct(lv->lat_us, lv->nlat, 0.5) / 1e3,
               client_pct(lv->lat_us, lv->nlat, 0.99) / 1e3,
               (lv->nlat ? lv->lat_us[lv->nlat - 1] : 0) / 1e3, lv->events,
               lv->connected * cl->nevents);
        health_print(&h, "health_events", lv->n);
        for (long k = 0; k < cl->nevents && getenv("BENCH_SSE_VERBOSE"); k++)
                fprintf(stderr, "sse_client: level %ld event %ld: first %.1f ms, last %.1f ms\n",
                        lv->n, k, lv->ev_min_us[k] / 1e3, lv->ev_max_us[k] / 1e3);
        printf("RESULT cpu %ld %.0f %.0f %.0f\n", lv->n, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1],
               cpu1[2] - cpu0[2]);
        free(h.us);
}

/* ---- levels ----------------------------------------------------------------------------- */

static void client_print_rss(const struct client *cl, const char *what)
{
        printf("RESULT %s %ld %ld %ld\n", what, cl->lv.n, client_rss_kb(cl->sse_pid),
               client_nginx_rss_kb(cl));
}

/* How the streams spread over the nginx workers: "RESULT fds N A,B,...". */
static void client_print_fds(const struct client *cl)
{
        printf("RESULT fds %ld ", cl->lv.n);
        for (int i = 0; i < cl->n_nginx; i++)
                printf("%s%ld", i ? "," : "", client_fds(cl->nginx_pids[i]));
        printf("\n");
}

static void client_level(struct client *cl, long n)
{
        free(cl->lv.lat_us);
        memset(&cl->lv, 0, sizeof(cl->lv));
        cl->lv.n = n;
        fprintf(stderr, "sse_client: level %ld: opening streams\n", n);
        client_ramp(cl);
        client_pump_ms(cl, 1000);
        client_print_rss(cl, "rss");
        client_print_fds(cl);
        fprintf(stderr, "sse_client: level %ld: %ld x GET /health\n", n, cl->health);
        client_health(cl);
        client_pump_ms(cl, 200); /* whatever arrived meanwhile (heartbeats) */
        fprintf(stderr, "sse_client: level %ld: %ld events, %ld ms apart\n", n, cl->nevents,
                cl->interval_ms);
        client_events(cl);
        client_print_rss(cl, "rss_events");
        if (cl->lv.lost)
                fprintf(stderr, "sse_client: level %ld: %ld streams ended early\n", n, cl->lv.lost);
        for (long i = 0; i < cl->lv.opened; i++)
                stream_close(cl, &cl->streams[i], true);
        client_sleep_ms(cl->settle_ms);
}

static void client_setup(struct client *cl, char **argv)
{
        const char *url = getenv("LOOM_DATABASE_URL");
        PGresult *res;

        cl->host = argv[1];
        cl->port = (int)client_num(argv[2], 1, 65535, "PORT");
        cl->sse_pid = client_num(argv[3], 1, INT32_MAX, "SSE_PID");
        cl->n_nginx = client_pids(argv[4], cl->nginx_pids);
        cl->addr.sin_family = AF_INET;
        cl->addr.sin_port = htons((uint16_t)cl->port);
        if (inet_pton(AF_INET, cl->host, &cl->addr.sin_addr) != 1)
                client_die("HOST: '%s' is not an IPv4 address", cl->host);
        cl->path = getenv("BENCH_SSE_PATH") ? getenv("BENCH_SSE_PATH") : "/api/v1/events/stream";
        /* the streams sit behind nginx's auth_request: a session token or an API key */
        cl->token = getenv("BENCH_SSE_TOKEN") ? getenv("BENCH_SSE_TOKEN") : "";
        cl->ramp = client_env("BENCH_SSE_RAMP", 500, 1, CLIENT_MAX_STREAMS);
        cl->connect_s = client_env("BENCH_SSE_CONNECT_S", 120, 1, 3600);
        cl->nevents = client_env("BENCH_SSE_EVENTS", 20, 1, CLIENT_MAX_EVENTS);
        cl->interval_ms = client_env("BENCH_SSE_INTERVAL_MS", 200, 0, 60000);
        cl->pad = client_env("BENCH_SSE_PAD", 0, 0, 100000);
        cl->health = client_env("BENCH_SSE_HEALTH", 200, 1, 100000);
        cl->settle_ms = client_env("BENCH_SSE_SETTLE_MS", 2000, 0, 60000);
        if (!url || !*url)
                client_die("LOOM_DATABASE_URL is not set");
        cl->db = PQconnectdb(url);
        if (PQstatus(cl->db) != CONNECTION_OK)
                client_die("cannot connect to the database: %s", PQerrorMessage(cl->db));
        res = PQexec(cl->db, "SET statement_timeout = '10s'");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                client_die("SET statement_timeout failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        cl->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (cl->epfd < 0)
                client_die("epoll_create1: %s", strerror(errno));
}

int main(int argc, char **argv)
{
        static struct client cl;
        long most = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 6) {
                fprintf(stderr, "usage: %s HOST PORT SSE_PID NGINX_WORKER_PIDS N [N ...]\n",
                        argv[0]);
                return 2;
        }
        client_setup(&cl, argv);
        for (int i = 5; i < argc; i++) {
                long n = client_num(argv[i], 1, CLIENT_MAX_STREAMS, "N");

                most = n > most ? n : most;
        }
        client_raise_nofile(most);
        cl.streams = calloc((size_t)most, sizeof(*cl.streams));
        if (!cl.streams)
                client_die("out of memory");
        printf("RESULT base %ld %ld\n", client_rss_kb(cl.sse_pid), client_nginx_rss_kb(&cl));
        for (int i = 5; i < argc; i++)
                client_level(&cl, client_num(argv[i], 1, CLIENT_MAX_STREAMS, "N"));
        PQfinish(cl.db);
        free(cl.streams);
        free(cl.lv.lat_us);
        return 0;
}
