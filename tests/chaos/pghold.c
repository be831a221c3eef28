/*
 * pghold — holds PostgreSQL connections open for make chaos, and keeps holding them.
 *
 *   pghold [-n N] [-x] CONNINFO
 *
 * -n N  N idle connections (default 300), each has run SELECT 1 and then sits idle;
 * -x    one more connection that opens a REPEATABLE READ transaction, reads, and stays idle in
 *       it: its snapshot holds back the xmin horizon, so vacuum cannot remove the dead rows
 *       the workload makes meanwhile.
 *
 * A connection the server drops (a restart, pg_terminate_backend) is made again within a
 * second, so the pressure lasts as long as the program does.  Prints "holding N" on stdout
 * when all of them are up for the first time, and "reconnected K" after repairs; SIGTERM or
 * SIGINT closes them all and exits 0.  Exit 2: bad arguments.
 */
#include <libpq-fe.h>

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLD_MAX 5000

static volatile sig_atomic_t hold_stop;

static void hold_on_signal(int sig)
{
        (void)sig;
        hold_stop = 1;
}

/* Connects and runs sql; the connection, or NULL (the reason on stderr once in a while). */
static PGconn *hold_open(const char *conninfo, const char *sql)
{
        static unsigned long failures;
        PGconn *c = PQconnectdb(conninfo);
        PGresult *r;

        if (PQstatus(c) != CONNECTION_OK) {
                if (failures++ % 100 == 0)
                        fprintf(stderr, "pghold: connect: %s", PQerrorMessage(c));
                PQfinish(c);
                return NULL;
        }
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "pghold: %s: %s", sql, PQerrorMessage(c));
                PQclear(r);
                PQfinish(c);
                return NULL;
        }
        PQclear(r);
        return c;
}

/* False when the server has closed c (what is read is consumed and dropped). */
static bool hold_alive(PGconn *c)
{
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};

        if (pfd.fd < 0 || PQstatus(c) != CONNECTION_OK)
                return false;
        if (poll(&pfd, 1, 0) > 0) {
                if (!PQconsumeInput(c))
                        return false;
                PQnotifies(c); /* nothing is LISTENed to; a notice or error is all it can be */
        }
        return PQstatus(c) == CONNECTION_OK;
}

int main(int argc, char **argv)
{
        static PGconn *conns[HOLD_MAX + 1];
        const char *conninfo;
        long n = 300;
        bool xmin = false, announced = false;
        int opt, total;
        struct sigaction sa = {.sa_handler = hold_on_signal};

        while ((opt = getopt(argc, argv, "n:x")) != -1) {
                if (opt == 'n') {
                        char *end;

                        n = strtol(optarg, &end, 10);
                        if (*end || n < 0 || n > HOLD_MAX) {
                                fprintf(stderr, "pghold: -n takes 0..%d\n", HOLD_MAX);
                                return 2;
                        }
                } else if (opt == 'x') {
                        xmin = true;
                } else {
                        fprintf(stderr, "usage: pghold [-n N] [-x] CONNINFO\n");
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "usage: pghold [-n N] [-x] CONNINFO\n");
                return 2;
        }
        conninfo = argv[optind];
        total = (int)n + (xmin ? 1 : 0);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        while (!hold_stop) {
                int up = 0, repaired = 0;

                for (int i = 0; i < total && !hold_stop; i++) {
                        bool holder = xmin && i == total - 1;

                        if (conns[i] && hold_alive(conns[i])) {
                                up++;
                                continue;
                        }
                        if (conns[i]) {
                                PQfinish(conns[i]);
                                repaired++;
                        }
                        conns[i] = hold_open(conninfo,
                                             holder ? "BEGIN ISOLATION LEVEL REPEATABLE READ;"
                                                      " SELECT count(*) FROM pg_class"
                                                    : "SELECT 1");
                        up += conns[i] != NULL;
                }
                if (up == total && !announced) {
                        printf("holding %d\n", total);
                        fflush(stdout);
                        announced = true;
                } else if (repaired) {
                        printf("reconnected %d\n", repaired);
                        fflush(stdout);
                }
                for (int t = 0; t < 10 && !hold_stop; t++)
                        poll(NULL, 0, up == total ? 100 : 20);
        }
        for (int i = 0; i < total; i++)
                if (conns[i])
                        PQfinish(conns[i]);
        return 0;
}
