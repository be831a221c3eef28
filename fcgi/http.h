/*
 * http — one FastCGI request as the handlers see it, and the only place that writes responses.
 *
 * A handler reads the request through this struct, does its work, and either sends a response
 * with http_send_json() (returning 0) or returns a negative err_code after http_fail() recorded
 * what went wrong; http_finish() then maps the code to a status and sends {"error": "..."}.
 * The err_code → HTTP status mapping lives here and nowhere else.
 *
 * Everything a request allocates comes from req->arena and dies at the end of the request.  In
 * unit tests fcgx is NULL and the response is captured in req->capture.
 */
#ifndef LOOM_HTTP_H
#define LOOM_HTTP_H

#include "arena.h"
#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>

#include <fcgiapp.h>

#define HTTP_MAX_BODY      ((size_t)1 << 20) /* 1 MiB */
#define HTTP_MAX_PARAMS    4                 /* captures in one route pattern */
#define HTTP_MAX_QUERY     64                /* parameters in one query string */
#define HTTP_MAX_ERROR_MSG 600

struct db;
struct route;

struct query_param {
        const char *key;
        const char *value;
        bool used;
};

/* Who sent a request, once fcgi/auth.c has checked the credential (id 0: nobody yet). */
struct request_user {
        long long id;
        const char *username;  /* arena */
        const char *role;      /* admin, user, viewer, service */
        const char *kind;      /* "session" or "api_key" */
        const char *csrf;      /* the session's CSRF token; NULL for API keys */
        const char *key_perms; /* an API key's permission list ("{a,b}"), or NULL: the role's */
        long long credential_id;
        bool cookie; /* the credential came in the session cookie (CSRF rules apply) */
};

struct request {
        FCGX_Request *fcgx; /* NULL in unit tests */
        struct arena *arena;
        struct db *db;
        const char *method; /* GET, POST, ... (HEAD is served as GET without a body) */
        bool head;
        const char *path; /* decoded, normalised by nginx ($document_uri) */
        const char *query;
        const char *content_type;
        const char *content_length;
        const char *request_id;
        const char *actor; /* who acts: the user name once authenticated, else "api" */
        const char *ip;    /* REMOTE_ADDR */
        struct request_user user;
        /* filled by the router */
        const struct route *route;
        const char *params[HTTP_MAX_PARAMS];
        int nparams;
        /* filled by query_parse */
        struct query_param query_params[HTTP_MAX_QUERY];
        int nquery;
        /* response */
        int status;
        bool sent;
        bool streaming;          /* http_stream_start() sent the head; the body follows in pieces */
        bool client_gone;        /* a streamed write failed or nginx closed the connection */
        struct strbuf headers;   /* extra response header lines, each ending in \r\n */
        struct strbuf *capture;  /* unit tests: the whole response lands here */
        const char *preset_body; /* unit tests: the body, when fcgx is NULL */
        char error[HTTP_MAX_ERROR_MSG];
};

/* Reads the CGI parameters of fcgx into req (strings borrowed until FCGX_Finish_r). */
void http_request_init(struct request *req, FCGX_Request *fcgx, struct arena *arena, struct db *db);
/* A CGI parameter (e.g. "HTTP_COOKIE"), borrowed until FCGX_Finish_r; "" when absent. */
const char *http_param(const struct request *req, const char *name);
/* Releases what http_request_init allocated outside the arena. */
void http_request_release(struct request *req);

/* Records the error message (formatted, truncated) and returns code, for `return http_fail(...)`.
 */
int http_fail(struct request *req, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4), warn_unused_result));
/* Records the database's last error (hiding internal details) and returns its code. */
int http_fail_db(struct request *req) __attribute__((warn_unused_result));

/* The status line text for an HTTP status, e.g. "404 Not Found". Cannot fail. */
const char *http_status_line(int status);
/* The HTTP status for an err_code. */
int http_status_for(int err);

/* Adds a response header line "name: value". */
void http_add_header(struct request *req, const char *name, const char *value);
/* Sends a complete JSON response. body must be valid JSON of len bytes. */
void http_send_json(struct request *req, int status, const char *body, size_t len);
/* Sends a complete response of any content type (text/plain for /metrics, text/csv for
 * exports); body is len bytes. */
void http_send_body(struct request *req, int status, const char *content_type, const char *body,
                    size_t len);
/* Sends 204 No Content. */
void http_send_empty(struct request *req, int status);
/*
 * Streamed responses (Server-Sent Events from loom-api: /pair, /chat/completions/stream).
 * http_stream_start() sends the status and headers (no Content-Length, Cache-Control: no-cache,
 * X-Accel-Buffering: no, plus req->headers) and flushes; the request then counts as sent, so a
 * later failure must be reported inside the stream.  Each write is flushed to nginx at once
 * (libfcgi buffers otherwise).  The writes return false once the client is gone.
 */
void http_stream_start(struct request *req, int status, const char *ctype);
bool http_stream_write(struct request *req, const char *data, size_t len);
/* "event: <event>\ndata: <json>\n\n"; json must be one line (compact JSON is). */
bool http_stream_event(struct request *req, const char *event, const char *json);
/* True when the client went away: a write failed, or nginx closed the FastCGI connection
 * (POLLRDHUP on it; never POLLIN, which the empty stdin record raises).  Cheap; no wait. */
bool http_client_gone(struct request *req);

/* After the handler: sends the error response for rc < 0 unless something was sent. */
void http_finish(struct request *req, int rc);

/* Reads the request body (JSON only, at most HTTP_MAX_BODY). *body is NUL-terminated, in the
 * arena; *len 0 when there is none. ERR_TOO_LARGE, ERR_MEDIA_TYPE or ERR_INVALID otherwise. */
int http_read_body(struct request *req, char **body, size_t *len)
        __attribute__((warn_unused_result));
/* The same with another cap than HTTP_MAX_BODY (project imports); nginx must let it through. */
int http_read_body_max(struct request *req, size_t max, char **body, size_t *len)
        __attribute__((warn_unused_result));

#endif
