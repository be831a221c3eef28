/*
 * llm — OpenAI-compatible chat completions over libcurl; see llm.h.
 */
#include "llm.h"
#include "err.h"
#include "log.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LLM_MAX_ERROR_BODY ((size_t)64 << 10)

static double llm_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void llm_result_init(struct llm_result *res)
{
        memset(res, 0, sizeof(*res));
        strbuf_init(&res->content, LLM_MAX_REPLY);
        res->cost_usd = -1;
}

void llm_result_release(struct llm_result *res)
{
        strbuf_release(&res->content);
}

const char *llm_error_class_name(enum llm_error_class c)
{
        static const char *const names[] = {"ok",      "rate_limit",     "server",
                                            "network", "context_length", "auth",
                                            "request", "too_large",      "protocol"};

        return (size_t)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

enum llm_error_class llm_classify(long status, const char *body)
{
        static const char *const ctx[] = {"context length", "context_length",  "maximum context",
                                          "token limit",    "too many tokens", "reduce the length",
                                          "context window"};

        if (status == 429)
                return LLM_ERR_RATE_LIMIT;
        if (status == 401 || status == 403)
                return LLM_ERR_AUTH;
        if (status >= 500 || status == 0)
                return status ? LLM_ERR_SERVER : LLM_ERR_NETWORK;
        if (status == 400 || status == 413 || status == 422) {
                for (size_t i = 0; body && i < sizeof(ctx) / sizeof(ctx[0]); i++) {
                        if (strcasestr(body, ctx[i]))
                                return LLM_ERR_CONTEXT_LENGTH;
                }
        }
        return LLM_ERR_REQUEST;
}

/* usage {prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens, cost?} */
static void llm_take_usage(json_object *usage, struct llm_result *res)
{
        json_object *v, *d;

        if (!usage || !json_object_is_type(usage, json_type_object))
                return;
        if (json_object_object_get_ex(usage, "prompt_tokens", &v))
                res->prompt_tokens = json_object_get_int64(v);
        if (json_object_object_get_ex(usage, "completion_tokens", &v))
                res->completion_tokens = json_object_get_int64(v);
        if (json_object_object_get_ex(usage, "prompt_tokens_details", &d) &&
            json_object_object_get_ex(d, "cached_tokens", &v))
                res->cached_tokens = json_object_get_int64(v);
        if (json_object_object_get_ex(usage, "cost", &v) &&
            (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                res->cost_usd = json_object_get_double(v);
        res->usage_estimated = false;
}

static void llm_take_model(json_object *doc, struct llm_result *res)
{
        json_object *v;

        if (json_object_object_get_ex(doc, "model", &v) && json_object_is_type(v, json_type_string))
                snprintf(res->served_model, sizeof(res->served_model), "%s",
                         json_object_get_string(v));
}

void llm_stream_init(struct llm_stream *st)
{
        strbuf_init(&st->line, LLM_MAX_REPLY);
        st->done = false;
        st->saw_content = false;
        st->on_chunk = NULL;
        st->on_chunk_arg = NULL;
        st->delivered = false;
        st->stopped = false;
}

void llm_stream_release(struct llm_stream *st)
{
        strbuf_release(&st->line);
}

/* One "data: ..." payload of the stream. */
static bool llm_stream_data(struct llm_stream *st, const char *data, struct llm_result *res)
{
        json_object *doc, *choices, *delta, *v;
        const char *text = NULL;
        size_t tlen = 0;

        if (strcmp(data, "[DONE]") == 0) {
                st->done = true;
                return false;
        }
        doc = json_tokener_parse(data);
        if (!doc || !json_object_is_type(doc, json_type_object)) {
                json_object_put(doc);
                res->error_class = LLM_ERR_PROTOCOL;
                snprintf(res->error, sizeof(res->error), "malformed stream chunk");
                return false;
        }
        llm_take_model(doc, res);
        if (json_object_object_get_ex(doc, "usage", &v))
                llm_take_usage(v, res);
        if (json_object_object_get_ex(doc, "choices", &choices) &&
            json_object_is_type(choices, json_type_array) &&
            json_object_array_length(choices) > 0 &&
            json_object_object_get_ex(json_object_array_get_idx(choices, 0), "delta", &delta) &&
            json_object_object_get_ex(delta, "content", &v) &&
            json_object_is_type(v, json_type_string)) {
                text = json_object_get_string(v);
                tlen = (size_t)json_object_get_string_len(v);
                strbuf_add(&res->content, text, tlen);
                st->saw_content = true;
        }
        if (st->on_chunk && !res->content.failed) {
                st->delivered = true;
                if (!st->on_chunk(st->on_chunk_arg, data, tlen ? text : NULL, tlen))
                        st->stopped = true;
        }
        json_object_put(doc);
        if (st->stopped)
                return false;
        if (res->content.failed) {
                res->error_class = LLM_ERR_TOO_LARGE;
                snprintf(res->error, sizeof(res->error), "reply larger than %zu bytes",
                         LLM_MAX_REPLY);
                return false;
        }
        return true;
}

bool llm_stream_feed(struct llm_stream *st, const char *data, size_t len, struct llm_result *res)
{
        for (size_t i = 0; i < len && !st->done; i++) {
                char c = data[i];
                bool keep = true;

                if (c != '\n') {
                        if (c != '\r')
                                strbuf_addch(&st->line, c);
                        if (st->line.failed) {
                                res->error_class = LLM_ERR_TOO_LARGE;
                                snprintf(res->error, sizeof(res->error), "stream line too long");
                                return false;
                        }
                        continue;
                }
                if (strncmp(st->line.buf, "data:", 5) == 0) {
                        const char *p = st->line.buf + 5;

                        while (*p == ' ')
                                p++;
                        keep = llm_stream_data(st, p, res);
                }
                strbuf_reset(&st->line);
                if (!keep)
                        return false;
        }
        return !st->done;
}

struct llm_attempt {
        const struct llm_request *req;
        struct llm_result *res;
        CURL *curl;
        struct llm_stream stream;
        struct strbuf raw; /* non-streaming body, or an error body */
        long retry_after_ms;
        double started_ms;
        double keepalive_at; /* when req->keepalive last ran */
        bool stopped;        /* canceled, or the keepalive said stop */
        bool streaming;      /* status was 200 and the request streams */
        bool delivered;      /* on_chunk handed part of an answer on: no retry */
};

static size_t llm_on_header(char *data, size_t size, size_t n, void *arg)
{
        struct llm_attempt *a = arg;
        size_t len = size * n;

        if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
                double s = strtod(data + 12, NULL);

                if (s > 0)
                        a->retry_after_ms = (long)(s * 1000.0);
        }
        return len;
}

static size_t llm_on_body(char *data, size_t size, size_t n, void *arg)
{
        struct llm_attempt *a = arg;
        size_t len = size * n;
        long status = 0;

        curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
        a->streaming = a->req->stream && status == 200;
        if (a->streaming) {
                size_t before = a->res->content.len;

                llm_stream_feed(&a->stream, data, len, a->res);
                if (before == 0 && a->res->content.len > 0 && a->res->ttft_ms == 0)
                        a->res->ttft_ms = llm_now_ms() - a->started_ms;
                return a->res->error_class == LLM_ERR_TOO_LARGE || a->stream.stopped ? 0 : len;
        }
        strbuf_add(&a->raw, data, len);
        return a->raw.failed ? 0 : len;
}

/* The request body, as text owned by the returned object. */
static json_object *llm_body(const struct llm_request *req)
{
        json_object *o = json_object_new_object(), *msgs = json_object_new_array();

        json_object_object_add(o, "model", json_object_new_string(req->model ? req->model : ""));
        for (int i = 0; i < req->nmessages; i++) {
                json_object *m = json_object_new_object();

                json_object_object_add(m, "role", json_object_new_string(req->messages[i].role));
                json_object_object_add(m, "content",
                                       json_object_new_string(req->messages[i].content));
                json_object_array_add(msgs, m);
        }
        json_object_object_add(o, "messages", msgs);
        json_object_object_add(o, "temperature", json_object_new_double(req->temperature));
        if (req->max_tokens > 0)
                json_object_object_add(o, "max_tokens", json_object_new_int(req->max_tokens));
        if (req->json_mode) {
                json_object *rf = json_object_new_object();

                json_object_object_add(rf, "type", json_object_new_string("json_object"));
                json_object_object_add(o, "response_format", rf);
        }
        if (req->stream) {
                json_object *so = json_object_new_object();

                json_object_object_add(o, "stream", json_object_new_boolean(1));
                json_object_object_add(so, "include_usage", json_object_new_boolean(1));
                json_object_object_add(o, "stream_options", so);
        }
        return o;
}

enum llm_error_class llm_answer_parse(const char *body, struct llm_result *res)
{
        json_object *doc = json_tokener_parse(body), *choices, *msg, *v;
        enum llm_error_class c = LLM_ERR_PROTOCOL;

        if (doc && json_object_object_get_ex(doc, "choices", &choices) &&
            json_object_is_type(choices, json_type_array) &&
            json_object_array_length(choices) > 0 &&
            json_object_object_get_ex(json_object_array_get_idx(choices, 0), "message", &msg) &&
            json_object_object_get_ex(msg, "content", &v)) {
                if (json_object_is_type(v, json_type_string))
                        strbuf_add(&res->content, json_object_get_string(v),
                                   (size_t)json_object_get_string_len(v));
                llm_take_model(doc, res);
                if (json_object_object_get_ex(doc, "usage", &v))
                        llm_take_usage(v, res);
                c = res->content.failed ? LLM_ERR_TOO_LARGE : LLM_OK;
        }
        json_object_put(doc);
        return c;
}

/* True when the call must end: the cancel flag is up, or the keepalive said so. */
static bool llm_should_stop(struct llm_attempt *a)
{
        const struct llm_request *req = a->req;
        double now;

        if (req->cancel && *req->cancel)
                return true;
        if (!req->keepalive || a->stopped)
                return a->stopped;
        now = llm_now_ms();
        if (now - a->keepalive_at >= (double)req->keepalive_ms) {
                a->keepalive_at = now;
                a->stopped = !req->keepalive(req->keepalive_arg);
        }
        return a->stopped;
}

/* libcurl's progress hook, about once a second and on every chunk: non-zero aborts. */
static int llm_on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
        struct llm_attempt *a = data;

        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        return llm_should_stop(a);
}

/* One HTTP exchange; fills res and says whether it is worth trying again. */
static bool llm_attempt(struct llm_attempt *a, const char *url, const char *body,
                        struct curl_slist *headers)
{
        struct llm_result *res = a->res;
        CURLcode cc;

        strbuf_reset(&res->content);
        res->error_class = LLM_OK;
        res->error[0] = '\0';
        a->retry_after_ms = 0;
        a->started_ms = llm_now_ms();
        curl_easy_setopt(a->curl, CURLOPT_URL, url);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(a->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(a->curl, CURLOPT_CONNECTTIMEOUT_MS, a->req->connect_timeout_ms);
        curl_easy_setopt(a->curl, CURLOPT_TIMEOUT_MS, a->req->timeout_ms);
        curl_easy_setopt(a->curl, CURLOPT_HEADERFUNCTION, llm_on_header);
        curl_easy_setopt(a->curl, CURLOPT_HEADERDATA, a);
        curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, llm_on_body);
        curl_easy_setopt(a->curl, CURLOPT_WRITEDATA, a);
        curl_easy_setopt(a->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        if (a->req->cancel || a->req->keepalive) {
                curl_easy_setopt(a->curl, CURLOPT_XFERINFOFUNCTION, llm_on_progress);
                curl_easy_setopt(a->curl, CURLOPT_XFERINFODATA, a);
                curl_easy_setopt(a->curl, CURLOPT_NOPROGRESS, 0L);
        }
        cc = curl_easy_perform(a->curl);
        curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &res->http_status);
        a->delivered |= a->stream.delivered;
        if (a->stream.stopped) {
                res->error_class = LLM_ERR_NETWORK;
                snprintf(res->error, sizeof(res->error), "canceled");
                a->stopped = true;
                return false;
        }
        if (res->error_class == LLM_ERR_TOO_LARGE || res->error_class == LLM_ERR_PROTOCOL)
                return false;
        if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && a->raw.failed)) {
                res->error_class = LLM_ERR_NETWORK;
                snprintf(res->error, sizeof(res->error), "%s",
                         cc == CURLE_ABORTED_BY_CALLBACK ? "canceled" : curl_easy_strerror(cc));
                return true;
        }
        if (res->http_status == 200) {
                if (!a->streaming)
                        res->error_class = llm_answer_parse(a->raw.buf, res);
                else if (!a->stream.done && !a->stream.saw_content)
                        res->error_class = LLM_ERR_PROTOCOL;
                if (res->error_class)
                        snprintf(res->error, sizeof(res->error), "%s",
                                 res->error_class == LLM_ERR_TOO_LARGE
                                         ? "reply too large"
                                         : "answer is not a chat completion");
                if (res->ttft_ms == 0)
                        res->ttft_ms = llm_now_ms() - a->started_ms;
                return false;
        }
        res->error_class = llm_classify(res->http_status, a->raw.buf);
        snprintf(res->error, sizeof(res->error), "HTTP %ld: %.400s", res->http_status, a->raw.buf);
        return res->error_class == LLM_ERR_RATE_LIMIT || res->error_class == LLM_ERR_SERVER;
}

/* Exponential backoff with up to 50 % jitter, or the server's Retry-After (both capped). */
static long llm_backoff_ms(int attempt, long retry_after_ms)
{
        long base = 250L << (attempt < 5 ? attempt : 5);

        if (retry_after_ms > 0)
                return retry_after_ms < LLM_MAX_RETRY_AFTER_MS ? retry_after_ms
                                                               : LLM_MAX_RETRY_AFTER_MS;
        if (base > LLM_MAX_BACKOFF_MS)
                base = LLM_MAX_BACKOFF_MS;
        return base + (long)((unsigned long)random() % (unsigned long)(base / 2 + 1));
}

/* Without usage from the server: about four characters a token. */
static void llm_estimate_usage(const struct llm_request *req, struct llm_result *res)
{
        size_t chars = 0;

        if (res->prompt_tokens || res->completion_tokens)
                return;
        for (int i = 0; i < req->nmessages; i++)
                chars += strlen(req->messages[i].content);
        if (req->body_json)
                chars += strlen(req->body_json);
        res->prompt_tokens = (long)(chars / 4 + 1);
        res->completion_tokens = (long)(res->content.len / 4 + 1);
        res->usage_estimated = true;
}

int llm_chat(const struct llm_request *req, struct llm_result *res)
{
        struct llm_attempt a = {.req = req, .res = res};
        struct curl_slist *headers = NULL;
        json_object *body = req->body_json ? NULL : llm_body(req);
        char url[1200], auth[600];
        double t0 = llm_now_ms();
        bool again;

        snprintf(url, sizeof(url), "%s/chat/completions", req->endpoint);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        headers = curl_slist_append(headers, req->stream ? "Accept: text/event-stream"
                                                         : "Accept: application/json");
        if (req->api_key && *req->api_key) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", req->api_key);
                headers = curl_slist_append(headers, auth);
        }
        strbuf_init(&a.raw, LLM_MAX_REPLY);
        a.curl = curl_easy_init();
        for (int attempt = 0;; attempt++) {
                llm_stream_init(&a.stream);
                a.stream.on_chunk = req->on_chunk;
                a.stream.on_chunk_arg = req->on_chunk_arg;
                strbuf_reset(&a.raw);
                res->ttft_ms = 0;
                again = llm_attempt(
                        &a, url,
                        body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)
                             : req->body_json,
                        headers);
                llm_stream_release(&a.stream);
                if (!again || attempt >= req->max_retries || llm_should_stop(&a) || a.delivered)
                        break;
                res->retries++;
                log_info("llm call to %s failed (%s: %s); retry %d of %d", req->endpoint,
                         llm_error_class_name(res->error_class), res->error, attempt + 1,
                         req->max_retries);
                /* back off in slices, so a cancel or a keepalive is never late */
                for (long ms = llm_backoff_ms(attempt, a.retry_after_ms); ms > 0 && !a.stopped;
                     ms -= 250) {
                        struct timespec ts = {0, (ms < 250 ? ms : 250) * 1000000L};

                        nanosleep(&ts, NULL);
                        if (llm_should_stop(&a))
                                break;
                }
                if (a.stopped || (req->cancel && *req->cancel))
                        break;
        }
        res->total_ms = llm_now_ms() - t0;
        if (res->error_class == LLM_OK)
                llm_estimate_usage(req, res);
        if (!res->served_model[0] && req->model)
                snprintf(res->served_model, sizeof(res->served_model), "%s", req->model);
        curl_easy_cleanup(a.curl);
        curl_slist_free_all(headers);
        strbuf_release(&a.raw);
        json_object_put(body);
        switch (res->error_class) {
        case LLM_OK:
                return ERR_OK;
        case LLM_ERR_NETWORK:
        case LLM_ERR_RATE_LIMIT:
        case LLM_ERR_SERVER:
                return ERR_UNAVAILABLE;
        case LLM_ERR_TOO_LARGE:
                return ERR_TOO_LARGE;
        case LLM_ERR_REQUEST:
        case LLM_ERR_CONTEXT_LENGTH:
                return ERR_INVALID;
        default:
                return ERR_BAD_GATEWAY;
        }
}
