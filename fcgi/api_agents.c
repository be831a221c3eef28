/*
 * api_agents — /api/v1/personas (list, read, edit) and /api/v1/agents (list, create, read,
 * update, delete).
 *
 * Personas come from deploy/personas/<name>/SKILL.md (loaded by loom-migrate --personas); a
 * PUT here edits or creates one and marks it as a person's, so later loads leave it alone.
 * Agents are personas at work in one project; every new project gets the default set.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

static const char *const autonomy_levels[] = {"full", "semi", "supervised", NULL};
static const char *const agent_statuses[] = {"idle",    "working",  "paused",
                                             "blocked", "deciding", NULL};

static const struct field_spec persona_metadata_fields[] = {
        {"role", FIELD_STRING, 0, 0, 200, NULL},
        {"specialties", FIELD_STRING_ARRAY, 0, 0, 32, NULL},
        {"author", FIELD_STRING, 0, 0, 200, NULL},
        {"version", FIELD_STRING, 0, 0, 50, NULL},
        {"autonomy_level", FIELD_STRING, 0, 0, 0, autonomy_levels},
};

static const struct field_spec persona_put_fields[] = {
        {"name", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"description", FIELD_STRING, 0, 0, 2000, NULL},
        {"instructions", FIELD_STRING, 0, 0, 200000, NULL},
        {"license", FIELD_STRING, 0, 0, 200, NULL},
        {"compatibility", FIELD_STRING, 0, 0, 500, NULL},
        {"metadata", FIELD_OBJECT, 0, 0, 10, NULL},
        {"source", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"created_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"updated_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
};

static const struct field_spec agent_create_fields[] = {
        {"persona_name", FIELD_STRING, FIELD_REQUIRED, 1, 63, NULL},
        {"project_id", FIELD_STRING, FIELD_REQUIRED, 1, 63, NULL},
        {"name", FIELD_STRING, 0, 1, 200, NULL},
        {"role", FIELD_STRING, 0, 0, 200, NULL},
        {"provider_id", FIELD_STRING, FIELD_NULLABLE, 1, 63, NULL},
};

static const struct field_spec agent_update_fields[] = {
        {"name", FIELD_STRING, 0, 1, 200, NULL},
        {"role", FIELD_STRING, 0, 0, 200, NULL},
        {"persona_name", FIELD_STRING, 0, 1, 63, NULL},
        {"status", FIELD_STRING, 0, 0, 0, agent_statuses},
        {"id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"project_id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"current_bead", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
};

static struct db_stmt persona_list_stmt = {
        .name = "persona_list",
        .sql = "SELECT coalesce(json_agg(loom_persona_json(p, false) ORDER BY p.name), '[]')"
               " FROM personas p",
        .nparams = 0,
        .readonly = true,
};

static struct db_stmt persona_get_stmt = {
        .name = "persona_get",
        .sql = "SELECT loom_persona_json(p, true) FROM personas p WHERE p.name = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt persona_put_stmt = {
        .name = "persona_put",
        .sql = "SELECT loom_persona_put($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt agent_list_stmt = {
        .name = "agent_list",
        .sql = "SELECT coalesce(json_agg(loom_agent_json(a) ORDER BY a.project_id, a.id), '[]')"
               " FROM agents a"
               " WHERE ($1::text IS NULL OR a.project_id = $1)"
               "   AND ($2::text IS NULL OR a.status = $2)"
               "   AND ($3::text IS NULL OR a.persona_name = $3)",
        .nparams = 3,
        .readonly = true,
};

static struct db_stmt agent_get_stmt = {
        .name = "agent_get",
        .sql = "SELECT loom_agent_json(a) FROM agents a WHERE a.id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt agent_create_stmt = {
        .name = "agent_create",
        .sql = "SELECT loom_agent_create($1::jsonb, $2)",
        .nparams = 2,
};

static struct db_stmt agent_update_stmt = {
        .name = "agent_update",
        .sql = "SELECT loom_agent_update($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt agent_delete_stmt = {
        .name = "agent_delete",
        .sql = "SELECT loom_agent_delete($1, $2)",
        .nparams = 2,
};

/* Persona names are project-id shaped: lower-case letters, digits and dashes. */
static int persona_name_param(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!input_is_project_id(*out) || strchr(*out, '_'))
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid persona name", *out);
        return ERR_OK;
}

static int agent_id_param(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!input_is_name(*out) || strlen(*out) > 100 || strchr(*out, '/'))
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid agent id", *out);
        return ERR_OK;
}

static int persona_check_metadata(struct request *req, json_object *body)
{
        json_object *meta;
        int rc;

        if (!json_object_object_get_ex(body, "metadata", &meta))
                return ERR_OK;
        rc = input_check(req, meta, persona_metadata_fields, INPUT_NFIELDS(persona_metadata_fields),
                         true);
        return rc ? input_prefix_error(req, rc, "metadata.") : ERR_OK;
}

static int agent_check_ids(struct request *req, json_object *body)
{
        const char *v = input_string(body, "project_id");

        if (input_bad_project_id(req, "project_id", v))
                return ERR_INVALID;
        v = input_string(body, "persona_name");
        if (v && !input_is_project_id(v))
                return http_fail(req, ERR_INVALID,
                                 "persona_name: '%.64s' is not a valid persona "
                                 "name",
                                 v);
        return ERR_OK;
}

static const struct api_shape persona_list_shape = {0};
static const struct api_shape persona_get_shape = {.id = persona_name_param};

static const struct api_shape persona_put_shape = {
        .id = persona_name_param,
        .fields = persona_put_fields,
        .nfields = INPUT_NFIELDS(persona_put_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = persona_check_metadata,
};

static const struct api_shape agent_create_shape = {
        .fields = agent_create_fields,
        .nfields = INPUT_NFIELDS(agent_create_fields),
        .flags = API_BODY,
        .check = agent_check_ids,
};

static const struct api_shape agent_id_shape = {.id = agent_id_param};

static const struct api_shape agent_update_shape = {
        .id = agent_id_param,
        .fields = agent_update_fields,
        .nfields = INPUT_NFIELDS(agent_update_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = agent_check_ids,
};

int api_personas_list(struct request *req)
{
        int rc = api_start(req, &persona_list_shape, NULL, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &persona_list_stmt, NULL, 200, NULL);
}

int api_personas_get(struct request *req)
{
        const char *name;
        int rc = api_start(req, &persona_get_shape, &name, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &persona_get_stmt, &name, 200,
                            arena_printf(req->arena, "persona %s not found", name));
}

int api_personas_put(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &persona_put_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &persona_put_stmt, params, 200, NULL);
}

int api_agents_list(struct request *req)
{
        const char *params[3];
        int rc;

        params[0] = query_get(req, "project_id");
        params[2] = query_get(req, "persona_name");
        rc = query_enum(req, "status", agent_statuses, &params[1]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        if (input_bad_project_id(req, "project_id", params[0]))
                return ERR_INVALID;
        if (params[2] && !input_is_project_id(params[2]))
                return http_fail(req, ERR_INVALID,
                                 "persona_name: '%.64s' is not a valid persona "
                                 "name",
                                 params[2]);
        return api_send_row(req, &agent_list_stmt, params, 200, NULL);
}

int api_agents_create(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &agent_create_shape, NULL, &body);

        if (rc)
                return rc;
        params[0] = api_json_text(body);
        params[1] = req->actor;
        return api_send_row(req, &agent_create_stmt, params, 201, NULL);
}

int api_agents_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &agent_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &agent_get_stmt, &id, 200,
                            arena_printf(req->arena, "agent %s not found", id));
}

int api_agents_update(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &agent_update_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &agent_update_stmt, params, 200, NULL);
}

int api_agents_delete(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &agent_id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &agent_delete_stmt, params, 200, NULL);
}
