/*
 * cron — five-field cron expressions in UTC; see cron.h.
 */
#include "cron.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct cron_field {
        const char *name;
        int lo, hi;
};

static const struct cron_field cron_fields[5] = {
        {"minute", 0, 59}, {"hour", 0, 23},       {"day-of-month", 1, 31},
        {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const struct {
        const char *name, *expr;
} cron_macros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
};

static int cron_fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int cron_fail(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return ERR_INVALID;
}

/* A decimal number of 1 to 3 digits at *p (advanced past it). */
static bool cron_number(const char **p, const char *end, int *out)
{
        int n = 0, digits = 0;

        while (*p < end && **p >= '0' && **p <= '9') {
                if (++digits > 3)
                        return false;
                n = n * 10 + (**p - '0');
                (*p)++;
        }
        *out = n;
        return digits > 0;
}

/* Reads the "N" or "N-M" of an item into *lo, *hi; *range: it had a "-". */
static int cron_range(const char **p, const char *end, const struct cron_field *f, int *lo, int *hi,
                      bool *range, char *err, size_t errlen)
{
        *range = false;
        if (!cron_number(p, end, lo))
                return cron_fail(err, errlen, "%s: want *, a number or a range, not '%.*s'",
                                 f->name, (int)(end - *p), *p);
        *hi = *lo;
        if (*p < end && **p == '-') {
                (*p)++;
                *range = true;
                if (!cron_number(p, end, hi))
                        return cron_fail(err, errlen, "%s: a range needs a number after '-'",
                                         f->name);
        }
        if (*lo < f->lo || *lo > f->hi || *hi < f->lo || *hi > f->hi)
                return cron_fail(err, errlen, "%s %d is out of range %d-%d", f->name,
                                 *lo < f->lo || *lo > f->hi ? *lo : *hi, f->lo, f->hi);
        if (*hi < *lo)
                return cron_fail(err, errlen, "%s: range %d-%d runs backwards", f->name, *lo, *hi);
        return ERR_OK;
}

/* One list item, s[0..end): "*", "N", "N-M", each with an optional "/S"; sets its bits. */
static int cron_item(const char *s, const char *end, const struct cron_field *f, uint64_t *bits,
                     char *err, size_t errlen)
{
        const char *p = s;
        int lo = f->lo, hi = f->hi, step = 1;
        bool range = true;
        int rc;

        if (p < end && *p == '*') {
                p++;
        } else {
                rc = cron_range(&p, end, f, &lo, &hi, &range, err, errlen);
                if (rc)
                        return rc;
        }
        if (p < end && *p == '/') {
                p++;
                if (!cron_number(&p, end, &step) || step < 1 || step > f->hi)
                        return cron_fail(err, errlen, "%s: the step in '%.*s' must be 1 to %d",
                                         f->name, (int)(end - s), s, f->hi);
                if (!range)
                        hi = f->hi; /* "N/S": from N to the end of the range */
        }
        if (p != end)
                return cron_fail(err, errlen, "%s: unexpected '%c' in '%.*s'", f->name, *p,
                                 (int)(end - s), s);
        for (int v = lo; v <= hi; v += step)
                *bits |= (uint64_t)1 << v;
        return ERR_OK;
}

/* One field, s[0..end): a comma-separated list of items. */
static int cron_field_parse(const char *s, const char *end, const struct cron_field *f,
                            uint64_t *bits, char *err, size_t errlen)
{
        *bits = 0;
        while (s <= end) {
                const char *comma = memchr(s, ',', (size_t)(end - s));
                const char *stop = comma ? comma : end;
                int rc;

                if (stop == s)
                        return cron_fail(err, errlen, "%s: empty item in the list", f->name);
                rc = cron_item(s, stop, f, bits, err, errlen);
                if (rc)
                        return rc;
                if (!comma)
                        break;
                s = comma + 1;
                if (s == end)
                        return cron_fail(err, errlen, "%s: empty item in the list", f->name);
        }
        return ERR_OK;
}

/* Splits expr into exactly five whitespace-separated fields. */
static int cron_split(const char *expr, const char *start[5], const char *stop[5], char *err,
                      size_t errlen)
{
        const char *p = expr;
        int n = 0;

        for (;;) {
                p += strspn(p, " \t");
                if (!*p)
                        break;
                if (n == 5)
                        return cron_fail(err, errlen,
                                         "want 5 fields (minute hour day-of-month month "
                                         "day-of-week), got more");
                start[n] = p;
                p += strcspn(p, " \t");
                stop[n++] = p;
        }
        if (n != 5)
                return cron_fail(err, errlen,
                                 "want 5 fields (minute hour day-of-month month day-of-week), "
                                 "got %d",
                                 n);
        return ERR_OK;
}

static const char *cron_expand(const char *expr)
{
        for (size_t i = 0; i < sizeof(cron_macros) / sizeof(cron_macros[0]); i++) {
                if (strcmp(expr, cron_macros[i].name) == 0)
                        return cron_macros[i].expr;
        }
        return expr;
}

int cron_parse(const char *expr, struct cron *out, char *err, size_t errlen)
{
        const char *start[5], *stop[5];
        uint64_t bits[5];
        size_t len = strlen(expr);
        int rc;

        memset(out, 0, sizeof(*out));
        if (len == 0 || len > CRON_MAX_LEN)
                return cron_fail(err, errlen, "must be 1 to %d characters", CRON_MAX_LEN);
        if (expr[0] == '@' && cron_expand(expr) == expr)
                return cron_fail(err, errlen,
                                 "unknown shorthand '%.32s' (want @yearly, @monthly, @weekly, "
                                 "@daily or @hourly)",
                                 expr);
        rc = cron_split(cron_expand(expr), start, stop, err, errlen);
        for (int i = 0; !rc && i < 5; i++)
                rc = cron_field_parse(start[i], stop[i], &cron_fields[i], &bits[i], err, errlen);
        if (rc)
                return rc;
        out->minute = bits[0];
        out->hour = (uint32_t)bits[1];
        out->dom = (uint32_t)bits[2];
        out->month = (uint16_t)bits[3];
        out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
        out->dom_any = *start[2] == '*';
        out->dow_any = *start[4] == '*';
        if (cron_next(out, 0) < 0)
                return cron_fail(err, errlen, "never matches (no such day, e.g. February 30)");
        return ERR_OK;
}

static bool cron_day_matches(const struct cron *c, const struct tm *tm)
{
        bool dm = (c->dom >> tm->tm_mday) & 1, wm = (c->dow >> tm->tm_wday) & 1;

        return (c->dom_any || c->dow_any) ? dm && wm : dm || wm;
}

bool cron_matches(const struct cron *c, time_t t)
{
        struct tm tm;

        if (!gmtime_r(&t, &tm))
                return false;
        return ((c->month >> (tm.tm_mon + 1)) & 1) && cron_day_matches(c, &tm) &&
               ((c->hour >> tm.tm_hour) & 1) && ((c->minute >> tm.tm_min) & 1);
}

time_t cron_next(const struct cron *c, time_t after)
{
        time_t t = after - ((after % 60) + 60) % 60 + 60;
        time_t limit = after + (time_t)5 * 366 * 86400;
        struct tm tm;

        while (t <= limit && gmtime_r(&t, &tm)) {
                tm.tm_sec = 0;
                if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
                        tm.tm_mon++;
                        tm.tm_mday = 1;
                        tm.tm_hour = tm.tm_min = 0;
                } else if (!cron_day_matches(c, &tm)) {
                        tm.tm_mday++;
                        tm.tm_hour = tm.tm_min = 0;
                } else if (!((c->hour >> tm.tm_hour) & 1)) {
                        tm.tm_hour++;
                        tm.tm_min = 0;
                } else if (!((c->minute >> tm.tm_min) & 1)) {
                        tm.tm_min++;
                } else {
                        return t;
                }
                t = timegm(&tm);
        }
        return -1;
}
