/*
 * arena — per-request (and per-loop-iteration) memory with cleanup callbacks.
 *
 * nginx's pool in miniature: allocations are bump-pointer from chained blocks and are never
 * freed one by one; arena_reset() runs the registered cleanups (PQclear, json_object_put, …) in
 * reverse order and rewinds to the first block, which is kept for the next request.
 */
#ifndef LOOM_ARENA_H
#define LOOM_ARENA_H

#include <stddef.h>

/*
 * ARENA_EXACT is 1 under AddressSanitizer: every allocation then gets a block of its own,
 * exactly its size, and a reset frees them all, so a read or write past what was asked for
 * lands in ASan's redzone instead of in a neighbour's bytes (the sanitizer and fuzzing builds
 * see arena overflows too), and memory is never kept across a reset.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_EXACT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_EXACT 1
#endif
#endif
#ifndef ARENA_EXACT
#define ARENA_EXACT 0
#endif

struct arena_block;
struct arena_cleanup;

struct arena {
        struct arena_block *head;       /* current block; older blocks chain behind it */
        struct arena_cleanup *cleanups; /* newest first */
        size_t block_size;
};

typedef void (*arena_cleanup_fn)(void *ptr);

/* Empty arena; the first allocation creates a block of block_size (0 = 16 KiB). */
void arena_init(struct arena *a, size_t block_size);
/* Runs cleanups, frees every block. NULL-safe. */
void arena_release(struct arena *a);
/* Runs cleanups and frees all but one block, which is rewound. */
void arena_reset(struct arena *a);

/* size bytes aligned for any type; valid until the next reset. Cannot fail. */
void *arena_alloc(struct arena *a, size_t size);
/* Copies of strings into the arena. Cannot fail. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t len);
/* Formats into the arena. Cannot fail. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes fn(ptr) run at the next reset or release. ptr NULL registers nothing. Returns ptr. */
void *arena_defer(struct arena *a, arena_cleanup_fn fn, void *ptr);

#endif
