/*
 * test_auth — the permission rules: roles, wildcards, API key lists, service accounts.
 */
#include "auth.h"
#include "testlib.h"

TEST(roles)
{
        CHECK(auth_allows("admin", NULL, "users:admin"));
        CHECK(auth_allows("admin", NULL, "beads:delete"));
        CHECK(auth_allows("user", NULL, "beads:write"));
        CHECK(!auth_allows("user", NULL, "beads:delete"));
        CHECK(!auth_allows("user", NULL, "users:admin"));
        CHECK(!auth_allows("user", NULL, "personas:write"));
        CHECK(auth_allows("viewer", NULL, "runs:read"));
        CHECK(!auth_allows("viewer", NULL, "runs:write"));
        CHECK(!auth_allows("viewer", NULL, "audit:read"));
        CHECK(!auth_allows("service", NULL, "beads:read"));
        CHECK(!auth_allows("nobody", NULL, "beads:read"));
        CHECK(!auth_allows(NULL, NULL, "beads:read"));
        CHECK(auth_allows("viewer", NULL, "public"));
        CHECK(auth_allows("service", NULL, "self"));
}

TEST(api_key_lists)
{
        CHECK(auth_allows("user", "{beads:read}", "beads:read"));
        CHECK(!auth_allows("user", "{beads:read}", "beads:write"));
        CHECK(auth_allows("user", "{beads:*,runs:read}", "beads:write"));
        CHECK(!auth_allows("user", "{beads:*}", "beads:delete")); /* never beyond the role */
        CHECK(!auth_allows("viewer", "{*:*}", "beads:write"));
        CHECK(auth_allows("admin", "{*:read}", "audit:read"));
        CHECK(!auth_allows("admin", "{*:read}", "audit:write"));
        CHECK(auth_allows("service", "{beads:read,beads:write}", "beads:write"));
        CHECK(!auth_allows("service", "{beads:read,beads:write}", "agents:read"));
        CHECK(!auth_allows("service", "{}", "beads:read"));
        CHECK(!auth_allows("user", "{}", "beads:read"));
        CHECK(!auth_allows("user", "{beads:rea}", "beads:read"));
        CHECK(!auth_allows("user", "{beads:readx}", "beads:read"));
}

TEST(permission_names)
{
        CHECK(auth_is_permission("beads:read"));
        CHECK(auth_is_permission("runs:*"));
        CHECK(auth_is_permission("*:*"));
        CHECK(!auth_is_permission("beads"));
        CHECK(!auth_is_permission("beads:fly"));
        CHECK(!auth_is_permission("rockets:read"));
        CHECK(!auth_is_permission(":read"));
        CHECK(!auth_is_permission("beads:"));
}

TESTS(TESTLIB_CASE(roles), TESTLIB_CASE(api_key_lists), TESTLIB_CASE(permission_names))
