/*
 * input — request bodies: strict JSON parsing and declarative field validation.
 *
 * A handler describes the fields it accepts in a const table of struct field_spec; input_check()
 * walks the object once and fails on the first problem with a message that names the field and
 * says what is wanted ("priority: must be an integer from 0 to 3", "unknown field 'stauts'").
 * Only then does the request reach the database, so constraint violations there are a second
 * line of defence, not the user's error messages.
 */
#ifndef LOOM_INPUT_H
#define LOOM_INPUT_H

#include "http.h"

#include <json-c/json.h>
#include <stdbool.h>

#define INPUT_MAX_DEPTH  32
#define INPUT_NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

enum field_kind {
        FIELD_STRING, /* length in [min, max] bytes, valid UTF-8, no NUL */
        FIELD_INT,    /* integer in [min, max] */
        FIELD_BOOL,
        FIELD_STRING_ARRAY,  /* at most max items, each a string of 1..200 bytes */
        FIELD_OBJECT,        /* at most max keys of 1..128 bytes, any values */
        FIELD_TIMESTAMP,     /* an ISO 8601 / RFC 3339 date or date-time string */
        FIELD_BEAD_ID,       /* a string that is a bead id */
        FIELD_BEAD_ID_ARRAY, /* at most max bead ids */
        FIELD_NUMBER,        /* an integer or a fraction in [min, max] */
};

#define FIELD_REQUIRED 0x1u /* must be present (not checked for partial updates) */
#define FIELD_NULLABLE 0x2u /* null is accepted (and means "clear") */
#define FIELD_READONLY 0x4u /* known, but may not be set by the client */

struct field_spec {
        const char *name;
        enum field_kind kind;
        unsigned flags;
        long min, max;
        const char *const *choices; /* FIELD_STRING: NULL-terminated allowed values */
};

/*
 * Parses body as one JSON object.  *out is owned by req->arena (put at reset).
 * ERR_INVALID with the parser's message for malformed JSON, a non-object, or nesting deeper
 * than INPUT_MAX_DEPTH; an empty body gives an empty object when allow_empty, else ERR_INVALID.
 */
int input_parse(struct request *req, const char *body, size_t len, bool allow_empty,
                json_object **out) __attribute__((warn_unused_result));

/* Checks obj against specs[0..n). partial: required fields may be absent. */
int input_check(struct request *req, json_object *obj, const struct field_spec *specs, size_t n,
                bool partial) __attribute__((warn_unused_result));

/* Puts prefix (e.g. "filter.") before the recorded error message; returns code. */
int input_prefix_error(struct request *req, int code, const char *prefix);

/* Borrowed string value of key, or NULL when absent, null or not a string. */
const char *input_string(json_object *obj, const char *key);

bool input_is_bead_id(const char *s);
bool input_is_project_id(const char *s);
/* True (with the message recorded) when v is given but not a project id; NULL is fine. */
bool input_bad_project_id(struct request *req, const char *field, const char *v);
/* Event types: dotted lower-case words, e.g. "bead.created" (3..100 bytes). */
bool input_is_event_type(const char *s);
/* The shape of an ISO 8601 date or date-time ("2026-01-31", "2026-01-31T12:00:00Z");
 * PostgreSQL checks the values. */
bool input_is_timestamp(const char *s);
/* Agent ids, author ids: 1..200 bytes, no control characters. */
bool input_is_name(const char *s);

/* "a, b, c" from a NULL-terminated list, in the arena. */
const char *input_choices_list(struct request *req, const char *const *choices);

#endif
