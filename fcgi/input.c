/*
 * input — JSON body parsing and field-table validation; see input.h.
 */
#include "input.h"
#include "err.h"
#include "strbuf.h"

#include <stdio.h>
#include <string.h>

static void input_put(void *obj)
{
        json_object_put(obj);
}

static bool is_json_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The JSON grammar of RFC 8259, checked before json-c builds the value: even in strict mode
 * json-c takes single-quoted member names ({'a': 1}), NaN and Infinity, and numbers such as
 * "1.", so a body it accepts is not always JSON.  Each json_* step returns the index after
 * what it read, or 0 with *why set (a value never ends at byte 0).
 */
#define JSON_SCAN_DEPTH (2 * INPUT_MAX_DEPTH) /* json-c refuses past INPUT_MAX_DEPTH anyway */

struct json_scan {
        const char *s;
        size_t n;
        const char *why;
        size_t at;                  /* the byte where it went wrong */
        char open[JSON_SCAN_DEPTH]; /* '{' or '[' of each container we are in */
        int depth;
};

static size_t json_ws(const struct json_scan *js, size_t i)
{
        while (i < js->n && is_json_space(js->s[i]))
                i++;
        return i;
}

static size_t json_fail(struct json_scan *js, size_t at, const char *why)
{
        js->why = why;
        js->at = at;
        return 0;
}

static bool json_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at s[i] == '"': no raw control characters, only the escapes JSON has. */
static size_t json_string(struct json_scan *js, size_t i)
{
        for (i++; i < js->n; i++) {
                unsigned char c = (unsigned char)js->s[i];

                if (c == '"')
                        return i + 1;
                if (c < 0x20)
                        return json_fail(js, i, "control character in a string");
                if (c != '\\')
                        continue;
                if (++i >= js->n)
                        break;
                if (js->s[i] == 'u') {
                        if (js->n - i < 5 || !json_hex(js->s[i + 1]) || !json_hex(js->s[i + 2]) ||
                            !json_hex(js->s[i + 3]) || !json_hex(js->s[i + 4]))
                                return json_fail(js, i, "bad \\u escape");
                        i += 4;
                } else if (!strchr("\"\\/bfnrt", js->s[i]) || !js->s[i]) {
                        return json_fail(js, i, "bad escape in a string");
                }
        }
        return json_fail(js, js->n, "unexpected end of data");
}

static size_t json_digits(const struct json_scan *js, size_t i)
{
        while (i < js->n && js->s[i] >= '0' && js->s[i] <= '9')
                i++;
        return i;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static size_t json_number(struct json_scan *js, size_t i)
{
        size_t j;

        if (js->s[i] == '-')
                i++;
        j = json_digits(js, i);
        if (j == i || (js->s[i] == '0' && j > i + 1))
                return json_fail(js, i, "bad number");
        i = j;
        if (i < js->n && js->s[i] == '.') {
                j = json_digits(js, i + 1);
                if (j == i + 1)
                        return json_fail(js, i, "bad number");
                i = j;
        }
        if (i < js->n && (js->s[i] == 'e' || js->s[i] == 'E')) {
                i++;
                if (i < js->n && (js->s[i] == '+' || js->s[i] == '-'))
                        i++;
                j = json_digits(js, i);
                if (j == i)
                        return json_fail(js, i, "bad number");
                i = j;
        }
        return i;
}

/* A string, number or literal at i (containers are opened by json_scan). */
static size_t json_scalar(struct json_scan *js, size_t i)
{
        static const char *const words[] = {"true", "false", "null"};
        char c = js->s[i];

        if (c == '"')
                return json_string(js, i);
        if (c == '-' || (c >= '0' && c <= '9'))
                return json_number(js, i);
        for (size_t w = 0; w < 3; w++) {
                size_t len = strlen(words[w]);

                if (js->n - i >= len && memcmp(js->s + i, words[w], len) == 0)
                        return i + len;
        }
        return json_fail(js, i, "unexpected character");
}

/* A member name and its colon at i; returns where the value starts. */
static size_t json_member(struct json_scan *js, size_t i)
{
        i = json_ws(js, i);
        if (i >= js->n || js->s[i] != '"')
                return json_fail(js, i,
                                 i >= js->n ? "unexpected end of data"
                                            : "a member name in double quotes expected");
        i = json_string(js, i);
        if (!i)
                return 0;
        i = json_ws(js, i);
        if (i >= js->n || js->s[i] != ':')
                return json_fail(js, i, "':' expected");
        return json_ws(js, i + 1);
}

/* After a value: commas, closing brackets; returns where the next value starts, or n. */
static size_t json_after(struct json_scan *js, size_t i)
{
        for (;;) {
                char close;

                i = json_ws(js, i);
                if (js->depth == 0)
                        return i;
                if (i >= js->n)
                        return json_fail(js, i, "unexpected end of data");
                close = js->open[js->depth - 1] == '{' ? '}' : ']';
                if (js->s[i] == close) {
                        js->depth--;
                        i++;
                        continue;
                }
                if (js->s[i] != ',')
                        return json_fail(js, i, "',' or a closing bracket expected");
                return js->open[js->depth - 1] == '{' ? json_member(js, i + 1) : json_ws(js, i + 1);
        }
}

/* Opens the container at s[i]; returns where its first value starts, or after it if empty. */
static size_t json_open(struct json_scan *js, size_t i)
{
        char close = js->s[i] == '{' ? '}' : ']';

        if (js->depth == JSON_SCAN_DEPTH)
                return json_fail(js, i, "nesting too deep");
        js->open[js->depth++] = js->s[i];
        i = json_ws(js, i + 1);
        if (i < js->n && js->s[i] == close) {
                js->depth--;
                return json_after(js, i + 1);
        }
        return close == '}' ? json_member(js, i) : i;
}

/* NULL when s[0..n) is one JSON value and whitespace; else why, and the byte in *at. */
static const char *json_check(const char *s, size_t n, size_t *at)
{
        struct json_scan js = {.s = s, .n = n};
        size_t i = json_ws(&js, 0), next;

        for (;;) {
                if (i >= n) {
                        *at = i;
                        return "unexpected end of data";
                }
                if (s[i] == '{' || s[i] == '[')
                        next = json_open(&js, i);
                else if ((next = json_scalar(&js, i)))
                        next = json_after(&js, next);
                if (!next) {
                        *at = js.at;
                        return js.why;
                }
                i = next;
                if (js.depth == 0)
                        break;
        }
        *at = i;
        return i == n ? NULL : "unexpected data after the value";
}

int input_parse(struct request *req, const char *body, size_t len, bool allow_empty,
                json_object **out)
{
        enum json_tokener_error jerr;
        json_tokener *tok;
        json_object *obj;
        const char *why;
        size_t end;

        *out = NULL;
        while (len && is_json_space(body[0])) {
                body++;
                len--;
        }
        if (len == 0) {
                if (!allow_empty)
                        return http_fail(req, ERR_INVALID,
                                         "request body is empty; a JSON "
                                         "object is required");
                *out = arena_defer(req->arena, input_put, json_object_new_object());
                return ERR_OK;
        }
        why = json_check(body, len, &end);
        if (why)
                return http_fail(req, ERR_INVALID, "malformed JSON at byte %zu: %s", end, why);
        tok = json_tokener_new_ex(INPUT_MAX_DEPTH);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, body, (int)len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (jerr == json_tokener_continue)
                return http_fail(req, ERR_INVALID, "malformed JSON: unexpected end of data");
        if (jerr != json_tokener_success || !obj) {
                json_object_put(obj);
                return http_fail(req, ERR_INVALID, "malformed JSON at byte %zu: %s", end,
                                 json_tokener_error_desc(jerr));
        }
        arena_defer(req->arena, input_put, obj);
        for (; end < len; end++) {
                /* not strchr(" \t\r\n", c): it finds the terminator too, so NULs would pass */
                if (!is_json_space(body[end]))
                        return http_fail(req, ERR_INVALID,
                                         "malformed JSON: unexpected data after the value at "
                                         "byte %zu",
                                         end);
        }
        if (!json_object_is_type(obj, json_type_object))
                return http_fail(req, ERR_INVALID, "request body must be a JSON object");
        *out = obj;
        return ERR_OK;
}

const char *input_choices_list(struct request *req, const char *const *choices)
{
        struct strbuf sb;
        char *s;

        strbuf_init(&sb, 4096);
        for (int i = 0; choices[i]; i++)
                strbuf_addf(&sb, "%s%s", i ? ", " : "", choices[i]);
        s = arena_strdup(req->arena, sb.buf);
        strbuf_release(&sb);
        return s;
}

static const char *type_name(enum field_kind k)
{
        switch (k) {
        case FIELD_STRING:
        case FIELD_TIMESTAMP:
        case FIELD_BEAD_ID:
                return "a string";
        case FIELD_INT:
                return "an integer";
        case FIELD_BOOL:
                return "true or false";
        case FIELD_STRING_ARRAY:
        case FIELD_BEAD_ID_ARRAY:
                return "an array of strings";
        case FIELD_OBJECT:
                return "an object";
        case FIELD_NUMBER:
                return "a number";
        }
        return "?";
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool input_is_bead_id(const char *s)
{
        size_t n = 0, digits = 0;

        if (!is_alpha(*s))
                return false;
        while (is_alpha(s[n]) || is_digit(s[n]))
                n++;
        if (n > 16 || s[n] != '-')
                return false;
        s += n + 1;
        while (is_digit(s[digits]))
                digits++;
        return digits >= 1 && digits <= 18 && s[digits] == '\0';
}

bool input_is_project_id(const char *s)
{
        size_t n = 0;

        if (!is_digit(*s) && !(*s >= 'a' && *s <= 'z'))
                return false;
        for (; s[n]; n++) {
                char c = s[n];

                if (!is_digit(c) && !(c >= 'a' && c <= 'z') && c != '-' && c != '_')
                        return false;
        }
        return n <= 63;
}

bool input_bad_project_id(struct request *req, const char *field, const char *v)
{
        if (!v || input_is_project_id(v))
                return false;
        return http_fail(req, ERR_INVALID, "%s: '%.64s' is not a valid project id", field, v) != 0;
}

bool input_is_event_type(const char *s)
{
        size_t n = strlen(s);

        if (n < 3 || n > 100 || !strchr(s, '.') || s[0] == '.' || s[n - 1] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || s[i] == '.'))
                        return false;
        }
        return true;
}

bool input_is_name(const char *s)
{
        size_t n = 0;

        for (; s[n]; n++) {
                if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
                        return false;
        }
        return n >= 1 && n <= 200;
}

/* YYYY-MM-DD, optionally followed by a time part that PostgreSQL will check in full. */
static bool is_timestamp(const char *s, size_t len)
{
        static const char shape[] = "dddd-dd-dd";

        if (len < 10 || len > 40)
                return false;
        for (int i = 0; i < 10; i++) {
                if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
                        return false;
        }
        return len == 10 || s[10] == 'T' || s[10] == 't' || s[10] == ' ';
}

bool input_is_timestamp(const char *s)
{
        return is_timestamp(s, strlen(s));
}

static int check_string(struct request *req, const struct field_spec *f, json_object *v,
                        const char *label)
{
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);

        if (strlen(s) != len)
                return http_fail(req, ERR_INVALID, "%s: must not contain NUL characters", label);
        switch (f->kind) {
        case FIELD_TIMESTAMP:
                if (!is_timestamp(s, len))
                        return http_fail(req, ERR_INVALID,
                                         "%s: must be an ISO 8601 date or date-time, e.g. "
                                         "2026-01-31T12:00:00Z",
                                         label);
                return ERR_OK;
        case FIELD_BEAD_ID:
        case FIELD_BEAD_ID_ARRAY:
                if (!input_is_bead_id(s))
                        return http_fail(req, ERR_INVALID, "%s: '%.64s' is not a bead id", label,
                                         s);
                return ERR_OK;
        case FIELD_STRING_ARRAY:
                if (len < 1 || len > 200)
                        return http_fail(req, ERR_INVALID, "%s: must be 1 to 200 bytes long",
                                         label);
                return ERR_OK;
        default:
                break;
        }
        if (f->choices) {
                for (int i = 0; f->choices[i]; i++) {
                        if (strcmp(s, f->choices[i]) == 0)
                                return ERR_OK;
                }
                return http_fail(req, ERR_INVALID, "%s: '%.64s' is not one of %s", label, s,
                                 input_choices_list(req, f->choices));
        }
        if ((long)len < f->min || (long)len > f->max)
                return http_fail(req, ERR_INVALID, "%s: must be %ld to %ld bytes long", label,
                                 f->min, f->max);
        return ERR_OK;
}

static int check_array(struct request *req, const struct field_spec *f, json_object *v)
{
        size_t n = json_object_array_length(v);
        char label[96];

        if ((long)n > f->max)
                return http_fail(req, ERR_INVALID, "%s: at most %ld items", f->name, f->max);
        for (size_t i = 0; i < n; i++) {
                json_object *item = json_object_array_get_idx(v, i);
                int rc;

                snprintf(label, sizeof(label), "%s[%zu]", f->name, i);
                if (!json_object_is_type(item, json_type_string))
                        return http_fail(req, ERR_INVALID, "%s: must be a string", label);
                rc = check_string(req, f, item, label);
                if (rc)
                        return rc;
        }
        return ERR_OK;
}

static int check_object(struct request *req, const struct field_spec *f, json_object *v)
{
        if (json_object_object_length(v) > f->max)
                return http_fail(req, ERR_INVALID, "%s: at most %ld keys", f->name, f->max);
        json_object_object_foreach(v, key, val)
        {
                size_t n = strlen(key);

                (void)val;
                if (n < 1 || n > 128)
                        return http_fail(req, ERR_INVALID, "%s: keys must be 1 to 128 bytes long",
                                         f->name);
        }
        return ERR_OK;
}

static int check_field(struct request *req, const struct field_spec *f, json_object *v)
{
        enum json_type want;

        if (f->flags & FIELD_READONLY)
                return http_fail(req, ERR_INVALID, "%s: is read-only", f->name);
        if (!v) {
                if (f->flags & FIELD_NULLABLE)
                        return ERR_OK;
                return http_fail(req, ERR_INVALID, "%s: must not be null", f->name);
        }
        switch (f->kind) {
        case FIELD_INT:
                want = json_type_int;
                break;
        case FIELD_BOOL:
                want = json_type_boolean;
                break;
        case FIELD_STRING_ARRAY:
        case FIELD_BEAD_ID_ARRAY:
                want = json_type_array;
                break;
        case FIELD_OBJECT:
                want = json_type_object;
                break;
        default:
                want = json_type_string;
        }
        if (f->kind == FIELD_NUMBER) {
                double x = json_object_get_double(v);

                if ((!json_object_is_type(v, json_type_int) &&
                     !json_object_is_type(v, json_type_double)) ||
                    !(x >= (double)f->min && x <= (double)f->max))
                        return http_fail(req, ERR_INVALID, "%s: must be a number from %ld to %ld",
                                         f->name, f->min, f->max);
                return ERR_OK;
        }
        if (!json_object_is_type(v, want))
                return http_fail(req, ERR_INVALID, "%s: must be %s", f->name, type_name(f->kind));
        switch (f->kind) {
        case FIELD_INT: {
                int64_t x = json_object_get_int64(v);

                if (x < f->min || x > f->max)
                        return http_fail(req, ERR_INVALID, "%s: must be an integer from %ld to %ld",
                                         f->name, f->min, f->max);
                return ERR_OK;
        }
        case FIELD_BOOL:
                return ERR_OK;
        case FIELD_STRING_ARRAY:
        case FIELD_BEAD_ID_ARRAY:
                return check_array(req, f, v);
        case FIELD_OBJECT:
                return check_object(req, f, v);
        default:
                return check_string(req, f, v, f->name);
        }
}

int input_check(struct request *req, json_object *obj, const struct field_spec *specs, size_t n,
                bool partial)
{
        json_object_object_foreach(obj, key, val)
        {
                const struct field_spec *f = NULL;
                int rc;

                for (size_t i = 0; i < n && !f; i++) {
                        if (strcmp(specs[i].name, key) == 0)
                                f = &specs[i];
                }
                if (!f)
                        return http_fail(req, ERR_INVALID, "unknown field '%.64s'", key);
                rc = check_field(req, f, val);
                if (rc)
                        return rc;
        }
        if (partial)
                return ERR_OK;
        for (size_t i = 0; i < n; i++) {
                json_object *v;

                if ((specs[i].flags & FIELD_REQUIRED) &&
                    !json_object_object_get_ex(obj, specs[i].name, &v))
                        return http_fail(req, ERR_INVALID, "%s: is required", specs[i].name);
        }
        return ERR_OK;
}

int input_prefix_error(struct request *req, int code, const char *prefix)
{
        char copy[sizeof(req->error)];

        memcpy(copy, req->error, sizeof(copy));
        return http_fail(req, code, "%s%s", prefix, copy);
}

const char *input_string(json_object *obj, const char *key)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}
