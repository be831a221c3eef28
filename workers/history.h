/*
 * history — the conversation of a run, and what of it fits the model.
 *
 * The first two messages (the system prompt and the bead) are pinned; the rest is the
 * middle and the newest message.  history_view() picks what is sent:
 *   level 0  everything that fits budget_chars (Loom: 80 % of the context window, at
 *            4 characters a token), oldest middle messages dropped first;
 *   level 1, 2, 3  at most 50 %, 25 %, 0 % of the middle (after a context-length refusal);
 *   level 4  no middle and the newest message cut to half.
 * Dropped messages are replaced by one note saying how many were left out.
 */
#ifndef LOOM_HISTORY_H
#define LOOM_HISTORY_H

#include "arena.h"
#include "llm.h"

#define HISTORY_MAX_LEVEL 4

struct history {
        struct arena *arena; /* message texts live here */
        struct llm_message *msgs;
        int n, cap;
};

void history_init(struct history *h, struct arena *arena);
void history_release(struct history *h);
/* Appends a message (content copied into the arena). */
void history_add(struct history *h, const char *role, const char *content);
/* Fills *out (arena memory) with the messages to send; returns their number. */
int history_view(const struct history *h, size_t budget_chars, int level, struct llm_message **out);

#endif
