/*
 * api_conversations — the conversations people can read and steer:
 *
 *   GET    /api/v1/conversations               list (project_id, bead_id, kind, limit, offset),
 *                                              most recently active first, with message counts
 *   GET    /api/v1/conversations/{id}          one, with its newest messages (limit, 500)
 *   POST   /api/v1/conversations/{id}/reset    clear its history
 *   DELETE /api/v1/conversations/{id}          delete it
 *   POST   /api/v1/conversations/{id}/inject   {content} (or Loom's {message}): a person's
 *                                              message for the bead's live run
 *
 * A conversation id is either a bead id — the action loop's conversation with the model,
 * across the bead's runs (the messages table; kind "bead") — or "pair_<32 hex>", a pair
 * programming session (kind "pair", POST /api/v1/pair).  Resetting or deleting a bead's
 * conversation is refused while a run of it is live (it is using it); deleting one also drops
 * the messages still waiting to be delivered.  Resetting a pair session keeps its system prompt.
 *
 * Injected messages wait in the injections table; the executor running the bead takes them
 * before its next LLM call, adds them to the conversation as "A person (name) says: …" and marks
 * them delivered, in one transaction.  Without a live (queued or running) run of the bead an
 * injection is refused with 409: nothing would read it.
 */
#include "api.h"
#include "err.h"
#include "query.h"

#include <string.h>

#define CONV_PAIR_PREFIX "pair_"
#define CONV_PAIR_HEX    32

static const char *const conv_kinds[] = {"bead", "pair", NULL};

static const struct field_spec conv_inject_fields[] = {
        {"content", FIELD_STRING, 0, 1, 65536, NULL},
        {"message", FIELD_STRING, 0, 1, 65536, NULL},
};

#define CONV_PAGE(rows)                                                                            \
        "SELECT coalesce(json_agg(p.j ORDER BY p.n) FILTER (WHERE p.n <= $1::int), '[]'),"         \
        " count(*) > $1::int FROM (SELECT t.j, row_number() OVER () AS n FROM (" rows              \
        " LIMIT $1::int + 1 OFFSET $2::int) t) p"

/* $3 project, $4 bead, $5 kind (each NULL for any). */
static struct db_stmt conv_list_stmt = {
        .name = "conv_list",
        .sql = CONV_PAGE(
                "SELECT u.j FROM ("
                " SELECT json_build_object('id', b.id, 'kind', 'bead', 'bead_id', b.id,"
                "  'project_id', b.project_id, 'title', b.title, 'user', NULL,"
                "  'agent_id', b.assigned_to, 'agent_name', NULL, 'message_count', m.n,"
                "  'tokens_used', NULL, 'live_run_id', (SELECT r.id FROM runs r"
                "   WHERE r.bead_id = b.id AND r.state IN ('queued', 'running')),"
                "  'created_at', m.first, 'updated_at', m.last, 'expires_at', NULL) AS j,"
                "  m.last AS at"
                " FROM (SELECT x.bead_id, count(*) AS n, min(x.created_at) AS first,"
                "              max(x.created_at) AS last FROM messages x"
                "       WHERE ($4::text IS NULL OR x.bead_id = $4) AND ($3::text IS NULL OR"
                "             x.bead_id IN (SELECT id FROM beads WHERE project_id = $3))"
                "       GROUP BY x.bead_id) m JOIN beads b ON b.id = m.bead_id"
                " WHERE $5::text IS NULL OR $5 = 'bead'"
                " UNION ALL"
                " SELECT loom_pair_session_json(s, b.title, (SELECT count(*) FROM pair_messages pm"
                "          WHERE pm.session_id = s.id)), s.updated_at"
                " FROM pair_sessions s JOIN beads b ON b.id = s.bead_id"
                " WHERE s.expires_at > now() AND ($3::text IS NULL OR s.project_id = $3)"
                "   AND ($4::text IS NULL OR s.bead_id = $4) AND ($5::text IS NULL OR $5 = 'pair')"
                ") u ORDER BY u.at DESC"),
        .nparams = 5,
        .readonly = true,
};

static struct db_stmt conv_get_bead_stmt = {
        .name = "conv_get_bead",
        .sql = "SELECT json_build_object('id', b.id, 'kind', 'bead', 'bead_id', b.id,"
               " 'project_id', b.project_id, 'title', b.title, 'agent_id', b.assigned_to,"
               " 'live_run_id', (SELECT r.id FROM runs r WHERE r.bead_id = b.id"
               "                 AND r.state IN ('queued', 'running')),"
               " 'message_count', (SELECT count(*) FROM messages m WHERE m.bead_id = b.id),"
               " 'messages', (SELECT coalesce(json_agg(loom_message_json(m) ORDER BY m.seq), '[]')"
               "   FROM (SELECT * FROM messages x WHERE x.bead_id = b.id"
               "         ORDER BY x.seq DESC LIMIT $2::int) m),"
               " 'injections', (SELECT coalesce(json_agg(loom_injection_json(i) ORDER BY i.id),"
               "   '[]') FROM injections i WHERE i.bead_id = b.id))"
               " FROM beads b WHERE b.id = $1",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt conv_get_pair_stmt = {
        .name = "conv_get_pair",
        .sql = "SELECT loom_pair_session_json(s, b.title, (SELECT count(*) FROM pair_messages pm"
               "   WHERE pm.session_id = s.id))::jsonb"
               " || jsonb_build_object('messages', (SELECT coalesce(jsonb_agg("
               "   loom_pair_message_json(m)::jsonb ORDER BY m.seq), '[]') FROM (SELECT * FROM"
               "   pair_messages x WHERE x.session_id = s.id ORDER BY x.seq DESC"
               "   LIMIT $2::int) m))"
               " FROM pair_sessions s JOIN beads b ON b.id = s.bead_id"
               " WHERE s.id = $1 AND s.expires_at > now()",
        .nparams = 2,
        .readonly = true,
};

static struct db_stmt conv_clear_stmt = {
        .name = "conv_clear",
        .sql = "SELECT loom_conversation_clear($1, $2::boolean, $3)",
        .nparams = 3,
};

static struct db_stmt conv_inject_stmt = {
        .name = "conv_inject",
        .sql = "SELECT loom_inject($1, $2, $3)",
        .nparams = 3,
};

static bool conv_is_pair(const char *id)
{
        size_t n = strlen(CONV_PAIR_PREFIX);

        return strncmp(id, CONV_PAIR_PREFIX, n) == 0 &&
               strspn(id + n, "0123456789abcdef") == CONV_PAIR_HEX && id[n + CONV_PAIR_HEX] == '\0';
}

/* Path parameter 0: a bead id or a pair session id. */
static int conv_id(struct request *req, const char **out)
{
        *out = req->params[0];
        if (!conv_is_pair(*out) && !input_is_bead_id(*out))
                return http_fail(req, ERR_INVALID,
                                 "'%.64s' is not a conversation id (a bead id, or pair_… for a "
                                 "pair session)",
                                 *out);
        return ERR_OK;
}

static int conv_check_inject(struct request *req, json_object *body)
{
        bool content = input_string(body, "content") != NULL;
        bool message = input_string(body, "message") != NULL;

        if (content == message)
                return http_fail(req, ERR_INVALID,
                                 content ? "give content or message, not both"
                                         : "content: required (the message for "
                                           "the agent)");
        return ERR_OK;
}

static const struct api_shape conv_id_shape = {.id = conv_id};

static const struct api_shape conv_inject_shape = {
        .id = conv_id,
        .fields = conv_inject_fields,
        .nfields = INPUT_NFIELDS(conv_inject_fields),
        .flags = API_BODY,
        .check = conv_check_inject,
};

int api_conversations_list(struct request *req)
{
        const char *params[5];
        int rc = api_page(req, 100, &params[0], &params[1]);

        params[2] = query_get(req, "project_id");
        params[3] = query_get(req, "bead_id");
        if (!rc && input_bad_project_id(req, "project_id", params[2]))
                rc = ERR_INVALID;
        if (!rc && params[3] && !input_is_bead_id(params[3]))
                rc = http_fail(req, ERR_INVALID, "bead_id: '%.64s' is not a bead id", params[3]);
        if (!rc)
                rc = query_enum(req, "kind", conv_kinds, &params[4]);
        if (!rc)
                rc = query_done(req);
        if (rc)
                return rc;
        return api_send_list(req, &conv_list_stmt, params, params[0], params[1]);
}

/* One conversation with its newest limit messages. */
static int conv_send(struct request *req, const char *id, long limit, int status)
{
        const char *params[2] = {id, arena_printf(req->arena, "%ld", limit)};

        return api_send_row(req, conv_is_pair(id) ? &conv_get_pair_stmt : &conv_get_bead_stmt,
                            params, status,
                            arena_printf(req->arena, "conversation %s not found", id));
}

int api_conversations_get(struct request *req)
{
        const char *id;
        long limit;
        int rc = query_long(req, "limit", 500, 1, API_MAX_PAGE, &limit);

        if (!rc)
                rc = api_start(req, &conv_id_shape, &id, NULL);
        if (rc)
                return rc;
        return conv_send(req, id, limit, 200);
}

/* reset (keep: the conversation is sent back, emptied) or delete (204). */
static int conv_clear(struct request *req, bool remove)
{
        const char *params[3];
        PGresult *res;
        int rc = api_start(req, &conv_id_shape, &params[0], NULL);

        if (rc)
                return rc;
        params[1] = remove ? "true" : "false";
        params[2] = req->actor;
        if (db_exec(req->db, &conv_clear_stmt, params, &res) != ERR_OK)
                return http_fail_db(req);
        PQclear(res);
        if (remove) {
                http_send_empty(req, 204);
                return ERR_OK;
        }
        return conv_send(req, params[0], 500, 200);
}

int api_conversations_reset(struct request *req)
{
        return conv_clear(req, false);
}

int api_conversations_delete(struct request *req)
{
        return conv_clear(req, true);
}

int api_conversations_inject(struct request *req)
{
        const char *params[3];
        json_object *body;
        int rc = api_start(req, &conv_inject_shape, &params[0], &body);

        if (rc)
                return rc;
        if (conv_is_pair(params[0]))
                return http_fail(req, ERR_INVALID,
                                 "%s is a pair session: talk to it with POST /api/v1/pair; "
                                 "inject takes a bead id (its action loop's conversation)",
                                 params[0]);
        params[1] = input_string(body, "content") ? input_string(body, "content")
                                                  : input_string(body, "message");
        params[2] = req->actor;
        return api_send_row(req, &conv_inject_stmt, params, 202, NULL);
}
