/*
 * fuzz_body — JSON request bodies through the real handlers: fcgi/http.c body reading,
 * fcgi/input.c input_parse + input_check with each route's own field table and extra checks
 * (api_start), up to the point where the handler would reach the database.
 *
 * Input: a small HTTP request,
 *
 *     POST /api/v1/beads?x=1          request line: method, path, optional query
 *     Content-Type: application/json  optional headers (Content-Length defaults to the body's)
 *                                     an empty line
 *     {"project_id": "p", ...}        the body: every byte, NULs included
 *
 * A regression input may carry "X-Fuzz-Expect: 400": the replay build (FUZZ_REPLAY) then
 * checks the status too, for bugs where the wrong answer was a success.
 *
 * The request goes the way loom-api sends it (route_find, query_parse, the route's handler,
 * http_finish) as a signed-in admin, on a FastCGI request whose input stream is the body.
 * The database is unreachable by construction, so a body that passes validation ends in 503;
 * everything else must be a 4xx.  Checked: a body that gets through holds no NUL byte; never a 500
 * (a bug, or an error path that names no problem), the response is complete and its body is strict
 * JSON in valid UTF-8 with an "error" string (the one exception: /health's 503 report).
 */
#include "fuzz.h"
#include "api.h"
#include "err.h"
#include "log.h"
#include "query.h"
#include "router.h"
#include "secret.h"

#include <ctype.h>
#include <json-c/json.h>

#define FUZZ_MAX_ENV 40

static struct db fuzz_db;
static struct arena fuzz_arena;

static void fuzz_setup(void)
{
        static bool done;
        char err[256];

        if (done)
                return;
        done = true;
        log_threshold = (enum log_level)(LOG_LEVEL_ERROR + 1);
        if (secret_key_set("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                           "fuzz", err, sizeof(err)) != 0)
                abort();
        /* a connect attempt is due only DB_RETRY_MS after the last failure: never */
        db_init(&fuzz_db, "host=/nonexistent/loom-fuzz");
        fuzz_db.last_fail_ms = INT64_MAX / 2;
        arena_init(&fuzz_arena, 0);
}

/* The request body as libfcgi's input stream: the bytes, then end of stream. */
static void fuzz_eof(FCGX_Stream *s)
{
        s->isClosed = 1;
}

struct fuzz_env {
        char *v[FUZZ_MAX_ENV + 1];
        int n;
        int expect; /* replay only: the status an "X-Fuzz-Expect: N" header asks for, or 0 */
};

static void env_add(struct fuzz_env *e, const char *name, const char *value)
{
        size_t len = strlen(name) + strlen(value) + 2;

        if (e->n == FUZZ_MAX_ENV)
                return;
        e->v[e->n] = malloc(len);
        if (!e->v[e->n])
                abort();
        snprintf(e->v[e->n], len, "%s=%s", name, value);
        e->v[++e->n] = NULL;
}

/* "Content-Type: x" → CONTENT_TYPE=x, "X-Csrf-Token: y" → HTTP_X_CSRF_TOKEN=y. */
static void env_header(struct fuzz_env *e, const char *line, bool *has_len, bool *has_type)
{
        const char *colon = strchr(line, ':');
        char name[128] = "HTTP_";
        size_t o = 5;

        if (!colon || colon == line || colon - line > 100)
                return;
        for (const char *p = line; p < colon; p++)
                name[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        name[o] = '\0';
#ifdef FUZZ_REPLAY
        /* a regression input may say what it must get; libFuzzer builds ignore it, so mutations
         * cannot invent false findings */
        if (strcmp(name, "HTTP_X_FUZZ_EXPECT") == 0)
                e->expect = (int)strtol(colon + 1, NULL, 10);
#endif
        if (strcmp(name, "HTTP_CONTENT_TYPE") == 0 || strcmp(name, "HTTP_CONTENT_LENGTH") == 0) {
                *(name[13] == 'T' ? has_type : has_len) = true;
                memmove(name, name + 5, strlen(name + 5) + 1);
        }
        env_add(e, name, colon + 1 + strspn(colon + 1, " "));
}

/*
 * The response's body is strict JSON in valid UTF-8 (RFC 8259), whatever bytes the request
 * held; an error response carries an "error" string.
 */
static void check_response(const struct request *req, const struct strbuf *out)
{
        const char *body = strstr(out->buf, "\r\n\r\n");
        json_tokener *tok = json_tokener_new();
        json_object *doc, *err;

        FUZZ_ASSERT(req->sent && body);
        body += 4;
        if (req->head || req->status == 204) {
                json_tokener_free(tok);
                return;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        doc = json_tokener_parse_ex(tok, body, (int)strlen(body));
        if (!doc)
                fprintf(stderr, "response is not JSON in UTF-8: %s\n", body);
        FUZZ_ASSERT(doc);
        json_tokener_free(tok);
        /* an error names the problem; only /health answers 503 with its own report */
        if (req->status >= 400 && !json_object_object_get_ex(doc, "error", &err))
                FUZZ_ASSERT(req->status == 503 && strncmp(req->path, "/health", 7) == 0 &&
                            json_object_object_get_ex(doc, "status", &err));
        FUZZ_ASSERT(req->status < 400 || json_object_is_type(err, json_type_string));
        json_object_put(doc);
}

/* loom-api's api_handle without authentication: the caller is an admin with a session. */
static void fuzz_handle(struct request *req)
{
        const struct route *route;
        char allow[128];
        int rc;

        req->user = (struct request_user){.id = 1,
                                          .username = "admin",
                                          .role = "admin",
                                          .kind = "session",
                                          .csrf = "csrf",
                                          .credential_id = 1};
        req->actor = "admin";
        switch (route_find(loom_routes, loom_routes_count, req, &route, allow, sizeof(allow))) {
        case ROUTE_FOUND:
                rc = query_parse(req);
                if (!rc)
                        rc = route->handler(req);
                break;
        case ROUTE_NO_METHOD:
                rc = http_fail(req, ERR_METHOD, "method not allowed");
                break;
        case ROUTE_BAD_PATH:
                rc = http_fail(req, ERR_INVALID, "malformed path");
                break;
        default:
                rc = http_fail(req, ERR_NOT_FOUND, "no route");
        }
        http_finish(req, rc);
}

static void fuzz_request(struct fuzz_env *env, uint8_t *body, size_t len)
{
        FCGX_Stream in = {.rdNext = body,
                          .stop = body + len,
                          .stopUnget = body,
                          .isReader = 1,
                          .fillBuffProc = fuzz_eof};
        FCGX_Request fcgx = {.in = &in, .envp = env->v};
        struct strbuf out;
        struct request req;

        strbuf_init(&out, 0);
        http_request_init(&req, &fcgx, &fuzz_arena, &fuzz_db);
        req.capture = &out;
        fuzz_handle(&req);
        if (req.status == 500 || getenv("FUZZ_VERBOSE"))
                fprintf(stderr, "%d for %s %s: %s\n", req.status, req.method, req.path, req.error);
        FUZZ_ASSERT(req.status != 500);
        if (env->expect && req.status != env->expect)
                fprintf(stderr, "%d for %s %s, want %d: %s\n", req.status, req.method, req.path,
                        env->expect, req.error);
        FUZZ_ASSERT(!env->expect || req.status == env->expect);
        /* a body that passed validation (the handler got as far as the database) was JSON
         * text, which holds no raw NUL byte anywhere */
        if (req.status == 503 && len && strcmp(req.method, "GET") != 0)
                FUZZ_ASSERT(!memchr(body, '\0', len));
        check_response(&req, &out);
        http_request_release(&req);
        arena_reset(&fuzz_arena);
        strbuf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        struct fuzz_env env = {.n = 0, .expect = 0};
        char *line = fuzz_line(&in), *sp, *q, *h;
        bool has_len = false, has_type = false;
        uint8_t *body;
        size_t len;

        fuzz_setup();
        sp = strchr(line, ' ');
        if (sp)
                *sp++ = '\0';
        q = sp ? strchr(sp, '?') : NULL;
        if (q)
                *q++ = '\0';
        env_add(&env, "REQUEST_METHOD", line);
        env_add(&env, "DOCUMENT_URI", sp ? sp : "/");
        env_add(&env, "QUERY_STRING", q ? q : "");
        env_add(&env, "REMOTE_ADDR", "127.0.0.1");
        while (in.n && (h = fuzz_line(&in))) {
                bool end = !*h;

                if (!end)
                        env_header(&env, h, &has_len, &has_type);
                free(h);
                if (end)
                        break;
        }
        body = fuzz_rest(&in, &len);
        if (!has_len && len) {
                char n[24];

                snprintf(n, sizeof(n), "%zu", len);
                env_add(&env, "CONTENT_LENGTH", n);
        }
        if (!has_type && len)
                env_add(&env, "CONTENT_TYPE", "application/json");
        fuzz_request(&env, body, len);
        for (int i = 0; i < env.n; i++)
                free(env.v[i]);
        free(body);
        free(line);
        return 0;
}
