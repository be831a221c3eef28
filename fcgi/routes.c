/*
 * routes — the loom-api route table: method, path pattern, handler, permission.
 *
 * Paths and field names follow Loom's API (reference §2.1) so Loom's clients work unchanged.
 * The permission column is what the authorisation layer enforces per route.
 */
#include "api.h"
#include "router.h"

const struct route loom_routes[] = {
        {.method = "GET", .pattern = "/health", .handler = api_health, .permission = "public"},
        {.method = "GET", .pattern = "/health/live", .handler = api_health_live,
         .permission = "public"},
        {.method = "GET", .pattern = "/health/ready", .handler = api_health_ready,
         .permission = "public"},
        {.method = "GET", .pattern = "/api/v1/health", .handler = api_v1_health,
         .permission = "public"},

        {.method = "GET", .pattern = "/api/v1/projects", .handler = api_projects_list,
         .permission = "projects:read"},
        {.method = "POST", .pattern = "/api/v1/projects", .handler = api_projects_create,
         .permission = "projects:write"},
        {.method = "GET", .pattern = "/api/v1/projects/{id}", .handler = api_projects_get,
         .permission = "projects:read"},
        {.method = "PUT", .pattern = "/api/v1/projects/{id}", .handler = api_projects_update,
         .permission = "projects:write"},
        {.method = "PATCH", .pattern = "/api/v1/projects/{id}", .handler = api_projects_update,
         .permission = "projects:write"},
        {.method = "DELETE", .pattern = "/api/v1/projects/{id}", .handler = api_projects_delete,
         .permission = "projects:delete"},
        {.method = "POST", .pattern = "/api/v1/projects/{id}/close", .handler = api_projects_close,
         .permission = "projects:write"},
        {.method = "POST", .pattern = "/api/v1/projects/{id}/reopen",
         .handler = api_projects_reopen, .permission = "projects:write"},
        {.method = "GET", .pattern = "/api/v1/projects/{id}/state", .handler = api_projects_state,
         .permission = "projects:read"},

        {.method = "GET", .pattern = "/api/v1/beads", .handler = api_beads_list,
         .permission = "beads:read"},
        {.method = "POST", .pattern = "/api/v1/beads", .handler = api_beads_create,
         .permission = "beads:write"},
        {.method = "PATCH", .pattern = "/api/v1/beads", .handler = api_beads_bulk_update,
         .permission = "beads:write"},
        {.method = "GET", .pattern = "/api/v1/beads/ready", .handler = api_beads_ready,
         .permission = "beads:read"},
        {.method = "GET", .pattern = "/api/v1/beads/{id}", .handler = api_beads_get,
         .permission = "beads:read"},
        {.method = "PATCH", .pattern = "/api/v1/beads/{id}", .handler = api_beads_update,
         .permission = "beads:write"},
        {.method = "DELETE", .pattern = "/api/v1/beads/{id}", .handler = api_beads_delete,
         .permission = "beads:delete"},
        {.method = "POST", .pattern = "/api/v1/beads/{id}/claim", .handler = api_beads_claim,
         .permission = "beads:write"},
        {.method = "POST", .pattern = "/api/v1/beads/{id}/redispatch",
         .handler = api_beads_redispatch, .permission = "beads:write"},
        {.method = "GET", .pattern = "/api/v1/beads/{id}/comments", .handler = api_comments_list,
         .permission = "beads:read"},
        {.method = "POST", .pattern = "/api/v1/beads/{id}/comments",
         .handler = api_comments_create, .permission = "beads:write"},
        {.method = "PATCH", .pattern = "/api/v1/comments/{id}", .handler = api_comments_update,
         .permission = "beads:write"},
        {.method = "DELETE", .pattern = "/api/v1/comments/{id}", .handler = api_comments_delete,
         .permission = "beads:write"},

        {.method = "GET", .pattern = "/api/v1/work-graph", .handler = api_work_graph,
         .permission = "beads:read"},
        {.method = "GET", .pattern = "/api/v1/events", .handler = api_events_list,
         .permission = "events:read"},
};

const size_t loom_routes_count = sizeof(loom_routes) / sizeof(loom_routes[0]);
