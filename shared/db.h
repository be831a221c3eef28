/*
 * db — one PostgreSQL connection with prepared statements, reconnects and error mapping.
 *
 * Each FastCGI thread and each worker owns one struct db (never shared between threads).  The
 * connection is opened lazily and re-opened after it breaks: a read-only statement, or one that
 * the server provably never ran (the session was terminated before it arrived), is retried once
 * on a fresh connection; anything else reports ERR_UNAVAILABLE.  After a failed connect, further
 * attempts within DB_RETRY_MS fail at once, so a down database costs callers microseconds.
 *
 * Statements are static `struct db_stmt` objects prepared on first use per connection; their SQL
 * is constant text and every value travels as a parameter.
 */
#ifndef LOOM_DB_H
#define LOOM_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define DB_MAX_STMTS 256
#define DB_RETRY_MS  200

struct db_stmt {
        const char *name; /* unique across the program; the prepared statement's name */
        const char *sql;
        int nparams;
        bool readonly; /* safe to run twice: retried once after a lost connection */
        int slot;      /* assigned on first use; 0 = not yet (internal) */
};

struct db {
        PGconn *conn;
        char *conninfo;
        uint64_t generation;             /* bumps on every new connection */
        uint64_t prepared[DB_MAX_STMTS]; /* generation in which slot i was prepared */
        int64_t last_fail_ms;            /* monotonic time of the last failed connect */
        const char *session_sql;         /* run on every new connection after the setup, or NULL */
        /* the last error, valid after a call returned non-zero */
        int err;
        char sqlstate[6];
        char errmsg[512];
};

/* Sets up db for conninfo (copied). Connects nothing. Cannot fail. */
void db_init(struct db *db, const char *conninfo);
/* Closes the connection and frees. NULL-safe. */
void db_release(struct db *db);
/* Opens the connection if needed. 0, or ERR_UNAVAILABLE with errmsg set. */
int db_connect(struct db *db) __attribute__((warn_unused_result));
/* Drops the connection (it is reopened by the next call). */
void db_disconnect(struct db *db);

/*
 * Runs st with params (nparams values; NULL = SQL NULL).  On success returns 0 and *out owns a
 * PGresult with status TUPLES_OK or COMMAND_OK (the caller PQclears it).  On failure returns a
 * negative err_code, *out is NULL, and db->errmsg says why:
 *   ERR_INVALID / ERR_NOT_FOUND / ERR_CONFLICT  from SQLSTATEs (see db_map_sqlstate)
 *   ERR_UNAVAILABLE  the database is unreachable or the statement timed out
 *   ERR_INTERNAL     anything else (a bug; logged)
 */
int db_exec(struct db *db, struct db_stmt *st, const char *const *params, PGresult **out)
        __attribute__((warn_unused_result));
/* Runs literal SQL with no parameters (migrations, LISTEN, SET). Same contract as db_exec. */
int db_exec_sql(struct db *db, const char *sql, PGresult **out) __attribute__((warn_unused_result));

/* Maps a SQLSTATE to an err_code: Loom's own LM400/LM404/LM409, data and integrity errors. */
int db_map_sqlstate(const char *sqlstate);

/* Value of (row, col) or NULL for SQL NULL; borrowed from res. */
const char *db_value(const PGresult *res, int row, int col);

#endif
