/*
 * api — the handlers of loom-api, one file per resource (api_beads.c, api_projects.c, ...), and
 * the helpers they share (api_common.c).  routes.c binds them to paths.
 */
#ifndef LOOM_API_H
#define LOOM_API_H

#include "db.h"
#include "http.h"
#include "input.h"

#define API_VERSION    "0.1.0"
#define API_MAX_PAGE   1000
#define API_MAX_EXPORT 100000             /* rows in one export */
#define API_EXPORT_MAX ((size_t)64 << 20) /* bytes of one export */

/* Process start (monotonic seconds), for uptime. Set by main. */
extern double api_started_at;
double api_now(void);

/*
 * Runs st and sends row 0, column 0 (a JSON text) with status.  No row: ERR_NOT_FOUND with
 * the message not_found (a plain string; may be NULL for a generic one).
 */
int api_send_row(struct request *req, struct db_stmt *st, const char *const *params, int status,
                 const char *not_found) __attribute__((warn_unused_result));
/* Path parameter 0 as a bead / project / comment id; ERR_INVALID naming it when malformed. */
int api_bead_id(struct request *req, const char **out) __attribute__((warn_unused_result));
int api_project_id(struct request *req, const char **out) __attribute__((warn_unused_result));
int api_comment_id(struct request *req, const char **out) __attribute__((warn_unused_result));

#define API_BODY     0x1u /* read a JSON object body and check it against fields */
#define API_PARTIAL  0x2u /* required fields may be absent (partial updates) */
#define API_EMPTY_OK 0x4u /* no body at all reads as {} */
#define API_NONEMPTY 0x8u /* {} is an error: "no fields to update" */

/* What a route's request must carry; api_start() checks it in this order. */
struct api_shape {
        int (*id)(struct request *req, const char **out); /* path id, or NULL */
        const struct field_spec *fields;                  /* with API_BODY */
        size_t nfields;
        unsigned flags;
        int (*check)(struct request *req, json_object *body); /* checks fields cannot express */
};

/*
 * The common start of a handler: the path id (into *id), no query parameter left unread, and
 * with API_BODY the JSON body parsed and checked (into *body, owned by the arena).  Returns 0,
 * or the first problem as an err_code with its message recorded.
 */
int api_start(struct request *req, const struct api_shape *shape, const char **id,
              json_object **body) __attribute__((warn_unused_result));

/* Reads limit (default def, 1..API_MAX_PAGE) and offset into decimal strings in the arena. */
int api_page(struct request *req, long def, const char **limit, const char **offset)
        __attribute__((warn_unused_result));
/* After a paged list: sets X-Next-Offset when more rows exist. */
void api_next_offset(struct request *req, const char *limit, const char *offset, bool more);
/*
 * Runs a list statement whose row is (json array, more boolean), sends the array with 200 and
 * X-Next-Offset when more rows exist.
 */
int api_send_list(struct request *req, struct db_stmt *st, const char *const *params,
                  const char *limit, const char *offset) __attribute__((warn_unused_result));
/* A compact JSON text of obj, owned by obj. */
const char *api_json_text(json_object *obj);
/*
 * Runs an export statement (flat rows; column names are the CSV header and the JSON keys) and
 * sends at most max_rows of them as a download: format "csv" (text/csv) or "json", with
 * Content-Disposition naming <name>.<format>, and X-Truncated: true when the statement returned
 * more than max_rows (it should ask for max_rows + 1), plus X-Next-Offset (offset + max_rows)
 * when offset >= 0.  ERR_TOO_LARGE past the buffer cap.
 */
int api_send_export(struct request *req, struct db_stmt *st, const char *const *params,
                    const char *format, const char *name, int max_rows, long offset)
        __attribute__((warn_unused_result));
/* project_id (checked) and period (1h, 24h, 7d, 30d; default 24h) of a read model. */
int api_period_params(struct request *req, const char **project_id, const char **period)
        __attribute__((warn_unused_result));

int api_health(struct request *req);
int api_health_live(struct request *req);
int api_health_ready(struct request *req);
int api_v1_health(struct request *req);

int api_projects_list(struct request *req);
int api_projects_create(struct request *req);
int api_projects_get(struct request *req);
int api_projects_update(struct request *req);
int api_projects_delete(struct request *req);
int api_projects_close(struct request *req);
int api_projects_reopen(struct request *req);
int api_projects_state(struct request *req);
int api_projects_budget_get(struct request *req);
int api_projects_budget_put(struct request *req);
int api_beads_budget_get(struct request *req);
int api_beads_budget_put(struct request *req);
/*
 * The budget keys of a body's "context" (a project's budget_usd, budget_monthly_usd,
 * approval_cost_usd, require_approval_merge; a bead's budget_usd, spend_allowance_usd), if
 * any: amounts in USD and flags, or null.  0, or ERR_INVALID naming the key.
 */
int api_budget_check_context(struct request *req, json_object *body, bool bead)
        __attribute__((warn_unused_result));

int api_beads_list(struct request *req);
int api_beads_ready(struct request *req);
int api_beads_create(struct request *req);
int api_beads_bulk_update(struct request *req);
int api_beads_get(struct request *req);
int api_beads_update(struct request *req);
int api_beads_delete(struct request *req);
int api_beads_claim(struct request *req);
int api_beads_redispatch(struct request *req);

int api_comments_list(struct request *req);
int api_comments_create(struct request *req);
int api_comments_update(struct request *req);
int api_comments_delete(struct request *req);

int api_beads_escalate(struct request *req);
int api_decisions_list(struct request *req);
int api_decisions_get(struct request *req);
int api_decisions_decide(struct request *req);
int api_events_stats(struct request *req);

int api_analytics_stats(struct request *req);
int api_analytics_costs(struct request *req);
int api_analytics_logs(struct request *req);
int api_analytics_export(struct request *req);
int api_analytics_velocity(struct request *req);
int api_logs_recent(struct request *req);
int api_logs_export(struct request *req);
int api_metrics(struct request *req);

int api_runs_list(struct request *req);
int api_runs_get(struct request *req);
int api_runs_cancel(struct request *req);
int api_runs_actions(struct request *req);
int api_runs_llm_calls(struct request *req);
int api_beads_runs(struct request *req);
int api_beads_conversation(struct request *req);
int api_commands_list(struct request *req);
int api_commands_get(struct request *req);
int api_projects_lessons(struct request *req);

int api_personas_list(struct request *req);
int api_personas_get(struct request *req);
int api_personas_put(struct request *req);

int api_agents_list(struct request *req);
int api_agents_create(struct request *req);
int api_agents_get(struct request *req);
int api_agents_update(struct request *req);
int api_agents_delete(struct request *req);

int api_providers_list(struct request *req);
int api_providers_create(struct request *req);
int api_providers_get(struct request *req);
int api_providers_update(struct request *req);
int api_providers_delete(struct request *req);
int api_providers_models(struct request *req);

int api_motivations_list(struct request *req);
int api_motivations_create(struct request *req);
int api_motivations_get(struct request *req);
int api_motivations_update(struct request *req);
int api_motivations_delete(struct request *req);
int api_motivations_enable(struct request *req);
int api_motivations_disable(struct request *req);
int api_motivations_trigger(struct request *req);
int api_motivations_history(struct request *req);
int api_motivations_history_all(struct request *req);

int api_work_graph(struct request *req);
int api_events_list(struct request *req);

int api_auth_login(struct request *req);
int api_auth_logout(struct request *req);
int api_auth_refresh(struct request *req);
int api_auth_me(struct request *req);
int api_auth_change_password(struct request *req);
int api_auth_keys_list(struct request *req);
int api_auth_keys_create(struct request *req);
int api_auth_keys_revoke(struct request *req);
int api_auth_users_list(struct request *req);
int api_auth_users_create(struct request *req);
int api_auth_users_update(struct request *req);
int api_auth_check(struct request *req);
int api_audit_list(struct request *req);
int api_members_list(struct request *req);
int api_members_add(struct request *req);
int api_members_remove(struct request *req);

int api_activity_feed(struct request *req);
int api_notifications_list(struct request *req);
int api_notifications_read(struct request *req);
int api_notifications_read_all(struct request *req);
int api_notifications_prefs_get(struct request *req);
int api_notifications_prefs_set(struct request *req);

/* Project export / import (api_export.c) and the import document's own checks (api_import.c). */
#define IMPORT_MAX_BODY         ((size_t)16 << 20) /* nginx lets this much through for import */
#define IMPORT_MAX_BEADS        5000
#define IMPORT_MAX_DEPENDENCIES 20000
#define IMPORT_MAX_COMMENTS     20000

struct import_counts {
        size_t beads, dependencies, comments, decisions;
};

/*
 * Checks an import document without the database: header (format "loom-export", version 1),
 * project and rename fields, every bead, dependency, comment and decision, the caps, duplicate
 * ids, dangling references, two parents, dependency cycles and comment threads.  0 with
 * *counts filled, or ERR_INVALID with a message that names the place.  Allocates in req->arena.
 */
int api_import_check(struct request *req, json_object *doc, struct import_counts *counts)
        __attribute__((warn_unused_result));
int api_projects_export(struct request *req);
int api_projects_import(struct request *req);

int api_pair(struct request *req);
int api_chat_completions(struct request *req);
int api_chat_completions_stream(struct request *req);
int api_conversations_list(struct request *req);
int api_conversations_get(struct request *req);
int api_conversations_reset(struct request *req);
int api_conversations_delete(struct request *req);
int api_conversations_inject(struct request *req);
int api_memory_list(struct request *req);
int api_memory_put(struct request *req);
int api_memory_delete(struct request *req);

#endif
