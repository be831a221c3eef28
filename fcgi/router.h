/*
 * router — the route table type and the matcher.
 *
 * Routes are data: one const table (fcgi/routes.c) of {method, pattern, handler, permission}.
 * A pattern is a path whose segments are literals or "{name}" captures, e.g.
 * "/api/v1/beads/{id}/claim".  Literal segments win over captures, so "/beads/ready" is never
 * taken for a bead called "ready".  The permission column names the resource:action each route
 * needs, so the authorisation of the whole API can be read at a glance.
 */
#ifndef LOOM_ROUTER_H
#define LOOM_ROUTER_H

#include "http.h"

#include <stddef.h>

typedef int (*route_handler)(struct request *req);

struct route {
        const char *method;
        const char *pattern;
        route_handler handler;
        const char *permission; /* "beads:write", "projects:read", "public", ... */
};

enum route_match {
        ROUTE_FOUND,     /* *out set, req->params filled */
        ROUTE_NO_METHOD, /* the path exists with other methods; allow lists them */
        ROUTE_NO_PATH,   /* nothing matches the path */
        ROUTE_BAD_PATH,  /* the path is malformed (too long, empty or junk segments) */
};

#define ROUTE_MAX_PATH     1024
#define ROUTE_MAX_SEGMENTS 16

/*
 * Finds the route for method and path in table[0..n).  Captured segments are copied into
 * req->arena and stored in req->params in pattern order.  On ROUTE_NO_METHOD, allow receives a
 * comma-separated list of the methods the path supports (allow_len bytes at most).
 */
enum route_match route_find(const struct route *table, size_t n, struct request *req,
                            const struct route **out, char *allow, size_t allow_len);

/* The API's route table (routes.c). */
extern const struct route loom_routes[];
extern const size_t loom_routes_count;

#endif
