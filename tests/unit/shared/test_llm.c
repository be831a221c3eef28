/* Unit tests for shared/llm.c without a network: the SSE stream parser and error classes. */
#include "llm.h"
#include "testlib.h"

static const char stream[] =
        "data: {\"model\":\"m-1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
        ": a comment line\r\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo \\\"w\\\"\"}}]}\r\n\r\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
        "\"prompt_tokens_details\":{\"cached_tokens\":2},\"cost\":0.5}}\n\n"
        "data: [DONE]\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"after done\"}}]}\n\n";

TEST(stream_in_any_split)
{
        size_t n = sizeof(stream) - 1;

        for (size_t cut = 0; cut <= n; cut++) {
                struct llm_stream st;
                struct llm_result res;

                llm_result_init(&res);
                llm_stream_init(&st);
                llm_stream_feed(&st, stream, cut, &res);
                llm_stream_feed(&st, stream + cut, n - cut, &res);
                CHECK(st.done);
                CHECK_STR(res.content.buf, "Hello \"w\"");
                CHECK_STR(res.served_model, "m-1");
                CHECK_INT(res.prompt_tokens, 7);
                CHECK_INT(res.completion_tokens, 3);
                CHECK_INT(res.cached_tokens, 2);
                CHECK(res.cost_usd > 0.49 && res.cost_usd < 0.51);
                llm_stream_release(&st);
                llm_result_release(&res);
        }
}

TEST(malformed_chunk_stops)
{
        struct llm_stream st;
        struct llm_result res;
        const char bad[] = "data: {\"choices\":[{\"delta\":\n\n";

        llm_result_init(&res);
        llm_stream_init(&st);
        CHECK(!llm_stream_feed(&st, bad, sizeof(bad) - 1, &res));
        CHECK_INT(res.error_class, LLM_ERR_PROTOCOL);
        llm_stream_release(&st);
        llm_result_release(&res);
}

TEST(classification)
{
        CHECK_INT(llm_classify(429, ""), LLM_ERR_RATE_LIMIT);
        CHECK_INT(llm_classify(503, ""), LLM_ERR_SERVER);
        CHECK_INT(llm_classify(401, ""), LLM_ERR_AUTH);
        CHECK_INT(llm_classify(400, "{\"error\":{\"message\":\"This model's maximum context "
                                    "length is 8192 tokens\"}}"),
                  LLM_ERR_CONTEXT_LENGTH);
        CHECK_INT(llm_classify(400, "{\"error\":\"bad temperature\"}"), LLM_ERR_REQUEST);
        CHECK_INT(llm_classify(0, ""), LLM_ERR_NETWORK);
        CHECK_STR(llm_error_class_name(LLM_ERR_CONTEXT_LENGTH), "context_length");
}

TESTS(TESTLIB_CASE(stream_in_any_split), TESTLIB_CASE(malformed_chunk_stops),
      TESTLIB_CASE(classification))
