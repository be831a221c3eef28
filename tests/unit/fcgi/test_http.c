/* Unit tests for fcgi/http.c: status mapping, error bodies, body limits and media type. */
#include "err.h"
#include "http.h"
#include "testlib.h"

static struct arena arena;

static void setup(struct request *req, struct strbuf *cap)
{
        http_request_init(req, NULL, &arena, NULL);
        req->request_id = "r1";
        strbuf_reset(cap);
        req->capture = cap;
}

TEST(error_response_is_json_with_status)
{
        struct request req;
        struct strbuf cap;

        arena_init(&arena, 0);
        strbuf_init(&cap, 0);
        setup(&req, &cap);
        http_finish(&req, http_fail(&req, ERR_NOT_FOUND, "bead %s not found", "lm-9"));
        CHECK_INT(req.status, 404);
        CHECK_HAS(cap.buf, "Status: 404 Not Found\r\n");
        CHECK_HAS(cap.buf, "Content-Type: application/json\r\n");
        CHECK_HAS(cap.buf, "\r\n\r\n{\"error\":\"bead lm-9 not found\"}");
        http_request_release(&req);
        /* messages with quotes and control characters stay valid JSON */
        setup(&req, &cap);
        http_finish(&req, http_fail(&req, ERR_INVALID, "bad \"x\"\n"));
        CHECK_HAS(cap.buf, "{\"error\":\"bad \\\"x\\\"\\n\"}");
        http_request_release(&req);
        strbuf_release(&cap);
        arena_release(&arena);
}

TEST(status_mapping)
{
        CHECK_INT(http_status_for(ERR_INVALID), 400);
        CHECK_INT(http_status_for(ERR_NOT_FOUND), 404);
        CHECK_INT(http_status_for(ERR_METHOD), 405);
        CHECK_INT(http_status_for(ERR_CONFLICT), 409);
        CHECK_INT(http_status_for(ERR_TOO_LARGE), 413);
        CHECK_INT(http_status_for(ERR_MEDIA_TYPE), 415);
        CHECK_INT(http_status_for(ERR_UNAVAILABLE), 503);
        CHECK_INT(http_status_for(ERR_INTERNAL), 500);
        CHECK_STR(http_status_line(200), "200 OK");
        CHECK_STR(http_status_line(201), "201 Created");
}

TEST(unavailable_says_retry_after)
{
        struct request req;
        struct strbuf cap;

        arena_init(&arena, 0);
        strbuf_init(&cap, 0);
        setup(&req, &cap);
        http_finish(&req, http_fail(&req, ERR_UNAVAILABLE, "database unavailable"));
        CHECK_HAS(cap.buf, "Status: 503 Service Unavailable");
        CHECK_HAS(cap.buf, "Retry-After: 1\r\n");
        http_request_release(&req);
        strbuf_release(&cap);
        arena_release(&arena);
}

TEST(body_limits)
{
        struct request req;
        struct strbuf cap;
        char *body;
        size_t len;

        arena_init(&arena, 0);
        strbuf_init(&cap, 0);
        setup(&req, &cap);
        req.content_length = "2000000";
        req.content_type = "application/json";
        CHECK_INT(http_read_body(&req, &body, &len), ERR_TOO_LARGE);
        CHECK_HAS(req.error, "limit is 1048576");
        setup(&req, &cap);
        req.content_length = "5";
        req.content_type = "text/plain";
        CHECK_INT(http_read_body(&req, &body, &len), ERR_MEDIA_TYPE);
        setup(&req, &cap);
        req.content_length = "-1";
        CHECK_INT(http_read_body(&req, &body, &len), ERR_INVALID);
        setup(&req, &cap);
        req.content_length = "2";
        req.content_type = "application/json; charset=utf-8";
        req.preset_body = "{}";
        CHECK_INT(http_read_body(&req, &body, &len), ERR_OK);
        CHECK_STR(body, "{}");
        setup(&req, &cap);
        req.content_length = "";
        CHECK_INT(http_read_body(&req, &body, &len), ERR_OK);
        CHECK_INT(len, 0);
        http_request_release(&req);
        strbuf_release(&cap);
        arena_release(&arena);
}

TEST(head_sends_no_body)
{
        struct request req;
        struct strbuf cap;
        const char *end;

        arena_init(&arena, 0);
        strbuf_init(&cap, 0);
        setup(&req, &cap);
        req.head = true;
        http_send_json(&req, 200, "{\"a\":1}", 7);
        end = strstr(cap.buf, "\r\n\r\n");
        CHECK(end != NULL);
        CHECK_STR(end, "\r\n\r\n");
        CHECK_HAS(cap.buf, "Content-Length: 0");
        http_request_release(&req);
        strbuf_release(&cap);
        arena_release(&arena);
}

TEST(streamed_response_is_unbuffered_sse)
{
        struct request req;
        struct strbuf cap;

        arena_init(&arena, 0);
        strbuf_init(&cap, 0);
        setup(&req, &cap);
        http_stream_start(&req, 200, "text/event-stream");
        CHECK(req.sent && req.streaming);
        CHECK_HAS(cap.buf, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n");
        CHECK_HAS(cap.buf, "X-Accel-Buffering: no\r\n");
        CHECK_HAS(cap.buf, "Cache-Control: no-cache\r\n");
        CHECK(strstr(cap.buf, "Content-Length") == NULL);
        CHECK(http_stream_event(&req, "chunk", "{\"content\":\"hi\"}"));
        CHECK_HAS(cap.buf, "\r\n\r\nevent: chunk\ndata: {\"content\":\"hi\"}\n\n");
        CHECK(!http_client_gone(&req));
        /* a later failure cannot change what was sent */
        http_finish(&req, http_fail(&req, ERR_INTERNAL, "too late"));
        CHECK(strstr(cap.buf, "too late") == NULL);
        CHECK_INT(req.status, 200);
        req.client_gone = true;
        CHECK(!http_stream_write(&req, "x", 1));
        CHECK(http_client_gone(&req));
        http_request_release(&req);
        strbuf_release(&cap);
        arena_release(&arena);
}

TEST(accepted_has_its_status_line)
{
        CHECK_STR(http_status_line(202), "202 Accepted");
}

TESTS(TESTLIB_CASE(error_response_is_json_with_status), TESTLIB_CASE(status_mapping),
      TESTLIB_CASE(unavailable_says_retry_after), TESTLIB_CASE(body_limits),
      TESTLIB_CASE(head_sends_no_body), TESTLIB_CASE(streamed_response_is_unbuffered_sse),
      TESTLIB_CASE(accepted_has_its_status_line))
