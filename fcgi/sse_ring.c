/*
 * sse_ring — SSE frames and the ring of recent events; see sse_ring.h.
 */
#include "sse_ring.h"
#include "strbuf.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* "data: " lines: every CR, LF or CRLF in the JSON starts a new one */
static void ring_add_data(struct strbuf *sb, const char *json, size_t len)
{
        size_t start = 0;

        strbuf_addstr(sb, "data: ");
        for (size_t i = 0; i < len; i++) {
                if (json[i] != '\r' && json[i] != '\n')
                        continue;
                strbuf_add(sb, json + start, i - start);
                strbuf_addstr(sb, "\ndata: ");
                if (json[i] == '\r' && i + 1 < len && json[i + 1] == '\n')
                        i++;
                start = i + 1;
        }
        strbuf_add(sb, json + start, len - start);
        strbuf_addstr(sb, "\n\n");
}

/* Copies type into dst (SSE_EVENT_MAX_TYPE + 1 bytes), with line breaks made harmless. */
static void ring_clean_type(char *dst, const char *type)
{
        size_t n = strnlen(type, SSE_EVENT_MAX_TYPE);

        for (size_t i = 0; i < n; i++)
                dst[i] = (type[i] == '\r' || type[i] == '\n') ? '_' : type[i];
        dst[n] = '\0';
}

struct sse_event *sse_event_new(int64_t id, const char *type, const char *project_id,
                                const char *json, size_t json_len)
{
        struct sse_event_row row = {.id = id,
                                    .type = type,
                                    .project_id = project_id,
                                    .json = json,
                                    .json_len = json_len};

        return sse_event_build(&row);
}

/* Copies len bytes and a NUL to *p, advancing it; returns where they went. */
static const char *ring_put(char **p, const char *src, size_t len)
{
        char *dst = memcpy(*p, src, len);

        dst[len] = '\0';
        *p += len + 1;
        return dst;
}

struct sse_event *sse_event_build(const struct sse_event_row *row)
{
        char clean[SSE_EVENT_MAX_TYPE + 1];
        const char *project_id = row->project_id ? row->project_id : "";
        const char *recipient = row->recipient ? row->recipient : "";
        struct sse_event *ev;
        struct strbuf sb, act;
        size_t tlen, plen, rlen;
        char *p;

        ring_clean_type(clean, row->type);
        tlen = strlen(clean);
        plen = strlen(project_id);
        rlen = strlen(recipient);
        strbuf_init(&sb, 0);
        strbuf_addf(&sb, "id: %lld\nevent: %s\n", (long long)row->id, clean);
        ring_add_data(&sb, row->json, row->json_len);
        strbuf_init(&act, 0);
        if (row->activity) {
                strbuf_addf(&act, "id: %lld\nevent: activity\n", (long long)row->id);
                ring_add_data(&act, row->activity, row->activity_len);
        }
        /* one block: the struct, then type, project, recipient and frames, each NUL-terminated */
        ev = xmalloc(sizeof(*ev) + tlen + plen + rlen + sb.len + act.len + 5);
        p = ev->data;
        ev->id = row->id;
        ev->type = ring_put(&p, clean, tlen);
        ev->project_id = ring_put(&p, project_id, plen);
        ev->recipient = ring_put(&p, recipient, rlen);
        ev->frame = ring_put(&p, sb.buf, sb.len);
        ev->frame_len = sb.len;
        ev->activity_frame = row->activity ? ring_put(&p, act.buf, act.len) : NULL;
        ev->activity_len = row->activity ? act.len : 0;
        strbuf_release(&sb);
        strbuf_release(&act);
        return ev;
}

void sse_event_free(struct sse_event *ev)
{
        free(ev);
}

void sse_ring_init(struct sse_ring *r, size_t cap)
{
        memset(r, 0, sizeof(*r));
        r->cap = cap ? cap : 1;
        r->slot = xcalloc(r->cap, sizeof(*r->slot));
}

static void ring_clear(struct sse_ring *r)
{
        for (size_t i = 0; i < r->count; i++)
                sse_event_free(r->slot[(r->first + i) % r->cap]);
        r->first = 0;
        r->count = 0;
}

void sse_ring_release(struct sse_ring *r)
{
        if (!r || !r->slot)
                return;
        ring_clear(r);
        free(r->slot);
        r->slot = NULL;
}

void sse_ring_reset(struct sse_ring *r, int64_t head)
{
        ring_clear(r);
        r->floor = head;
        r->head = head;
}

bool sse_ring_push(struct sse_ring *r, struct sse_event *ev)
{
        if (ev->id <= r->head) {
                sse_event_free(ev);
                return false;
        }
        if (r->count == r->cap) {
                struct sse_event *old = r->slot[r->first];

                r->floor = old->id;
                sse_event_free(old);
                r->first = (r->first + 1) % r->cap;
                r->count--;
        }
        r->slot[(r->first + r->count) % r->cap] = ev;
        r->count++;
        r->head = ev->id;
        return true;
}

bool sse_ring_covers(const struct sse_ring *r, int64_t after)
{
        return after >= r->floor;
}

const struct sse_event *sse_ring_get(const struct sse_ring *r, size_t i)
{
        return r->slot[(r->first + i) % r->cap];
}

size_t sse_ring_find(const struct sse_ring *r, int64_t after)
{
        size_t lo = 0, hi = r->count;

        /* ids are increasing but not dense (rolled-back inserts leave holes): bisect */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (sse_ring_get(r, mid)->id > after)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return lo;
}
