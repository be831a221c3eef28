/* Unit tests for shared/arena.c: alignment, big blocks, cleanups in reverse order. */
#include "arena.h"
#include "testlib.h"

#include <stdalign.h>
#include <stdint.h>

static char order[8];
static int norder;

static void note(void *p)
{
        order[norder++] = *(char *)p;
}

TEST(allocations_are_aligned_and_distinct)
{
        struct arena a;
        char *p, *q;

        arena_init(&a, 64);
        p = arena_alloc(&a, 3);
        q = arena_alloc(&a, 5);
        CHECK(p != q);
        CHECK_INT((uintptr_t)q % alignof(max_align_t), 0);
        memset(p, 'x', 3);
        memset(q, 'y', 5);
        CHECK_INT(p[2], 'x');
        arena_release(&a);
}

TEST(large_allocation_gets_own_block)
{
        struct arena a;
        char *big;

        arena_init(&a, 64);
        big = arena_alloc(&a, 100000);
        memset(big, 1, 100000);
        CHECK_STR(arena_printf(&a, "%d-%s", 42, "x"), "42-x");
        arena_reset(&a);
        CHECK_STR(arena_strndup(&a, "abcdef", 3), "abc");
        arena_release(&a);
}

TEST(cleanups_run_newest_first_on_reset)
{
        static char x = 'x', y = 'y';
        struct arena a;

        norder = 0;
        arena_init(&a, 0);
        arena_defer(&a, note, &x);
        arena_defer(&a, note, &y);
        CHECK(arena_defer(&a, note, NULL) == NULL);
        arena_reset(&a);
        CHECK_INT(norder, 2);
        CHECK_INT(order[0], 'y');
        CHECK_INT(order[1], 'x');
        arena_reset(&a); /* nothing left to run */
        CHECK_INT(norder, 2);
        arena_release(&a);
}

TESTS(TESTLIB_CASE(allocations_are_aligned_and_distinct),
      TESTLIB_CASE(large_allocation_gets_own_block),
      TESTLIB_CASE(cleanups_run_newest_first_on_reset))
