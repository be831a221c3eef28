/*
 * arena — bump allocator with cleanups; see arena.h.
 */
#include "arena.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
        struct arena_block *next;
        size_t size; /* usable bytes in data */
        size_t used;
        alignas(max_align_t) unsigned char data[];
};

struct arena_cleanup {
        struct arena_cleanup *next;
        arena_cleanup_fn fn;
        void *ptr;
};

void arena_init(struct arena *a, size_t block_size)
{
        a->head = NULL;
        a->cleanups = NULL;
        a->block_size = block_size ? block_size : 16384;
}

static void arena_run_cleanups(struct arena *a)
{
        while (a->cleanups) {
                struct arena_cleanup *c = a->cleanups;

                a->cleanups = c->next;
                c->fn(c->ptr);
        }
}

void arena_release(struct arena *a)
{
        if (!a)
                return;
        arena_run_cleanups(a);
        while (a->head) {
                struct arena_block *b = a->head;

                a->head = b->next;
                free(b);
        }
}

void arena_reset(struct arena *a)
{
        struct arena_block *keep;

        arena_run_cleanups(a);
        if (!a->head)
                return;
        /* keep the oldest block: it has the default size */
        keep = a->head;
        if (ARENA_EXACT) {
                while (a->head) {
                        keep = a->head;
                        a->head = keep->next;
                        free(keep);
                }
                return;
        }
        while (keep->next) {
                struct arena_block *b = keep;

                keep = keep->next;
                free(b);
        }
        keep->used = 0;
        a->head = keep;
}

void *arena_alloc(struct arena *a, size_t size)
{
        const size_t align = alignof(max_align_t);
        struct arena_block *b = a->head;
        size_t off;

        if (ARENA_EXACT) {
                b = xmalloc(sizeof(*b) + size);
                b->size = b->used = size;
                b->next = a->head;
                a->head = b;
                return b->data;
        }
        size = (size + align - 1) & ~(align - 1);
        if (!b || b->size - b->used < size) {
                size_t want = size > a->block_size ? size : a->block_size;

                b = xmalloc(sizeof(*b) + want);
                b->size = want;
                b->used = 0;
                b->next = a->head;
                a->head = b;
        }
        off = b->used;
        b->used += size;
        return b->data + off;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
        char *p = arena_alloc(a, len + 1);

        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
        return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
        va_list ap;
        char *p;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return arena_strdup(a, "");
        p = arena_alloc(a, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return p;
}

void *arena_defer(struct arena *a, arena_cleanup_fn fn, void *ptr)
{
        struct arena_cleanup *c;

        if (!ptr)
                return NULL;
        c = arena_alloc(a, sizeof(*c));
        c->fn = fn;
        c->ptr = ptr;
        c->next = a->cleanups;
        a->cleanups = c;
        return ptr;
}
