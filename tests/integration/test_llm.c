/*
 * Integration tests of shared/llm.c against tests/fixtures/llm-stub.mjs, which speaks the
 * OpenAI wire protocol on loopback: answers, streaming, retries, and the error classes.
 */
#include "err.h"
#include "httpc.h"
#include "llm.h"
#include "testlib.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define STUB_KEY "sk-stub-key"

static char endpoint[160], base[128];
static pid_t stub_pid;

static const struct llm_message hello[] = {
        {"system", "You are terse."},
        {"user", "Say hello."},
};

/* Queues replies on the stub (a JSON array text). */
static int script(const char *replies)
{
        struct httpc_request hr = {
                .method = "POST", .connect_timeout_ms = 2000, .timeout_ms = 5000};
        struct httpc_response res;
        char url[200], body[1024];
        int rc;

        snprintf(url, sizeof(url), "%s/_stub/script", base);
        snprintf(body, sizeof(body), "{\"replies\":%s}", replies);
        hr.url = url;
        hr.json_body = body;
        strbuf_init(&res.body, 65536);
        rc = httpc_perform(&hr, &res);
        strbuf_release(&res.body);
        return rc || res.status != 200 ? -1 : 0;
}

static struct llm_request request(bool stream)
{
        struct llm_request r = {
                .endpoint = endpoint,
                .api_key = STUB_KEY,
                .model = "stub-model",
                .messages = hello,
                .nmessages = 2,
                .temperature = 0.1,
                .max_tokens = 64,
                .stream = stream,
                .connect_timeout_ms = 2000,
                .timeout_ms = 10000,
                .max_retries = 3,
        };
        return r;
}

TEST(start_stub)
{
        int fds[2];
        char buf[64] = {0};
        ssize_t n;

        CHECK_INT(httpc_global_init(), ERR_OK);
        CHECK(pipe(fds) == 0);
        stub_pid = fork();
        if (stub_pid == 0) {
                dup2(fds[1], 1);
                close(fds[0]);
                setenv("STUB_API_KEY", STUB_KEY, 1);
                execlp("node", "node", "tests/fixtures/llm-stub.mjs", (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        n = read(fds[0], buf, sizeof(buf) - 1);
        CHECK(n > 10);
        snprintf(base, sizeof(base), "http://127.0.0.1:%ld", strtol(buf + 10, NULL, 10));
        snprintf(endpoint, sizeof(endpoint), "%s/v1", base);
}

TEST(answer_with_usage)
{
        struct llm_request req = request(false);
        struct llm_result res;

        CHECK_INT(script("[\"hello there\"]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_OK);
        CHECK_STR(res.content.buf, "hello there");
        CHECK_STR(res.served_model, "stub-model");
        CHECK_INT(res.prompt_tokens, 10);
        CHECK(!res.usage_estimated);
        CHECK_INT(res.retries, 0);
        CHECK(res.total_ms > 0);
        llm_result_release(&res);
}

TEST(streaming_with_usage)
{
        struct llm_request req = request(true);
        struct llm_result res;

        CHECK_INT(script("[\"a streamed reply that spans several chunks\"]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_OK);
        CHECK_STR(res.content.buf, "a streamed reply that spans several chunks");
        CHECK_INT(res.prompt_tokens, 10);
        CHECK(res.ttft_ms > 0 && res.ttft_ms <= res.total_ms);
        llm_result_release(&res);
}

TEST(retries_honour_retry_after)
{
        struct llm_request req = request(false);
        struct llm_result res;

        CHECK_INT(script("[{\"status\":429,\"retry_after\":1},{\"status\":503},\"finally\"]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_OK);
        CHECK_STR(res.content.buf, "finally");
        CHECK_INT(res.retries, 2);
        CHECK(res.total_ms >= 1000); /* the server asked for a second */
        llm_result_release(&res);
}

TEST(retries_are_bounded)
{
        struct llm_request req = request(false);
        struct llm_result res;

        req.max_retries = 1;
        CHECK_INT(script("[{\"status\":500},{\"status\":500},\"unused\"]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_UNAVAILABLE);
        CHECK_INT(res.error_class, LLM_ERR_SERVER);
        CHECK_INT(res.retries, 1);
        llm_result_release(&res);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_OK); /* drains "unused" */
        llm_result_release(&res);
}

TEST(context_length_and_auth_are_not_retried)
{
        struct llm_request req = request(false);
        struct llm_result res;

        CHECK_INT(script("[{\"status\":400,\"message\":\"maximum context length exceeded\"}]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_INVALID);
        CHECK_INT(res.error_class, LLM_ERR_CONTEXT_LENGTH);
        CHECK_INT(res.retries, 0);
        llm_result_release(&res);
        req.api_key = "wrong";
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_BAD_GATEWAY);
        CHECK_INT(res.error_class, LLM_ERR_AUTH);
        CHECK_INT(res.http_status, 401);
        llm_result_release(&res);
}

TEST(no_server)
{
        struct llm_request req = request(false);
        struct llm_result res;

        req.endpoint = "http://127.0.0.1:1/v1";
        req.max_retries = 0;
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_UNAVAILABLE);
        CHECK_INT(res.error_class, LLM_ERR_NETWORK);
        llm_result_release(&res);
}

struct chunks {
        struct strbuf deltas;
        int calls, with_delta, stop_after;
};

static bool on_chunk(void *arg, const char *data, const char *delta, size_t len)
{
        struct chunks *c = arg;

        c->calls++;
        if (data[0] != '{')
                return false;
        if (delta) {
                c->with_delta++;
                strbuf_add(&c->deltas, delta, len);
        }
        return c->stop_after == 0 || c->calls < c->stop_after;
}

TEST(chunks_are_handed_over_as_they_come)
{
        struct llm_request req = request(true);
        struct chunks c = {.stop_after = 0};
        struct llm_result res;

        strbuf_init(&c.deltas, 0);
        req.on_chunk = on_chunk;
        req.on_chunk_arg = &c;
        CHECK_INT(script("[\"a streamed reply that spans several chunks\"]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_OK);
        CHECK_STR(c.deltas.buf, "a streamed reply that spans several chunks");
        CHECK_STR(res.content.buf, c.deltas.buf);
        CHECK(c.with_delta > 1);
        CHECK(c.calls > c.with_delta); /* the finish and usage chunks carry no delta */
        llm_result_release(&res);
        strbuf_release(&c.deltas);
}

TEST(a_false_chunk_callback_cancels_and_nothing_is_retried)
{
        struct llm_request req = request(true);
        struct chunks c = {.stop_after = 2};
        struct llm_result res;

        strbuf_init(&c.deltas, 0);
        req.on_chunk = on_chunk;
        req.on_chunk_arg = &c;
        CHECK_INT(script("[\"a streamed reply that spans several chunks\"]"), 0);
        llm_result_init(&res);
        CHECK(llm_chat(&req, &res) != ERR_OK);
        CHECK_INT(res.error_class, LLM_ERR_NETWORK);
        CHECK_STR(res.error, "canceled");
        CHECK_INT(c.calls, 2);
        CHECK_INT(res.retries, 0);
        llm_result_release(&res);
        /* a stream cut after chunks were passed on is not retried either */
        c.stop_after = 0;
        c.calls = 0;
        CHECK_INT(script("[{\"fault\":\"truncated_stream\"},\"unused\"]"), 0);
        llm_result_init(&res);
        CHECK(llm_chat(&req, &res) != ERR_OK);
        CHECK(c.calls > 0);
        CHECK_INT(res.retries, 0);
        llm_result_release(&res);
        llm_result_init(&res);
        req.on_chunk = NULL;
        CHECK_INT(llm_chat(&req, &res), ERR_OK); /* drains "unused" */
        llm_result_release(&res);
        strbuf_release(&c.deltas);
}

TEST(a_body_passes_through_as_given)
{
        struct llm_request req = request(false);
        struct llm_result res;

        req.body_json = "{\"model\":\"passthrough-model\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"hi\"}],\"seed\":7}";
        CHECK_INT(script("[\"as you like\"]"), 0);
        llm_result_init(&res);
        CHECK_INT(llm_chat(&req, &res), ERR_OK);
        CHECK_STR(res.content.buf, "as you like");
        CHECK_STR(res.served_model, "passthrough-model"); /* the stub echoes the body's model */
        llm_result_release(&res);
}

TEST(stop_stub)
{
        int status;

        CHECK(kill(stub_pid, SIGTERM) == 0);
        CHECK(waitpid(stub_pid, &status, 0) == stub_pid);
}

TESTS(TESTLIB_CASE(start_stub), TESTLIB_CASE(answer_with_usage), TESTLIB_CASE(streaming_with_usage),
      TESTLIB_CASE(retries_honour_retry_after), TESTLIB_CASE(retries_are_bounded),
      TESTLIB_CASE(context_length_and_auth_are_not_retried), TESTLIB_CASE(no_server),
      TESTLIB_CASE(chunks_are_handed_over_as_they_come),
      TESTLIB_CASE(a_false_chunk_callback_cancels_and_nothing_is_retried),
      TESTLIB_CASE(a_body_passes_through_as_given), TESTLIB_CASE(stop_stub))
