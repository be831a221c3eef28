/*
 * server — the threaded libfcgi accept loop shared by the FastCGI programs.
 *
 * N threads each own one FCGX_Request, one database connection and one arena; they take turns
 * in FCGX_Accept_r on the listening socket, which is fd 0 when supervisord's [fcgi-program]
 * starts us, or LOOM_FCGI_LISTEN (a unix path or host:port) otherwise.  SIGTERM/SIGINT are taken
 * by a sigwait() in the main thread (libfcgi's own handler would only set a flag nobody reads,
 * stack notes pitfall 2): in-flight requests get up to SERVER_DRAIN_MS to finish, then the
 * process exits 0.
 */
#ifndef LOOM_SERVER_H
#define LOOM_SERVER_H

#include "arena.h"
#include "db.h"

#include <fcgiapp.h>

#define SERVER_DRAIN_MS    3000
#define SERVER_STACK_BYTES (256 * 1024)
#define SERVER_BACKLOG     1024

struct server_thread {
        int index;
        struct db db;
        struct arena arena;
};

typedef void (*server_handler)(FCGX_Request *fcgx, struct server_thread *t);

struct server_config {
        const char *db_session_sql; /* run on each new database connection (struct db) */
        const char *program;
        int threads;
        server_handler handler;
};

/* 0, the listening socket supervisord's [fcgi-program] hands over as fd 0; -1 (logged) when
 * fd 0 is not a socket.  Shared by loom-api and loom-sse. */
int server_inherited_fd(void);

/* Serves until SIGTERM/SIGINT; returns the process exit status (0, or 1 if it cannot start). */
int server_run(const struct server_config *cfg);

#endif
