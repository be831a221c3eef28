/*
 * Unit tests for fcgi/metrics.c: requests counted by route, method and status, latency
 * buckets, the "unmatched" route, and the report loom_metrics_report takes.
 */
#include "metrics.h"
#include "testlib.h"

#include <json-c/json.h>

static int handler(struct request *req)
{
        (void)req;
        return 0;
}

static const struct route table[] = {
        {.method = "GET", .pattern = "/api/v1/beads/{id}", .handler = handler, .permission = "x"},
        {.method = "POST", .pattern = "/api/v1/beads", .handler = handler, .permission = "x"},
};

static json_object *report(void)
{
        struct strbuf sb;
        json_object *doc;

        strbuf_init(&sb, 0);
        metrics_report_json(&sb);
        doc = json_tokener_parse(sb.buf);
        strbuf_release(&sb);
        return doc;
}

/* The value of the counter with these labels in doc, or -1. */
static long long counter(json_object *doc, const char *method, const char *route, const char *code)
{
        json_object *list = json_object_object_get(doc, "counters");

        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *c = json_object_array_get_idx(list, i);
                json_object *l = json_object_object_get(c, "labels");

                if (strcmp(json_object_get_string(json_object_object_get(l, "method")), method) ==
                            0 &&
                    strcmp(json_object_get_string(json_object_object_get(l, "route")), route) ==
                            0 &&
                    strcmp(json_object_get_string(json_object_object_get(l, "code")), code) == 0)
                        return json_object_get_int64(json_object_object_get(c, "value"));
        }
        return -1;
}

TEST(counts_and_reports)
{
        json_object *doc, *h, *b;

        metrics_init(table, 2);
        CHECK(strchr(metrics_process(), ':') != NULL);
        doc = report();
        CHECK(doc != NULL);
        CHECK_INT(json_object_array_length(json_object_object_get(doc, "counters")), 0);
        json_object_put(doc);

        metrics_http_record(&table[0], 200, 0.004);
        metrics_http_record(&table[0], 200, 0.3);
        metrics_http_record(&table[0], 404, 20);
        metrics_http_record(&table[1], 201, 0.01);
        metrics_http_record(NULL, 404, 0.001);
        metrics_http_record(&table[1], 299, 0.001); /* a status it does not list */
        doc = report();
        CHECK(doc != NULL);
        CHECK_INT(counter(doc, "GET", "/api/v1/beads/{id}", "200"), 2);
        CHECK_INT(counter(doc, "GET", "/api/v1/beads/{id}", "404"), 1);
        CHECK_INT(counter(doc, "POST", "/api/v1/beads", "201"), 1);
        CHECK_INT(counter(doc, "POST", "/api/v1/beads", "other"), 1);
        CHECK_INT(counter(doc, "any", "unmatched", "404"), 1);
        CHECK_INT(counter(doc, "GET", "/api/v1/beads/{id}", "500"), -1);
        h = json_object_array_get_idx(json_object_object_get(doc, "histograms"), 0);
        CHECK_STR(json_object_get_string(
                          json_object_object_get(json_object_object_get(h, "labels"), "route")),
                  "/api/v1/beads/{id}");
        CHECK_INT(json_object_get_int64(json_object_object_get(h, "count")), 3);
        b = json_object_object_get(h, "buckets");
        CHECK_INT(json_object_array_length(b), METRICS_HTTP_BOUNDS + 1);
        CHECK_INT(json_object_get_int64(json_object_array_get_idx(b, 0)), 1);  /* <= 5 ms */
        CHECK_INT(json_object_get_int64(json_object_array_get_idx(b, 6)), 1);  /* <= 500 ms */
        CHECK_INT(json_object_get_int64(json_object_array_get_idx(b, 11)), 1); /* > 10 s */
        CHECK_INT(json_object_array_length(json_object_object_get(h, "bounds")),
                  METRICS_HTTP_BOUNDS);
        CHECK_INT(json_object_array_length(json_object_object_get(doc, "histograms")), 3);
        json_object_put(doc);
}

TESTS(TESTLIB_CASE(counts_and_reports))
