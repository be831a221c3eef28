/*
 * http — request parameters, body reading and the response writer; see http.h.
 */
#include "http.h"
#include "db.h"
#include "err.h"
#include "log.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *param(FCGX_Request *fcgx, const char *name)
{
        const char *v = fcgx ? FCGX_GetParam(name, fcgx->envp) : NULL;

        return v ? v : "";
}

void http_request_init(struct request *req, FCGX_Request *fcgx, struct arena *arena, struct db *db)
{
        memset(req, 0, sizeof(*req));
        req->fcgx = fcgx;
        req->arena = arena;
        req->db = db;
        req->method = param(fcgx, "REQUEST_METHOD");
        req->path = param(fcgx, "DOCUMENT_URI");
        if (!*req->path)
                req->path = param(fcgx, "SCRIPT_NAME");
        req->query = param(fcgx, "QUERY_STRING");
        req->content_type = param(fcgx, "CONTENT_TYPE");
        req->content_length = param(fcgx, "CONTENT_LENGTH");
        req->request_id = param(fcgx, "REQUEST_ID");
        if (!*req->request_id)
                req->request_id = param(fcgx, "HTTP_X_REQUEST_ID");
        req->actor = "api";
        req->ip = param(fcgx, "REMOTE_ADDR");
        if (strcmp(req->method, "HEAD") == 0) {
                req->method = "GET";
                req->head = true;
        }
        strbuf_init(&req->headers, 8192);
}

const char *http_param(const struct request *req, const char *name)
{
        return param(req->fcgx, name);
}

void http_request_release(struct request *req)
{
        strbuf_release(&req->headers);
}

int http_fail(struct request *req, int code, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(req->error, sizeof(req->error), fmt, ap);
        va_end(ap);
        return code;
}

int http_fail_db(struct request *req)
{
        const struct db *db = req->db;

        switch (db->err) {
        case ERR_UNAVAILABLE:
                return http_fail(req, ERR_UNAVAILABLE, "database unavailable; retry shortly");
        case ERR_INTERNAL:
                return http_fail(req, ERR_INTERNAL, "internal error (request %s)", req->request_id);
        default:
                return http_fail(req, db->err, "%s", db->errmsg);
        }
}

const char *http_status_line(int status)
{
        switch (status) {
        case 200:
                return "200 OK";
        case 201:
                return "201 Created";
        case 202:
                return "202 Accepted";
        case 204:
                return "204 No Content";
        case 400:
                return "400 Bad Request";
        case 401:
                return "401 Unauthorized";
        case 403:
                return "403 Forbidden";
        case 404:
                return "404 Not Found";
        case 405:
                return "405 Method Not Allowed";
        case 409:
                return "409 Conflict";
        case 413:
                return "413 Payload Too Large";
        case 415:
                return "415 Unsupported Media Type";
        case 429:
                return "429 Too Many Requests";
        case 502:
                return "502 Bad Gateway";
        case 503:
                return "503 Service Unavailable";
        default:
                return "500 Internal Server Error";
        }
}

int http_status_for(int err)
{
        switch (err) {
        case ERR_INVALID:
                return 400;
        case ERR_NOT_FOUND:
                return 404;
        case ERR_METHOD:
                return 405;
        case ERR_CONFLICT:
                return 409;
        case ERR_TOO_LARGE:
                return 413;
        case ERR_MEDIA_TYPE:
                return 415;
        case ERR_UNAVAILABLE:
                return 503;
        case ERR_BAD_GATEWAY:
                return 502;
        case ERR_UNAUTHORIZED:
                return 401;
        case ERR_FORBIDDEN:
                return 403;
        case ERR_RATE_LIMITED:
                return 429;
        default:
                return 500;
        }
}

void http_add_header(struct request *req, const char *name, const char *value)
{
        strbuf_addf(&req->headers, "%s: %s\r\n", name, value);
}

static void http_write(struct request *req, const char *data, size_t len)
{
        if (req->capture) {
                strbuf_add(req->capture, data, len);
                return;
        }
        /* a failed write means the client went away; nothing useful to do */
        if (len && FCGX_PutStr(data, (int)len, req->fcgx->out) < 0)
                log_debug("client went away before the response was written");
}

static void http_send(struct request *req, int status, const char *ctype, const char *body,
                      size_t len)
{
        char head[512];
        int n;

        if (req->sent)
                return;
        req->sent = true;
        req->status = status;
        /* FCGX_FPrintF knows no %zu: format here and write bytes (stack notes, pitfall 1) */
        n = snprintf(head, sizeof(head),
                     "Status: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Request-Id: %s\r\n",
                     http_status_line(status), ctype, req->head ? (size_t)0 : len, req->request_id);
        if (n < 0 || (size_t)n >= sizeof(head))
                n = 0;
        http_write(req, head, (size_t)n);
        if (!req->headers.failed)
                http_write(req, req->headers.buf, req->headers.len);
        http_write(req, "\r\n", 2);
        if (!req->head)
                http_write(req, body, len);
}

bool http_stream_write(struct request *req, const char *data, size_t len)
{
        if (req->client_gone)
                return false;
        if (req->capture) {
                strbuf_add(req->capture, data, len);
                return true;
        }
        if ((len && FCGX_PutStr(data, (int)len, req->fcgx->out) < 0) ||
            FCGX_FFlush(req->fcgx->out) < 0) {
                log_debug("client went away during a streamed response");
                req->client_gone = true;
        }
        return !req->client_gone;
}

void http_stream_start(struct request *req, int status, const char *ctype)
{
        char head[512];
        int n;

        if (req->sent)
                return;
        req->sent = true;
        req->streaming = true;
        req->status = status;
        n = snprintf(head, sizeof(head),
                     "Status: %s\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
                     "X-Accel-Buffering: no\r\nX-Request-Id: %s\r\n",
                     http_status_line(status), ctype, req->request_id);
        if (n < 0 || (size_t)n >= sizeof(head))
                n = 0;
        http_write(req, head, (size_t)n);
        if (!req->headers.failed)
                http_write(req, req->headers.buf, req->headers.len);
        http_stream_write(req, "\r\n", 2);
}

bool http_stream_event(struct request *req, const char *event, const char *json)
{
        struct strbuf sb;
        bool ok;

        strbuf_init(&sb, 0);
        strbuf_addf(&sb, "event: %s\ndata: %s\n\n", event, json);
        ok = http_stream_write(req, sb.buf, sb.len);
        strbuf_release(&sb);
        return ok;
}

bool http_client_gone(struct request *req)
{
        struct pollfd p;

        if (req->client_gone || !req->fcgx)
                return req->client_gone;
        p.fd = req->fcgx->ipcFd;
        p.events = POLLRDHUP;
        p.revents = 0;
        if (p.fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                req->client_gone = true;
        return req->client_gone;
}

void http_send_json(struct request *req, int status, const char *body, size_t len)
{
        http_send(req, status, "application/json", body, len);
}

void http_send_body(struct request *req, int status, const char *content_type, const char *body,
                    size_t len)
{
        http_send(req, status, content_type, body, len);
}

void http_send_empty(struct request *req, int status)
{
        http_send(req, status, "application/json", "", 0);
}

void http_finish(struct request *req, int rc)
{
        struct strbuf sb;
        int status;

        if (req->sent)
                return;
        if (rc >= 0) {
                rc = http_fail(req, ERR_INTERNAL, "handler sent no response");
                log_error("handler for %s %s sent no response", req->method, req->path);
        }
        status = http_status_for(rc);
        if (!req->error[0])
                snprintf(req->error, sizeof(req->error), "%s", err_strerror(rc));
        if (status >= 500)
                log_warn("%s %s -> %d: %s", req->method, req->path, status, req->error);
        if (status == 503)
                http_add_header(req, "Retry-After", "1");
        strbuf_init(&sb, 4096);
        strbuf_addstr(&sb, "{\"error\":");
        strbuf_add_json_str(&sb, req->error, strlen(req->error));
        strbuf_addch(&sb, '}');
        http_send_json(req, status, sb.buf, sb.len);
        strbuf_release(&sb);
}

static bool http_is_json(const char *ctype)
{
        size_t n = strlen("application/json");

        while (*ctype == ' ')
                ctype++;
        return strncasecmp(ctype, "application/json", n) == 0 &&
               (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

int http_read_body(struct request *req, char **body, size_t *len)
{
        return http_read_body_max(req, HTTP_MAX_BODY, body, len);
}

int http_read_body_max(struct request *req, size_t max, char **body, size_t *len)
{
        long want = 0;
        char *buf;
        int got;

        *body = arena_strdup(req->arena, "");
        *len = 0;
        if (*req->content_length) {
                char *end;

                want = strtol(req->content_length, &end, 10);
                if (*end || want < 0)
                        return http_fail(req, ERR_INVALID, "bad Content-Length");
        }
        if (want == 0)
                return ERR_OK;
        if ((size_t)want > max)
                return http_fail(req, ERR_TOO_LARGE, "request body is %ld bytes; the limit is %zu",
                                 want, max);
        if (!http_is_json(req->content_type))
                return http_fail(req, ERR_MEDIA_TYPE,
                                 "request body must be JSON (Content-Type: application/json)");
        buf = arena_alloc(req->arena, (size_t)want + 1);
        if (req->fcgx) {
                got = FCGX_GetStr(buf, (int)want, req->fcgx->in);
        } else {
                got = req->preset_body ? (int)strnlen(req->preset_body, (size_t)want) : 0;
                memcpy(buf, req->preset_body ? req->preset_body : "", (size_t)got);
        }
        if (got != want)
                return http_fail(req, ERR_INVALID, "request body ended after %d of %ld bytes", got,
                                 want);
        buf[want] = '\0';
        *body = buf;
        *len = (size_t)want;
        return ERR_OK;
}
