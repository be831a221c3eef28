/*
 * history — the run's conversation and its trimming; see history.h.
 */
#include "history.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define HISTORY_PINNED 2

void history_init(struct history *h, struct arena *arena)
{
        memset(h, 0, sizeof(*h));
        h->arena = arena;
}

void history_release(struct history *h)
{
        free(h->msgs);
        h->msgs = NULL;
        h->n = h->cap = 0;
}

void history_add(struct history *h, const char *role, const char *content)
{
        if (h->n == h->cap) {
                h->cap = h->cap ? h->cap * 2 : 32;
                h->msgs = xrealloc(h->msgs, (size_t)h->cap * sizeof(h->msgs[0]));
        }
        h->msgs[h->n].role = role;
        h->msgs[h->n].content = arena_strdup(h->arena, content);
        h->n++;
}

int history_view(const struct history *h, size_t budget_chars, int level, struct llm_message **out)
{
        struct llm_message *v = arena_alloc(h->arena, (size_t)(h->n + 1) * sizeof(*v));
        int pinned = h->n < HISTORY_PINNED + 1 ? h->n : HISTORY_PINNED;
        int middle = h->n - pinned - 1, keep, first, k = 0;
        size_t used = 0;

        if (middle < 0)
                middle = 0;
        keep = middle;
        if (level == 1)
                keep = middle / 2;
        else if (level == 2)
                keep = middle / 4;
        else if (level >= 3)
                keep = 0;
        for (int i = 0; i < h->n; i++) {
                if (i < pinned || i == h->n - 1)
                        used += strlen(h->msgs[i].content);
        }
        /* newest middle messages first, while they fit */
        first = pinned + middle;
        while (first > pinned && keep > 0) {
                size_t len = strlen(h->msgs[first - 1].content);

                if (used + len > budget_chars)
                        break;
                used += len;
                first--;
                keep--;
        }
        for (int i = 0; i < pinned; i++)
                v[k++] = h->msgs[i];
        if (first > pinned) {
                v[k].role = "user";
                v[k].content = arena_printf(h->arena,
                                            "[%d older messages of this conversation left out "
                                            "to fit the model's context]",
                                            first - pinned);
                k++;
        }
        for (int i = first; i < h->n - 1; i++)
                v[k++] = h->msgs[i];
        if (h->n > pinned) {
                v[k] = h->msgs[h->n - 1];
                if (level >= HISTORY_MAX_LEVEL) {
                        size_t len = strlen(v[k].content);

                        v[k].content = arena_printf(h->arena, "%.*s\n[… cut to fit the context]",
                                                    (int)(len / 2), v[k].content);
                }
                k++;
        }
        *out = v;
        return k;
}
