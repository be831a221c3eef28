/*
 * router — segment matcher over the route table; see router.h.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>

struct segs {
        const char *p[ROUTE_MAX_SEGMENTS];
        size_t len[ROUTE_MAX_SEGMENTS];
        int n;
};

/* Splits "/a/b/c" into segments; false for paths that cannot match anything. */
static bool split(const char *path, struct segs *s)
{
        const char *p = path;

        s->n = 0;
        if (*p != '/')
                return false;
        while (*p == '/') {
                const char *start = ++p;

                while (*p && *p != '/')
                        p++;
                if (p == start) {
                        if (*p == '\0' && s->n > 0)
                                break; /* one trailing slash is tolerated */
                        if (*p == '\0' && s->n == 0)
                                break; /* "/" */
                        return false;  /* empty segment: "//" */
                }
                if (s->n == ROUTE_MAX_SEGMENTS)
                        return false;
                s->p[s->n] = start;
                s->len[s->n] = (size_t)(p - start);
                s->n++;
        }
        return *p == '\0';
}

static bool is_capture(const char *seg, size_t len)
{
        return len >= 2 && seg[0] == '{' && seg[len - 1] == '}';
}

/* Score of a match: more literal segments is more specific; -1 for no match. */
static int match(const struct segs *pat, const struct segs *path)
{
        int score = 0;

        if (pat->n != path->n)
                return -1;
        for (int i = 0; i < pat->n; i++) {
                if (is_capture(pat->p[i], pat->len[i]))
                        continue;
                if (pat->len[i] != path->len[i] || memcmp(pat->p[i], path->p[i], path->len[i]))
                        return -1;
                score++;
        }
        return score;
}

static void allow_add(char *allow, size_t allow_len, const char *method)
{
        size_t used = strlen(allow);

        if (strstr(allow, method))
                return;
        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", method);
}

enum route_match route_find(const struct route *table, size_t n, struct request *req,
                            const struct route **out, char *allow, size_t allow_len)
{
        struct segs path, pat;
        const struct route *best = NULL;
        int best_score = -1, path_score = -1;

        *out = NULL;
        if (allow_len)
                allow[0] = '\0';
        if (strlen(req->path) > ROUTE_MAX_PATH || !split(req->path, &path))
                return ROUTE_BAD_PATH;
        for (size_t i = 0; i < n; i++) {
                int score;

                if (!split(table[i].pattern, &pat))
                        continue;
                score = match(&pat, &path);
                if (score < 0)
                        continue;
                if (score > path_score)
                        path_score = score;
                if (strcmp(table[i].method, req->method) == 0 && score > best_score) {
                        best = &table[i];
                        best_score = score;
                }
        }
        if (path_score < 0)
                return ROUTE_NO_PATH;
        if (!best || best_score < path_score) {
                /* the most specific path exists, but not with this method */
                for (size_t i = 0; i < n; i++) {
                        if (split(table[i].pattern, &pat) && match(&pat, &path) == path_score)
                                allow_add(allow, allow_len, table[i].method);
                }
                return ROUTE_NO_METHOD;
        }
        split(best->pattern, &pat);
        req->nparams = 0;
        for (int i = 0; i < pat.n && req->nparams < HTTP_MAX_PARAMS; i++) {
                if (is_capture(pat.p[i], pat.len[i]))
                        req->params[req->nparams++] =
                                arena_strndup(req->arena, path.p[i], path.len[i]);
        }
        req->route = best;
        *out = best;
        return ROUTE_FOUND;
}
