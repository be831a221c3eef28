/*
 * strbuf — growable, capped, always-terminated string builder; see strbuf.h.
 */
#include "strbuf.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char strbuf_empty[1];

void strbuf_init(struct strbuf *sb, size_t max)
{
        sb->buf = strbuf_empty;
        sb->len = 0;
        sb->alloc = 0;
        sb->max = max ? max : STRBUF_MAX_DEFAULT;
        sb->failed = false;
}

void strbuf_release(struct strbuf *sb)
{
        if (!sb)
                return;
        if (sb->alloc)
                free(sb->buf);
        strbuf_init(sb, sb->max);
}

void strbuf_reset(struct strbuf *sb)
{
        sb->len = 0;
        sb->buf[0] = '\0';
        sb->failed = false;
        if (!sb->alloc)
                sb->buf = strbuf_empty;
}

char *strbuf_take(struct strbuf *sb, size_t *len_out)
{
        char *s = sb->alloc ? sb->buf : xstrdup("");

        if (len_out)
                *len_out = sb->len;
        strbuf_init(sb, sb->max);
        return s;
}

/* Makes room for extra more bytes plus the NUL; false (and failed set) past max. */
static bool strbuf_grow(struct strbuf *sb, size_t extra)
{
        size_t want;

        if (sb->failed || extra > sb->max - sb->len) {
                sb->failed = true;
                return false;
        }
        want = sb->len + extra + 1;
        if (want <= sb->alloc)
                return true;
        if (want < 64)
                want = 64;
        if (want < sb->alloc * 2)
                want = sb->alloc * 2;
        if (!sb->alloc) {
                sb->buf = xmalloc(want);
                sb->buf[0] = '\0';
        } else {
                sb->buf = xrealloc(sb->buf, want);
        }
        sb->alloc = want;
        return true;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
        if (!strbuf_grow(sb, len))
                return;
        memcpy(sb->buf + sb->len, data, len);
        sb->len += len;
        sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
        strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, char c)
{
        strbuf_add(sb, &c, 1);
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
        va_list cp;
        int n;

        va_copy(cp, ap);
        n = vsnprintf(NULL, 0, fmt, cp);
        va_end(cp);
        if (n < 0 || !strbuf_grow(sb, (size_t)n))
                return;
        vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
        sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        strbuf_vaddf(sb, fmt, ap);
        va_end(ap);
}

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (Unicode table 3-7: no overlong forms,
 * no surrogates, nothing past U+10FFFF), or 0 when it is not one.  s[0] >= 0x80.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
        unsigned char lo = 0x80, hi = 0xbf;
        size_t want;

        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                want = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                want = 3;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                want = 4;
        else
                return 0;
        if (s[0] == 0xe0)
                lo = 0xa0;
        else if (s[0] == 0xed)
                hi = 0x9f;
        else if (s[0] == 0xf0)
                lo = 0x90;
        else if (s[0] == 0xf4)
                hi = 0x8f;
        if (n < want || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < want; i++) {
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        }
        return want;
}

void strbuf_add_json_str(struct strbuf *sb, const char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t i, start = 0;

        strbuf_addch(sb, '"');
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[6] = {'\\', 'u', '0', '0', 0, 0};

                if (c >= 0x80) {
                        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);

                        if (n) {
                                i += n - 1;
                                continue;
                        }
                        /* JSON is UTF-8: a byte that is not part of a character becomes U+FFFD */
                        strbuf_add(sb, s + start, i - start);
                        strbuf_add(sb, "\\ufffd", 6);
                        start = i + 1;
                        continue;
                }
                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                strbuf_add(sb, s + start, i - start);
                start = i + 1;
                switch (c) {
                case '"':
                        strbuf_add(sb, "\\\"", 2);
                        break;
                case '\\':
                        strbuf_add(sb, "\\\\", 2);
                        break;
                case '\n':
                        strbuf_add(sb, "\\n", 2);
                        break;
                case '\r':
                        strbuf_add(sb, "\\r", 2);
                        break;
                case '\t':
                        strbuf_add(sb, "\\t", 2);
                        break;
                default:
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 15];
                        strbuf_add(sb, esc, 6);
                }
        }
        strbuf_add(sb, s + start, len - start);
        strbuf_addch(sb, '"');
}
