/*
 * cmd_projects — loomctl project list / show / create, export and import.
 */
#include "loomctl.h"

#include <errno.h>
#include <string.h>

#define NCOLS(a)        (sizeof(a) / sizeof((a)[0]))
#define IMPORT_FILE_MAX ((size_t)16 << 20) /* the server's cap (IMPORT_MAX_BODY) */

static const struct cli_col project_list_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"NAME", "name", COL_TEXT, 40},
        {"PREFIX", "bead_prefix", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"BRANCH", "branch", COL_TEXT, 0},
        {"GIT REPO", "git_repo", COL_TEXT, 50},
};

static const struct cli_col project_show_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"NAME", "name", COL_TEXT, 0},
        {"PREFIX", "bead_prefix", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"GIT REPO", "git_repo", COL_TEXT, 0},
        {"BRANCH", "branch", COL_TEXT, 0},
        {"STRATEGY", "git_strategy", COL_TEXT, 0},
        {"PARENT", "parent_id", COL_TEXT, 0},
        {"PERPETUAL", "is_perpetual", COL_YESNO, 0},
        {"CONTEXT", "context", COL_TEXT, 200},
        {"CREATED", "created_at", COL_TIME, 0},
        {"UPDATED", "updated_at", COL_TIME, 0},
        {"DESCRIPTION", "description", COL_TEXT, 200},
};

static int project_list(struct cli *c, const struct cli_args *a)
{
        struct strbuf url;
        int rc;

        strbuf_init(&url, 0);
        strbuf_addstr(&url, "/api/v1/projects");
        cli_url_query(&url, "status", cli_get(a, "status"));
        cli_url_query(&url, "limit", "1000");
        rc = cli_fetch_print(c, "GET", url.buf, NULL, project_list_cols, NCOLS(project_list_cols),
                             true);
        strbuf_release(&url);
        return rc;
}

/* "open 3, in_progress 1, ..." from GET /projects/{id}/state. */
static void project_print_counts(const struct cli *c, const char *id)
{
        static const char *const st[] = {"open", "in_progress", "blocked", "deferred", "closed"};
        struct cli_reply r = {0};
        struct strbuf sb;

        strbuf_init(&sb, 0);
        if (cli_call(c, "GET", cli_path(&sb, "/api/v1/projects/", id, "/state"), NULL, &r) ==
            CLI_OK) {
                printf("%-13s", "BEADS");
                for (int i = 0; i < 5; i++) {
                        json_object *n = cli_field(cli_field(r.body, "beads_by_status"), st[i]);

                        printf("%s%s %lld", i ? ", " : "", st[i],
                               n ? (long long)json_object_get_int64(n) : 0LL);
                }
                printf("\n");
        }
        cli_reply_release(&r);
        strbuf_release(&sb);
}

static int project_show(struct cli *c, const struct cli_args *a)
{
        struct strbuf sb;
        int rc;

        strbuf_init(&sb, 0);
        rc = cli_fetch_print(c, "GET", cli_path(&sb, "/api/v1/projects/", a->pos[0], NULL), NULL,
                             project_show_cols, NCOLS(project_show_cols), false);
        if (!rc && !c->json)
                project_print_counts(c, a->pos[0]);
        strbuf_release(&sb);
        return rc;
}

static void project_put(json_object *o, const char *key, const char *v)
{
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

static int project_create(struct cli *c, const struct cli_args *a)
{
        json_object *body;
        int rc;

        if (!cli_has(a, "name"))
                return cli_usage_error(c, a, "--name is required");
        body = json_object_new_object();
        project_put(body, "name", cli_get(a, "name"));
        project_put(body, "id", cli_get(a, "id"));
        project_put(body, "bead_prefix", cli_get(a, "prefix"));
        project_put(body, "git_repo", cli_get(a, "git-repo"));
        project_put(body, "branch", cli_get(a, "branch"));
        project_put(body, "description", cli_get(a, "description"));
        if (cli_has(a, "paused")) {
                json_object *ctx = json_object_new_object();

                json_object_object_add(ctx, "dispatch_paused", json_object_new_string("true"));
                json_object_object_add(body, "context", ctx);
        }
        rc = cli_fetch_print(c, "POST", "/api/v1/projects", body, project_show_cols,
                             NCOLS(project_show_cols), false);
        json_object_put(body);
        return rc;
}

/* ---- export / import ---------------------------------------------------------------------- */

static size_t count_of(json_object *doc, const char *key)
{
        json_object *v = cli_field(doc, key);

        return v && json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
}

static int project_export(struct cli *c, const struct cli_args *a)
{
        const char *file = cli_get(a, "file");
        struct cli_reply r = {0};
        struct strbuf sb;
        FILE *f = stdout;
        int rc;

        strbuf_init(&sb, 0);
        rc = cli_call(c, "GET", cli_path(&sb, "/api/v1/projects/", a->pos[0], "/export"), NULL, &r);
        strbuf_release(&sb);
        if (!rc && file && !(f = fopen(file, "w"))) {
                fprintf(stderr, "%s: cannot write %s: %s\n", c->prog, file, strerror(errno));
                rc = CLI_USAGE;
        }
        if (!rc) {
                fprintf(f, "%s\n",
                        json_object_to_json_string_ext(
                                r.body, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                JSON_C_TO_STRING_NOSLASHESCAPE));
                if (file && fclose(f) != 0) {
                        fprintf(stderr, "%s: cannot write %s: %s\n", c->prog, file,
                                strerror(errno));
                        rc = CLI_USAGE;
                }
        }
        if (!rc && file)
                fprintf(stderr, "exported %s to %s: %zu beads, %zu dependencies, %zu comments\n",
                        a->pos[0], file, count_of(r.body, "beads"),
                        count_of(r.body, "dependencies"), count_of(r.body, "comments"));
        cli_reply_release(&r);
        return rc;
}

/* Reads the whole of path ("-": standard input) into sb; CLI_USAGE with a message. */
static int import_read_file(const struct cli *c, const char *path, struct strbuf *sb)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
        char buf[65536];
        size_t n;

        if (!f) {
                fprintf(stderr, "%s: import: cannot read %s: %s\n", c->prog, path, strerror(errno));
                return CLI_USAGE;
        }
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && !sb->failed)
                strbuf_add(sb, buf, n);
        if (f != stdin)
                fclose(f);
        if (sb->failed) {
                fprintf(stderr,
                        "%s: import: %s is larger than %zu MiB, the server's import limit\n",
                        c->prog, path, IMPORT_FILE_MAX >> 20);
                return CLI_USAGE;
        }
        return CLI_OK;
}

/* The document of path with the command line's rename and renumber; CLI_USAGE if not JSON. */
static int import_document(const struct cli *c, const struct cli_args *a, json_object **out)
{
        struct strbuf sb;
        json_tokener *tok;
        json_object *doc, *rename;
        int rc;

        strbuf_init(&sb, IMPORT_FILE_MAX);
        rc = import_read_file(c, a->pos[0], &sb);
        if (rc) {
                strbuf_release(&sb);
                return rc;
        }
        tok = json_tokener_new();
        doc = json_tokener_parse_ex(tok, sb.buf, (int)sb.len);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(doc, json_type_object)) {
                fprintf(stderr, "%s: import: %s is not a JSON object (%s)\n", c->prog, a->pos[0],
                        json_tokener_error_desc(json_tokener_get_error(tok)));
                json_object_put(doc);
                doc = NULL;
                rc = CLI_USAGE;
        }
        json_tokener_free(tok);
        strbuf_release(&sb);
        if (doc && (cli_has(a, "id") || cli_has(a, "prefix") || cli_has(a, "name"))) {
                rename = json_object_new_object();
                project_put(rename, "id", cli_get(a, "id"));
                project_put(rename, "bead_prefix", cli_get(a, "prefix"));
                project_put(rename, "name", cli_get(a, "name"));
                json_object_object_add(doc, "rename", rename);
        }
        if (doc && cli_has(a, "renumber"))
                json_object_object_add(doc, "renumber", json_object_new_boolean(1));
        *out = doc;
        return rc;
}

static void import_summary(json_object *r)
{
        json_object *w = cli_field(r, "warnings");
        bool dry = json_object_get_boolean(cli_field(r, "dry_run"));
        bool only = json_object_get_boolean(cli_field(r, "validate_only"));
        const char *src = json_object_get_string(cli_field(r, "project.source_id"));

        printf("%s project %s (from %s): %lld beads, %lld dependencies, %lld comments, %lld "
               "decisions\n",
               only  ? "valid: would import"
               : dry ? "dry run: would import"
                     : "imported",
               json_object_get_string(cli_field(r, "project.id")), src ? src : "its export",
               (long long)json_object_get_int64(cli_field(r, "counts.beads")),
               (long long)json_object_get_int64(cli_field(r, "counts.dependencies")),
               (long long)json_object_get_int64(cli_field(r, "counts.comments")),
               (long long)json_object_get_int64(cli_field(r, "counts.decisions")));
        for (size_t i = 0; w && i < json_object_array_length(w); i++)
                fprintf(stderr, "warning: %s\n",
                        json_object_get_string(json_object_array_get_idx(w, i)));
}

static int project_import(struct cli *c, const struct cli_args *a)
{
        struct cli_reply r = {0};
        struct strbuf url;
        json_object *doc;
        int rc = import_document(c, a, &doc);

        if (rc)
                return rc;
        strbuf_init(&url, 0);
        strbuf_addstr(&url, "/api/v1/projects/import");
        cli_url_query(&url, "dry_run", cli_has(a, "dry-run") ? "true" : NULL);
        cli_url_query(&url, "validate_only", cli_has(a, "validate-only") ? "true" : NULL);
        rc = cli_call(c, "POST", url.buf, doc, &r);
        if (!rc && c->json)
                cli_print_json(r.body);
        else if (!rc)
                import_summary(r.body);
        cli_reply_release(&r);
        strbuf_release(&url);
        json_object_put(doc);
        return rc;
}

static const struct cli_opt project_list_opts[] = {
        {"status", 0, "STATUS", "open, closed or reopened"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt project_create_opts[] = {
        {"name", 0, "NAME", "the project's name (required)"},
        {"id", 0, "ID", "its id (default: from the name)"},
        {"prefix", 0, "PREFIX", "the bead id prefix (default: from the id)"},
        {"git-repo", 0, "URL", "the git repository the agents work in"},
        {"branch", 0, "BRANCH", "its branch (default main)"},
        {"description", 'd', "TEXT", "what the project is"},
        {"paused", 0, NULL, "create it with dispatching paused (context dispatch_paused)"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt export_opts[] = {
        {"file", 'f', "FILE", "write to FILE instead of standard output"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt import_opts[] = {
        {"id", 0, "ID", "import under this project id (rename.id)"},
        {"prefix", 0, "PREFIX", "with this bead prefix (rename.bead_prefix)"},
        {"name", 0, "NAME", "with this name (rename.name)"},
        {"renumber", 0, NULL, "number the beads 1..N instead of keeping their numbers"},
        {"dry-run", 0, NULL, "check everything and report what would be created; write nothing"},
        {"validate-only", 0, NULL, "only check the document itself"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt no_opts[] = {{NULL, 0, NULL, NULL}};

const struct cli_cmd cli_project_cmds[] = {
        {"project", "list", "", 0, 0, "List the projects you can see.",
         "Example:\n  loomctl project list --status open\n", project_list_opts, project_list},
        {"project", "show", "<project-id>", 1, 1, "Show a project and its bead counts.",
         "Example:\n  loomctl project show demo\n", no_opts, project_show},
        {"project", "create", "", 0, 0, "Create a project (you become its owner).",
         "Examples:\n  loomctl project create --name 'Web shop' --id shop --prefix shop\n"
         "  loomctl project create --name demo2 --git-repo https://example.com/r.git --paused\n",
         project_create_opts, project_create},
        {"export", NULL, "<project-id>", 1, 1,
         "Export a project (beads, dependencies, comments, decisions) as one JSON document.",
         "Examples:\n  loomctl export demo > demo.json\n  loomctl export demo -f demo.json\n",
         export_opts, project_export},
        {"import", NULL, "<file|->", 1, 1,
         "Import a project from an export, in one transaction (all or nothing).",
         "Examples:\n  loomctl import demo.json --id demo2 --prefix demo2 --dry-run\n"
         "  loomctl import demo.json --id demo2 --prefix demo2\n"
         "  loomctl export demo | loomctl import - --id copy --prefix copy --renumber\n",
         import_opts, project_import},
        {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};
