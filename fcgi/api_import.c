/*
 * api_import — checks a project import document on its own, before the database sees it.
 *
 * The document is what GET /api/v1/projects/{id}/export wrote (sql/010_export.sql), plus the
 * options "rename" and "renumber".  Everything that does not need the database is checked here,
 * with messages that say where the problem is ("beads[3].priority: must be an integer from 0
 * to 3", "dependencies[7].depends_on_id: bead ab-9 is not in beads", "dependencies: cycle
 * ab-1 → ab-2 → ab-1"): the shape and field types, the caps, duplicate ids, dangling
 * references, more than one parent, dependency cycles, comment threads.  The database then
 * checks only what needs it (loom_import_check).
 */
#include "api.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

static const char *const bead_types[] = {"task",  "bug",      "feature", "epic",
                                         "chore", "decision", NULL};
static const char *const bead_statuses[] = {"open",   "in_progress", "blocked",
                                            "closed", "deferred",    NULL};
static const char *const project_statuses[] = {"open", "closed", "reopened", NULL};
static const char *const git_strategies[] = {"direct", "branch-pr", NULL};
static const char *const git_auth_methods[] = {"none", "ssh", "token", "basic", "git-helper", NULL};
static const char *const dep_kinds[] = {"blocks", "parent", "related", NULL};

static const struct field_spec project_fields[] = {
        {"id", FIELD_STRING, FIELD_REQUIRED, 1, 63, NULL},
        {"name", FIELD_STRING, FIELD_REQUIRED, 1, 200, NULL},
        {"bead_prefix", FIELD_STRING, FIELD_REQUIRED, 1, 16, NULL},
        {"description", FIELD_STRING, FIELD_NULLABLE, 0, 65536, NULL},
        {"git_repo", FIELD_STRING, FIELD_NULLABLE, 0, 1000, NULL},
        {"branch", FIELD_STRING, 0, 1, 200, NULL},
        {"beads_path", FIELD_STRING, 0, 0, 500, NULL},
        {"parent_id", FIELD_STRING, FIELD_NULLABLE, 1, 63, NULL},
        {"status", FIELD_STRING, 0, 0, 0, project_statuses},
        {"is_perpetual", FIELD_BOOL, 0, 0, 0, NULL},
        {"is_sticky", FIELD_BOOL, 0, 0, 0, NULL},
        {"git_strategy", FIELD_STRING, 0, 0, 0, git_strategies},
        {"git_auth_method", FIELD_STRING, 0, 0, 0, git_auth_methods},
        {"use_worktrees", FIELD_BOOL, 0, 0, 0, NULL},
        {"use_container", FIELD_BOOL, 0, 0, 0, NULL},
        {"github_repo", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},
        {"default_branch", FIELD_STRING, 0, 1, 200, NULL},
        {"context", FIELD_OBJECT, 0, 0, 200, NULL},
        {"created_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"updated_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"closed_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
};

static const struct field_spec rename_fields[] = {
        {"id", FIELD_STRING, 0, 1, 63, NULL},
        {"bead_prefix", FIELD_STRING, 0, 1, 16, NULL},
        {"name", FIELD_STRING, 0, 1, 200, NULL},
};

static const struct field_spec bead_fields[] = {
        {"id", FIELD_BEAD_ID, FIELD_REQUIRED, 0, 0, NULL},
        {"project_id", FIELD_STRING, 0, 1, 63, NULL},
        {"title", FIELD_STRING, FIELD_REQUIRED, 1, 500, NULL},
        {"description", FIELD_STRING, FIELD_NULLABLE, 0, 262144, NULL},
        {"type", FIELD_STRING, 0, 0, 0, bead_types},
        {"status", FIELD_STRING, 0, 0, 0, bead_statuses},
        {"priority", FIELD_INT, 0, 0, 3, NULL},
        {"assigned_to", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},
        {"tags", FIELD_STRING_ARRAY, 0, 0, 64, NULL},
        {"context", FIELD_OBJECT, 0, 0, 200, NULL},
        {"due_date", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"milestone_id", FIELD_STRING, FIELD_NULLABLE, 1, 200, NULL},
        {"estimated_time", FIELD_INT, FIELD_NULLABLE, 0, 10000000, NULL},
        {"created_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"updated_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"closed_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
};

static const struct field_spec dep_fields[] = {
        {"bead_id", FIELD_BEAD_ID, FIELD_REQUIRED, 0, 0, NULL},
        {"depends_on_id", FIELD_BEAD_ID, FIELD_REQUIRED, 0, 0, NULL},
        {"kind", FIELD_STRING, FIELD_REQUIRED, 0, 0, dep_kinds},
};

static const struct field_spec comment_fields[] = {
        {"id", FIELD_INT, FIELD_REQUIRED, 1, INT64_MAX, NULL},
        {"bead_id", FIELD_BEAD_ID, FIELD_REQUIRED, 0, 0, NULL},
        {"parent_id", FIELD_INT, FIELD_NULLABLE, 1, INT64_MAX, NULL},
        {"author_id", FIELD_STRING, FIELD_REQUIRED, 1, 200, NULL},
        {"author_username", FIELD_STRING, 0, 0, 200, NULL},
        {"content", FIELD_STRING, FIELD_REQUIRED, 0, 65536, NULL},
        {"edited", FIELD_BOOL, 0, 0, 0, NULL},
        {"deleted", FIELD_BOOL, 0, 0, 0, NULL},
        {"created_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"updated_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
};

/* A decision repeats its bead: only its id matters, the rest must at least be well-formed. */
static const struct field_spec decision_fields[] = {
        {"id", FIELD_BEAD_ID, FIELD_REQUIRED, 0, 0, NULL},
        {"project_id", FIELD_STRING, FIELD_NULLABLE, 1, 63, NULL},
        {"title", FIELD_STRING, FIELD_NULLABLE, 0, 500, NULL},
        {"description", FIELD_STRING, FIELD_NULLABLE, 0, 262144, NULL},
        {"status", FIELD_STRING, 0, 0, 0, bead_statuses},
        {"priority", FIELD_INT, 0, 0, 3, NULL},
        {"question", FIELD_STRING, FIELD_NULLABLE, 0, 262144, NULL},
        {"escalated_from", FIELD_BEAD_ID, FIELD_NULLABLE, 0, 0, NULL},
        {"gate", FIELD_STRING, FIELD_NULLABLE, 0, 20, NULL}, /* 012_budgets: budget, merge, spend */
        {"decision", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},
        {"rationale", FIELD_STRING, FIELD_NULLABLE, 0, 65536, NULL},
        {"decider_id", FIELD_STRING, FIELD_NULLABLE, 0, 200, NULL},
        {"decided_at", FIELD_STRING, FIELD_NULLABLE, 0, 64, NULL},
        {"created_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
        {"updated_at", FIELD_TIMESTAMP, FIELD_NULLABLE, 0, 0, NULL},
};

static const char *const doc_keys[] = {"format",    "version", "exported_at",  "exported_by",
                                       "project",   "beads",   "dependencies", "comments",
                                       "decisions", "rename",  "renumber",     NULL};

static const char *const bead_link_keys[] = {"blocked_by", "blocks",     "parent",
                                             "children",   "related_to", NULL};

/* A bead of the document: its id and where it is. */
struct import_bead {
        const char *id;
        size_t idx;
        bool decision;
};

struct import_comment {
        int64_t id;
        size_t idx;
        const char *bead_id;
};

/* One edge "a waits on b" (kinds blocks and parent), or a related pair (a < b), by bead index. */
struct import_edge {
        size_t a, b, at;
        int kind; /* index in dep_kinds */
};

struct import_doc {
        struct request *req;
        json_object *doc;
        const char *prefix; /* the document's bead prefix */
        struct import_bead *beads;
        size_t nbeads;
        struct import_edge *edges;
        size_t nedges;
        struct import_counts *counts;
};

static int import_cmp_bead(const void *x, const void *y)
{
        return strcmp(((const struct import_bead *)x)->id, ((const struct import_bead *)y)->id);
}

static int import_cmp_comment(const void *x, const void *y)
{
        int64_t a = ((const struct import_comment *)x)->id;
        int64_t b = ((const struct import_comment *)y)->id;

        return a < b ? -1 : a > b;
}

static int import_cmp_edge(const void *x, const void *y)
{
        const struct import_edge *a = x, *b = y;

        if (a->kind != b->kind)
                return a->kind - b->kind;
        if (a->a != b->a)
                return a->a < b->a ? -1 : 1;
        if (a->b != b->b)
                return a->b < b->b ? -1 : 1;
        return 0;
}

static const struct import_bead *import_find_bead(const struct import_doc *d, const char *id)
{
        struct import_bead key = {.id = id};

        return bsearch(&key, d->beads, d->nbeads, sizeof(key), import_cmp_bead);
}

/* The array under key (absent: an empty one unless required), at most max items. */
static int import_array(struct import_doc *d, const char *key, size_t max, bool required,
                        json_object **out)
{
        json_object *v;

        *out = NULL;
        if (!json_object_object_get_ex(d->doc, key, &v) || !v) {
                if (required)
                        return http_fail(d->req, ERR_INVALID, "%s: is required", key);
                return ERR_OK;
        }
        if (!json_object_is_type(v, json_type_array))
                return http_fail(d->req, ERR_INVALID, "%s: must be an array", key);
        if (json_object_array_length(v) > max)
                return http_fail(d->req, ERR_INVALID,
                                 "%s: %zu items; an import holds at most %zu (split the project "
                                 "or raise the limit)",
                                 key, json_object_array_length(v), max);
        *out = v;
        return ERR_OK;
}

/* "key[i]." before a field's message, "key[i]: " before "unknown field …". */
static const char *import_place(struct request *req, const char *key, size_t i)
{
        bool unknown = strncmp(req->error, "unknown field", 13) == 0;

        return arena_printf(req->arena, "%s[%zu]%s", key, i, unknown ? ": " : ".");
}

/* Item i of arr as an object checked against specs; errors start with "key[i].". */
static int import_item(struct import_doc *d, json_object *arr, const char *key, size_t i,
                       const struct field_spec *specs, size_t n, json_object **out)
{
        json_object *item = json_object_array_get_idx(arr, i);
        int rc;

        *out = item;
        if (!item || !json_object_is_type(item, json_type_object))
                return http_fail(d->req, ERR_INVALID, "%s[%zu]: must be an object", key, i);
        rc = input_check(d->req, item, specs, n, false);
        if (rc)
                return input_prefix_error(d->req, rc, import_place(d->req, key, i));
        return ERR_OK;
}

static bool import_is_prefix(const char *s)
{
        size_t n = 0;

        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                return false;
        for (; s[n]; n++) {
                char c = s[n];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                        return false;
        }
        return n <= 16;
}

/* format, version, no unknown keys, renumber a boolean. */
static int import_check_header(struct import_doc *d)
{
        json_object *v;
        const char *s;

        json_object_object_foreach(d->doc, key, val)
        {
                bool known = false;

                (void)val;
                for (int i = 0; doc_keys[i] && !known; i++)
                        known = strcmp(doc_keys[i], key) == 0;
                if (!known)
                        return http_fail(d->req, ERR_INVALID, "unknown field '%.64s'", key);
        }
        s = input_string(d->doc, "format");
        if (!s || strcmp(s, "loom-export") != 0)
                return http_fail(d->req, ERR_INVALID,
                                 "format: must be \"loom-export\" (a document from GET "
                                 "/api/v1/projects/{id}/export)");
        if (!json_object_object_get_ex(d->doc, "version", &v) ||
            !json_object_is_type(v, json_type_int))
                return http_fail(d->req, ERR_INVALID, "version: is required (an integer)");
        if (json_object_get_int64(v) != 1)
                return http_fail(d->req, ERR_INVALID,
                                 "version: %lld is not supported; this server reads version 1",
                                 (long long)json_object_get_int64(v));
        if (json_object_object_get_ex(d->doc, "renumber", &v) &&
            !json_object_is_type(v, json_type_boolean))
                return http_fail(d->req, ERR_INVALID, "renumber: must be true or false");
        return ERR_OK;
}

static int import_check_ids(struct request *req, json_object *obj, const char *label)
{
        const char *v = input_string(obj, "id");

        if (v && !input_is_project_id(v))
                return http_fail(req, ERR_INVALID,
                                 "%sid: '%.64s' is not a valid project id (lower-case letters, "
                                 "digits, '-' and '_', at most 63)",
                                 label, v);
        v = input_string(obj, "bead_prefix");
        if (v && !import_is_prefix(v))
                return http_fail(req, ERR_INVALID,
                                 "%sbead_prefix: '%.64s' must be a letter followed by up to 15 "
                                 "letters or digits",
                                 label, v);
        v = input_string(obj, "parent_id");
        if (v && !input_is_project_id(v))
                return http_fail(req, ERR_INVALID, "%sparent_id: '%.64s' is not a valid project id",
                                 label, v);
        return ERR_OK;
}

/* project (required) and rename (optional). */
static int import_check_project(struct import_doc *d)
{
        json_object *p, *r;
        int rc;

        if (!json_object_object_get_ex(d->doc, "project", &p) ||
            !json_object_is_type(p, json_type_object))
                return http_fail(d->req, ERR_INVALID, "project: is required (an object)");
        rc = input_check(d->req, p, project_fields, INPUT_NFIELDS(project_fields), false);
        if (rc)
                return input_prefix_error(d->req, rc,
                                          strncmp(d->req->error, "unknown", 7) ? "project."
                                                                               : "project: ");
        rc = import_check_ids(d->req, p, "project.");
        if (rc)
                return rc;
        d->prefix = input_string(p, "bead_prefix");
        if (!json_object_object_get_ex(d->doc, "rename", &r) || !r)
                return ERR_OK;
        if (!json_object_is_type(r, json_type_object))
                return http_fail(d->req, ERR_INVALID,
                                 "rename: must be an object {id, bead_prefix, name}");
        rc = input_check(d->req, r, rename_fields, INPUT_NFIELDS(rename_fields), false);
        if (rc)
                return input_prefix_error(d->req, rc, "rename.");
        return import_check_ids(d->req, r, "rename.");
}

/* A bead id of the document must be "<project.bead_prefix>-<n>" with n >= 1. */
static int import_check_bead_id(struct import_doc *d, size_t i, const char *id)
{
        size_t n = strlen(d->prefix);
        const char *num = id + n + 1;

        if (strncmp(id, d->prefix, n) != 0 || id[n] != '-')
                return http_fail(d->req, ERR_INVALID,
                                 "beads[%zu].id: '%.64s' does not start with the project's "
                                 "bead_prefix '%s-'",
                                 i, id, d->prefix);
        while (*num == '0')
                num++;
        if (!*num)
                return http_fail(d->req, ERR_INVALID, "beads[%zu].id: bead numbers start at 1", i);
        return ERR_OK;
}

static int import_check_bead(struct import_doc *d, json_object *arr, size_t i)
{
        json_object *b, *v;
        const char *pid, *own, *type;
        int rc;

        b = json_object_array_get_idx(arr, i);
        for (int k = 0; bead_link_keys[k]; k++) {
                if (b && json_object_is_type(b, json_type_object) &&
                    json_object_object_get_ex(b, bead_link_keys[k], &v))
                        return http_fail(d->req, ERR_INVALID,
                                         "beads[%zu].%s: edges belong in \"dependencies\" "
                                         "(bead_id, depends_on_id, kind)",
                                         i, bead_link_keys[k]);
        }
        rc = import_item(d, arr, "beads", i, bead_fields, INPUT_NFIELDS(bead_fields), &b);
        if (rc)
                return rc;
        own = input_string(json_object_object_get(d->doc, "project"), "id");
        pid = input_string(b, "project_id");
        if (pid && strcmp(pid, own) != 0)
                return http_fail(d->req, ERR_INVALID,
                                 "beads[%zu].project_id: '%.64s' is not the project's id '%s'", i,
                                 pid, own);
        d->beads[i].id = input_string(b, "id");
        d->beads[i].idx = i;
        type = input_string(b, "type");
        d->beads[i].decision = type && strcmp(type, "decision") == 0;
        return import_check_bead_id(d, i, d->beads[i].id);
}

static int import_check_beads(struct import_doc *d)
{
        json_object *arr;
        size_t n;
        int rc = import_array(d, "beads", IMPORT_MAX_BEADS, true, &arr);

        if (rc)
                return rc;
        n = json_object_array_length(arr);
        d->beads = arena_alloc(d->req->arena, (n ? n : 1) * sizeof(*d->beads));
        for (size_t i = 0; i < n; i++) {
                rc = import_check_bead(d, arr, i);
                if (rc)
                        return rc;
        }
        d->nbeads = n;
        qsort(d->beads, n, sizeof(*d->beads), import_cmp_bead);
        for (size_t i = 1; i < n; i++) {
                if (strcmp(d->beads[i - 1].id, d->beads[i].id) == 0)
                        return http_fail(d->req, ERR_INVALID,
                                         "beads: duplicate id %s (beads[%zu] and beads[%zu])",
                                         d->beads[i].id, d->beads[i - 1].idx, d->beads[i].idx);
        }
        d->counts->beads = n;
        return ERR_OK;
}

/* Index (in d->beads) of the bead named by field of dependency i. */
static int import_dep_end(struct import_doc *d, json_object *dep, size_t i, const char *field,
                          size_t *out)
{
        const char *id = input_string(dep, field);
        const struct import_bead *b = import_find_bead(d, id);

        if (!b)
                return http_fail(d->req, ERR_INVALID,
                                 "dependencies[%zu].%s: bead %s is not in beads", i, field, id);
        *out = (size_t)(b - d->beads);
        return ERR_OK;
}

static int import_read_edge(struct import_doc *d, json_object *arr, size_t i)
{
        struct import_edge *e = &d->edges[i];
        json_object *dep;
        const char *kind;
        int rc =
                import_item(d, arr, "dependencies", i, dep_fields, INPUT_NFIELDS(dep_fields), &dep);

        if (!rc)
                rc = import_dep_end(d, dep, i, "bead_id", &e->a);
        if (!rc)
                rc = import_dep_end(d, dep, i, "depends_on_id", &e->b);
        if (rc)
                return rc;
        if (e->a == e->b)
                return http_fail(d->req, ERR_INVALID,
                                 "dependencies[%zu]: bead %s cannot depend on itself", i,
                                 d->beads[e->a].id);
        kind = input_string(dep, "kind");
        for (e->kind = 0; strcmp(dep_kinds[e->kind], kind) != 0; e->kind++)
                ;
        if (strcmp(kind, "related") == 0 && e->a > e->b) {
                size_t t = e->a;

                e->a = e->b;
                e->b = t;
        }
        e->at = i;
        return ERR_OK;
}

/* Duplicate edges and beads with two parents, over the edges sorted by (kind, a, b). */
static int import_check_edge_set(struct import_doc *d)
{
        for (size_t i = 1; i < d->nedges; i++) {
                const struct import_edge *p = &d->edges[i - 1], *e = &d->edges[i];

                if (p->kind == e->kind && p->a == e->a && p->b == e->b)
                        return http_fail(d->req, ERR_INVALID,
                                         "dependencies[%zu]: the same %s edge as "
                                         "dependencies[%zu] (%s, %s)",
                                         e->at, dep_kinds[e->kind], p->at, d->beads[e->a].id,
                                         d->beads[e->b].id);
                if (p->kind == e->kind && p->a == e->a && strcmp(dep_kinds[e->kind], "parent") == 0)
                        return http_fail(d->req, ERR_INVALID,
                                         "dependencies[%zu]: bead %s has more than one parent "
                                         "(%s and %s)",
                                         e->at, d->beads[e->a].id, d->beads[p->b].id,
                                         d->beads[e->b].id);
        }
        return ERR_OK;
}

/* The waits-on graph (blocks and parent edges) as adjacency lists: first[v]..first[v+1]. */
struct import_graph {
        size_t *first, *to;
};

static void import_graph_build(struct import_doc *d, struct import_graph *g)
{
        size_t n = d->nbeads, *fill;

        g->first = arena_alloc(d->req->arena, (n + 1) * sizeof(size_t));
        g->to = arena_alloc(d->req->arena, (d->nedges ? d->nedges : 1) * sizeof(size_t));
        fill = arena_alloc(d->req->arena, (n + 1) * sizeof(size_t));
        memset(g->first, 0, (n + 1) * sizeof(size_t));
        for (size_t i = 0; i < d->nedges; i++) {
                if (strcmp(dep_kinds[d->edges[i].kind], "related") != 0)
                        g->first[d->edges[i].a + 1]++;
        }
        for (size_t v = 0; v < n; v++)
                g->first[v + 1] += g->first[v];
        memcpy(fill, g->first, (n + 1) * sizeof(size_t));
        for (size_t i = 0; i < d->nedges; i++) {
                if (strcmp(dep_kinds[d->edges[i].kind], "related") != 0)
                        g->to[fill[d->edges[i].a]++] = d->edges[i].b;
        }
}

/* Names the cycle stack[from..top] in the recorded error. */
static int import_cycle_error(struct import_doc *d, const size_t *stack, size_t from, size_t top)
{
        struct strbuf sb;
        int rc;

        strbuf_init(&sb, 2048);
        for (size_t i = from; i <= top && i < from + 20; i++)
                strbuf_addf(&sb, "%s → ", d->beads[stack[i]].id);
        strbuf_addstr(&sb, top - from >= 20 ? "… → " : "");
        strbuf_addstr(&sb, d->beads[stack[from]].id);
        rc = http_fail(d->req, ERR_INVALID,
                       "dependencies: cycle %s (blocks and parent edges must not loop)", sb.buf);
        strbuf_release(&sb);
        return rc;
}

/* Depth-first search with colours (0 new, 1 on the stack, 2 done); a grey node is a cycle. */
static int import_check_cycles(struct import_doc *d)
{
        size_t n = d->nbeads;
        struct import_graph g;
        unsigned char *colour = arena_alloc(d->req->arena, n ? n : 1);
        size_t *stack = arena_alloc(d->req->arena, (n ? n : 1) * sizeof(size_t));
        size_t *next = arena_alloc(d->req->arena, (n ? n : 1) * sizeof(size_t));

        import_graph_build(d, &g);
        memset(colour, 0, n ? n : 1);
        for (size_t s = 0; s < n; s++) {
                size_t top = 0;

                if (colour[s])
                        continue;
                stack[0] = s;
                next[s] = g.first[s];
                colour[s] = 1;
                for (;;) {
                        size_t v = stack[top], w;

                        if (next[v] == g.first[v + 1]) {
                                colour[v] = 2;
                                if (top == 0)
                                        break;
                                top--;
                                continue;
                        }
                        w = g.to[next[v]++];
                        if (colour[w] == 1) {
                                size_t from = 0;

                                while (stack[from] != w)
                                        from++;
                                return import_cycle_error(d, stack, from, top);
                        }
                        if (colour[w] == 0) {
                                colour[w] = 1;
                                next[w] = g.first[w];
                                stack[++top] = w;
                        }
                }
        }
        return ERR_OK;
}

static int import_check_deps(struct import_doc *d)
{
        json_object *arr;
        size_t n;
        int rc = import_array(d, "dependencies", IMPORT_MAX_DEPENDENCIES, false, &arr);

        if (rc || !arr)
                return rc;
        n = json_object_array_length(arr);
        d->edges = arena_alloc(d->req->arena, (n ? n : 1) * sizeof(*d->edges));
        for (size_t i = 0; i < n; i++) {
                rc = import_read_edge(d, arr, i);
                if (rc)
                        return rc;
        }
        d->nedges = n;
        d->counts->dependencies = n;
        qsort(d->edges, n, sizeof(*d->edges), import_cmp_edge);
        rc = import_check_edge_set(d);
        if (!rc)
                rc = import_check_cycles(d);
        return rc;
}

static int import_read_comment(struct import_doc *d, json_object *arr, size_t i,
                               struct import_comment *c)
{
        json_object *item;
        int rc = import_item(d, arr, "comments", i, comment_fields, INPUT_NFIELDS(comment_fields),
                             &item);

        if (rc)
                return rc;
        c->id = json_object_get_int64(json_object_object_get(item, "id"));
        c->idx = i;
        c->bead_id = input_string(item, "bead_id");
        if (!import_find_bead(d, c->bead_id))
                return http_fail(d->req, ERR_INVALID,
                                 "comments[%zu].bead_id: bead %s is not in beads", i, c->bead_id);
        if (!input_is_name(input_string(item, "author_id")))
                return http_fail(d->req, ERR_INVALID,
                                 "comments[%zu].author_id: must not contain control characters", i);
        return ERR_OK;
}

/* A reply's parent is an earlier comment (smaller id) of the same bead. */
static int import_check_thread(struct import_doc *d, json_object *arr,
                               const struct import_comment *sorted, size_t n, size_t i)
{
        json_object *item = json_object_array_get_idx(arr, i), *v;
        struct import_comment key, *p;

        if (!json_object_object_get_ex(item, "parent_id", &v) || !v)
                return ERR_OK;
        key.id = json_object_get_int64(v);
        p = bsearch(&key, sorted, n, sizeof(key), import_cmp_comment);
        if (!p)
                return http_fail(d->req, ERR_INVALID,
                                 "comments[%zu].parent_id: comment %lld is not in comments", i,
                                 (long long)key.id);
        if (strcmp(p->bead_id, input_string(item, "bead_id")) != 0)
                return http_fail(d->req, ERR_INVALID,
                                 "comments[%zu].parent_id: comment %lld belongs to bead %s", i,
                                 (long long)key.id, p->bead_id);
        if (key.id >= json_object_get_int64(json_object_object_get(item, "id")))
                return http_fail(d->req, ERR_INVALID,
                                 "comments[%zu].parent_id: a reply's parent must have a smaller "
                                 "id (%lld)",
                                 i, (long long)key.id);
        return ERR_OK;
}

static int import_check_comments(struct import_doc *d)
{
        struct import_comment *c;
        json_object *arr;
        size_t n;
        int rc = import_array(d, "comments", IMPORT_MAX_COMMENTS, false, &arr);

        if (rc || !arr)
                return rc;
        n = json_object_array_length(arr);
        c = arena_alloc(d->req->arena, (n ? n : 1) * sizeof(*c));
        for (size_t i = 0; i < n; i++) {
                rc = import_read_comment(d, arr, i, &c[i]);
                if (rc)
                        return rc;
        }
        qsort(c, n, sizeof(*c), import_cmp_comment);
        for (size_t i = 1; i < n; i++) {
                if (c[i - 1].id == c[i].id)
                        return http_fail(d->req, ERR_INVALID,
                                         "comments: duplicate id %lld (comments[%zu] and "
                                         "comments[%zu])",
                                         (long long)c[i].id, c[i - 1].idx, c[i].idx);
        }
        for (size_t i = 0; i < n; i++) {
                rc = import_check_thread(d, arr, c, n, i);
                if (rc)
                        return rc;
        }
        d->counts->comments = n;
        return ERR_OK;
}

static int import_check_decisions(struct import_doc *d)
{
        json_object *arr, *item;
        size_t n;
        int rc = import_array(d, "decisions", IMPORT_MAX_BEADS, false, &arr);

        if (rc || !arr)
                return rc;
        n = json_object_array_length(arr);
        for (size_t i = 0; i < n; i++) {
                const struct import_bead *b;

                rc = import_item(d, arr, "decisions", i, decision_fields,
                                 INPUT_NFIELDS(decision_fields), &item);
                if (rc)
                        return rc;
                b = import_find_bead(d, input_string(item, "id"));
                if (!b || !b->decision)
                        return http_fail(d->req, ERR_INVALID,
                                         "decisions[%zu].id: %s is not a bead of type decision in "
                                         "beads",
                                         i, input_string(item, "id"));
        }
        d->counts->decisions = n;
        return ERR_OK;
}

int api_import_check(struct request *req, json_object *doc, struct import_counts *counts)
{
        struct import_doc d = {.req = req, .doc = doc, .counts = counts};
        int rc;

        memset(counts, 0, sizeof(*counts));
        rc = import_check_header(&d);
        if (!rc)
                rc = import_check_project(&d);
        if (!rc)
                rc = import_check_beads(&d);
        if (!rc)
                rc = import_check_deps(&d);
        if (!rc)
                rc = import_check_comments(&d);
        if (!rc)
                rc = import_check_decisions(&d);
        return rc;
}
