/*
 * api_providers — /api/v1/providers: list, register, read, update, delete, and the provider's
 * own model list.
 *
 * The API key is write-only: it goes in with POST/PUT and never comes out (responses say
 * has_api_key).  It is sealed here (shared/secret.c) before it reaches the database, which stores
 * only providers.api_key_sealed, and opened only to call the provider.  Registration and changes
 * wake loom-ralph's prober through NOTIFY loom_providers; the status then moves from pending to
 * healthy or failed.
 */
#include "api.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "secret.h"

#include <json-c/json.h>
#include <string.h>

#define PROVIDER_MODELS_MAX_BYTES ((size_t)4 << 20)
#define PROVIDER_MODELS_TIMEOUT   10000

static const char *const provider_types[] = {"openai", NULL};
static const char *const provider_statuses[] = {"pending", "inactive", NULL};

#define PROVIDER_SETTABLE_FIELDS                                                                   \
        {"name", FIELD_STRING, 0, 1, 200, NULL}, {"type", FIELD_STRING, 0, 0, 0, provider_types},  \
                {"model", FIELD_STRING, 0, 0, 200, NULL},                                          \
                {"description", FIELD_STRING, 0, 0, 2000, NULL},                                   \
                {"api_key", FIELD_STRING, FIELD_NULLABLE, 0, 4096, NULL},                          \
                {"context_window", FIELD_INT, FIELD_NULLABLE, 1, 100000000, NULL},                 \
                {"tags", FIELD_STRING_ARRAY, 0, 0, 32, NULL},                                      \
                {"has_api_key", FIELD_BOOL, FIELD_READONLY, 0, 0, NULL},                           \
                {"created_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},                          \
                {"updated_at", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},

static const struct field_spec provider_create_fields[] = {
        {"id", FIELD_STRING, FIELD_REQUIRED, 1, 63, NULL},
        {"endpoint", FIELD_STRING, FIELD_REQUIRED, 8, 1000, NULL},
        {"status", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        PROVIDER_SETTABLE_FIELDS};

static const struct field_spec provider_update_fields[] = {
        {"id", FIELD_STRING, FIELD_READONLY, 0, 0, NULL},
        {"endpoint", FIELD_STRING, 0, 8, 1000, NULL},
        {"status", FIELD_STRING, 0, 0, 0, provider_statuses},
        PROVIDER_SETTABLE_FIELDS};

static struct db_stmt provider_list_stmt = {
        .name = "provider_list",
        .sql = "SELECT coalesce(json_agg(loom_provider_json(p) ORDER BY p.id), '[]')"
               " FROM providers p",
        .nparams = 0,
        .readonly = true,
};

static struct db_stmt provider_get_stmt = {
        .name = "provider_get",
        .sql = "SELECT loom_provider_json(p) FROM providers p WHERE p.id = $1",
        .nparams = 1,
        .readonly = true,
};

/* The one place the key is read back: to call the provider, never to answer a client. */
static struct db_stmt provider_target_stmt = {
        .name = "provider_target",
        .sql = "SELECT endpoint, api_key_sealed FROM providers WHERE id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt provider_create_stmt = {
        .name = "provider_create",
        .sql = "SELECT loom_provider_create($1::jsonb, $2)",
        .nparams = 2,
};

static struct db_stmt provider_update_stmt = {
        .name = "provider_update",
        .sql = "SELECT loom_provider_update($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt provider_delete_stmt = {
        .name = "provider_delete",
        .sql = "SELECT loom_provider_delete($1, $2)",
        .nparams = 2,
};

static int provider_id_param(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!input_is_project_id(*out))
                return http_fail(req, ERR_INVALID, "'%.64s' is not a valid provider id", *out);
        return ERR_OK;
}

/* id shape and an http(s) endpoint with a host. */
static int provider_check(struct request *req, json_object *body)
{
        const char *v = input_string(body, "id");

        if (v && !input_is_project_id(v))
                return http_fail(req, ERR_INVALID,
                                 "id: '%.64s' must be lower-case letters, "
                                 "digits, '-' and '_'",
                                 v);
        v = input_string(body, "endpoint");
        if (v) {
                const char *host = strncmp(v, "http://", 7) == 0    ? v + 7
                                   : strncmp(v, "https://", 8) == 0 ? v + 8
                                                                    : NULL;

                if (!host || !*host || *host == '/' || strpbrk(v, " \t\r\n"))
                        return http_fail(req, ERR_INVALID,
                                         "endpoint: '%.100s' is not an http(s) "
                                         "URL",
                                         v);
        }
        return ERR_OK;
}

/*
 * Swaps the body's plaintext "api_key" for "api_key_sealed" (null or "" stays a removal), so
 * the database never sees the key itself; the plaintext in the parsed body is wiped.
 */
static int provider_seal_key(struct request *req, json_object *body)
{
        const char *sealed = NULL;
        json_object *v;
        int rc = ERR_OK;

        if (!json_object_object_get_ex(body, "api_key", &v))
                return ERR_OK;
        if (v && json_object_get_string_len(v) > 0) {
                rc = secret_seal(req->arena, json_object_get_string(v), &sealed);
                /* json-c owns the string; wiping it in place is the only way to reach it */
                secret_wipe((char *)json_object_get_string(v),
                            (size_t)json_object_get_string_len(v));
        }
        json_object_object_del(body, "api_key");
        if (rc) {
                log_error("cannot seal an api key: %s", err_strerror(rc));
                return http_fail(req, ERR_INTERNAL, "the API key could not be sealed");
        }
        json_object_object_add(body, "api_key_sealed",
                               sealed ? json_object_new_string(sealed) : NULL);
        return ERR_OK;
}

static const struct api_shape provider_list_shape = {0};
static const struct api_shape provider_id_shape = {.id = provider_id_param};

static const struct api_shape provider_create_shape = {
        .fields = provider_create_fields,
        .nfields = INPUT_NFIELDS(provider_create_fields),
        .flags = API_BODY,
        .check = provider_check,
};

static const struct api_shape provider_update_shape = {
        .id = provider_id_param,
        .fields = provider_update_fields,
        .nfields = INPUT_NFIELDS(provider_update_fields),
        .flags = API_BODY | API_PARTIAL | API_NONEMPTY,
        .check = provider_check,
};

int api_providers_list(struct request *req)
{
        int rc = api_start(req, &provider_list_shape, NULL, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &provider_list_stmt, NULL, 200, NULL);
}

int api_providers_create(struct request *req)
{
        const char *params[2];
        json_object *body;
        int rc = api_start(req, &provider_create_shape, NULL, &body);

        if (!rc)
                rc = provider_seal_key(req, body);
        if (rc)
                return rc;
        params[0] = api_json_text(body);
        params[1] = req->actor;
        return api_send_row(req, &provider_create_stmt, params, 201, NULL);
}

int api_providers_get(struct request *req)
{
        const char *id;
        int rc = api_start(req, &provider_id_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &provider_get_stmt, &id, 200,
                            arena_printf(req->arena, "provider %s not found", id));
}

int api_providers_update(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &provider_update_shape, &params[0], &body);

        if (!rc)
                rc = provider_seal_key(req, body);
        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &provider_update_stmt, params, 200, NULL);
}

int api_providers_delete(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &provider_id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &provider_delete_stmt, params, 200, NULL);
}

static void api_clear_result(void *res)
{
        PQclear(res);
}

/*
 * GET /providers/{id}/models: the provider's GET {endpoint}/models, reduced to
 * {"models": [{"id", "owned_by", "max_model_len"}]}.  A provider that does not answer well is a
 * 502 whose message says why (not our fault, not the client's).
 */
int api_providers_models(struct request *req)
{
        struct httpc_request hr = {
                .method = "GET", .connect_timeout_ms = 3000, .timeout_ms = PROVIDER_MODELS_TIMEOUT};
        struct httpc_response res;
        json_object *doc = NULL, *data, *out, *list;
        const char *id;
        PGresult *row;
        int rc = api_start(req, &provider_id_shape, &id, NULL);

        if (rc)
                return rc;
        rc = db_exec(req->db, &provider_target_stmt, &id, &row);
        if (rc)
                return http_fail_db(req);
        arena_defer(req->arena, api_clear_result, row);
        if (PQntuples(row) == 0)
                return http_fail(req, ERR_NOT_FOUND, "provider %s not found", id);
        hr.url = arena_printf(req->arena, "%s/models", PQgetvalue(row, 0, 0));
        rc = db_value(row, 0, 1) ? secret_open(req->arena, db_value(row, 0, 1), &hr.bearer)
                                 : ERR_OK;
        if (rc)
                return http_fail(req, ERR_CONFLICT, "provider %s: %s", id,
                                 secret_open_strerror(rc));
        strbuf_init(&res.body, PROVIDER_MODELS_MAX_BYTES);
        rc = httpc_perform(&hr, &res);
        if (!rc && res.status == 200)
                doc = json_tokener_parse(res.body.buf);
        strbuf_release(&res.body);
        if (rc || res.status != 200 || !doc || !json_object_object_get_ex(doc, "data", &data) ||
            !json_object_is_type(data, json_type_array)) {
                json_object_put(doc);
                if (rc)
                        return http_fail(req, ERR_BAD_GATEWAY, "provider %s: %s", id, res.error);
                return http_fail(req, ERR_BAD_GATEWAY,
                                 "provider %s answered %ld without a model "
                                 "list",
                                 id, res.status);
        }
        out = json_object_new_object();
        list = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(data); i++) {
                json_object *m = json_object_array_get_idx(data, i), *v, *item;

                if (!json_object_object_get_ex(m, "id", &v) ||
                    !json_object_is_type(v, json_type_string))
                        continue;
                item = json_object_new_object();
                json_object_object_add(item, "id", json_object_get(v));
                if (json_object_object_get_ex(m, "owned_by", &v))
                        json_object_object_add(item, "owned_by", json_object_get(v));
                if (json_object_object_get_ex(m, "max_model_len", &v))
                        json_object_object_add(item, "max_model_len", json_object_get(v));
                json_object_array_add(list, item);
        }
        json_object_object_add(out, "provider_id", json_object_new_string(id));
        json_object_object_add(out, "models", list);
        {
                const char *text = api_json_text(out);

                http_send_json(req, 200, text, strlen(text));
        }
        json_object_put(out);
        json_object_put(doc);
        return ERR_OK;
}
