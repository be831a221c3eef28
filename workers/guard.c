/*
 * guard — loop and stagnation detection for the action loop; see guard.h.
 */
#include "guard.h"

#include <stdio.h>
#include <string.h>

/* FNV-1a: a stable hash for action lists and paths. */
static unsigned long guard_hash(const char *s)
{
        unsigned long h = 1469598103934665603UL;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211UL;
        return h;
}

void guard_init(struct guard *g)
{
        memset(g, 0, sizeof(*g));
}

int guard_sequence(struct guard *g, const char *actions_json)
{
        unsigned long h = guard_hash(actions_json);

        for (int i = 0; i < g->nseqs; i++) {
                if (g->seq_hash[i] == h)
                        return ++g->seq_count[i];
        }
        if (g->nseqs == GUARD_MAX_SEQS) {
                /* forget the oldest half; a loop shows up among recent lists */
                memmove(g->seq_hash, g->seq_hash + GUARD_MAX_SEQS / 2,
                        sizeof(g->seq_hash[0]) * GUARD_MAX_SEQS / 2);
                memmove(g->seq_count, g->seq_count + GUARD_MAX_SEQS / 2,
                        sizeof(g->seq_count[0]) * GUARD_MAX_SEQS / 2);
                g->nseqs = GUARD_MAX_SEQS / 2;
        }
        g->seq_hash[g->nseqs] = h;
        g->seq_count[g->nseqs] = 1;
        g->nseqs++;
        return 1;
}

/* Adds path to a set; the set stops growing when full (the counts are then lower bounds). */
static void guard_remember(unsigned long *set, int *n, const char *path)
{
        unsigned long h = guard_hash(path);

        for (int i = 0; i < *n; i++) {
                if (set[i] == h)
                        return;
        }
        if (*n < GUARD_MAX_PATHS)
                set[(*n)++] = h;
}

void guard_action(struct guard *g, int iteration, const char *type, const char *path, bool ok,
                  bool mutated)
{
        if (strcmp(type, "read_tree") == 0) {
                g->read_tree++;
        } else if (strcmp(type, "search_text") == 0) {
                g->search++;
        } else if (strcmp(type, "read_file") == 0 || strcmp(type, "read_code") == 0) {
                g->reads++;
                if (ok && path && *path)
                        guard_remember(g->read_paths, &g->nread, path);
        } else if (strcmp(type, "run_command") == 0) {
                g->commands++;
        } else if (strcmp(type, "build_project") == 0) {
                g->builds++;
                g->build_failing = !ok;
        } else if (strcmp(type, "run_tests") == 0) {
                g->tests++;
                g->tests_failing = !ok;
        }
        if (mutated) {
                g->last_write_iteration = iteration;
                if (path && *path && strncmp(type, "git_", 4) != 0)
                        guard_remember(g->written_paths, &g->nwritten, path);
                g->nseqs = 0; /* the worktree changed: repeating a list is progress again */
        }
}

bool guard_stagnant(const struct guard *g, int iteration, char *why, size_t whylen)
{
        const char *busiest = NULL;
        int most = 0;

        if (g->read_tree > 5) {
                snprintf(why, whylen, "read_tree %d times without settling on a change",
                         g->read_tree);
                return true;
        }
        if (iteration < 15)
                return false;
        if (iteration - g->last_write_iteration > 35) {
                snprintf(why, whylen, "%d iterations without writing anything",
                         iteration - g->last_write_iteration);
                return true;
        }
        if (g->build_failing && g->builds > 5) {
                snprintf(why, whylen, "the build still fails after %d builds", g->builds);
                return true;
        }
        if (g->nread > 15 && g->nwritten == 0) {
                snprintf(why, whylen, "%d files read and none written", g->nread);
                return true;
        }
        if (g->tests_failing && g->tests > 5 && g->nwritten < 2) {
                snprintf(why, whylen, "tests still fail after %d runs with %d files written",
                         g->tests, g->nwritten);
                return true;
        }
        if (g->search > most)
                most = g->search, busiest = "search_text";
        if (g->reads > most)
                most = g->reads, busiest = "read_file";
        if (g->commands > most)
                most = g->commands, busiest = "run_command";
        if (most > 15) {
                snprintf(why, whylen, "%s asked for %d times", busiest, most);
                return true;
        }
        return false;
}
