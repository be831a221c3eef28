/*
 * Unit tests for fcgi/prom.c: names, label and help escaping, exact values, and histograms
 * (cumulative buckets ending in +Inf = _count).
 */
#include "prom.h"
#include "testlib.h"

#include <math.h>

static const char *value_text(double v)
{
        static char out[64];
        struct strbuf sb;

        strbuf_init(&sb, 0);
        prom_value(&sb, v);
        snprintf(out, sizeof(out), "%s", sb.buf);
        strbuf_release(&sb);
        return out;
}

TEST(names)
{
        CHECK(prom_valid_metric_name("loom_runs_total"));
        CHECK(prom_valid_metric_name("a:b_c9"));
        CHECK(!prom_valid_metric_name("9lives"));
        CHECK(!prom_valid_metric_name(""));
        CHECK(!prom_valid_metric_name("loom-runs"));
        CHECK(prom_valid_label_name("route"));
        CHECK(!prom_valid_label_name("a:b"));
        CHECK(!prom_valid_label_name("__name__"));
        CHECK(!prom_valid_label_name("é"));
}

TEST(label_values_are_escaped)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        prom_escape_label(&sb, "a\\b \"q\"\nnext");
        CHECK_STR(sb.buf, "a\\\\b \\\"q\\\"\\nnext");
        strbuf_reset(&sb);
        prom_escape_label(&sb, "");
        CHECK_STR(sb.buf, "");
        strbuf_reset(&sb);
        prom_escape_label(&sb, "/api/v1/beads/{id} é");
        CHECK_STR(sb.buf, "/api/v1/beads/{id} é");
        strbuf_release(&sb);
}

TEST(help_keeps_quotes)
{
        struct strbuf sb;

        strbuf_init(&sb, 0);
        prom_family(&sb, "loom_x_total", "counter", "Say \"hi\"\\now\nplease");
        CHECK_STR(sb.buf, "# HELP loom_x_total Say \"hi\"\\\\now\\nplease\n"
                          "# TYPE loom_x_total counter\n");
        strbuf_release(&sb);
}

TEST(values_are_exact)
{
        CHECK_STR(value_text(0), "0");
        CHECK_STR(value_text(42), "42");
        CHECK_STR(value_text(-3), "-3");
        CHECK_STR(value_text(9007199254740991.0), "9007199254740991");
        CHECK_STR(value_text(0.005), "0.005");
        CHECK_STR(value_text(0.1 + 0.2), "0.30000000000000004");
        CHECK_STR(value_text(2.5), "2.5");
        CHECK_STR(value_text(1e300), "1e+300");
        CHECK_STR(value_text(INFINITY), "+Inf");
        CHECK_STR(value_text(-INFINITY), "-Inf");
        CHECK_STR(value_text(NAN), "NaN");
}

TEST(samples_with_and_without_labels)
{
        struct prom_label l[2] = {{"method", "GET"}, {"route", "/a \"b\""}};
        struct prom_label le = {"le", "0.5"};
        struct strbuf sb;

        strbuf_init(&sb, 0);
        prom_sample(&sb, "loom_q", "", NULL, 0, NULL, 7);
        prom_sample(&sb, "loom_h", "_bucket", l, 2, &le, 3);
        prom_sample(&sb, "loom_h", "_sum", l, 1, NULL, 1.25);
        CHECK_STR(sb.buf, "loom_q 7\n"
                          "loom_h_bucket{method=\"GET\",route=\"/a \\\"b\\\"\",le=\"0.5\"} 3\n"
                          "loom_h_sum{method=\"GET\"} 1.25\n");
        strbuf_release(&sb);
}

TEST(histograms_are_cumulative)
{
        const double bounds[3] = {0.1, 1, 2.5};
        const uint64_t buckets[4] = {2, 0, 3, 1}; /* non-cumulative; the last is above 2.5 */
        struct prom_label l = {"route", "/x"};
        struct strbuf sb;

        strbuf_init(&sb, 0);
        prom_histogram(&sb, "loom_d_seconds", &l, 1, bounds, buckets, 3, 4.5);
        CHECK_STR(sb.buf, "loom_d_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
                          "loom_d_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
                          "loom_d_seconds_bucket{route=\"/x\",le=\"2.5\"} 5\n"
                          "loom_d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 6\n"
                          "loom_d_seconds_sum{route=\"/x\"} 4.5\n"
                          "loom_d_seconds_count{route=\"/x\"} 6\n");
        strbuf_release(&sb);
}

TESTS(TESTLIB_CASE(names), TESTLIB_CASE(label_values_are_escaped), TESTLIB_CASE(help_keeps_quotes),
      TESTLIB_CASE(values_are_exact), TESTLIB_CASE(samples_with_and_without_labels),
      TESTLIB_CASE(histograms_are_cumulative))
