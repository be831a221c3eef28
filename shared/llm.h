/*
 * llm — the OpenAI-compatible chat client: POST {endpoint}/chat/completions.
 *
 * Works unchanged against TokenHub, OpenAI, vLLM, Ollama and the test stub.  One call of
 * llm_chat() is one logical request: it retries 429, 5xx and network failures with exponential
 * backoff and jitter (honouring Retry-After), at most req->max_retries times, and reports what
 * happened in struct llm_result for the llm_calls row.  Replies are capped at LLM_MAX_REPLY.
 * A context-length refusal is not retried here: it comes back as LLM_ERR_CONTEXT_LENGTH so the
 * action loop can shrink the history and call again.
 */
#ifndef LOOM_LLM_H
#define LOOM_LLM_H

#include "strbuf.h"

#include <signal.h>
#include <stdbool.h>

#define LLM_MAX_REPLY          ((size_t)8 << 20)
#define LLM_MAX_BACKOFF_MS     8000
#define LLM_MAX_RETRY_AFTER_MS 30000

enum llm_error_class {
        LLM_OK = 0,
        LLM_ERR_RATE_LIMIT,     /* 429 after all retries */
        LLM_ERR_SERVER,         /* 5xx after all retries */
        LLM_ERR_NETWORK,        /* no answer: connect, DNS, TLS, timeout */
        LLM_ERR_CONTEXT_LENGTH, /* the prompt does not fit the model */
        LLM_ERR_AUTH,           /* 401 / 403 */
        LLM_ERR_REQUEST,        /* another 4xx: the request is wrong */
        LLM_ERR_TOO_LARGE,      /* the reply passed LLM_MAX_REPLY */
        LLM_ERR_PROTOCOL,       /* 200 but not a chat completion */
};

struct llm_message {
        const char *role; /* system, user, assistant */
        const char *content;
};

struct llm_request {
        const char *endpoint; /* ends in /v1 (or the provider's own prefix) */
        const char *api_key;  /* NULL or "" for none */
        const char *model;
        const struct llm_message *messages;
        int nmessages;
        double temperature;
        int max_tokens;
        bool stream;
        bool json_mode; /* response_format json_object */
        long connect_timeout_ms;
        long timeout_ms; /* per attempt */
        int max_retries;
        /* When set and it becomes non-zero (a signal handler's flag), the call is abandoned
         * within about a second with LLM_ERR_NETWORK "canceled". */
        const volatile sig_atomic_t *cancel;
        /* When set, called at most every keepalive_ms while the call is under way (waiting
         * for the server, streaming, backing off): the caller renews its lease there.  A false
         * return abandons the call (LLM_ERR_NETWORK "canceled"). */
        bool (*keepalive)(void *arg);
        void *keepalive_arg;
        long keepalive_ms;
        /* When set, the request body as is (a JSON object text, borrowed) instead of the one
         * built from model, messages, temperature... (the chat proxy); stream must match its
         * "stream" field. */
        const char *body_json;
        /* When set (streaming only), called for every "data:" chunk of the answer as it
         * arrives: data is the chunk's JSON text, delta/delta_len its content delta (NULL, 0
         * when it carries none).  Both are borrowed for the call.  A false return abandons the
         * call (LLM_ERR_NETWORK "canceled").  Once a chunk was handed over, a failure is not
         * retried: the caller has passed part of an answer on. */
        bool (*on_chunk)(void *arg, const char *data, const char *delta, size_t delta_len);
        void *on_chunk_arg;
};

struct llm_result {
        struct strbuf content; /* the assistant's text; llm_result_init sets the cap */
        char served_model[128];
        long prompt_tokens, completion_tokens, cached_tokens;
        bool usage_estimated; /* the server sent no usage: counted as characters / 4 */
        double cost_usd;      /* the provider's own figure, or -1 when it gave none */
        double ttft_ms;       /* first content byte (streaming) or the whole answer */
        double total_ms;
        int retries;
        long http_status;
        enum llm_error_class error_class;
        char error[512];
};

void llm_result_init(struct llm_result *res);
void llm_result_release(struct llm_result *res);
/* Short name of an error class ("rate_limit", "context_length", ...). */
const char *llm_error_class_name(enum llm_error_class c);

/* Performs the request.  0 on a complete answer; otherwise a negative err_code, with
 * res->error_class and res->error saying what went wrong. */
int llm_chat(const struct llm_request *req, struct llm_result *res)
        __attribute__((warn_unused_result));

/*
 * The streaming parser, exposed for tests: feed bytes of an SSE body in any split; each
 * complete "data:" line updates res (content, model, usage).  Returns false after [DONE] or a
 * malformed chunk (res->error_class then says which).
 */
struct llm_stream {
        struct strbuf line;
        bool done;
        bool saw_content;
        /* optional: see llm_request.on_chunk; set after llm_stream_init */
        bool (*on_chunk)(void *arg, const char *data, const char *delta, size_t delta_len);
        void *on_chunk_arg;
        bool delivered; /* on_chunk was called */
        bool stopped;   /* on_chunk said stop */
};
void llm_stream_init(struct llm_stream *st);
void llm_stream_release(struct llm_stream *st);
bool llm_stream_feed(struct llm_stream *st, const char *data, size_t len, struct llm_result *res);

/*
 * The parser of a whole (not streamed) 200 answer, exposed for tests: choices[0].message.content
 * is appended to res->content, model and usage are taken.  LLM_OK, LLM_ERR_PROTOCOL when body is
 * not a chat completion, LLM_ERR_TOO_LARGE when the content passed res->content's cap.
 */
enum llm_error_class llm_answer_parse(const char *body, struct llm_result *res);

/* Classifies a non-200 answer from its status and body. */
enum llm_error_class llm_classify(long status, const char *body);

#endif
