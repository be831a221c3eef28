/*
 * httpc — outgoing HTTP with libcurl: one blocking request, bounded in time and size.
 *
 * Used for provider probes and model lists now, the LLM client later.  Never follows more than
 * 3 redirects, never keeps more than max_body bytes of a reply (ERR_TOO_LARGE beyond), and
 * never logs the bearer token.  Call httpc_global_init() once before threads start.
 */
#ifndef LOOM_HTTPC_H
#define LOOM_HTTPC_H

#include "strbuf.h"

struct httpc_request {
        const char *method; /* "GET" or "POST" */
        const char *url;
        const char *bearer;    /* Authorization: Bearer …, or NULL */
        const char *json_body; /* POST body, sent as application/json, or NULL */
        long connect_timeout_ms;
        long timeout_ms; /* the whole request */
};

struct httpc_response {
        long status;        /* HTTP status, 0 when no response arrived */
        struct strbuf body; /* initialised by the caller with the size cap */
        double total_ms;
        char error[256]; /* what went wrong, for people: "connection refused", "timeout" */
};

/* Sets up libcurl for the process. Returns 0 or ERR_INTERNAL. */
int httpc_global_init(void) __attribute__((warn_unused_result));

/*
 * Performs req.  0 when a response arrived (any status; see res->status), ERR_UNAVAILABLE when
 * none did (DNS, connect, TLS, timeout: res->error says which), ERR_TOO_LARGE when the body
 * passed res->body.max, ERR_INVALID for a URL libcurl refuses.
 */
int httpc_perform(const struct httpc_request *req, struct httpc_response *res)
        __attribute__((warn_unused_result));

#endif
