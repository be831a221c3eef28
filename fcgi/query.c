/*
 * query — QUERY_STRING decoding and strict parameter use; see query.h.
 */
#include "query.h"
#include "config.h"
#include "err.h"
#include "input.h"

#include <string.h>

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

long query_decode(const char *src, size_t len, char *dst, bool plus_is_space)
{
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                char c = src[i];

                if (c == '%') {
                        int hi, lo;

                        if (i + 2 >= len)
                                return -1;
                        hi = hexval(src[i + 1]);
                        lo = hexval(src[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -1;
                        c = (char)(hi * 16 + lo);
                        i += 2;
                } else if (c == '+' && plus_is_space) {
                        c = ' ';
                }
                if (c == '\0')
                        return -1;
                dst[o++] = c;
        }
        dst[o] = '\0';
        return (long)o;
}

int query_parse(struct request *req)
{
        const char *p = req->query;

        req->nquery = 0;
        if (strlen(p) > QUERY_MAX_LEN)
                return http_fail(req, ERR_INVALID, "query string longer than %d bytes",
                                 QUERY_MAX_LEN);
        while (*p) {
                const char *amp = strchr(p, '&');
                size_t len = amp ? (size_t)(amp - p) : strlen(p);
                const char *eq = memchr(p, '=', len);
                size_t klen = eq ? (size_t)(eq - p) : len;
                size_t vlen = eq ? len - klen - 1 : 0;
                char *key, *val;

                if (len) {
                        if (req->nquery == HTTP_MAX_QUERY)
                                return http_fail(req, ERR_INVALID, "too many query parameters");
                        key = arena_alloc(req->arena, klen + 1);
                        val = arena_alloc(req->arena, vlen + 1);
                        if (query_decode(p, klen, key, true) < 0 ||
                            query_decode(eq ? eq + 1 : "", vlen, val, true) < 0)
                                return http_fail(req, ERR_INVALID,
                                                 "query string: bad percent-encoding");
                        if (!*key)
                                return http_fail(req, ERR_INVALID,
                                                 "query string: parameter without a name");
                        for (int i = 0; i < req->nquery; i++) {
                                if (strcmp(req->query_params[i].key, key) == 0)
                                        return http_fail(req, ERR_INVALID,
                                                         "query parameter '%.64s' given twice",
                                                         key);
                        }
                        req->query_params[req->nquery].key = key;
                        req->query_params[req->nquery].value = val;
                        req->query_params[req->nquery].used = false;
                        req->nquery++;
                }
                p += len + (amp ? 1 : 0);
        }
        return ERR_OK;
}

const char *query_get(struct request *req, const char *key)
{
        for (int i = 0; i < req->nquery; i++) {
                if (strcmp(req->query_params[i].key, key) == 0) {
                        req->query_params[i].used = true;
                        return req->query_params[i].value;
                }
        }
        return NULL;
}

int query_long(struct request *req, const char *key, long def, long min, long max, long *out)
{
        const char *v = query_get(req, key);

        *out = def;
        if (!v)
                return ERR_OK;
        if (config_parse_long(v, min, max, out) != ERR_OK)
                return http_fail(req, ERR_INVALID, "%s: must be an integer from %ld to %ld", key,
                                 min, max);
        return ERR_OK;
}

int query_enum(struct request *req, const char *key, const char *const *choices, const char **out)
{
        const char *v = query_get(req, key);

        *out = NULL;
        if (!v)
                return ERR_OK;
        for (int i = 0; choices[i]; i++) {
                if (strcmp(v, choices[i]) == 0) {
                        *out = choices[i];
                        return ERR_OK;
                }
        }
        return http_fail(req, ERR_INVALID, "%s: '%.64s' is not one of %s", key, v,
                         input_choices_list(req, choices));
}

int query_done(struct request *req)
{
        for (int i = 0; i < req->nquery; i++) {
                if (!req->query_params[i].used)
                        return http_fail(req, ERR_INVALID, "unknown query parameter '%.64s'",
                                         req->query_params[i].key);
        }
        return ERR_OK;
}
