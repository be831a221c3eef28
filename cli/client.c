/*
 * client — loomctl's HTTP: API calls through shared/httpc, event streams with libcurl; see
 * loomctl.h.
 */
#include "loomctl.h"
#include "err.h"
#include "httpc.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_REPLY_MAX       ((size_t)256 << 20) /* an export of a big project */
#define CLI_CONNECT_MS      10000L
#define CLI_TIMEOUT_MS      300000L
#define CLI_STREAM_RETRIES  5       /* reconnects in a row without an event before giving up */
#define CLI_STREAM_LINE_MAX 8388608 /* one SSE line */

static volatile sig_atomic_t cli_interrupted;

int cli_client_init(void)
{
        if (httpc_global_init() != ERR_OK) {
                fprintf(stderr, "loomctl: cannot initialise libcurl\n");
                return CLI_API;
        }
        return CLI_OK;
}

static void cli_url_encode(struct strbuf *url, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-_.~", *p)) {
                        strbuf_addch(url, (char)*p);
                } else {
                        strbuf_addch(url, '%');
                        strbuf_addch(url, hex[*p >> 4]);
                        strbuf_addch(url, hex[*p & 15]);
                }
        }
}

void cli_url_query(struct strbuf *url, const char *key, const char *value)
{
        if (!value)
                return;
        strbuf_addch(url, strchr(url->buf, '?') ? '&' : '?');
        strbuf_addstr(url, key);
        strbuf_addch(url, '=');
        cli_url_encode(url, value);
}

void cli_url_segment(struct strbuf *url, const char *s)
{
        cli_url_encode(url, s);
}

void cli_reply_release(struct cli_reply *r)
{
        json_object_put(r->body);
        r->body = NULL;
        strbuf_release(&r->text);
}

void cli_print_api_error(const struct cli *c, const struct cli_reply *r)
{
        json_object *e = r->body ? cli_field(r->body, "error") : NULL;
        const char *msg =
                e && json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;

        if (msg)
                fprintf(stderr, "%s: %s (HTTP %ld)\n", c->prog, msg, r->status);
        else
                fprintf(stderr, "%s: the server answered HTTP %ld: %.200s\n", c->prog, r->status,
                        r->text.buf);
        if (r->status == 401)
                fprintf(stderr, "%s: log in with '%s login' and set LOOM_TOKEN, or pass --token\n",
                        c->prog, c->prog);
}

static json_object *cli_parse_json(const char *text, size_t len)
{
        json_tokener *tok = json_tokener_new();
        json_object *v = json_tokener_parse_ex(tok, text, (int)len);

        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(v);
                v = NULL;
        }
        json_tokener_free(tok);
        return v;
}

int cli_call_quiet(const struct cli *c, const char *method, const char *path, json_object *body,
                   struct cli_reply *r, bool quiet_404)
{
        struct httpc_response res;
        struct httpc_request req = {
                .method = method,
                .bearer = c->token,
                .connect_timeout_ms = CLI_CONNECT_MS,
                .timeout_ms = CLI_TIMEOUT_MS,
        };
        struct strbuf url;
        int rc;

        strbuf_init(&url, 0);
        strbuf_addstr(&url, c->server);
        strbuf_addstr(&url, path);
        req.url = url.buf;
        req.json_body = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        strbuf_init(&res.body, CLI_REPLY_MAX);
        rc = httpc_perform(&req, &res);
        r->status = res.status;
        r->text = res.body;
        r->body = cli_parse_json(r->text.buf, r->text.len);
        if (rc != ERR_OK) {
                fprintf(stderr, "%s: cannot reach %s: %s\n", c->prog, c->server, res.error);
                strbuf_release(&url);
                return CLI_API;
        }
        strbuf_release(&url);
        if (r->status >= 200 && r->status < 300)
                return CLI_OK;
        if (!(quiet_404 && r->status == 404))
                cli_print_api_error(c, r);
        return CLI_API;
}

int cli_call(const struct cli *c, const char *method, const char *path, json_object *body,
             struct cli_reply *r)
{
        return cli_call_quiet(c, method, path, body, r, false);
}

int cli_fetch_print(const struct cli *c, const char *method, const char *path, json_object *body,
                    const struct cli_col *cols, size_t ncols, bool list)
{
        struct cli_reply r = {0};
        int rc = cli_call(c, method, path, body, &r);

        if (!rc && c->json)
                cli_print_json(r.body);
        else if (!rc && list)
                cli_print_table(r.body, cols, ncols);
        else if (!rc)
                cli_print_fields(r.body, cols, ncols);
        cli_reply_release(&r);
        return rc;
}

const char *cli_path(struct strbuf *sb, const char *prefix, const char *segment, const char *suffix)
{
        strbuf_reset(sb);
        strbuf_addstr(sb, prefix);
        if (segment)
                cli_url_segment(sb, segment);
        if (suffix)
                strbuf_addstr(sb, suffix);
        return sb->buf;
}

/* ---- event streams ------------------------------------------------------------------------ */

struct cli_sse {
        const struct cli *c;
        cli_event_fn fn;
        void *arg;
        CURL *curl;
        long status;
        struct strbuf line;  /* the line being received */
        struct strbuf data;  /* data: lines of the event being received */
        struct strbuf error; /* the body of a refusal */
        char type[128];
        char id[32];
        char last_id[32]; /* of the last event handed to fn */
        bool done;        /* fn said stop */
        bool got_event;   /* this connection delivered an event */
};

static void cli_sse_dispatch(struct cli_sse *s)
{
        json_object *data = cli_parse_json(s->data.buf, s->data.len);

        if (s->data.len && !s->done) {
                if (*s->id)
                        memcpy(s->last_id, s->id, sizeof(s->last_id));
                s->got_event = true;
                if (strcmp(s->type, "connected") != 0 &&
                    s->fn(s->arg, s->id, *s->type ? s->type : "message", data))
                        s->done = true;
        }
        json_object_put(data);
        strbuf_reset(&s->data);
        s->type[0] = '\0';
        s->id[0] = '\0';
}

/* One line of the stream (without its newline). */
static void cli_sse_line(struct cli_sse *s, const char *l, size_t n)
{
        const char *v = memchr(l, ':', n);
        size_t klen = v ? (size_t)(v - l) : n, vlen = 0;

        if (n == 0) {
                cli_sse_dispatch(s);
                return;
        }
        if (l[0] == ':')
                return; /* a comment: keep-alive ping */
        if (v) {
                v++;
                vlen = n - klen - 1;
                if (vlen && *v == ' ') {
                        v++;
                        vlen--;
                }
        }
        if (klen == 4 && memcmp(l, "data", 4) == 0) {
                if (s->data.len)
                        strbuf_addch(&s->data, '\n');
                strbuf_add(&s->data, v, vlen);
        } else if (klen == 5 && memcmp(l, "event", 5) == 0) {
                snprintf(s->type, sizeof(s->type), "%.*s", (int)vlen, v);
        } else if (klen == 2 && memcmp(l, "id", 2) == 0) {
                snprintf(s->id, sizeof(s->id), "%.*s", (int)vlen, v);
        }
}

static size_t cli_sse_write(char *buf, size_t size, size_t nmemb, void *arg)
{
        struct cli_sse *s = arg;
        size_t n = size * nmemb;

        if (!s->status)
                curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
        if (s->status != 200) {
                strbuf_add(&s->error, buf, n);
                return n;
        }
        for (size_t i = 0; i < n && !s->done; i++) {
                if (buf[i] != '\n') {
                        strbuf_addch(&s->line, buf[i]);
                        continue;
                }
                if (s->line.len && s->line.buf[s->line.len - 1] == '\r')
                        s->line.len--;
                cli_sse_line(s, s->line.buf, s->line.len);
                strbuf_reset(&s->line);
        }
        return s->done || s->line.failed ? 0 : n;
}

static int cli_sse_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
        struct cli_sse *s = arg;

        (void)dt, (void)dn, (void)ut, (void)un;
        return cli_interrupted || s->done;
}

static void cli_on_sigint(int sig)
{
        (void)sig;
        cli_interrupted = 1;
}

/* One connection; the curl result. */
static CURLcode cli_sse_connect(struct cli_sse *s, const char *url)
{
        struct curl_slist *h = NULL;
        char line[600];
        CURLcode cc;

        h = curl_slist_append(h, "Accept: text/event-stream");
        if (s->c->token) {
                snprintf(line, sizeof(line), "Authorization: Bearer %s", s->c->token);
                h = curl_slist_append(h, line);
        }
        if (*s->last_id) {
                snprintf(line, sizeof(line), "Last-Event-ID: %s", s->last_id);
                h = curl_slist_append(h, line);
        }
        s->status = 0;
        s->got_event = false;
        strbuf_reset(&s->line);
        strbuf_reset(&s->data);
        curl_easy_reset(s->curl);
        curl_easy_setopt(s->curl, CURLOPT_URL, url);
        curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, CLI_CONNECT_MS);
        curl_easy_setopt(s->curl, CURLOPT_LOW_SPEED_LIMIT, 1L); /* pings come every 15 s */
        curl_easy_setopt(s->curl, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, cli_sse_write);
        curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, cli_sse_progress);
        curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
        curl_easy_setopt(s->curl, CURLOPT_USERAGENT, "loomctl/0.1");
        cc = curl_easy_perform(s->curl);
        curl_slist_free_all(h);
        return cc;
}

/* After a refusal: the API's message, CLI_API. */
static int cli_sse_refused(struct cli_sse *s)
{
        struct cli_reply r = {.status = s->status, .text = s->error};

        r.body = cli_parse_json(s->error.buf, s->error.len);
        cli_print_api_error(s->c, &r);
        json_object_put(r.body);
        return CLI_API;
}

static int cli_stream_loop(struct cli_sse *s, const char *url)
{
        int failures = 0;

        for (;;) {
                CURLcode cc = cli_sse_connect(s, url);

                if (cli_interrupted || s->done)
                        return CLI_OK;
                if (s->status && s->status != 200)
                        return cli_sse_refused(s);
                if (cc != CURLE_OK && !s->status) {
                        fprintf(stderr, "%s: cannot reach %s: %s\n", s->c->prog, s->c->server,
                                curl_easy_strerror(cc));
                        if (!*s->last_id || ++failures >= CLI_STREAM_RETRIES)
                                return CLI_API;
                } else {
                        failures = s->got_event ? 0 : failures + 1;
                        if (failures >= CLI_STREAM_RETRIES) {
                                fprintf(stderr, "%s: the stream keeps ending; giving up\n",
                                        s->c->prog);
                                return CLI_API;
                        }
                        fprintf(stderr, "%s: stream ended; reconnecting\n", s->c->prog);
                }
                sleep(1);
                if (cli_interrupted)
                        return CLI_OK;
        }
}

int cli_stream(const struct cli *c, const char *path, cli_event_fn fn, void *arg)
{
        struct sigaction sa = {.sa_handler = cli_on_sigint};
        struct cli_sse s = {.c = c, .fn = fn, .arg = arg};
        struct strbuf url;
        int rc;

        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        s.curl = curl_easy_init();
        if (!s.curl) {
                fprintf(stderr, "%s: cannot create a curl handle\n", c->prog);
                return CLI_API;
        }
        strbuf_init(&s.line, CLI_STREAM_LINE_MAX);
        strbuf_init(&s.data, CLI_STREAM_LINE_MAX);
        strbuf_init(&s.error, 65536);
        strbuf_init(&url, 0);
        strbuf_addstr(&url, c->server);
        strbuf_addstr(&url, path);
        rc = cli_stream_loop(&s, url.buf);
        curl_easy_cleanup(s.curl);
        strbuf_release(&url);
        strbuf_release(&s.line);
        strbuf_release(&s.data);
        strbuf_release(&s.error);
        return rc;
}
