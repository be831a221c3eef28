/*
 * cmd_beads — loomctl bead list / create / show / claim / poke / unblock / errors.
 */
#include "loomctl.h"

#include <string.h>

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static const struct cli_col bead_list_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"PRI", "priority", COL_PRIORITY, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"TYPE", "type", COL_TEXT, 0},
        {"ASSIGNED", "assigned_to", COL_TEXT, 24},
        {"TITLE", "title", COL_TEXT, 60},
};

static const struct cli_col bead_show_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"TITLE", "title", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"PRIORITY", "priority", COL_PRIORITY, 0},
        {"TYPE", "type", COL_TEXT, 0},
        {"PROJECT", "project_id", COL_TEXT, 0},
        {"ASSIGNED", "assigned_to", COL_TEXT, 0},
        {"BLOCKED BY", "blocked_by", COL_TEXT, 0},
        {"BLOCKS", "blocks", COL_TEXT, 0},
        {"PARENT", "parent", COL_TEXT, 0},
        {"CHILDREN", "children", COL_TEXT, 0},
        {"RELATED", "related_to", COL_TEXT, 0},
        {"TAGS", "tags", COL_TEXT, 0},
        {"CREATED", "created_at", COL_TIME, 0},
        {"UPDATED", "updated_at", COL_TIME, 0},
        {"CLOSED", "closed_at", COL_TIME, 0},
        {"DESCRIPTION", "description", COL_TEXT, 200},
};

static const struct cli_col bead_error_cols[] = {
        {"AT", "at", COL_TIME, 0},
        {"RUN", "run_id", COL_TEXT, 0},
        {"REASON", "reason", COL_TEXT, 0},
        {"ERROR", "error", COL_TEXT, 100},
};

/* "P1" or "1" → 1; CLI_USAGE otherwise. */
static int bead_priority(const struct cli *c, const struct cli_args *a, const char **out)
{
        const char *v = cli_get(a, "priority");

        *out = v;
        if (!v)
                return CLI_OK;
        if ((v[0] == 'P' || v[0] == 'p') && v[1])
                v++;
        if (strlen(v) != 1 || v[0] < '0' || v[0] > '3')
                return cli_usage_error(c, a, "--priority: '%s' is not 0 to 3 (or P0 to P3)", *out);
        *out = v;
        return CLI_OK;
}

static int bead_list(struct cli *c, const struct cli_args *a)
{
        struct strbuf url;
        const char *prio;
        char lim[24];
        long limit = 100;
        int rc = bead_priority(c, a, &prio);

        if (!rc && cli_has(a, "limit"))
                rc = cli_get_long(c, a, "limit", 1, 1000, &limit);
        if (rc)
                return rc;
        strbuf_init(&url, 0);
        strbuf_addstr(&url, "/api/v1/beads");
        cli_url_query(&url, "project_id", cli_get(a, "project"));
        cli_url_query(&url, "status", cli_get(a, "status"));
        cli_url_query(&url, "type", cli_get(a, "type"));
        cli_url_query(&url, "assigned_to", cli_get(a, "assigned-to"));
        cli_url_query(&url, "priority", prio);
        cli_url_query(&url, "tag", cli_get(a, "tag"));
        snprintf(lim, sizeof(lim), "%ld", limit);
        cli_url_query(&url, "limit", lim);
        rc = cli_fetch_print(c, "GET", url.buf, NULL, bead_list_cols, NCOLS(bead_list_cols), true);
        strbuf_release(&url);
        return rc;
}

static json_object *bead_strings(const struct cli_args *a, const char *opt)
{
        json_object *arr = json_object_new_array();
        const char *v;

        for (int i = 0; (v = cli_get_nth(a, opt, i)); i++)
                json_object_array_add(arr, json_object_new_string(v));
        return arr;
}

static void bead_put_str(json_object *o, const char *key, const char *v)
{
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

static int bead_create(struct cli *c, const struct cli_args *a)
{
        const char *prio;
        json_object *body;
        int rc = bead_priority(c, a, &prio);

        if (rc)
                return rc;
        if (!cli_has(a, "project") || !cli_has(a, "title"))
                return cli_usage_error(c, a, "--project and --title are required");
        body = json_object_new_object();
        bead_put_str(body, "project_id", cli_get(a, "project"));
        bead_put_str(body, "title", cli_get(a, "title"));
        bead_put_str(body, "description", cli_get(a, "description"));
        bead_put_str(body, "type", cli_get(a, "type"));
        bead_put_str(body, "parent", cli_get(a, "parent"));
        bead_put_str(body, "assigned_to", cli_get(a, "assign"));
        if (prio)
                json_object_object_add(body, "priority", json_object_new_int(prio[0] - '0'));
        if (cli_has(a, "tag"))
                json_object_object_add(body, "tags", bead_strings(a, "tag"));
        if (cli_has(a, "blocked-by"))
                json_object_object_add(body, "blocked_by", bead_strings(a, "blocked-by"));
        rc = cli_fetch_print(c, "POST", "/api/v1/beads", body, bead_show_cols,
                             NCOLS(bead_show_cols), false);
        json_object_put(body);
        return rc;
}

static int bead_show(struct cli *c, const struct cli_args *a)
{
        struct strbuf sb;
        int rc;

        strbuf_init(&sb, 0);
        rc = cli_fetch_print(c, "GET", cli_path(&sb, "/api/v1/beads/", a->pos[0], NULL), NULL,
                             bead_show_cols, NCOLS(bead_show_cols), false);
        strbuf_release(&sb);
        return rc;
}

/* POST /api/v1/beads/{id}/<action> with body; prints the bead. */
static int bead_post(struct cli *c, const char *id, const char *action, json_object *body)
{
        struct strbuf sb;
        int rc;

        strbuf_init(&sb, 0);
        rc = cli_fetch_print(c, "POST", cli_path(&sb, "/api/v1/beads/", id, action), body,
                             bead_show_cols, NCOLS(bead_show_cols), false);
        strbuf_release(&sb);
        json_object_put(body);
        return rc;
}

static int bead_claim(struct cli *c, const struct cli_args *a)
{
        json_object *body;

        if (!cli_has(a, "agent"))
                return cli_usage_error(c, a, "--agent is required");
        body = json_object_new_object();
        bead_put_str(body, "agent_id", cli_get(a, "agent"));
        return bead_post(c, a->pos[0], "/claim", body);
}

static int bead_poke(struct cli *c, const struct cli_args *a)
{
        json_object *body = json_object_new_object();

        bead_put_str(body, "reason",
                     cli_get(a, "reason") ? cli_get(a, "reason") : "poked with loomctl");
        return bead_post(c, a->pos[0], "/redispatch", body);
}

/* GET /api/v1/beads/{id} into *r. */
static int bead_fetch(struct cli *c, const char *id, struct cli_reply *r)
{
        struct strbuf sb;
        int rc;

        strbuf_init(&sb, 0);
        rc = cli_call(c, "GET", cli_path(&sb, "/api/v1/beads/", id, NULL), NULL, r);
        strbuf_release(&sb);
        return rc;
}

static int bead_unblock(struct cli *c, const struct cli_args *a)
{
        struct cli_reply r = {0};
        json_object *body, *st;
        int rc = bead_fetch(c, a->pos[0], &r);

        st = rc ? NULL : cli_field(r.body, "status");
        if (!rc && !cli_has(a, "force") &&
            strcmp(st ? json_object_get_string(st) : "", "blocked") != 0) {
                fprintf(stderr,
                        "%s: bead %s is not blocked (status %s); 'bead poke' redispatches it, "
                        "or pass --force\n",
                        c->prog, a->pos[0], st ? json_object_get_string(st) : "unknown");
                rc = CLI_API;
        }
        cli_reply_release(&r);
        if (rc)
                return rc;
        body = json_object_new_object();
        bead_put_str(body, "reason",
                     cli_get(a, "reason") ? cli_get(a, "reason") : "unblocked with loomctl");
        return bead_post(c, a->pos[0], "/redispatch", body);
}

static int bead_errors(struct cli *c, const struct cli_args *a)
{
        struct cli_reply r = {0};
        json_object *hist;
        int rc = bead_fetch(c, a->pos[0], &r);

        if (rc) {
                cli_reply_release(&r);
                return rc;
        }
        hist = cli_field(r.body, "context.error_history");
        if (!hist || !json_object_is_type(hist, json_type_array))
                hist = NULL;
        if (c->json) {
                json_object *empty = json_object_new_array();

                cli_print_json(hist ? hist : empty);
                json_object_put(empty);
        } else {
                cli_print_table(hist, bead_error_cols, NCOLS(bead_error_cols));
                if (!hist || json_object_array_length(hist) == 0)
                        fprintf(stderr, "bead %s has no recorded errors\n", a->pos[0]);
        }
        cli_reply_release(&r);
        return CLI_OK;
}

static const struct cli_opt bead_list_opts[] = {
        {"project", 'p', "ID", "only this project's beads"},
        {"status", 0, "STATUS", "open, in_progress, blocked, closed or deferred"},
        {"type", 0, "TYPE", "task, bug, feature, epic, chore or decision"},
        {"assigned-to", 0, "AGENT", "only beads assigned to this agent"},
        {"priority", 0, "P", "0 to 3 (or P0 to P3)"},
        {"tag", 0, "TAG", "only beads with this tag"},
        {"limit", 'n', "N", "at most N beads (1 to 1000, default 100)"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt bead_create_opts[] = {
        {"project", 'p', "ID", "the project (required)"},
        {"title", 't', "TEXT", "the title (required)"},
        {"description", 'd', "TEXT", "what to do"},
        {"priority", 0, "P", "0 to 3 (or P0 to P3; default 2)"},
        {"type", 0, "TYPE", "task (default), bug, feature, epic, chore or decision"},
        {"tag", 0, "TAG", "a tag (repeat for more)"},
        {"blocked-by", 0, "ID", "a bead that blocks this one (repeat for more)"},
        {"parent", 0, "ID", "the parent bead (an epic)"},
        {"assign", 0, "AGENT", "assign it to this agent"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt bead_claim_opts[] = {
        {"agent", 0, "AGENT", "the agent that claims it (required)"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt bead_reason_opts[] = {
        {"reason", 'r', "TEXT", "why (kept in the bead's context)"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt bead_unblock_opts[] = {
        {"reason", 'r', "TEXT", "why (kept in the bead's context)"},
        {"force", 0, NULL, "reset the bead even when it is not blocked"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt no_opts[] = {{NULL, 0, NULL, NULL}};

const struct cli_cmd cli_bead_cmds[] = {
        {"bead", "list", "", 0, 0, "List beads, in priority order.",
         "Examples:\n  loomctl bead list --project demo --status open\n"
         "  loomctl bead list -p demo --priority P0 -o json\n",
         bead_list_opts, bead_list},
        {"bead", "create", "", 0, 0, "Create a bead.",
         "Examples:\n  loomctl bead create -p demo -t 'Fix the login form' --priority 1 "
         "--tag ui\n"
         "  loomctl bead create -p demo -t 'Deploy' --blocked-by demo-3 --blocked-by demo-4\n",
         bead_create_opts, bead_create},
        {"bead", "show", "<bead-id>", 1, 1, "Show one bead.",
         "Example:\n  loomctl bead show demo-3\n", no_opts, bead_show},
        {"bead", "claim", "<bead-id>", 1, 1, "Claim an open, ready bead for an agent.",
         "Example:\n  loomctl bead claim demo-3 --agent demo-engineering-manager\n",
         bead_claim_opts, bead_claim},
        {"bead", "poke", "<bead-id>", 1, 1,
         "Redispatch a bead: back to open and unassigned, its failure history cleared.",
         "Example:\n  loomctl bead poke demo-3 --reason 'the provider is back'\n", bead_reason_opts,
         bead_poke},
        {"bead", "unblock", "<bead-id>", 1, 1,
         "Unblock a blocked bead: redispatch it with its loop and error bookkeeping reset.",
         "Example:\n  loomctl bead unblock demo-3 --reason 'fixed the flaky test'\n",
         bead_unblock_opts, bead_unblock},
        {"bead", "errors", "<bead-id>", 1, 1,
         "Show a bead's error history (the failures of its runs, newest last).",
         "Example:\n  loomctl bead errors demo-3\n", no_opts, bead_errors},
        {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};
