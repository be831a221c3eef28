/*
 * xalloc — allocation that aborts on exhaustion; see xalloc.h.
 */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void __attribute__((noreturn)) oom(size_t size)
{
        fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
        abort();
}

void *xmalloc(size_t size)
{
        void *p = malloc(size ? size : 1);

        if (!p)
                oom(size);
        return p;
}

void *xcalloc(size_t n, size_t size)
{
        void *p;

        if (size && n > (size_t)-1 / size)
                oom((size_t)-1);
        p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                oom(n * size);
        return p;
}

void *xrealloc(void *ptr, size_t size)
{
        void *p = realloc(ptr, size ? size : 1);

        if (!p)
                oom(size);
        return p;
}

char *xstrndup(const char *s, size_t len)
{
        char *p = xmalloc(len + 1);

        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

char *xstrdup(const char *s)
{
        return xstrndup(s, strlen(s));
}
