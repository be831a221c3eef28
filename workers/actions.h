/*
 * actions — reading an agent's reply: the action envelope {"actions": [...], "notes": "..."}.
 *
 * Models wrap JSON in code fences, think aloud in <think>…</think>, or add prose around it;
 * actions_parse() is lenient about all of that (Loom's DecodeLenient) and strict about what
 * it returns: an array of objects, each with a string "type".
 */
#ifndef LOOM_ACTIONS_H
#define LOOM_ACTIONS_H

#include "strbuf.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Finds the envelope in reply[0..len).  Returns 0 with *actions (borrowed from *root, which the
 * caller puts) or ERR_INVALID with why in err.  A single-action reply {"action": "done", ...}
 * (Loom's text mode) is accepted as a one-element list with "type" taken from "action".
 */
int actions_parse(const char *reply, size_t len, json_object **root, json_object **actions,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

/* The "type" of action i (never NULL: "" when missing). */
const char *actions_type(json_object *action);

/* True for an action type Loom knows. */
bool actions_known(const char *type);

/* 0 when the action is known and has its required fields; else ERR_INVALID and a message
 * that names the missing field with an example. */
int actions_check(json_object *action, char *err, size_t errlen);

/* One example line per action type ("- {...}\n"), for prompts and corrections. */
void actions_usage(struct strbuf *sb);

#endif
