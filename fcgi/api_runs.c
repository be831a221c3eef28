/*
 * api_runs — what agents did: runs (list, read, cancel), a run's actions and LLM calls, a
 * bead's runs and conversation, command logs, and a project's lessons.
 *
 * Lists are pages (limit ≤ 1000, offset, X-Next-Offset).  Runs and command logs come newest
 * first; a run's actions and a bead's conversation oldest first, as they happened.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const run_states[] = {"queued", "running",  "succeeded",
                                         "failed", "canceled", NULL};

/* A page of json objects: (array of at most $L, more rows exist). */
#define PAGE_OF(json, rows)                                                                        \
        "SELECT coalesce(json_agg(p.j ORDER BY p.n) FILTER (WHERE p.n <= $1::int), '[]'),"         \
        " count(*) > $1::int FROM (SELECT " json " AS j, row_number() OVER () AS n FROM (" rows    \
        " LIMIT $1::int + 1 OFFSET $2::int) t) p"

static struct db_stmt run_list_stmt = {
        .name = "run_list",
        .sql = PAGE_OF("loom_run_json(t)",
                       "SELECT * FROM runs r WHERE ($3::text IS NULL OR r.project_id = $3)"
                       " AND ($4::text IS NULL OR r.bead_id = $4)"
                       " AND ($5::text IS NULL OR r.agent_id = $5)"
                       " AND ($6::text IS NULL OR r.state = $6) ORDER BY r.id DESC"),
        .nparams = 6,
        .readonly = true,
};

static struct db_stmt run_get_stmt = {
        .name = "run_get",
        .sql = "SELECT loom_run_json(r) FROM runs r WHERE r.id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt run_cancel_stmt = {
        .name = "run_cancel",
        .sql = "SELECT loom_run_cancel($1::bigint, $2)",
        .nparams = 2,
};

/* A run's children: 404 for a run that does not exist, else the page. */
#define RUN_CHILDREN(json, table, order)                                                           \
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM runs WHERE id = $3::bigint) THEN x.a END, x.m"     \
        " FROM (" PAGE_OF(json, "SELECT * FROM " table " c WHERE c.run_id = $3::bigint"            \
                                " ORDER BY c.id " order) ") x(a, m)"

static struct db_stmt run_actions_stmt = {
        .name = "run_actions",
        .sql = RUN_CHILDREN("loom_action_json(t)", "actions", "ASC"),
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt run_llm_calls_stmt = {
        .name = "run_llm_calls",
        .sql = RUN_CHILDREN("loom_llm_call_json(t)", "llm_calls", "ASC"),
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt bead_runs_stmt = {
        .name = "bead_runs",
        .sql = "SELECT CASE WHEN EXISTS (SELECT 1 FROM beads WHERE id = $3) THEN x.a END, x.m"
               " FROM (" PAGE_OF("loom_run_json(t)", "SELECT * FROM runs r WHERE r.bead_id = $3"
                                                     " ORDER BY r.id DESC") ") x(a, m)",
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt bead_conversation_stmt = {
        .name = "bead_conversation",
        .sql = "SELECT CASE WHEN EXISTS (SELECT 1 FROM beads WHERE id = $3) THEN x.a END, x.m"
               " FROM (" PAGE_OF("loom_message_json(t)",
                                 "SELECT * FROM messages m WHERE m.bead_id = $3"
                                 " AND ($4::bigint IS NULL OR m.run_id = $4::bigint)"
                                 " ORDER BY m.seq") ") x(a, m)",
        .nparams = 4,
        .readonly = true,
};

static struct db_stmt command_list_stmt = {
        .name = "command_list",
        .sql = PAGE_OF("loom_command_json(t)",
                       "SELECT * FROM command_logs c WHERE ($3::text IS NULL OR c.project_id = $3)"
                       " AND ($4::text IS NULL OR c.bead_id = $4)"
                       " AND ($5::text IS NULL OR c.agent_id = $5)"
                       " AND ($6::bigint IS NULL OR c.run_id = $6::bigint) ORDER BY c.id DESC"),
        .nparams = 6,
        .readonly = true,
};

static struct db_stmt command_get_stmt = {
        .name = "command_get",
        .sql = "SELECT loom_command_json(c) FROM command_logs c WHERE c.id = $1::bigint",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt project_lessons_stmt = {
        .name = "project_lessons",
        .sql = "SELECT CASE WHEN EXISTS (SELECT 1 FROM projects WHERE id = $3) THEN x.a END, x.m"
               " FROM (" PAGE_OF("loom_lesson_json(t)",
                                 "SELECT * FROM lessons l WHERE l.project_id = $3"
                                 " ORDER BY l.id DESC") ") x(a, m)",
        .nparams = 3,
        .readonly = true,
};

/* Run and command ids are positive bigints. */
static bool is_serial(const char *s)
{
        size_t n = strspn(s, "0123456789");

        return n > 0 && n <= 18 && s[n] == '\0' && s[0] != '0';
}

static int run_id_param(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!is_serial(*out))
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid run id (a number)",
                                 *out);
        return ERR_OK;
}

static int command_id_param(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!is_serial(*out))
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid command id (a number)",
                                 *out);
        return ERR_OK;
}

/* Optional filters shared by the lists: project_id, bead_id, agent_id. */
static int owner_filters(struct request *req, const char **params)
{
        params[0] = query_get(req, "project_id");
        params[1] = query_get(req, "bead_id");
        params[2] = query_get(req, "agent_id");
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        if (params[1] && !input_is_bead_id(params[1]))
                return http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[1]);
        if (params[2] && (!input_is_name(params[2]) || strlen(params[2]) > 100))
                return http_fail(req, ERR_INVALID, "agent_id: '%.64s' is not an agent id",
                                 params[2]);
        return ERR_OK;
}

/* A page of a parent's children: 404 (not_found) when the parent does not exist. */
static int send_children(struct request *req, struct db_stmt *st, const char **params,
                         const char *not_found)
{
        PGresult *res;
        int rc = db_exec(req->db, st, params, &res);

        if (rc)
                return http_fail_db(req);
        if (PQgetisnull(res, 0, 0)) {
                PQclear(res);
                return http_fail(req, ERR_NOT_FOUND, "%s", not_found);
        }
        api_next_offset(req, params[0], params[1], strcmp(PQgetvalue(res, 0, 1), "t") == 0);
        http_send_json(req, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        PQclear(res);
        return ERR_OK;
}

static const struct api_shape run_id_shape = {.id = run_id_param};
static const struct api_shape command_id_shape = {.id = command_id_param};

int api_runs_list(struct request *req)
{
        const char *params[6];
        int rc = owner_filters(req, &params[2]);

        if (!rc)
                rc = query_enum(req, "state", run_states, &params[5]);
        if (!rc)
                rc = api_page(req, 100, &params[0], &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &run_list_stmt, params, params[0], params[1]);
}

int api_runs_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &run_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &run_get_stmt, &id, 200,
                            arena_printf(req->arena, "run %s not found", id));
}

int api_runs_cancel(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &run_id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &run_cancel_stmt, params, 200, NULL);
}

/* GET /runs/{id}/actions and /runs/{id}/llm-calls */
static int run_children(struct request *req, struct db_stmt *st)
{
        const char *params[3];
        int rc = api_page(req, 200, &params[0], &params[1]);

        if (!rc)
                rc = api_start(req, &run_id_shape, &params[2], NULL);
        if (rc)
                return rc;
        return send_children(req, st, params,
                             arena_printf(req->arena, "run %s not found", params[2]));
}

int api_runs_actions(struct request *req)
{
        return run_children(req, &run_actions_stmt);
}

int api_runs_llm_calls(struct request *req)
{
        return run_children(req, &run_llm_calls_stmt);
}

int api_beads_runs(struct request *req)
{
        const char *params[3];
        int rc = api_page(req, 100, &params[0], &params[1]);

        if (!rc)
                rc = api_start(req, &(const struct api_shape){.id = api_bead_id}, &params[2], NULL);
        if (rc)
                return rc;
        return send_children(req, &bead_runs_stmt, params,
                             arena_printf(req->arena, "bead %s not found", params[2]));
}

int api_beads_conversation(struct request *req)
{
        const char *params[4];
        int rc = api_page(req, 500, &params[0], &params[1]);

        params[3] = query_get(req, "run_id");
        if (!rc && params[3] && !is_serial(params[3]))
                rc = http_fail(req, ERR_INVALID, "run_id: '%.64s' is not a run id", params[3]);
        if (!rc)
                rc = api_start(req, &(const struct api_shape){.id = api_bead_id}, &params[2], NULL);
        if (rc)
                return rc;
        return send_children(req, &bead_conversation_stmt, params,
                             arena_printf(req->arena, "bead %s not found", params[2]));
}

int api_commands_list(struct request *req)
{
        const char *params[6];
        int rc = owner_filters(req, &params[2]);

        params[5] = query_get(req, "run_id");
        if (!rc && params[5] && !is_serial(params[5]))
                rc = http_fail(req, ERR_INVALID, "run_id: '%.64s' is not a run id", params[5]);
        if (!rc)
                rc = api_page(req, 100, &params[0], &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &command_list_stmt, params, params[0], params[1]);
}

int api_commands_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &command_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &command_get_stmt, &id, 200,
                            arena_printf(req->arena, "command %s not found", id));
}

int api_projects_lessons(struct request *req)
{
        const char *params[3];
        int rc = api_page(req, 100, &params[0], &params[1]);

        if (!rc)
                rc = api_start(req, &(const struct api_shape){.id = api_project_id}, &params[2],
                               NULL);
        if (rc)
                return rc;
        return send_children(req, &project_lessons_stmt, params,
                             arena_printf(req->arena, "project %s not found", params[2]));
}
