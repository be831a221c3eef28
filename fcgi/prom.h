/*
 * prom — the Prometheus text exposition format (version 0.0.4), written into a strbuf.
 *
 * Pure formatting for GET /metrics (api_metrics.c): a family is its "# HELP" and "# TYPE"
 * lines followed by its samples; label values are escaped (\\, \", \n), help text too (\\,
 * \n); values are written exactly (integers as integers, other numbers in the shortest form
 * that reads back to the same double, +Inf, -Inf, NaN).  A histogram is written from
 * non-cumulative bucket counts as the cumulative _bucket{le="…"} series ending in le="+Inf",
 * then _sum and _count, so +Inf always equals _count and buckets never decrease.
 */
#ifndef LOOM_PROM_H
#define LOOM_PROM_H

#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_label {
        const char *name;
        const char *value;
};

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
bool prom_valid_metric_name(const char *name) __attribute__((warn_unused_result));
/* [a-zA-Z_][a-zA-Z0-9_]*, and not "__"-prefixed (reserved) */
bool prom_valid_label_name(const char *name) __attribute__((warn_unused_result));

/* Appends value with \, " and newline escaped (the inside of a label's quotes). */
void prom_escape_label(struct strbuf *sb, const char *value);
/* Appends help text with \ and newline escaped. */
void prom_escape_help(struct strbuf *sb, const char *help);
/* Appends a sample value. */
void prom_value(struct strbuf *sb, double v);

/* "# HELP name help\n# TYPE name type\n"; type is counter, gauge, histogram or untyped. */
void prom_family(struct strbuf *sb, const char *name, const char *type, const char *help);
/*
 * One sample line: name + suffix ("" or "_sum", ...), the labels (n of them, then extra when
 * not NULL, e.g. le), the value.  Labels are written in the order given.
 */
void prom_sample(struct strbuf *sb, const char *name, const char *suffix,
                 const struct prom_label *labels, size_t n, const struct prom_label *extra,
                 double value);
/*
 * A histogram's series: bounds[0..nbounds) ascending, buckets[0..nbounds] non-cumulative
 * counts (the last one above every bound), sum of the observations.
 */
void prom_histogram(struct strbuf *sb, const char *name, const struct prom_label *labels, size_t n,
                    const double *bounds, const uint64_t *buckets, size_t nbounds, double sum);

#endif
