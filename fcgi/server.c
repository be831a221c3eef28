/*
 * server — threaded FastCGI accept loop with clean shutdown; see server.h.
 */
#include "server.h"
#include "config.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t server_accept_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int server_busy;
static atomic_bool server_stopping;

struct server_ctx {
        const struct server_config *cfg;
        int listen_fd;
        struct server_thread thread;
};

static void *server_thread_main(void *arg)
{
        struct server_ctx *ctx = arg;
        struct server_thread *t = &ctx->thread;
        FCGX_Request fcgx;

        if (FCGX_InitRequest(&fcgx, ctx->listen_fd, 0) != 0) {
                log_error("cannot initialise a FastCGI request in thread %d", t->index);
                return NULL;
        }
        while (!atomic_load(&server_stopping)) {
                int rc;

                pthread_mutex_lock(&server_accept_lock);
                rc = FCGX_Accept_r(&fcgx);
                pthread_mutex_unlock(&server_accept_lock);
                if (rc < 0) {
                        if (!atomic_load(&server_stopping))
                                log_error("accept failed in thread %d: %s", t->index,
                                          strerror(-rc > 0 ? -rc : EIO));
                        break;
                }
                atomic_fetch_add(&server_busy, 1);
                ctx->cfg->handler(&fcgx, t);
                FCGX_Finish_r(&fcgx);
                arena_reset(&t->arena);
                atomic_fetch_sub(&server_busy, 1);
        }
        return NULL;
}

int server_inherited_fd(void)
{
        struct stat st;

        if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode)) {
                log_error("stdin is not a listening socket: run under supervisord [fcgi-program] "
                          "or set LOOM_FCGI_LISTEN=/path.sock|host:port");
                return -1;
        }
        return 0;
}

static int server_listen_fd(void)
{
        const char *addr = config_str("LOOM_FCGI_LISTEN", NULL);
        int fd;

        if (!addr)
                return server_inherited_fd();
        fd = FCGX_OpenSocket(addr, SERVER_BACKLOG);
        if (fd < 0) {
                log_error("cannot listen on %s: %s", addr, strerror(errno));
                return -1;
        }
        if (addr[0] == '/' && chmod(addr, 0660) != 0)
                log_warn("cannot chmod %s: %s", addr, strerror(errno));
        log_info("listening on %s", addr);
        return fd;
}

static void server_sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

int server_run(const struct server_config *cfg)
{
        struct server_ctx *ctxs;
        pthread_attr_t attr;
        sigset_t set;
        int listen_fd, sig, waited;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        if (FCGX_Init() != 0) {
                log_error("FCGX_Init failed");
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        listen_fd = server_listen_fd();
        if (listen_fd < 0)
                return 1;
        ctxs = xcalloc((size_t)cfg->threads, sizeof(*ctxs));
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, SERVER_STACK_BYTES);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (int i = 0; i < cfg->threads; i++) {
                pthread_t tid;

                ctxs[i].cfg = cfg;
                ctxs[i].listen_fd = listen_fd;
                ctxs[i].thread.index = i;
                db_init(&ctxs[i].thread.db, config_database_url());
                ctxs[i].thread.db.session_sql = cfg->db_session_sql;
                arena_init(&ctxs[i].thread.arena, 0);
                if (pthread_create(&tid, &attr, server_thread_main, &ctxs[i]) != 0) {
                        log_error("cannot start thread %d: %s", i, strerror(errno));
                        return 1;
                }
        }
        pthread_attr_destroy(&attr);
        log_info("%s ready: %d threads", cfg->program, cfg->threads);
        do {
                if (sigwait(&set, &sig) != 0)
                        return 1;
        } while (sig == SIGHUP || sig == SIGUSR1);
        atomic_store(&server_stopping, true);
        FCGX_ShutdownPending();
        if (listen_fd != 0)
                shutdown(listen_fd, SHUT_RDWR);
        for (waited = 0; atomic_load(&server_busy) > 0 && waited < SERVER_DRAIN_MS; waited += 10)
                server_sleep_ms(10);
        log_info("%s stopping on signal %d (%d requests unfinished)", cfg->program, sig,
                 atomic_load(&server_busy));
        return 0;
}
