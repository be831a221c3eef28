/*
 * xalloc — allocation that never returns NULL.
 *
 * Out of memory is not a condition Loom tries to survive: every x* function aborts the process
 * (supervisord restarts it), so callers never check for NULL.  Sizes that come from outside are
 * capped by named limits before they reach these functions.
 */
#ifndef LOOM_XALLOC_H
#define LOOM_XALLOC_H

#include <stddef.h>

/* Returns a block of at least size bytes (size 0 gives a valid, freeable pointer). Cannot fail. */
void *xmalloc(size_t size) __attribute__((malloc, returns_nonnull));
/* Zeroed array of n elements; aborts on multiplication overflow. Cannot fail. */
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
/* realloc that aborts instead of failing; ptr may be NULL. */
void *xrealloc(void *ptr, size_t size) __attribute__((returns_nonnull));
/* Copy of a NUL-terminated string; s must not be NULL. Caller frees. */
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
/* Copy of len bytes of s, NUL-terminated. Caller frees. */
char *xstrndup(const char *s, size_t len) __attribute__((malloc, returns_nonnull));

#endif
