/*
 * testlib — the smallest test harness that does the job.
 *
 * A test file defines `TEST(name) { ... }` functions using CHECK* macros (a failed check ends
 * that test and is reported with file:line), and lists them in TESTS(...).  Each case prints
 * "ok - name" or "not ok - name"; the binary ends with "N passed, M failed" and exits non-zero
 * on any failure.  tests/lib/check.sh adds the counts of every binary together.
 */
#ifndef LOOM_TESTLIB_H
#define LOOM_TESTLIB_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct testlib_case {
        const char *name;
        void (*fn)(void);
};

static int testlib_failed;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        printf("#   %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond);               \
                        testlib_failed = 1;                                                        \
                        return;                                                                    \
                }                                                                                  \
        } while (0)

#define CHECK_INT(a, b)                                                                            \
        do {                                                                                       \
                long long testlib_a = (long long)(a), testlib_b = (long long)(b);                  \
                if (testlib_a != testlib_b) {                                                      \
                        printf("#   %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a,       \
                               testlib_a, testlib_b);                                              \
                        testlib_failed = 1;                                                        \
                        return;                                                                    \
                }                                                                                  \
        } while (0)

#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *testlib_a = (a), *testlib_b = (b);                                     \
                if (!testlib_a || !testlib_b || strcmp(testlib_a, testlib_b) != 0) {               \
                        printf("#   %s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a,   \
                               testlib_a ? testlib_a : "(null)",                                   \
                               testlib_b ? testlib_b : "(null)");                                  \
                        testlib_failed = 1;                                                        \
                        return;                                                                    \
                }                                                                                  \
        } while (0)

/* a contains b */
#define CHECK_HAS(a, b)                                                                            \
        do {                                                                                       \
                const char *testlib_a = (a), *testlib_b = (b);                                     \
                if (!testlib_a || !strstr(testlib_a, testlib_b)) {                                 \
                        printf("#   %s:%d: %s == \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, #a,   \
                               testlib_a ? testlib_a : "(null)", testlib_b);                       \
                        testlib_failed = 1;                                                        \
                        return;                                                                    \
                }                                                                                  \
        } while (0)

/* printf into one of eight rotating buffers: a string that lives for eight more calls */
static inline const char *testlib_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static inline const char *testlib_fmt(const char *f, ...)
{
        static char buf[8][2048];
        static int i;
        va_list ap;

        i = (i + 1) % 8;
        va_start(ap, f);
        vsnprintf(buf[i], sizeof(buf[i]), f, ap);
        va_end(ap);
        return buf[i];
}

static inline int testlib_run(const char *file, const struct testlib_case *cases, size_t n)
{
        int passed = 0, failed = 0;

        printf("# %s\n", file);
        for (size_t i = 0; i < n; i++) {
                testlib_failed = 0;
                cases[i].fn();
                printf("%s - %s\n", testlib_failed ? "not ok" : "ok", cases[i].name);
                if (testlib_failed)
                        failed++;
                else
                        passed++;
        }
        printf("%d passed, %d failed\n", passed, failed);
        fflush(stdout);
        return failed ? 1 : 0;
}

#define TESTLIB_CASE(fn)                                                                           \
        {                                                                                          \
#fn, fn                                                                            \
        }
#define TESTS(...)                                                                                 \
        int main(void)                                                                             \
        {                                                                                          \
                static const struct testlib_case testlib_cases[] = {__VA_ARGS__};                  \
                return testlib_run(__FILE__, testlib_cases,                                        \
                                   sizeof(testlib_cases) / sizeof(testlib_cases[0]));              \
        }

#endif
