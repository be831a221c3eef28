/*
 * Unit tests for fcgi/export.c: RFC 4180 quoting, NULL versus empty, and CSV / JSON of a
 * result built with libpq's own result constructors.
 */
#include "export.h"
#include "testlib.h"

static const char *field(const char *v)
{
        static char out[256];
        struct strbuf sb;

        strbuf_init(&sb, 0);
        export_csv_field(&sb, v, v ? strlen(v) : 0, true);
        snprintf(out, sizeof(out), "%s", sb.buf);
        strbuf_release(&sb);
        return out;
}

TEST(quoting)
{
        CHECK_STR(field("plain"), "plain");
        CHECK_STR(field("12.5"), "12.5");
        CHECK_STR(field("a,b"), "\"a,b\"");
        CHECK_STR(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        CHECK_STR(field("\""), "\"\"\"\"");
        CHECK_STR(field("two\nlines"), "\"two\nlines\"");
        CHECK_STR(field("cr\rhere"), "\"cr\rhere\"");
        CHECK_STR(field(" padded"), "\" padded\"");
        CHECK_STR(field("tab\t"), "\"tab\t\"");
        CHECK_STR(field("é ünïcode"), "é ünïcode");
        CHECK_STR(field(""), "\"\"");
        CHECK_STR(field(NULL), "");
}

TEST(fields_are_separated)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        export_csv_field(&sb, "a", 1, true);
        export_csv_field(&sb, NULL, 0, false);
        export_csv_field(&sb, "", 0, false);
        export_csv_field(&sb, "x,y", 3, false);
        CHECK_STR(sb.buf, "a,,\"\",\"x,y\"");
        strbuf_release(&sb);
}

/* A two-row result: id int8, message text, cost numeric, ok bool. */
static PGresult *sample(void)
{
        PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        PGresAttDesc cols[4] = {
                {.name = "id", .typid = 20, .typlen = 8, .atttypmod = -1},
                {.name = "message", .typid = 25, .typlen = -1, .atttypmod = -1},
                {.name = "cost_usd", .typid = 1700, .typlen = -1, .atttypmod = -1},
                {.name = "ok", .typid = 16, .typlen = 1, .atttypmod = -1},
        };

        if (!res || !PQsetResultAttrs(res, 4, cols))
                return NULL;
        if (!PQsetvalue(res, 0, 0, "1", 1) || !PQsetvalue(res, 0, 1, "a \"quoted\", line", 16) ||
            !PQsetvalue(res, 0, 2, "0.004750", 8) || !PQsetvalue(res, 0, 3, "t", 1) ||
            !PQsetvalue(res, 1, 0, "2", 1) || !PQsetvalue(res, 1, 1, "two\nlines", 9) ||
            !PQsetvalue(res, 1, 2, NULL, -1) || !PQsetvalue(res, 1, 3, "f", 1))
                return NULL;
        return res;
}

TEST(csv_of_a_result)
{
        PGresult *res = sample();
        struct strbuf sb;

        CHECK(res != NULL);
        strbuf_init(&sb, 0);
        export_csv(&sb, res, PQntuples(res));
        CHECK_STR(sb.buf, "id,message,cost_usd,ok\r\n"
                          "1,\"a \"\"quoted\"\", line\",0.004750,t\r\n"
                          "2,\"two\nlines\",,f\r\n");
        strbuf_reset(&sb);
        export_csv(&sb, res, 1); /* the first row only */
        CHECK_STR(sb.buf, "id,message,cost_usd,ok\r\n1,\"a \"\"quoted\"\", line\",0.004750,t\r\n");
        strbuf_release(&sb);
        PQclear(res);
}

TEST(json_of_a_result)
{
        PGresult *res = sample();
        struct strbuf sb;

        CHECK(res != NULL);
        strbuf_init(&sb, 0);
        export_json(&sb, res, PQntuples(res));
        CHECK_STR(sb.buf, "[{\"id\":1,\"message\":\"a \\\"quoted\\\", line\",\"cost_usd\":0.004750,"
                          "\"ok\":true},{\"id\":2,\"message\":\"two\\nlines\",\"cost_usd\":null,"
                          "\"ok\":false}]");
        strbuf_reset(&sb);
        export_json(&sb, res, 0);
        CHECK_STR(sb.buf, "[]");
        strbuf_release(&sb);
        PQclear(res);
}

TESTS(TESTLIB_CASE(quoting), TESTLIB_CASE(fields_are_separated), TESTLIB_CASE(csv_of_a_result),
      TESTLIB_CASE(json_of_a_result))
