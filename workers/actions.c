/*
 * actions — lenient envelope extraction from LLM replies; see actions.h.
 */
#include "actions.h"
#include "err.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start of the text after a closing </think>, or text itself. */
static const char *skip_thinking(const char *s, const char *end)
{
        const char *close = NULL;

        for (const char *p = s; p + 8 <= end; p++) {
                if (memcmp(p, "</think>", 8) == 0)
                        close = p + 8;
        }
        return close ? close : s;
}

/* The first balanced {...} in [s, end), honouring strings and escapes; NULL when none. */
static const char *balanced_object(const char *s, const char *end, size_t *len)
{
        const char *start = memchr(s, '{', (size_t)(end - s));
        bool in_str = false;
        int depth = 0;

        for (const char *p = start; p && p < end; p++) {
                if (in_str) {
                        if (*p == '\\')
                                p++;
                        else if (*p == '"')
                                in_str = false;
                        continue;
                }
                if (*p == '"')
                        in_str = true;
                else if (*p == '{')
                        depth++;
                else if (*p == '}' && --depth == 0) {
                        *len = (size_t)(p - start + 1);
                        return start;
                }
        }
        return NULL;
}

/* A copy of s[0..len) without commas that only precede a closing } or ] (outside strings). */
static char *strip_trailing_commas(const char *s, size_t len)
{
        char *out = xmalloc(len + 1), *o = out;
        bool in_str = false;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (in_str) {
                        if (c == '\\' && i + 1 < len) {
                                *o++ = c;
                                c = s[++i];
                        } else if (c == '"') {
                                in_str = false;
                        }
                } else if (c == '"') {
                        in_str = true;
                } else if (c == ',') {
                        size_t j = i + 1;

                        while (j < len && s[j] && strchr(" \t\r\n", s[j]))
                                j++;
                        if (j < len && (s[j] == '}' || s[j] == ']'))
                                continue;
                }
                *o++ = c;
        }
        *o = '\0';
        return out;
}

const char *actions_type(json_object *action)
{
        json_object *t;

        if (json_object_object_get_ex(action, "type", &t) &&
            json_object_is_type(t, json_type_string))
                return json_object_get_string(t);
        return "";
}

/* {"action": "x", ...} → [{"type": "x", ...}] */
static json_object *single_action(json_object *root)
{
        json_object *a, *list, *copy;

        if (!json_object_object_get_ex(root, "action", &a) ||
            !json_object_is_type(a, json_type_string))
                return NULL;
        copy = json_object_new_object();
        json_object_object_foreach(root, k, v)
        {
                json_object_object_add(copy, strcmp(k, "action") == 0 ? "type" : k,
                                       json_object_get(v));
        }
        list = json_object_new_array();
        json_object_array_add(list, copy);
        json_object_object_add(root, "actions", list);
        return list;
}

int actions_parse(const char *reply, size_t len, json_object **root, json_object **actions,
                  char *err, size_t errlen)
{
        const char *end = reply + len, *obj;
        size_t olen = 0;
        json_tokener *tok;

        *root = NULL;
        *actions = NULL;
        obj = balanced_object(skip_thinking(reply, end), end, &olen);
        if (!obj) {
                snprintf(err, errlen, "no JSON object in the reply");
                return ERR_INVALID;
        }
        tok = json_tokener_new_ex(32);
        *root = json_tokener_parse_ex(tok, obj, (int)olen);
        if (json_tokener_get_error(tok) != json_tokener_success || !*root) {
                /* models often leave a comma before } or ]: drop those and try once more */
                char *fixed = strip_trailing_commas(obj, olen);

                json_object_put(*root);
                json_tokener_reset(tok);
                *root = json_tokener_parse_ex(tok, fixed, (int)strlen(fixed));
                free(fixed);
        }
        if (json_tokener_get_error(tok) != json_tokener_success || !*root) {
                snprintf(err, errlen, "the JSON object does not parse: %s",
                         json_tokener_error_desc(json_tokener_get_error(tok)));
                json_tokener_free(tok);
                json_object_put(*root);
                *root = NULL;
                return ERR_INVALID;
        }
        json_tokener_free(tok);
        if (!json_object_object_get_ex(*root, "actions", actions))
                *actions = single_action(*root);
        if (!*actions || !json_object_is_type(*actions, json_type_array)) {
                snprintf(err, errlen, "the object has no \"actions\" array");
                goto bad;
        }
        for (size_t i = 0; i < json_object_array_length(*actions); i++) {
                json_object *a = json_object_array_get_idx(*actions, i);

                if (!json_object_is_type(a, json_type_object) || !*actions_type(a)) {
                        snprintf(err, errlen, "action %zu has no \"type\"", i);
                        goto bad;
                }
        }
        return ERR_OK;
bad:
        json_object_put(*root);
        *root = NULL;
        *actions = NULL;
        return ERR_INVALID;
}

/*
 * What each action needs.  "a|b" means either field will do; a field "bead.title" is looked up
 * inside the object "bead" when the action has one.
 */
struct action_spec {
        const char *type;
        const char *required[3];
        const char *usage;
};

static const struct action_spec action_specs[] = {
        {"read_file", {"path"}, "{\"type\": \"read_file\", \"path\": \"src/x.c\"}"},
        {"read_code", {"path"}, "{\"type\": \"read_code\", \"path\": \"src/x.c\"}"},
        {"write_file",
         {"path", "content"},
         "{\"type\": \"write_file\", \"path\": \"...\", \"content\": \"...\"}"},
        {"edit_code",
         {"path", "old_text|old|patch"},
         "{\"type\": \"edit_code\", \"path\": \"...\", \"old_text\": \"...\", \"new_text\": "
         "\"...\"}"},
        {"apply_patch", {"patch"}, "{\"type\": \"apply_patch\", \"patch\": \"<unified diff>\"}"},
        {"read_tree", {NULL}, "{\"type\": \"read_tree\", \"path\": \".\", \"max_depth\": 2}"},
        {"search_text", {"query"}, "{\"type\": \"search_text\", \"query\": \"...\"}"},
        {"move_file",
         {"source_path", "target_path"},
         "{\"type\": \"move_file\", \"source_path\": \"...\", \"target_path\": \"...\"}"},
        {"rename_file",
         {"source_path", "target_path|new_name"},
         "{\"type\": \"rename_file\", \"source_path\": \"...\", \"new_name\": \"...\"}"},
        {"delete_file", {"path"}, "{\"type\": \"delete_file\", \"path\": \"...\"}"},
        {"run_command", {"command"}, "{\"type\": \"run_command\", \"command\": \"make test\"}"},
        {"build_project", {NULL}, "{\"type\": \"build_project\"}"},
        {"run_tests", {NULL}, "{\"type\": \"run_tests\"}"},
        {"git_status", {NULL}, "{\"type\": \"git_status\"}"},
        {"git_diff", {NULL}, "{\"type\": \"git_diff\"}"},
        {"git_log", {NULL}, "{\"type\": \"git_log\"}"},
        {"git_commit", {NULL}, "{\"type\": \"git_commit\", \"commit_message\": \"...\"}"},
        {"git_push", {NULL}, "{\"type\": \"git_push\"}"},
        {"create_bead",
         {"title|bead.title"},
         "{\"type\": \"create_bead\", \"bead\": {\"title\": \"...\", \"description\": \"...\", "
         "\"priority\": 2}}"},
        {"close_bead",
         {NULL},
         "{\"type\": \"close_bead\", \"bead_id\": \"...\", \"reason\": \"...\"}"},
        {"escalate_ceo", {"reason"}, "{\"type\": \"escalate_ceo\", \"reason\": \"...\"}"},
        {"remember",
         {"category", "key", "value"},
         "{\"type\": \"remember\", \"category\": "
         "\"convention|build_system|github|failure|lesson\", \"key\": \"...\", \"value\": "
         "\"...\"} (project memory, kept for later work)"},
        {"done", {NULL}, "{\"type\": \"done\", \"reason\": \"...\"}"},
};

static const struct action_spec *action_spec(const char *type)
{
        for (size_t i = 0; i < sizeof(action_specs) / sizeof(action_specs[0]); i++) {
                if (strcmp(action_specs[i].type, type) == 0)
                        return &action_specs[i];
        }
        return NULL;
}

/* True when the action has a non-empty string (or any non-null value) at one of alts. */
static bool has_field(json_object *action, const char *alts)
{
        char name[64];

        for (const char *p = alts; *p;) {
                size_t n = strcspn(p, "|");
                const char *dot;
                json_object *v, *in = action;

                snprintf(name, sizeof(name), "%.*s", (int)n, p);
                p += n + (p[n] == '|');
                dot = strchr(name, '.');
                if (dot) {
                        char outer[64];

                        snprintf(outer, sizeof(outer), "%.*s", (int)(dot - name), name);
                        if (!json_object_object_get_ex(action, outer, &in))
                                continue;
                        memmove(name, dot + 1, strlen(dot));
                }
                if (!json_object_object_get_ex(in, name, &v) || !v)
                        continue;
                if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 0)
                        return true;
        }
        return false;
}

bool actions_known(const char *type)
{
        return action_spec(type) != NULL;
}

int actions_check(json_object *action, char *err, size_t errlen)
{
        const char *type = actions_type(action);
        const struct action_spec *spec = action_spec(type);

        if (!spec) {
                snprintf(err, errlen, "unknown action type \"%.60s\"", type);
                return ERR_INVALID;
        }
        for (int i = 0; i < 3 && spec->required[i]; i++) {
                if (!has_field(action, spec->required[i])) {
                        snprintf(err, errlen, "%s needs \"%s\"; for example %s", type,
                                 spec->required[i], spec->usage);
                        return ERR_INVALID;
                }
        }
        return ERR_OK;
}

void actions_usage(struct strbuf *sb)
{
        for (size_t i = 0; i < sizeof(action_specs) / sizeof(action_specs[0]); i++)
                strbuf_addf(sb, "- %s\n", action_specs[i].usage);
}
