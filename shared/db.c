/*
 * db — PostgreSQL connection, prepared statements, reconnect and SQLSTATE mapping; see db.h.
 */
#include "db.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Loom's own SQLSTATEs, raised by the functions in sql/ */
#define SQLSTATE_INVALID   "LM400"
#define SQLSTATE_NOT_FOUND "LM404"
#define SQLSTATE_CONFLICT  "LM409"
#define SQLSTATE_FORBIDDEN "LM403"

#define DB_MAX_TRANSIENT_RETRIES 3

static atomic_int db_next_slot = 1;

static const char db_session_setup[] =
        "SET TIME ZONE 'UTC'; SET statement_timeout = '30s'; SET client_min_messages = warning";

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void db_init(struct db *db, const char *conninfo)
{
        memset(db, 0, sizeof(*db));
        db->conninfo = xstrdup(conninfo);
        db->last_fail_ms = -DB_RETRY_MS - 1;
}

void db_disconnect(struct db *db)
{
        if (db->conn)
                PQfinish(db->conn);
        db->conn = NULL;
}

void db_release(struct db *db)
{
        if (!db)
                return;
        db_disconnect(db);
        free(db->conninfo);
        db->conninfo = NULL;
}

static int db_fail(struct db *db, int err, const char *sqlstate, const char *msg)
{
        size_t n = strlen(msg);

        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                n--;
        if (n >= sizeof(db->errmsg))
                n = sizeof(db->errmsg) - 1;
        memcpy(db->errmsg, msg, n);
        db->errmsg[n] = '\0';
        snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", sqlstate ? sqlstate : "");
        db->err = err;
        return err;
}

/*
 * An idle connection has nothing to read unless the server closed it (a restart, or
 * pg_terminate_backend) or sent a notification.  Checking before a statement turns "the session
 * died while we were idle" into a clean reconnect instead of a failed write.
 */
static void db_check_idle(struct db *db)
{
        struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};

        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
                return;
        if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
                log_info("database connection was closed while idle; reconnecting");
                db_disconnect(db);
        }
}

int db_connect(struct db *db)
{
        const char *keys[] = {"connect_timeout", "dbname", NULL};
        const char *vals[] = {"3", db->conninfo, NULL};
        PGresult *res;
        int64_t t = now_ms();

        if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
                db_check_idle(db);
        if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
                return ERR_OK;
        db_disconnect(db);
        if (t - db->last_fail_ms < DB_RETRY_MS)
                return db_fail(db, ERR_UNAVAILABLE, NULL, "database unavailable");
        db->conn = PQconnectdbParams(keys, vals, 1);
        if (PQstatus(db->conn) != CONNECTION_OK) {
                log_warn("database connect failed: %s", PQerrorMessage(db->conn));
                db_fail(db, ERR_UNAVAILABLE, NULL, "database unavailable");
                db_disconnect(db);
                db->last_fail_ms = t;
                return ERR_UNAVAILABLE;
        }
        res = PQexec(db->conn, db_session_setup);
        if (PQresultStatus(res) == PGRES_COMMAND_OK && db->session_sql) {
                PQclear(res);
                res = PQexec(db->conn, db->session_sql);
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
                log_warn("database session setup failed: %s", PQerrorMessage(db->conn));
                PQclear(res);
                db_disconnect(db);
                db->last_fail_ms = t;
                return db_fail(db, ERR_UNAVAILABLE, NULL, "database unavailable");
        }
        PQclear(res);
        db->generation++;
        return ERR_OK;
}

int db_map_sqlstate(const char *s)
{
        if (!s || strlen(s) != 5)
                return ERR_INTERNAL;
        if (strcmp(s, SQLSTATE_INVALID) == 0)
                return ERR_INVALID;
        if (strcmp(s, SQLSTATE_NOT_FOUND) == 0)
                return ERR_NOT_FOUND;
        if (strcmp(s, SQLSTATE_CONFLICT) == 0)
                return ERR_CONFLICT;
        if (strcmp(s, SQLSTATE_FORBIDDEN) == 0 || strcmp(s, "42501") == 0)
                return ERR_FORBIDDEN; /* ours, or a row-level security refusal */
        if (strcmp(s, "23505") == 0)  /* unique_violation */
                return ERR_CONFLICT;
        if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
                return ERR_INVALID; /* data exception, integrity constraint */
        if (strcmp(s, "54001") == 0 || strcmp(s, "54000") == 0)
                return ERR_INVALID; /* statement too complex: input too deep */
        if (strncmp(s, "08", 2) == 0 || strncmp(s, "57", 2) == 0 || strncmp(s, "53", 2) == 0)
                return ERR_UNAVAILABLE; /* connection, operator intervention, resources */
        if (strncmp(s, "40", 2) == 0)
                return ERR_CONFLICT; /* serialization failure or deadlock, after retries */
        return ERR_INTERNAL;
}

/* The server terminated our session before the statement arrived: it never ran. */
static bool db_never_ran(const char *sqlstate)
{
        return strcmp(sqlstate, "57P01") == 0 || strcmp(sqlstate, "57P02") == 0 ||
               strcmp(sqlstate, "57P03") == 0;
}

static bool db_transient(const char *sqlstate)
{
        return strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0;
}

/* Turns a failed result into db->err; true when the caller may run the statement again. */
static bool db_result_failed(struct db *db, struct db_stmt *st, PGresult *res, int attempt)
{
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        bool lost = PQstatus(db->conn) != CONNECTION_OK;
        int err;

        if (!msg)
                msg = PQerrorMessage(db->conn);
        if (lost) {
                bool retry =
                        attempt == 0 && ((st && st->readonly) || (state && db_never_ran(state)));

                /* msg and state point into res or the connection: use them before it goes */
                log_warn("database connection lost running %s: %s", st ? st->name : "sql", msg);
                db_fail(db, ERR_UNAVAILABLE, state, "database connection lost");
                db_disconnect(db);
                return retry;
        }
        if (state && db_transient(state) && attempt < DB_MAX_TRANSIENT_RETRIES) {
                db_fail(db, ERR_CONFLICT, state, msg);
                return true;
        }
        err = db_map_sqlstate(state);
        db_fail(db, err, state, msg);
        if (err == ERR_INTERNAL)
                log_error("statement %s failed: %s (SQLSTATE %s)", st ? st->name : "sql", msg,
                          state ? state : "none");
        return false;
}

static int db_slot(struct db_stmt *st)
{
        int slot = __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE);

        if (slot == 0) {
                int fresh = atomic_fetch_add(&db_next_slot, 1);
                int expected = 0;

                if (fresh >= DB_MAX_STMTS) {
                        log_error("too many prepared statements (%d): raise DB_MAX_STMTS", fresh);
                        abort();
                }
                if (__atomic_compare_exchange_n(&st->slot, &expected, fresh, false,
                                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                        slot = fresh;
                else
                        slot = expected;
        }
        return slot;
}

static bool db_ok(const PGresult *res)
{
        ExecStatusType s = PQresultStatus(res);

        return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK;
}

int db_exec(struct db *db, struct db_stmt *st, const char *const *params, PGresult **out)
{
        int slot = db_slot(st);
        PGresult *res;

        *out = NULL;
        for (int attempt = 0;; attempt++) {
                int rc = db_connect(db);

                if (rc)
                        return rc;
                if (db->prepared[slot] != db->generation) {
                        res = PQprepare(db->conn, st->name, st->sql, st->nparams, NULL);
                        if (!db_ok(res)) {
                                bool again = db_result_failed(db, st, res, attempt);

                                PQclear(res);
                                if (again)
                                        continue;
                                return db->err;
                        }
                        PQclear(res);
                        db->prepared[slot] = db->generation;
                }
                res = PQexecPrepared(db->conn, st->name, st->nparams, params, NULL, NULL, 0);
                if (db_ok(res)) {
                        *out = res;
                        return ERR_OK;
                }
                if (!db_result_failed(db, st, res, attempt)) {
                        PQclear(res);
                        return db->err;
                }
                PQclear(res);
        }
}

int db_exec_sql(struct db *db, const char *sql, PGresult **out)
{
        PGresult *res;
        int rc = db_connect(db);

        *out = NULL;
        if (rc)
                return rc;
        res = PQexec(db->conn, sql);
        if (db_ok(res)) {
                *out = res;
                return ERR_OK;
        }
        db_result_failed(db, NULL, res, 1);
        PQclear(res);
        return db->err;
}

const char *db_value(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return NULL;
        return PQgetvalue(res, row, col);
}
