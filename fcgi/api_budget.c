/*
 * api_budget — budgets in USD and the approval gates (sql/012_budgets.sql):
 *
 *   GET /api/v1/projects/{id}/budget   limits, spent (all time, this month), reserved by calls
 *                                      in flight, remaining, alerts raised, beads it blocks
 *   PUT /api/v1/projects/{id}/budget   {limit_usd, monthly_limit_usd, approval_cost_usd,
 *                                      require_approval_merge}: those given are set, null
 *                                      removes one
 *   GET /api/v1/beads/{id}/budget      the bead's limit, spent, reserved, spend allowance, gate
 *   PUT /api/v1/beads/{id}/budget      {limit_usd, spend_allowance_usd}
 *
 * The limits live in the project's and the bead's context (budget_usd, budget_monthly_usd,
 * approval_cost_usd, require_approval_merge; a bead's budget_usd, spend_allowance_usd), so
 * PATCHing the context sets them too: api_budget_check_context() holds those keys to the same
 * rules wherever a context comes in.
 */
#include "api.h"
#include "err.h"

#include <math.h>
#include <string.h>

#define BUDGET_MAX_USD 1e9

static struct db_stmt budget_get_stmt = {
        .name = "budget_get",
        .sql = "SELECT loom_budget_json($1)",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt budget_set_stmt = {
        .name = "budget_set",
        .sql = "SELECT loom_budget_set($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt bead_budget_get_stmt = {
        .name = "bead_budget_get",
        .sql = "SELECT loom_bead_budget_json($1)",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt bead_budget_set_stmt = {
        .name = "bead_budget_set",
        .sql = "SELECT loom_bead_budget_set($1, $2::jsonb, $3)",
        .nparams = 3,
};

/* A decimal string: 1 to 10 digits, optionally a point and 1 to 12 more. */
static bool budget_is_decimal(const char *s)
{
        size_t n = strspn(s, "0123456789"), f;

        if (n < 1 || n > 10)
                return false;
        if (s[n] == '\0')
                return true;
        if (s[n] != '.')
                return false;
        f = strspn(s + n + 1, "0123456789");
        return f >= 1 && f <= 12 && s[n + 1 + f] == '\0';
}

/* An amount in USD: a number from 0 to 1e9, or (strings allowed, as contexts hold them) a
 * decimal string. */
static bool budget_is_amount(json_object *v, bool strings)
{
        double d;

        switch (json_object_get_type(v)) {
        case json_type_int:
                return json_object_get_int64(v) >= 0 && json_object_get_int64(v) <= BUDGET_MAX_USD;
        case json_type_double:
                d = json_object_get_double(v);
                return isfinite(d) && d >= 0 && d <= BUDGET_MAX_USD;
        case json_type_string:
                return strings && budget_is_decimal(json_object_get_string(v));
        default:
                return false;
        }
}

static bool budget_is_flag(json_object *v, bool strings)
{
        const char *s;

        if (json_object_is_type(v, json_type_boolean))
                return true;
        if (!strings || !json_object_is_type(v, json_type_string))
                return false;
        s = json_object_get_string(v);
        return strcmp(s, "true") == 0 || strcmp(s, "false") == 0;
}

/* One budget field: kind 'a' an amount, 'f' a flag; null always allowed. */
static int budget_check_value(struct request *req, const char *prefix, const char *key,
                              json_object *v, char kind, bool strings)
{
        if (!v || json_object_is_type(v, json_type_null))
                return ERR_OK;
        if (kind == 'a' && !budget_is_amount(v, strings))
                return http_fail(req, ERR_INVALID,
                                 "%s%s: must be an amount in USD from 0 to 1000000000 (%s), or "
                                 "null to remove it",
                                 prefix, key,
                                 strings ? "a number or a decimal string such as \"2.50\""
                                         : "a number such as 2.5");
        if (kind == 'f' && !budget_is_flag(v, strings))
                return http_fail(
                        req, ERR_INVALID, "%s%s: must be %s, or null to remove it", prefix, key,
                        strings ? "true or false (or \"true\", \"false\")" : "true or false");
        return ERR_OK;
}

struct budget_key {
        const char *name;
        char kind; /* 'a' amount, 'f' flag */
};

static const struct budget_key budget_project_context[] = {
        {"budget_usd", 'a'},
        {"budget_monthly_usd", 'a'},
        {"approval_cost_usd", 'a'},
        {"require_approval_merge", 'f'},
        {NULL, 0},
};

static const struct budget_key budget_bead_context[] = {
        {"budget_usd", 'a'},
        {"spend_allowance_usd", 'a'},
        {NULL, 0},
};

static const struct budget_key budget_project_body[] = {
        {"limit_usd", 'a'},
        {"monthly_limit_usd", 'a'},
        {"approval_cost_usd", 'a'},
        {"require_approval_merge", 'f'},
        {NULL, 0},
};

static const struct budget_key budget_bead_body[] = {
        {"limit_usd", 'a'},
        {"spend_allowance_usd", 'a'},
        {NULL, 0},
};

int api_budget_check_context(struct request *req, json_object *body, bool bead)
{
        const struct budget_key *k = bead ? budget_bead_context : budget_project_context;
        json_object *ctx;

        if (!json_object_object_get_ex(body, "context", &ctx) ||
            !json_object_is_type(ctx, json_type_object))
                return ERR_OK;
        for (; k->name; k++) {
                int rc = budget_check_value(req, "context.", k->name,
                                            json_object_object_get(ctx, k->name), k->kind, true);

                if (rc)
                        return rc;
        }
        return ERR_OK;
}

/* A PUT body: an object of known budget fields only, at least one. */
static int budget_check_body(struct request *req, json_object *body, const struct budget_key *keys)
{
        if (json_object_object_length(body) == 0)
                return http_fail(req, ERR_INVALID, "no fields to update");
        json_object_object_foreach(body, key, v)
        {
                const struct budget_key *k = keys;
                int rc;

                while (k->name && strcmp(k->name, key) != 0)
                        k++;
                if (!k->name)
                        return http_fail(req, ERR_INVALID, "unknown field '%.64s'", key);
                rc = budget_check_value(req, "", key, v, k->kind, false);
                if (rc)
                        return rc;
        }
        return ERR_OK;
}

static const struct api_shape budget_project_shape = {.id = api_project_id};
static const struct api_shape budget_bead_shape = {.id = api_bead_id};

/*
 * The start of a PUT: the path id, no query, and a JSON object body of known budget fields
 * (checked here: amounts are numbers, which input.h's field kinds do not cover).
 */
static int budget_start_put(struct request *req, const struct api_shape *shape,
                            const struct budget_key *keys, const char **id, json_object **body)
{
        char *text;
        size_t len;
        int rc = api_start(req, shape, id, NULL);

        if (!rc)
                rc = http_read_body(req, &text, &len);
        if (!rc)
                rc = input_parse(req, text, len, false, body);
        if (!rc)
                rc = budget_check_body(req, *body, keys);
        return rc;
}

int api_projects_budget_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &budget_project_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &budget_get_stmt, &id, 200,
                            arena_printf(req->arena, "project %s not found", id));
}

int api_projects_budget_put(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = budget_start_put(req, &budget_project_shape, budget_project_body, &params[0],
                                  &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &budget_set_stmt, params, 200, NULL);
}

int api_beads_budget_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &budget_bead_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &bead_budget_get_stmt, &id, 200,
                            arena_printf(req->arena, "bead %s not found", id));
}

int api_beads_budget_put(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = budget_start_put(req, &budget_bead_shape, budget_bead_body, &params[0], &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &bead_budget_set_stmt, params, 200, NULL);
}
