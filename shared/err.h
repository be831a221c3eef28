/*
 * err — the one error enum shared by every module.
 *
 * Fallible functions return 0 (ERR_OK) or one of these negative codes.  The HTTP status for each
 * is chosen once, in fcgi/http.c; workers only log them.
 */
#ifndef LOOM_ERR_H
#define LOOM_ERR_H

enum err_code {
        ERR_OK = 0,
        ERR_INVALID = -1,       /* the caller's input is wrong (HTTP 400) */
        ERR_NOT_FOUND = -2,     /* a named object does not exist (404) */
        ERR_CONFLICT = -3,      /* the object is in a state that forbids the change (409) */
        ERR_TOO_LARGE = -4,     /* input over a named size limit (413) */
        ERR_METHOD = -5,        /* path exists, method does not (405) */
        ERR_MEDIA_TYPE = -6,    /* body is not JSON (415) */
        ERR_UNAVAILABLE = -7,   /* a dependency (the database) is down; retry later (503) */
        ERR_INTERNAL = -8,      /* a bug or an unexpected failure (500) */
        ERR_BAD_GATEWAY = -9,   /* a service we called (an LLM provider) failed us (502) */
        ERR_UNAUTHORIZED = -10, /* no valid credentials (401) */
        ERR_FORBIDDEN = -11,    /* authenticated, but the role may not do this (403) */
        ERR_RATE_LIMITED = -12, /* too many attempts; retry after a while (429) */
};

/* Short lower-case name of code, e.g. "not found". Never NULL, cannot fail. */
const char *err_strerror(int code);

#endif
