/*
 * actions — lenient envelope extraction from LLM replies; see actions.h.
 */
#include "actions.h"
#include "err.h"

#include <stdbool.h>
#include <stdio.h>
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
