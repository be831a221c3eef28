/*
 * fuzz_route — fcgi/router.c route_find() over the real table, loom_routes.
 *
 * Input: the method on the first line, the path (as nginx's $document_uri would pass it) on
 * the rest.  Besides memory safety it checks what the router promises: a FOUND route has the
 * method asked for and one non-empty, slash-free capture per "{name}" of its pattern, whose
 * literal segments are the path's; NO_METHOD lists other methods in Allow; paths that are too
 * long or have empty segments are BAD_PATH.
 */
#include "fuzz.h"
#include "router.h"

static size_t count_captures(const char *pattern)
{
        size_t n = 0;

        for (const char *p = pattern; (p = strchr(p, '{')); p++)
                n++;
        return n;
}

/* The path's segments equal the pattern's literal segments, captures aside. */
static bool literals_match(const char *pattern, const char *path)
{
        while (*pattern && *path) {
                size_t pl = strcspn(pattern + 1, "/") + 1, ql = strcspn(path + 1, "/") + 1;

                if (pattern[1] != '{' && (pl != ql || memcmp(pattern, path, pl) != 0))
                        return false;
                pattern += pl;
                path += ql;
        }
        return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

/* The router's rule for malformed paths, restated: not absolute, too long, "//", too deep. */
static bool path_is_bad(const char *path)
{
        size_t segs = 0;

        if (path[0] != '/' || strlen(path) > ROUTE_MAX_PATH || strstr(path, "//"))
                return true;
        for (const char *p = path; *p; p++) {
                if (*p == '/' && p[1] && p[1] != '/')
                        segs++;
        }
        return segs > ROUTE_MAX_SEGMENTS;
}

static void check_found(const struct request *req, const struct route *r)
{
        FUZZ_ASSERT(r && req->route == r);
        FUZZ_ASSERT(strcmp(r->method, req->method) == 0);
        FUZZ_ASSERT((size_t)req->nparams == count_captures(r->pattern));
        for (int i = 0; i < req->nparams; i++) {
                FUZZ_ASSERT(req->params[i] && req->params[i][0]);
                FUZZ_ASSERT(!strchr(req->params[i], '/'));
        }
        FUZZ_ASSERT(literals_match(r->pattern, req->path));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        struct arena arena;
        struct request req;
        const struct route *r;
        char allow[128];
        char *method = fuzz_line(&in), *path = fuzz_line(&in);
        enum route_match m;

        arena_init(&arena, 0);
        memset(&req, 0, sizeof(req));
        req.arena = &arena;
        req.method = method;
        req.path = path;
        m = route_find(loom_routes, loom_routes_count, &req, &r, allow, sizeof(allow));
        switch (m) {
        case ROUTE_FOUND:
                check_found(&req, r);
                break;
        case ROUTE_NO_METHOD:
                FUZZ_ASSERT(!r && allow[0]);
                FUZZ_ASSERT(strlen(allow) < sizeof(allow));
                break;
        case ROUTE_NO_PATH:
                FUZZ_ASSERT(!r);
                break;
        case ROUTE_BAD_PATH:
                FUZZ_ASSERT(!r);
                break;
        }
        FUZZ_ASSERT((m == ROUTE_BAD_PATH) == path_is_bad(path));
        arena_release(&arena);
        free(method);
        free(path);
        return 0;
}
