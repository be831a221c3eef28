/*
 * testdb — the database of an integration test and q(), its one-value query helper.
 * Include after testlib.h; the test opens `db` on LOOM_DATABASE_URL itself.
 */
#ifndef LOOM_TESTDB_H
#define LOOM_TESTDB_H

#include "db.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static struct db db;

/*
 * Runs SQL built from f; the first value of the first row ("" for none, "ERROR" on error, with
 * the message in db.errmsg and a comment line in the output).  The result lives until eight
 * more calls.
 */
static const char *q(const char *f, ...) __attribute__((format(printf, 1, 2), unused));
static const char *q(const char *f, ...)
{
        static char out[8][2048];
        static int i;
        char sql[4096];
        va_list ap;
        PGresult *res;

        i = (i + 1) % 8;
        va_start(ap, f);
        vsnprintf(sql, sizeof(sql), f, ap);
        va_end(ap);
        if (db_exec_sql(&db, sql, &res) != ERR_OK) {
                printf("#   SQL failed: %s\n#   %s\n", sql, db.errmsg);
                return "ERROR";
        }
        snprintf(out[i], sizeof(out[i]), "%s",
                 PQntuples(res) && PQnfields(res) ? PQgetvalue(res, 0, 0) : "");
        PQclear(res);
        return out[i];
}

#endif
