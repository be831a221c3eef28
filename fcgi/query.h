/*
 * query — query-string parsing with "every parameter must be understood".
 *
 * query_parse() decodes QUERY_STRING into req->query_params.  Handlers read what they accept
 * with query_get/query_long/query_enum, which mark parameters used; query_done() then rejects
 * any parameter nobody asked for, so a typo ("stauts=open") is a 400, not a silently ignored
 * filter.
 */
#ifndef LOOM_QUERY_H
#define LOOM_QUERY_H

#include "http.h"

#define QUERY_MAX_LEN   4096
#define QUERY_MAX_VALUE 512

/* Parses req->query. ERR_INVALID on bad percent-encoding, NUL bytes, repeats or too many. */
int query_parse(struct request *req) __attribute__((warn_unused_result));
/* Decoded value of key (borrowed from the arena) or NULL when absent; marks it used. */
const char *query_get(struct request *req, const char *key);
/* Integer parameter in [min, max]; *out = def when absent. ERR_INVALID names the parameter. */
int query_long(struct request *req, const char *key, long def, long min, long max, long *out)
        __attribute__((warn_unused_result));
/* Parameter that must be one of choices (NULL-terminated); *out NULL when absent. */
int query_enum(struct request *req, const char *key, const char *const *choices, const char **out)
        __attribute__((warn_unused_result));
/* ERR_INVALID naming the first parameter no handler read. */
int query_done(struct request *req) __attribute__((warn_unused_result));

/* Percent-decodes src[0..len) into dst (len + 1 bytes); '+' is a space. -1 on bad input. */
long query_decode(const char *src, size_t len, char *dst, bool plus_is_space);

#endif
