/*
 * guard — notices an agent going round in circles, so a run ends with a reason instead of
 * burning its whole iteration budget.
 *
 *   loop      the same list of actions asked for 3 times with no change to the worktree in
 *             between (a write, an edit, a commit resets the count) → loop_detected;
 *             the 2nd time the model is warned.
 *   stagnant  Loom's progress rules (worker/progress.go), with its build/test rules working:
 *             read_tree more than 5 times; from iteration 15 on: over 35 iterations without a
 *             write, a failing build after more than 5 builds, over 15 files read and none
 *             written, failing tests after more than 5 runs with under 2 files written, or any
 *             one of search_text/read_file/run_command more than 15 times.
 */
#ifndef LOOM_GUARD_H
#define LOOM_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#define GUARD_LOOP_REPEATS 3
#define GUARD_MAX_SEQS     64
#define GUARD_MAX_PATHS    256

struct guard {
        unsigned long seq_hash[GUARD_MAX_SEQS];
        int seq_count[GUARD_MAX_SEQS];
        int nseqs;
        unsigned long read_paths[GUARD_MAX_PATHS], written_paths[GUARD_MAX_PATHS];
        int nread, nwritten;
        int read_tree, search, reads, commands, builds, tests;
        bool build_failing, tests_failing;
        int last_write_iteration;
};

void guard_init(struct guard *g);

/* Records one reply's action list (its JSON text); returns how many times this exact list
 * was asked for since the worktree last changed (1 the first time). */
int guard_sequence(struct guard *g, const char *actions_json);

/* Records one action's outcome; mutated: the worktree changed (resets the loop counts). */
void guard_action(struct guard *g, int iteration, const char *type, const char *path, bool ok,
                  bool mutated);

/* The stagnation rule that fired after this iteration, written to why; false when none. */
bool guard_stagnant(const struct guard *g, int iteration, char *why, size_t whylen);

#endif
