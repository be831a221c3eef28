/* Unit tests for shared/db.c that need no server: SQLSTATE mapping, the down-database fast path. */
#include "db.h"
#include "err.h"
#include "testlib.h"

#include <time.h>

TEST(sqlstates_map_to_client_errors)
{
        CHECK_INT(db_map_sqlstate("LM400"), ERR_INVALID);
        CHECK_INT(db_map_sqlstate("LM404"), ERR_NOT_FOUND);
        CHECK_INT(db_map_sqlstate("LM409"), ERR_CONFLICT);
        CHECK_INT(db_map_sqlstate("23505"), ERR_CONFLICT);
        CHECK_INT(db_map_sqlstate("23514"), ERR_INVALID);
        CHECK_INT(db_map_sqlstate("22P02"), ERR_INVALID);
        CHECK_INT(db_map_sqlstate("57P01"), ERR_UNAVAILABLE);
        CHECK_INT(db_map_sqlstate("08006"), ERR_UNAVAILABLE);
        CHECK_INT(db_map_sqlstate("42883"), ERR_INTERNAL);
        CHECK_INT(db_map_sqlstate(NULL), ERR_INTERNAL);
        CHECK_INT(db_map_sqlstate("bad"), ERR_INTERNAL);
}

TEST(down_database_fails_fast)
{
        static struct db_stmt st = {.name = "t", .sql = "SELECT 1", .nparams = 0, .readonly = true};
        struct timespec t0, t1;
        struct db db;
        PGresult *res;
        int64_t first_fail;
        double ms;

        /* a port nothing listens on: the first attempt fails, the retry window answers at once */
        db_init(&db, "host=127.0.0.1 port=1 dbname=none connect_timeout=2");
        CHECK_INT(db_exec(&db, &st, NULL, &res), ERR_UNAVAILABLE);
        CHECK(res == NULL);
        first_fail = db.last_fail_ms;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 100; i++)
                CHECK_INT(db_exec(&db, &st, NULL, &res), ERR_UNAVAILABLE);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        /* inside the window no new attempt is made (on a machine slower than that, skip) */
        if (ms < DB_RETRY_MS)
                CHECK_INT(db.last_fail_ms, first_fail);
        CHECK_STR(db.errmsg, "database unavailable");
        db_release(&db);
}

TESTS(TESTLIB_CASE(sqlstates_map_to_client_errors), TESTLIB_CASE(down_database_fails_fast))
