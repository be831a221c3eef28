/* Unit tests for workers/history.c: what of a conversation is sent to the model. */
#include "history.h"
#include "testlib.h"

static struct arena arena;
static struct history h;
static struct llm_message *v;

static void start(void)
{
        static int ready;

        if (!ready++)
                arena_init(&arena, 4096);
        arena_reset(&arena);
        history_init(&h, &arena);
}

static void fill(int middle)
{
        char buf[64];

        start();
        history_add(&h, "system", "SYSTEM");
        history_add(&h, "user", "BEAD");
        for (int i = 0; i < middle; i++) {
                snprintf(buf, sizeof(buf), "m%02d-%s", i, "xxxxxxxxxx"); /* 14 chars */
                history_add(&h, i % 2 ? "user" : "assistant", buf);
        }
        history_add(&h, "user", "LAST");
}

TEST(everything_fits)
{
        fill(4);
        CHECK_INT(history_view(&h, 100000, 0, &v), 7);
        CHECK_STR(v[0].content, "SYSTEM");
        CHECK_STR(v[1].content, "BEAD");
        CHECK_STR(v[2].content, "m00-xxxxxxxxxx");
        CHECK_STR(v[6].content, "LAST");
        history_release(&h);
}

TEST(oldest_middle_dropped_first_with_a_note)
{
        fill(10);
        /* pinned + last = 6 + 4 + 4 chars; room for 3 middle messages of 14 */
        CHECK_INT(history_view(&h, 14 + 3 * 14 + 5, 0, &v), 2 + 1 + 3 + 1);
        CHECK_HAS(v[2].content, "7 older messages");
        CHECK_STR(v[3].content, "m07-xxxxxxxxxx");
        CHECK_STR(v[5].content, "m09-xxxxxxxxxx");
        CHECK_STR(v[6].content, "LAST");
        history_release(&h);
}

TEST(shrink_levels)
{
        fill(8);
        CHECK_INT(history_view(&h, 100000, 1, &v), 2 + 1 + 4 + 1);
        CHECK_STR(v[3].content, "m04-xxxxxxxxxx");
        CHECK_INT(history_view(&h, 100000, 2, &v), 2 + 1 + 2 + 1);
        CHECK_INT(history_view(&h, 100000, 3, &v), 2 + 1 + 1);
        CHECK_HAS(v[2].content, "8 older messages");
        CHECK_INT(history_view(&h, 100000, 4, &v), 4);
        CHECK_HAS(v[3].content, "LA\n[");
        history_release(&h);
}

TEST(short_conversations)
{
        start();
        history_add(&h, "system", "S");
        CHECK_INT(history_view(&h, 10, 0, &v), 1);
        history_add(&h, "user", "U");
        CHECK_INT(history_view(&h, 10, 3, &v), 2);
        CHECK_STR(v[1].content, "U");
        history_release(&h);
}

TESTS(TESTLIB_CASE(everything_fits), TESTLIB_CASE(oldest_middle_dropped_first_with_a_note),
      TESTLIB_CASE(shrink_levels), TESTLIB_CASE(short_conversations))
