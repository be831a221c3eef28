/*
 * fuzz — what the libFuzzer harnesses in tests/fuzz/ share.
 *
 * Each harness fuzz_<name>.c defines LLVMFuzzerTestOneInput() for one parser that sees outside
 * bytes.  It is built twice: by `make fuzz` with clang's libFuzzer (build-fuzz/), and by the
 * normal build with tests/fuzz/replay.c as its main, which feeds it every file under
 * tests/fuzz/corpus/<name>/ and tests/fuzz/regressions/<name>/ so `make check` replays the seeds
 * and every crash ever found, without clang.
 *
 * A harness checks the parser's promises as well as its memory safety: a broken invariant
 * calls FUZZ_ASSERT, which prints what and aborts, so libFuzzer (and the replay) report it as
 * a crash with the input that caused it.
 */
#ifndef LOOM_FUZZ_H
#define LOOM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                          \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__,  \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* The input, consumed from the front. */
struct fuzz_in {
        const uint8_t *p;
        size_t n;
};

/* The next byte, 0 once the input is used up. */
static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
        uint8_t b;

        if (!in->n)
                return 0;
        b = in->p[0];
        in->p++;
        in->n--;
        return b;
}

/*
 * The bytes up to the next '\n' (or the end) as a NUL-terminated malloc'd string the caller
 * frees; the newline is consumed.  A NUL inside ends the string early, as it would end a CGI
 * parameter or a C header value.
 */
static inline char *fuzz_line(struct fuzz_in *in)
{
        const uint8_t *nl = in->n ? memchr(in->p, '\n', in->n) : NULL;
        size_t len = nl ? (size_t)(nl - in->p) : in->n;
        char *s = malloc(len + 1);

        if (!s)
                abort();
        memcpy(s, in->p, len);
        s[len] = '\0';
        in->p += len + (nl ? 1 : 0);
        in->n -= len + (nl ? 1 : 0);
        return s;
}

/* What is left, as an exactly sized malloc'd copy (no NUL added: overreads hit ASan). */
static inline uint8_t *fuzz_rest(struct fuzz_in *in, size_t *len)
{
        uint8_t *b = malloc(in->n ? in->n : 1);

        if (!b)
                abort();
        memcpy(b, in->p, in->n);
        *len = in->n;
        in->p += in->n;
        in->n = 0;
        return b;
}

#endif
