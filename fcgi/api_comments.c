/*
 * api_comments — threaded bead comments: GET/POST /api/v1/beads/{id}/comments,
 * PATCH/DELETE /api/v1/comments/{id}.
 *
 * Comments are returned flat in creation order; parent_id links a reply to the comment it
 * answers (always on the same bead), so a client builds the thread in one pass.  Deleting keeps
 * the row with empty content so replies keep their place.
 */
#include "api.h"
#include "err.h"

static const struct field_spec comment_create_fields[] = {
        {"content", FIELD_STRING, FIELD_REQUIRED, 1, 65536, NULL},
        {"parent_id", FIELD_INT, FIELD_NULLABLE, 1, INT64_MAX, NULL},
        {"author_id", FIELD_STRING, 0, 1, 200, NULL},
        {"author_username", FIELD_STRING, 0, 0, 200, NULL},
};

static const struct field_spec comment_update_fields[] = {
        {"content", FIELD_STRING, FIELD_REQUIRED, 1, 65536, NULL},
};

static struct db_stmt comment_list_stmt = {
        .name = "comment_list",
        .sql = "SELECT (SELECT coalesce(json_agg(loom_comment_json(c) ORDER BY c.created_at, c.id),"
               "                         '[]')"
               "        FROM bead_comments c WHERE c.bead_id = b.id)"
               " FROM beads b WHERE b.id = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt comment_create_stmt = {
        .name = "comment_create",
        .sql = "SELECT loom_comment_create($1, $2::jsonb, $3)",
        .nparams = 3,
};

static struct db_stmt comment_update_stmt = {
        .name = "comment_update",
        .sql = "SELECT loom_comment_update($1::bigint, $2, $3)",
        .nparams = 3,
};

static struct db_stmt comment_delete_stmt = {
        .name = "comment_delete",
        .sql = "SELECT loom_comment_delete($1::bigint, $2)",
        .nparams = 2,
};

static int comment_check_author(struct request *req, json_object *body)
{
        const char *author = input_string(body, "author_id");

        if (author && !input_is_name(author))
                return http_fail(req, ERR_INVALID,
                                 "author_id: must not contain control "
                                 "characters");
        return ERR_OK;
}

static const struct api_shape comment_list_shape = {.id = api_bead_id};

static const struct api_shape comment_create_shape = {
        .id = api_bead_id,
        .fields = comment_create_fields,
        .nfields = INPUT_NFIELDS(comment_create_fields),
        .flags = API_BODY,
        .check = comment_check_author,
};

static const struct api_shape comment_update_shape = {
        .id = api_comment_id,
        .fields = comment_update_fields,
        .nfields = INPUT_NFIELDS(comment_update_fields),
        .flags = API_BODY,
};

static const struct api_shape comment_delete_shape = {.id = api_comment_id};

int api_comments_list(struct request *req)
{
        const char *id;
        int rc = api_start(req, &comment_list_shape, &id, NULL);

        if (rc)
                return rc;
        return api_send_row(req, &comment_list_stmt, &id, 200,
                            arena_printf(req->arena, "bead %s not found", id));
}

int api_comments_create(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &comment_create_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = api_json_text(body);
        params[2] = req->actor;
        return api_send_row(req, &comment_create_stmt, params, 201, NULL);
}

int api_comments_update(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &comment_update_shape, &params[0], &body);

        if (rc)
                return rc;
        params[1] = input_string(body, "content");
        params[2] = req->actor;
        return api_send_row(req, &comment_update_stmt, params, 200, NULL);
}

int api_comments_delete(struct request *req)
{
        const char *params[2];
        int rc = api_start(req, &comment_delete_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = req->actor;
        return api_send_row(req, &comment_delete_stmt, params, 200, NULL);
}
