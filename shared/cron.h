/*
 * cron — the schedules of calendar motivations: a small matcher for five-field cron
 * expressions, "minute hour day-of-month month day-of-week", always in UTC.
 *
 * Each field is a comma-separated list of "*", "N" or "N-M", each optionally followed by "/S"
 * (every S-th value of the range; "N/S" means N to the field's maximum).  Numbers only (no
 * JAN or MON).  Ranges: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12, day-of-week
 * 0-7 (0 and 7 are Sunday).  As in Vixie cron, when both day fields are restricted (neither
 * starts with "*") a day matches when either does.  The shorthands @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight) and @hourly are understood.  Linked into loom-api
 * (validation, the first next_trigger_at) and loom-ralph (the motivation engine).  Pure: no
 * I/O, no allocation.
 */
#ifndef LOOM_CRON_H
#define LOOM_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CRON_MAX_LEN 200

struct cron {
        uint64_t minute; /* bit m set: minute m (0-59) matches */
        uint32_t hour;   /* bit h: hour h (0-23) */
        uint32_t dom;    /* bit d: day of month d (1-31) */
        uint16_t month;  /* bit m: month m (1-12) */
        uint8_t dow;     /* bit d: day of week d (0-6, Sunday = 0) */
        bool dom_any;    /* the day-of-month field starts with "*" */
        bool dow_any;    /* the day-of-week field starts with "*" */
};

/*
 * Parses expr into *out.  0, or ERR_INVALID with a message in err (errlen bytes, always
 * NUL-terminated) that names the field and what is wrong, e.g. "minute 75 is out of range
 * 0-59".  An expression that can never match (February 30) is refused too.
 */
int cron_parse(const char *expr, struct cron *out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* True when the minute holding t (UTC) matches.  Cannot fail. */
bool cron_matches(const struct cron *c, time_t t) __attribute__((warn_unused_result));

/*
 * The first whole minute strictly after `after` that matches, or -1 when none does in the next
 * five years (cannot happen for an expression cron_parse accepted).
 */
time_t cron_next(const struct cron *c, time_t after) __attribute__((warn_unused_result));

#endif
