/* Unit tests for shared/cron.c: parsing, matching and the next occurrence, in UTC. */
#include "cron.h"
#include "err.h"
#include "testlib.h"

static char err[200];

/* Seconds since the epoch of a UTC date and time. */
static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
        struct tm tm = {.tm_year = y - 1900,
                        .tm_mon = mo - 1,
                        .tm_mday = d,
                        .tm_hour = h,
                        .tm_min = mi,
                        .tm_sec = s};

        return timegm(&tm);
}

/* The next occurrence of expr after the time given, or -2 when expr does not parse. */
static time_t next(const char *expr, time_t after)
{
        struct cron c;

        if (cron_parse(expr, &c, err, sizeof(err)) != 0)
                return -2;
        return cron_next(&c, after);
}

TEST(every_fifteen_minutes)
{
        CHECK_INT(next("*/15 * * * *", utc(2026, 3, 4, 12, 7, 30)), utc(2026, 3, 4, 12, 15, 0));
        /* strictly after: a time on a match gives the following one */
        CHECK_INT(next("*/15 * * * *", utc(2026, 3, 4, 12, 15, 0)), utc(2026, 3, 4, 12, 30, 0));
        CHECK_INT(next("*/15 * * * *", utc(2026, 3, 4, 23, 59, 59)), utc(2026, 3, 5, 0, 0, 0));
}

TEST(weekly_on_monday_morning)
{
        /* 2026-01-01 is a Thursday */
        CHECK_INT(next("0 9 * * 1", utc(2026, 1, 1, 0, 0, 0)), utc(2026, 1, 5, 9, 0, 0));
        CHECK_INT(next("0 9 * * 1", utc(2026, 1, 5, 9, 0, 0)), utc(2026, 1, 12, 9, 0, 0));
        /* 0 and 7 are both Sunday */
        CHECK_INT(next("30 6 * * 7", utc(2026, 1, 1, 0, 0, 0)), utc(2026, 1, 4, 6, 30, 0));
        CHECK_INT(next("30 6 * * 0", utc(2026, 1, 1, 0, 0, 0)), utc(2026, 1, 4, 6, 30, 0));
}

TEST(lists_ranges_and_steps)
{
        CHECK_INT(next("5,10-12 * * * *", utc(2026, 1, 1, 0, 6, 0)), utc(2026, 1, 1, 0, 10, 0));
        CHECK_INT(next("5,10-12 * * * *", utc(2026, 1, 1, 0, 12, 0)), utc(2026, 1, 1, 1, 5, 0));
        /* N/S runs from N to the end of the range */
        CHECK_INT(next("50/5 * * * *", utc(2026, 1, 1, 0, 56, 0)), utc(2026, 1, 1, 1, 50, 0));
        CHECK_INT(next("0 8-18/5 * * *", utc(2026, 1, 1, 14, 0, 0)), utc(2026, 1, 1, 18, 0, 0));
        CHECK_INT(next("0 0 1 */3 *", utc(2026, 2, 1, 0, 0, 0)), utc(2026, 4, 1, 0, 0, 0));
}

TEST(day_fields_either_when_both_are_restricted)
{
        /* the 15th or any Friday; 2026-01-02 is a Friday */
        CHECK_INT(next("0 12 15 * 5", utc(2026, 1, 1, 0, 0, 0)), utc(2026, 1, 2, 12, 0, 0));
        CHECK_INT(next("0 12 15 * 5", utc(2026, 1, 9, 13, 0, 0)), utc(2026, 1, 15, 12, 0, 0));
        CHECK_INT(next("0 0 13 * *", utc(2026, 1, 14, 0, 0, 0)), utc(2026, 2, 13, 0, 0, 0));
        /* a day field starting with "*": both must match (an odd day that is a Friday) */
        CHECK_INT(next("0 0 */2 * 5", utc(2026, 1, 1, 0, 0, 0)), utc(2026, 1, 9, 0, 0, 0));
}

TEST(leap_day_and_year_end)
{
        CHECK_INT(next("0 0 29 2 *", utc(2026, 3, 1, 0, 0, 0)), utc(2028, 2, 29, 0, 0, 0));
        CHECK_INT(next("59 23 31 12 *", utc(2026, 6, 1, 0, 0, 0)), utc(2026, 12, 31, 23, 59, 0));
        CHECK_INT(next("@yearly", utc(2026, 6, 1, 0, 0, 0)), utc(2027, 1, 1, 0, 0, 0));
}

TEST(shorthands)
{
        CHECK_INT(next("@hourly", utc(2026, 1, 1, 10, 30, 0)), utc(2026, 1, 1, 11, 0, 0));
        CHECK_INT(next("@daily", utc(2026, 1, 1, 10, 30, 0)), utc(2026, 1, 2, 0, 0, 0));
        CHECK_INT(next("@weekly", utc(2026, 1, 1, 10, 30, 0)), utc(2026, 1, 4, 0, 0, 0));
        CHECK_INT(next("@monthly", utc(2026, 1, 1, 10, 30, 0)), utc(2026, 2, 1, 0, 0, 0));
        CHECK_INT(next("@often", 0), -2);
        CHECK_HAS(err, "unknown shorthand");
}

TEST(matches_the_minute)
{
        struct cron c;

        CHECK_INT(cron_parse("  30\t9 * *  1-5 ", &c, err, sizeof(err)), 0);
        CHECK(cron_matches(&c, utc(2026, 1, 5, 9, 30, 0)));
        CHECK(cron_matches(&c, utc(2026, 1, 5, 9, 30, 59)));
        CHECK(!cron_matches(&c, utc(2026, 1, 5, 9, 31, 0)));
        CHECK(!cron_matches(&c, utc(2026, 1, 4, 9, 30, 0))); /* Sunday */
}

/* Each bad expression is refused with a message that names the problem. */
TEST(bad_expressions_say_what_is_wrong)
{
        static const struct {
                const char *expr, *want;
        } cases[] = {
                {"", "1 to 200 characters"},
                {"* * * *", "want 5 fields"},
                {"* * * * * *", "got more"},
                {"60 * * * *", "minute 60 is out of range 0-59"},
                {"* 24 * * *", "hour 24 is out of range 0-23"},
                {"* * 0 * *", "day-of-month 0 is out of range 1-31"},
                {"* * * 13 *", "month 13 is out of range 1-12"},
                {"* * * * 8", "day-of-week 8 is out of range 0-7"},
                {"*/0 * * * *", "the step in '*/0' must be 1 to 59"},
                {"5-1 * * * *", "range 5-1 runs backwards"},
                {"a * * * *", "minute: want *, a number or a range"},
                {"1,,2 * * * *", "minute: empty item"},
                {"1, * * * *", "minute: empty item"},
                {"* 1- * * *", "hour: a range needs a number"},
                {"*x * * * *", "minute: unexpected 'x'"},
                {"0 0 30 2 *", "never matches"},
                {"1000 * * * *", "minute: want *"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cron c;

                err[0] = '\0';
                if (cron_parse(cases[i].expr, &c, err, sizeof(err)) != ERR_INVALID) {
                        printf("#   '%s' was accepted\n", cases[i].expr);
                        CHECK(0);
                }
                CHECK_HAS(err, cases[i].want);
        }
}

TESTS(TESTLIB_CASE(every_fifteen_minutes), TESTLIB_CASE(weekly_on_monday_morning),
      TESTLIB_CASE(lists_ranges_and_steps),
      TESTLIB_CASE(day_fields_either_when_both_are_restricted), TESTLIB_CASE(leap_day_and_year_end),
      TESTLIB_CASE(shorthands), TESTLIB_CASE(matches_the_minute),
      TESTLIB_CASE(bad_expressions_say_what_is_wrong))
