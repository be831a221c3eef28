/*
 * strbuf — the one growable string builder.
 *
 * Invariants (git's strbuf plus curl's dynbuf cap): buf is never NULL and always NUL-terminated;
 * len never exceeds max; an append that would pass max appends nothing and sets the sticky
 * `failed` flag, so a caller builds a whole document and checks `failed` once at the end.
 */
#ifndef LOOM_STRBUF_H
#define LOOM_STRBUF_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>

struct strbuf {
        char *buf;
        size_t len;
        size_t alloc; /* 0 while buf points at the shared empty string */
        size_t max;   /* largest len allowed */
        bool failed;  /* an append was refused because of max */
};

#define STRBUF_MAX_DEFAULT ((size_t)64 << 20)

/* Empty buffer that may grow to max bytes (0 = STRBUF_MAX_DEFAULT). Allocates nothing. */
void strbuf_init(struct strbuf *sb, size_t max);
/* Frees the storage and re-initialises with the same max. NULL-safe. */
void strbuf_release(struct strbuf *sb);
/* Empties the buffer and clears `failed`, keeping the storage. */
void strbuf_reset(struct strbuf *sb);
/* Hands the NUL-terminated string to the caller (who frees it) and re-initialises sb. */
char *strbuf_take(struct strbuf *sb, size_t *len_out);

void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
/* Appends s (len bytes, any content) as a quoted JSON string with escapes; bytes that are not
 * well-formed UTF-8 become U+FFFD, so the result is always valid JSON text. */
void strbuf_add_json_str(struct strbuf *sb, const char *s, size_t len);

#endif
