/*
 * skill — SKILL.md front matter and body; see skill.h.
 */
#include "skill.h"
#include "err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct skill_reader {
        const char *p, *end;
        int line;
        struct arena *arena;
        char *err;
        size_t errlen;
};

static int skill_fail(struct skill_reader *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int skill_fail(struct skill_reader *r, const char *fmt, ...)
{
        va_list ap;
        int n = snprintf(r->err, r->errlen, "line %d: ", r->line);

        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < r->errlen)
                vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
        va_end(ap);
        return ERR_INVALID;
}

/* Next line without its newline (and a trailing \r); false at the end. */
static bool skill_line(struct skill_reader *r, const char **s, size_t *len)
{
        const char *nl;

        if (r->p >= r->end)
                return false;
        nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        *s = r->p;
        *len = (size_t)((nl ? nl : r->end) - r->p);
        r->p = nl ? nl + 1 : r->end;
        if (*len && (*s)[*len - 1] == '\r')
                (*len)--;
        r->line++;
        return true;
}

static size_t skill_indent(const char *s, size_t len)
{
        size_t i = 0;

        while (i < len && s[i] == ' ')
                i++;
        return i;
}

/* A scalar: trims, strips a trailing comment from plain values, unquotes quoted ones. */
static int skill_scalar(struct skill_reader *r, const char *s, size_t len, const char **out)
{
        char *v;
        size_t o = 0;

        while (len && (*s == ' ' || *s == '\t'))
                s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
                len--;
        if (len && (*s == '"' || *s == '\'')) {
                char q = *s;

                if (len < 2 || s[len - 1] != q)
                        return skill_fail(r, "unterminated quoted value");
                v = arena_alloc(r->arena, len);
                for (size_t i = 1; i + 1 < len; i++) {
                        if (q == '"' && s[i] == '\\' && i + 2 < len)
                                i++;
                        v[o++] = s[i];
                }
                v[o] = '\0';
                *out = v;
                return ERR_OK;
        }
        for (size_t i = 0; i + 1 < len; i++) {
                if (s[i] == ' ' && s[i + 1] == '#') {
                        len = i;
                        break;
                }
        }
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
                len--;
        *out = arena_strndup(r->arena, s, len);
        return ERR_OK;
}

/* Where a "key: value" or "key:" line's value lives; false when it is not such a line. */
static bool skill_key(const char *s, size_t len, const char **key, size_t *klen, const char **val,
                      size_t *vlen)
{
        const char *colon = memchr(s, ':', len);

        if (!colon || colon == s)
                return false;
        if ((size_t)(colon - s) + 1 < len && colon[1] != ' ')
                return false;
        *key = s;
        *klen = (size_t)(colon - s);
        *val = colon + 1;
        *vlen = len - *klen - 1;
        return true;
}

static bool key_is(const char *key, size_t klen, const char *want)
{
        return klen == strlen(want) && memcmp(key, want, klen) == 0;
}

static const char **skill_slot(struct skill *out, bool meta, const char *key, size_t klen)
{
        if (!meta) {
                if (key_is(key, klen, "name"))
                        return &out->name;
                if (key_is(key, klen, "description"))
                        return &out->description;
                if (key_is(key, klen, "license"))
                        return &out->license;
                if (key_is(key, klen, "compatibility"))
                        return &out->compatibility;
                return NULL;
        }
        if (key_is(key, klen, "role"))
                return &out->role;
        if (key_is(key, klen, "author"))
                return &out->author;
        if (key_is(key, klen, "version"))
                return &out->version;
        if (key_is(key, klen, "autonomy_level"))
                return &out->autonomy_level;
        return NULL;
}

/* One front-matter line inside or outside metadata. */
static int skill_front_line(struct skill_reader *r, struct skill *out, const char *s, size_t len,
                            bool *in_meta, bool *in_list)
{
        size_t indent = skill_indent(s, len), klen, vlen;
        const char *key, *val, **slot;

        if (indent == len || s[indent] == '#')
                return ERR_OK; /* blank or comment */
        if (indent == 0)
                *in_meta = *in_list = false;
        if (*in_list && s[indent] == '-') {
                if (out->nspecialties == SKILL_MAX_SPECIALTIES)
                        return skill_fail(r, "more than %d specialties", SKILL_MAX_SPECIALTIES);
                return skill_scalar(r, s + indent + 1, len - indent - 1,
                                    &out->specialties[out->nspecialties++]);
        }
        if (!skill_key(s + indent, len - indent, &key, &klen, &val, &vlen))
                return skill_fail(r, "expected 'key: value'");
        *in_list = false;
        if (indent == 0 && key_is(key, klen, "metadata")) {
                *in_meta = true;
                return ERR_OK;
        }
        if (*in_meta && key_is(key, klen, "specialties")) {
                *in_list = true;
                return ERR_OK;
        }
        slot = skill_slot(out, indent > 0 && *in_meta, key, klen);
        return slot ? skill_scalar(r, val, vlen, slot) : ERR_OK;
}

int skill_parse(const char *text, size_t len, struct arena *arena, struct skill *out, char *err,
                size_t errlen)
{
        struct skill_reader r = {text, text + len, 0, arena, err, errlen};
        bool in_meta = false, in_list = false, closed = false;
        const char *s;
        size_t n;
        int rc;

        memset(out, 0, sizeof(*out));
        if (len > SKILL_MAX_BYTES)
                return skill_fail(&r, "file larger than %zu bytes", SKILL_MAX_BYTES);
        if (!skill_line(&r, &s, &n) || n != 3 || memcmp(s, "---", 3) != 0)
                return skill_fail(&r, "expected '---' to open the front matter");
        while (skill_line(&r, &s, &n)) {
                if (n == 3 && memcmp(s, "---", 3) == 0) {
                        closed = true;
                        break;
                }
                rc = skill_front_line(&r, out, s, n, &in_meta, &in_list);
                if (rc)
                        return rc;
        }
        if (!closed)
                return skill_fail(&r, "front matter is not closed by '---'");
        while (r.p < r.end && (*r.p == '\n' || *r.p == '\r'))
                r.p++;
        out->instructions = arena_strndup(arena, r.p, (size_t)(r.end - r.p));
        if (!out->name || !*out->name)
                return skill_fail(&r, "name is required");
        return ERR_OK;
}
