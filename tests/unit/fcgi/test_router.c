/* Unit tests for fcgi/router.c against the real route table. */
#include "router.h"
#include "testlib.h"

static struct arena arena;

static enum route_match find(const char *method, const char *path, struct request *req,
                             const struct route **r, char *allow)
{
        memset(req, 0, sizeof(*req));
        req->arena = &arena;
        req->method = method;
        req->path = path;
        return route_find(loom_routes, loom_routes_count, req, r, allow, 128);
}

TEST(captures_and_literals)
{
        struct request req;
        const struct route *r;
        char allow[128];

        arena_init(&arena, 0);
        CHECK_INT(find("GET", "/api/v1/beads/lm-12", &req, &r, allow), ROUTE_FOUND);
        CHECK_STR(r->pattern, "/api/v1/beads/{id}");
        CHECK_INT(req.nparams, 1);
        CHECK_STR(req.params[0], "lm-12");
        /* the literal wins over the capture */
        CHECK_INT(find("GET", "/api/v1/beads/ready", &req, &r, allow), ROUTE_FOUND);
        CHECK_STR(r->pattern, "/api/v1/beads/ready");
        CHECK_INT(find("POST", "/api/v1/beads/lm-1/claim", &req, &r, allow), ROUTE_FOUND);
        CHECK_STR(r->permission, "beads:write");
        /* one trailing slash is tolerated */
        CHECK_INT(find("GET", "/api/v1/projects/", &req, &r, allow), ROUTE_FOUND);
        arena_release(&arena);
}

TEST(wrong_method_lists_allowed)
{
        struct request req;
        const struct route *r;
        char allow[128];

        arena_init(&arena, 0);
        CHECK_INT(find("PUT", "/api/v1/beads/lm-1", &req, &r, allow), ROUTE_NO_METHOD);
        CHECK_STR(allow, "GET, PATCH, DELETE");
        CHECK_INT(find("DELETE", "/api/v1/beads", &req, &r, allow), ROUTE_NO_METHOD);
        CHECK_HAS(allow, "POST");
        arena_release(&arena);
}

TEST(junk_paths)
{
        struct request req;
        const struct route *r;
        char allow[128], longpath[2048];

        arena_init(&arena, 0);
        CHECK_INT(find("GET", "/api/v1/nope", &req, &r, allow), ROUTE_NO_PATH);
        CHECK_INT(find("GET", "/api/v1//beads", &req, &r, allow), ROUTE_BAD_PATH);
        CHECK_INT(find("GET", "api/v1/beads", &req, &r, allow), ROUTE_BAD_PATH);
        CHECK_INT(find("GET", "", &req, &r, allow), ROUTE_BAD_PATH);
        CHECK_INT(find("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r", &req, &r, allow),
                  ROUTE_BAD_PATH);
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = '\0';
        CHECK_INT(find("GET", longpath, &req, &r, allow), ROUTE_BAD_PATH);
        CHECK_INT(find("GET", "/api/v1/beads/a/b/c", &req, &r, allow), ROUTE_NO_PATH);
        arena_release(&arena);
}

TEST(every_route_is_reachable)
{
        /* each pattern, with its captures filled in, finds itself and not a sibling */
        arena_init(&arena, 0);
        for (size_t i = 0; i < loom_routes_count; i++) {
                char path[256];
                size_t o = 0;
                struct request req;
                const struct route *r;
                char allow[128];

                for (const char *p = loom_routes[i].pattern; *p && o < sizeof(path) - 8; p++) {
                        if (*p == '{') {
                                memcpy(path + o, "xx-1", 4);
                                o += 4;
                                while (*p && *p != '}')
                                        p++;
                        } else {
                                path[o++] = *p;
                        }
                }
                path[o] = '\0';
                CHECK_INT(find(loom_routes[i].method, path, &req, &r, allow), ROUTE_FOUND);
                CHECK(r == &loom_routes[i]);
                CHECK(loom_routes[i].permission && *loom_routes[i].permission);
        }
        arena_release(&arena);
}

TESTS(TESTLIB_CASE(captures_and_literals), TESTLIB_CASE(wrong_method_lists_allowed),
      TESTLIB_CASE(junk_paths), TESTLIB_CASE(every_route_is_reachable))
