/*
 * Unit tests for fcgi/sse_ring.c: SSE frames of events, and the ring's eviction, floor and
 * lookups.  (The Makefile links no sse_* objects into unit tests, so the module is compiled in.)
 */
#include "sse_ring.h"
#include "testlib.h"

static struct sse_event *ev(int64_t id)
{
        return sse_event_new(id, "bead.created", "p", "{}", 2);
}

TEST(frame_of_an_event)
{
        struct sse_event *e = sse_event_new(42, "bead.created", "alpha", "{\"id\":42}", 9);

        CHECK_STR(e->frame, "id: 42\nevent: bead.created\ndata: {\"id\":42}\n\n");
        CHECK_INT(e->frame_len, strlen(e->frame));
        CHECK_STR(e->type, "bead.created");
        CHECK_STR(e->project_id, "alpha");
        sse_event_free(e);
        e = sse_event_new(1, "x.y", NULL, "1", 1);
        CHECK_STR(e->project_id, "");
        sse_event_free(e);
}

TEST(activity_frame_and_recipient)
{
        struct sse_event_row row = {.id = 9,
                                    .type = "bead.created",
                                    .project_id = "alpha",
                                    .json = "{\"e\":1}",
                                    .json_len = 7,
                                    .activity = "{\"a\":\n2}",
                                    .activity_len = 8};
        struct sse_event *e = sse_event_build(&row);

        CHECK_STR(e->frame, "id: 9\nevent: bead.created\ndata: {\"e\":1}\n\n");
        CHECK_STR(e->activity_frame, "id: 9\nevent: activity\ndata: {\"a\":\ndata: 2}\n\n");
        CHECK_INT(e->activity_len, strlen(e->activity_frame));
        CHECK_STR(e->recipient, "");
        CHECK_STR(e->project_id, "alpha");
        sse_event_free(e);
        row = (struct sse_event_row){
                .id = 10, .type = "notification", .recipient = "bob", .json = "{}", .json_len = 2};
        e = sse_event_build(&row);
        CHECK_STR(e->recipient, "bob");
        CHECK_STR(e->project_id, "");
        CHECK(e->activity_frame == NULL);
        CHECK_INT(e->activity_len, 0);
        CHECK_STR(e->frame, "id: 10\nevent: notification\ndata: {}\n\n");
        sse_event_free(e);
}

TEST(line_breaks_cannot_cut_a_frame)
{
        char longtype[300];
        struct sse_event *e = sse_event_new(7, "bad\ntype", "", "a\nb\rc\r\nd", 8);

        CHECK_STR(e->frame, "id: 7\nevent: bad_type\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
        sse_event_free(e);
        memset(longtype, 't', sizeof(longtype) - 1);
        longtype[sizeof(longtype) - 1] = '\0';
        e = sse_event_new(8, longtype, "", "", 0);
        CHECK_INT(strlen(e->type), SSE_EVENT_MAX_TYPE);
        CHECK_HAS(e->frame, "data: \n\n");
        sse_event_free(e);
}

TEST(ring_evicts_and_raises_the_floor)
{
        static const int64_t ids[] = {11, 12, 14, 17, 18, 30};
        struct sse_ring r;

        sse_ring_init(&r, 4);
        sse_ring_reset(&r, 10);
        CHECK(sse_ring_covers(&r, 10));
        CHECK(!sse_ring_covers(&r, 9));
        for (size_t i = 0; i < 6; i++)
                CHECK(sse_ring_push(&r, ev(ids[i])));
        CHECK_INT(r.count, 4);
        CHECK_INT(r.head, 30);
        CHECK_INT(r.floor, 12); /* 11 and 12 were evicted */
        CHECK(!sse_ring_covers(&r, 11));
        CHECK(sse_ring_covers(&r, 12));
        CHECK(sse_ring_covers(&r, 13)); /* a hole in the ids is still covered */
        CHECK_INT(sse_ring_get(&r, 0)->id, 14);
        CHECK_INT(sse_ring_get(&r, 3)->id, 30);
        CHECK_INT(sse_ring_find(&r, 12), 0);
        CHECK_INT(sse_ring_find(&r, 14), 1);
        CHECK_INT(sse_ring_find(&r, 15), 1);
        CHECK_INT(sse_ring_find(&r, 18), 3);
        CHECK_INT(sse_ring_find(&r, 30), 4);
        CHECK_INT(sse_ring_find(&r, 99), 4);
        sse_ring_release(&r);
}

TEST(ring_refuses_old_ids)
{
        struct sse_ring r;

        sse_ring_init(&r, 8);
        sse_ring_reset(&r, 5);
        CHECK(!sse_ring_push(&r, ev(5))); /* freed, not stored */
        CHECK(!sse_ring_push(&r, ev(3)));
        CHECK(sse_ring_push(&r, ev(6)));
        CHECK(!sse_ring_push(&r, ev(6)));
        CHECK_INT(r.count, 1);
        sse_ring_reset(&r, 100);
        CHECK_INT(r.count, 0);
        CHECK_INT(r.floor, 100);
        CHECK_INT(sse_ring_find(&r, 0), 0);
        sse_ring_release(&r);
        sse_ring_release(&r); /* twice is harmless */
}

TEST(ring_wraps_many_times)
{
        struct sse_ring r;

        sse_ring_init(&r, 16);
        for (int64_t id = 1; id <= 1000; id++)
                CHECK(sse_ring_push(&r, ev(id * 2)));
        CHECK_INT(r.count, 16);
        CHECK_INT(r.floor, 2 * (1000 - 16));
        for (size_t i = 0; i < 16; i++)
                CHECK_INT(sse_ring_get(&r, i)->id, 2 * (1000 - 15 + (int64_t)i));
        CHECK_INT(sse_ring_find(&r, 1971), 1); /* 1970 is the oldest */
        sse_ring_release(&r);
}

TESTS(TESTLIB_CASE(frame_of_an_event), TESTLIB_CASE(activity_frame_and_recipient),
      TESTLIB_CASE(line_breaks_cannot_cut_a_frame), TESTLIB_CASE(ring_evicts_and_raises_the_floor),
      TESTLIB_CASE(ring_refuses_old_ids), TESTLIB_CASE(ring_wraps_many_times))
