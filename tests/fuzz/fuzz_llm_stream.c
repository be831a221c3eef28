/*
 * fuzz_llm_stream — shared/llm.c: the provider's answer parsers.
 *
 * Input: one byte that chooses how to cut the rest, then an SSE body of a streamed chat
 * completion ("data: {...}\n\n ... data: [DONE]").  The body is fed to llm_stream_feed() in one
 * piece and again in pieces of 1..16 bytes, and the two runs must agree (content, model, usage,
 * error class): a parser that depends on where read() happened to cut is a bug.  The same bytes
 * go to the whole-answer parser (llm_answer_parse) and to llm_classify as an error body.
 */
#include "fuzz.h"
#include "llm.h"

struct outcome {
        struct llm_result res;
        bool more;
        bool done;
};

/* Feeds body[0..len) in pieces whose sizes come from seed (0: all at once). */
static void run_stream(const uint8_t *body, size_t len, uint8_t seed, struct outcome *o)
{
        struct llm_stream st;
        size_t off = 0;

        llm_result_init(&o->res);
        llm_stream_init(&st);
        o->more = true;
        while (o->more && off < len) {
                size_t n = seed ? (size_t)((seed + off * 7) % 16) + 1 : len;

                if (n > len - off)
                        n = len - off;
                o->more = llm_stream_feed(&st, (const char *)body + off, n, &o->res);
                off += n;
        }
        o->done = st.done;
        FUZZ_ASSERT(o->res.content.len <= LLM_MAX_REPLY);
        FUZZ_ASSERT(o->res.content.buf[o->res.content.len] == '\0');
        if (!o->more)
                FUZZ_ASSERT(st.done || o->res.error_class != LLM_OK);
        llm_stream_release(&st);
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
        FUZZ_ASSERT(a->more == b->more && a->done == b->done);
        FUZZ_ASSERT(a->res.error_class == b->res.error_class);
        FUZZ_ASSERT(a->res.content.len == b->res.content.len);
        FUZZ_ASSERT(memcmp(a->res.content.buf, b->res.content.buf, a->res.content.len) == 0);
        FUZZ_ASSERT(strcmp(a->res.served_model, b->res.served_model) == 0);
        FUZZ_ASSERT(a->res.prompt_tokens == b->res.prompt_tokens);
        FUZZ_ASSERT(a->res.completion_tokens == b->res.completion_tokens);
}

static void run_whole(const uint8_t *body, size_t len)
{
        struct llm_result res;
        char *text = malloc(len + 1);
        enum llm_error_class c;

        if (!text)
                abort();
        memcpy(text, body, len);
        text[len] = '\0';
        llm_result_init(&res);
        c = llm_answer_parse(text, &res);
        FUZZ_ASSERT(c == LLM_OK || c == LLM_ERR_PROTOCOL || c == LLM_ERR_TOO_LARGE);
        FUZZ_ASSERT(strlen(res.served_model) < sizeof(res.served_model));
        c = llm_classify(len ? 400 + body[0] % 200 : 0, text);
        FUZZ_ASSERT(c >= LLM_OK && c <= LLM_ERR_PROTOCOL);
        FUZZ_ASSERT(*llm_error_class_name(c));
        llm_result_release(&res);
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        uint8_t seed = fuzz_byte(&in);
        struct outcome whole, cut;
        size_t len;
        uint8_t *body = fuzz_rest(&in, &len);

        run_stream(body, len, 0, &whole);
        run_stream(body, len, seed ? seed : 1, &cut);
        check_same(&whole, &cut);
        llm_result_release(&whole.res);
        llm_result_release(&cut.res);
        run_whole(body, len);
        free(body);
        return 0;
}
