/*
 * sse_server — listening socket, signals, the epoll loop and its timers; see sse_server.h.
 */
#include "sse_server.h"
#include "server.h"
#include "log.h"
#include "sse_conn.h"
#include "sse_hub.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SERVER_MAX_EVENTS 256

/* The loop's own descriptors. */
struct server_io {
        struct sse_server *srv;
        struct sse_watch listen;
        struct sse_watch signals;
        bool own_listen;    /* opened from LOOM_FCGI_LISTEN (closed at exit) */
        bool accept_paused; /* out of descriptors: listen fd is out of the loop */
        int64_t accept_resume_ms;
        int64_t stats_at_ms;
        char stats_last[256];
};

int64_t sse_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sse_watch_add(struct sse_server *srv, struct sse_watch *w, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};

        return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, w->fd, &ev);
}

int sse_watch_mod(struct sse_server *srv, struct sse_watch *w, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};

        if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
                return 0;
        return errno == ENOENT ? epoll_ctl(srv->epfd, EPOLL_CTL_ADD, w->fd, &ev) : -1;
}

void sse_watch_del(struct sse_server *srv, struct sse_watch *w)
{
        (void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

static int server_listen_unix(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        (void)unlink(path); /* a stale socket from a previous run */
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            listen(fd, SSE_LISTEN_BACKLOG) != 0) {
                int e = errno;

                close(fd);
                errno = e;
                return -1;
        }
        /* nginx runs as another user in the same group (stack notes, pitfall 6) */
        if (chmod(path, 0660) != 0)
                log_warn("cannot chmod %s: %s", path, strerror(errno));
        return fd;
}

/* "host:port" or ":port" (every address). */
static int server_listen_tcp(const char *addr)
{
        const char *colon = strrchr(addr, ':');
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
        struct addrinfo *ai = NULL;
        char host[256];
        int fd = -1, one = 1;

        if ((size_t)(colon - addr) >= sizeof(host)) {
                errno = EINVAL;
                return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        if (getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai) != 0) {
                errno = EINVAL;
                return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0 &&
            (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SSE_LISTEN_BACKLOG) != 0)) {
                int e = errno;

                close(fd);
                fd = -1;
                errno = e;
        }
        freeaddrinfo(ai);
        return fd;
}

/* fd 0 from supervisord's [fcgi-program], or the socket LOOM_FCGI_LISTEN names. */
static int server_listen(struct server_io *io)
{
        const char *addr = io->srv->cfg.listen;
        int fd;

        if (!addr)
                return server_inherited_fd();
        if (addr[0] != '/' && addr[0] != '.' && strchr(addr, ':'))
                fd = server_listen_tcp(addr);
        else
                fd = server_listen_unix(addr);
        if (fd < 0) {
                log_error("cannot listen on %s: %s", addr, strerror(errno));
                return -1;
        }
        io->own_listen = true;
        log_info("listening on %s", addr);
        return fd;
}

static void server_pause_accept(struct server_io *io)
{
        if (io->accept_paused)
                return;
        log_warn("out of file descriptors with %ld connections; pausing accept for %d ms",
                 io->srv->nconns, SSE_ACCEPT_PAUSE_MS);
        sse_watch_del(io->srv, &io->listen);
        io->accept_paused = true;
        io->accept_resume_ms = io->srv->now_ms + SSE_ACCEPT_PAUSE_MS;
}

static void server_on_listen(struct sse_watch *w, uint32_t events)
{
        struct server_io *io = sse_container(w, struct server_io, listen);

        (void)events;
        for (int i = 0; i < SSE_MAX_ACCEPT_PER_RUN && !io->srv->stopping; i++) {
                int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd >= 0) {
                        sse_conn_accept(io->srv, fd);
                        continue;
                }
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        server_pause_accept(io);
                else if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                        continue;
                else if (errno != EAGAIN && errno != EWOULDBLOCK)
                        log_warn("accept failed: %s", strerror(errno));
                return;
        }
}

static void server_on_signal(struct sse_watch *w, uint32_t events)
{
        struct server_io *io = sse_container(w, struct server_io, signals);
        struct signalfd_siginfo si;

        (void)events;
        while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT)
                        continue; /* HUP, USR1: nothing to reload */
                if (!io->srv->stopping)
                        log_info("stopping on signal %u with %ld streams", si.ssi_signo,
                                 io->srv->nstreams);
                io->srv->stopping = true;
        }
}

/* Blocks the signals the loop reads from a signalfd. -1 on failure. */
static int server_signals(void)
{
        sigset_t set;

        signal(SIGPIPE, SIG_IGN); /* a write to a closed client is an EPIPE, not a death */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
                return -1;
        return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Streams cost descriptors: take everything the hard limit allows. */
static void server_raise_nofile(long max_streams)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                        log_warn("cannot raise the open-file limit: %s", strerror(errno));
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (long)rl.rlim_cur < max_streams + 64)
                log_warn("open-file limit %ld is below LOOM_SSE_MAX_STREAMS %ld: streams past "
                         "the limit wait in the backlog",
                         (long)rl.rlim_cur, max_streams);
}

static void server_log_stats(struct server_io *io, bool force)
{
        const struct sse_server *srv = io->srv;
        const struct sse_stats *st = &srv->stats;
        char line[sizeof(io->stats_last)];

        if (!force && srv->now_ms < io->stats_at_ms)
                return;
        io->stats_at_ms = srv->now_ms + SSE_STATS_MS;
        snprintf(line, sizeof(line),
                 "streams %ld (cap %ld), connections %ld, head %lld, started %llu, "
                 "rejected %llu, dropped slow %llu, malformed %llu, table reads %llu",
                 srv->nstreams, srv->cfg.max_streams, srv->nconns, (long long)srv->ring.head,
                 (unsigned long long)st->streams_started, (unsigned long long)st->rejected_full,
                 (unsigned long long)st->dropped_slow, (unsigned long long)st->malformed,
                 (unsigned long long)st->table_reads);
        /* a quiet process logs nothing new */
        if (!force && strcmp(line, io->stats_last) == 0)
                return;
        memcpy(io->stats_last, line, sizeof(line));
        log_info("%s", line);
}

static int64_t server_deadline(const struct server_io *io)
{
        const struct sse_server *srv = io->srv;
        int64_t d = io->stats_at_ms, t;

        if (srv->hub && (t = sse_hub_deadline(srv->hub)) < d)
                d = t;
        if ((t = sse_conn_deadline(srv)) < d)
                d = t;
        if (io->accept_paused && io->accept_resume_ms < d)
                d = io->accept_resume_ms;
        return d;
}

/* Runs timers that are due. */
static void server_timers(struct server_io *io)
{
        struct sse_server *srv = io->srv;

        if (io->accept_paused && srv->now_ms >= io->accept_resume_ms && !srv->stopping) {
                io->accept_paused = false;
                if (sse_watch_add(srv, &io->listen, EPOLLIN) != 0)
                        log_error("cannot watch the listening socket: %s", strerror(errno));
        }
        if (srv->hub)
                sse_hub_tick(srv->hub);
        sse_conn_tick(srv);
        server_log_stats(io, false);
}

/* One turn: wait for events (at most until the next timer), handle them, run timers. */
static void server_turn(struct server_io *io, int64_t limit_ms)
{
        struct sse_server *srv = io->srv;
        struct epoll_event evs[SERVER_MAX_EVENTS];
        int64_t wait = server_deadline(io);
        int n;

        if (wait > limit_ms)
                wait = limit_ms;
        wait -= srv->now_ms;
        n = epoll_wait(srv->epfd, evs, SERVER_MAX_EVENTS,
                       wait < 0 ? 0 : (wait > 60000 ? 60000 : (int)wait));
        srv->now_ms = sse_now_ms();
        for (int i = 0; i < n; i++) {
                struct sse_watch *w = evs[i].data.ptr;

                w->on_ready(w, evs[i].events);
        }
        if (n < 0 && errno != EINTR)
                log_error("epoll_wait failed: %s", strerror(errno));
        server_timers(io);
        sse_conn_reap(srv);
        arena_reset(&srv->arena);
}

/* SIGTERM: no new connections, END_REQUEST to every stream, a moment to flush, exit. */
static void server_stop(struct server_io *io)
{
        struct sse_server *srv = io->srv;
        int64_t until;

        if (!io->accept_paused)
                sse_watch_del(srv, &io->listen);
        if (io->own_listen)
                close(io->listen.fd);
        sse_conn_shutdown(srv); /* before the hub goes: streams cancel their table reads */
        sse_conn_reap(srv);
        sse_hub_free(srv->hub);
        srv->hub = NULL;
        until = srv->now_ms + SSE_STOP_MS;
        while (srv->nconns > 0 && srv->now_ms < until)
                server_turn(io, until);
        server_log_stats(io, true);
}

static int server_nonblock(int fd)
{
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
                log_error("cannot make the listening socket non-blocking: %s", strerror(errno));
                return -1;
        }
        return 0;
}

static int server_setup(struct server_io *io)
{
        struct sse_server *srv = io->srv;

        io->signals.fd = server_signals();
        io->signals.on_ready = server_on_signal;
        io->listen.on_ready = server_on_listen;
        srv->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (io->signals.fd < 0 || srv->epfd < 0) {
                log_error("cannot set up the event loop: %s", strerror(errno));
                return -1;
        }
        io->listen.fd = server_listen(io);
        if (io->listen.fd < 0)
                return -1;
        /* fd 0 from supervisord is blocking; accept must never wait */
        if (!io->own_listen && server_nonblock(io->listen.fd) != 0)
                return -1;
        if (sse_watch_add(srv, &io->listen, EPOLLIN) != 0 ||
            sse_watch_add(srv, &io->signals, EPOLLIN) != 0) {
                log_error("cannot watch the listening socket: %s", strerror(errno));
                return -1;
        }
        return 0;
}

int sse_server_run(const struct sse_config *cfg)
{
        static struct sse_server srv; /* large (the read buffer): not on the stack */
        struct server_io io = {.srv = &srv};

        srv.cfg = *cfg;
        srv.now_ms = sse_now_ms();
        sse_list_init(&srv.all);
        sse_list_init(&srv.waiting);
        sse_list_init(&srv.live);
        sse_list_init(&srv.lru);
        sse_list_init(&srv.graveyard);
        arena_init(&srv.arena, 0);
        sse_ring_init(&srv.ring, (size_t)cfg->ring_size);
        server_raise_nofile(cfg->max_streams);
        if (server_setup(&io) != 0)
                return 1;
        srv.hub = sse_hub_new(&srv, cfg->conninfo);
        io.stats_at_ms = srv.now_ms + SSE_STATS_MS;
        log_info("loom-sse ready: at most %ld streams, ring of %ld events, heartbeat %ld ms",
                 cfg->max_streams, cfg->ring_size, cfg->heartbeat_ms);
        while (!srv.stopping)
                server_turn(&io, INT64_MAX);
        server_stop(&io);
        sse_ring_release(&srv.ring);
        arena_release(&srv.arena);
        return 0;
}
