/*
 * prom — Prometheus text format writer; see prom.h.
 */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool prom_name_chars(const char *name, bool colon)
{
        if (!name || !*name || (*name >= '0' && *name <= '9'))
                return false;
        for (const char *p = name; *p; p++) {
                char c = *p;

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || (colon && c == ':')))
                        return false;
        }
        return true;
}

bool prom_valid_metric_name(const char *name)
{
        return prom_name_chars(name, true);
}

bool prom_valid_label_name(const char *name)
{
        return prom_name_chars(name, false) && strncmp(name, "__", 2) != 0;
}

static void prom_escape(struct strbuf *sb, const char *s, bool quotes)
{
        size_t run = 0;

        for (const char *p = s;; p++) {
                const char *esc = NULL;

                if (*p == '\\')
                        esc = "\\\\";
                else if (*p == '\n')
                        esc = "\\n";
                else if (quotes && *p == '"')
                        esc = "\\\"";
                else if (*p) {
                        run++;
                        continue;
                }
                strbuf_add(sb, p - run, run);
                run = 0;
                if (!esc)
                        return;
                strbuf_addstr(sb, esc);
        }
}

void prom_escape_label(struct strbuf *sb, const char *value)
{
        prom_escape(sb, value ? value : "", true);
}

void prom_escape_help(struct strbuf *sb, const char *help)
{
        prom_escape(sb, help ? help : "", false);
}

void prom_value(struct strbuf *sb, double v)
{
        char buf[40];

        if (isnan(v)) {
                strbuf_addstr(sb, "NaN");
                return;
        }
        if (isinf(v)) {
                strbuf_addstr(sb, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        /* within ±2^53 every integer is exact: write it as one */
        if (v > -9007199254740992.0 && v < 9007199254740992.0 && (double)(long long)v == v) {
                strbuf_addf(sb, "%lld", (long long)v);
                return;
        }
        /* the shortest text that reads back as the same double */
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        strbuf_addstr(sb, buf);
}

void prom_family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
        strbuf_addf(sb, "# HELP %s ", name);
        prom_escape_help(sb, help);
        strbuf_addf(sb, "\n# TYPE %s %s\n", name, type);
}

static void prom_label_pair(struct strbuf *sb, const struct prom_label *l, bool *first)
{
        strbuf_addstr(sb, *first ? "{" : ",");
        *first = false;
        strbuf_addf(sb, "%s=\"", l->name);
        prom_escape_label(sb, l->value);
        strbuf_addch(sb, '"');
}

void prom_sample(struct strbuf *sb, const char *name, const char *suffix,
                 const struct prom_label *labels, size_t n, const struct prom_label *extra,
                 double value)
{
        bool first = true;

        strbuf_addstr(sb, name);
        strbuf_addstr(sb, suffix ? suffix : "");
        for (size_t i = 0; i < n; i++)
                prom_label_pair(sb, &labels[i], &first);
        if (extra)
                prom_label_pair(sb, extra, &first);
        if (!first)
                strbuf_addch(sb, '}');
        strbuf_addch(sb, ' ');
        prom_value(sb, value);
        strbuf_addch(sb, '\n');
}

void prom_histogram(struct strbuf *sb, const char *name, const struct prom_label *labels, size_t n,
                    const double *bounds, const uint64_t *buckets, size_t nbounds, double sum)
{
        struct strbuf le;
        struct prom_label le_label = {.name = "le"};
        uint64_t total = 0;

        strbuf_init(&le, 64);
        for (size_t i = 0; i <= nbounds; i++) {
                total += buckets[i];
                strbuf_reset(&le);
                if (i < nbounds)
                        prom_value(&le, bounds[i]);
                else
                        strbuf_addstr(&le, "+Inf");
                le_label.value = le.buf;
                prom_sample(sb, name, "_bucket", labels, n, &le_label, (double)total);
        }
        strbuf_release(&le);
        prom_sample(sb, name, "_sum", labels, n, NULL, sum);
        prom_sample(sb, name, "_count", labels, n, NULL, (double)total);
}
