/*
 * replay — the main() of a harness outside libFuzzer: feeds it every file of some directories.
 *
 *   replay_<name> [DIR|FILE ...]
 *
 * Without arguments it reads tests/fuzz/corpus/<name>/ and tests/fuzz/regressions/<name>/
 * (FUZZ_NAME is set when the harness is compiled), relative to the repository root where
 * `make check` runs it.  Each file is one test case: "ok - <path>" once the harness returned;
 * a crash or a failed invariant aborts the process, which tests/lib/check.sh counts as a
 * failure.  Ends with the testlib line "N passed, 0 failed".
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#ifndef FUZZ_NAME
#error "compile with -DFUZZ_NAME=\"<harness>\""
#endif

static int replay_passed;

/* Reads path whole into an exactly sized buffer (the harness sees no extra NUL). */
static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        long size;
        int rc = -1;

        if (!f) {
                fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
                goto out;
        buf = malloc(size ? (size_t)size : 1);
        if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
                goto out;
        LLVMFuzzerTestOneInput(buf, (size_t)size);
        printf("ok - %s\n", path);
        replay_passed++;
        rc = 0;
out:
        if (rc)
                fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return rc;
}

static int replay_name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order; a missing directory has none. */
static int replay_dir(const char *dir)
{
        struct dirent *e;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int rc = 0;
        DIR *d = opendir(dir);

        if (!d)
                return errno == ENOENT ? 0 : -1;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        names = realloc(names, cap * sizeof(*names));
                        if (!names)
                                abort();
                }
                names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
                if (!names[n])
                        abort();
                snprintf(names[n], strlen(dir) + strlen(e->d_name) + 2, "%s/%s", dir, e->d_name);
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(*names), replay_name_cmp);
        for (size_t i = 0; i < n; i++) {
                struct stat st;

                if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && replay_file(names[i]))
                        rc = -1;
                free(names[i]);
        }
        free(names);
        return rc;
}

int main(int argc, char **argv)
{
        static const char *const defaults[] = {"tests/fuzz/corpus/" FUZZ_NAME,
                                               "tests/fuzz/regressions/" FUZZ_NAME};
        int failed = 0;

        if (argc < 2) {
                for (size_t i = 0; i < 2; i++)
                        failed += replay_dir(defaults[i]) != 0;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                        failed += replay_dir(argv[i]) != 0;
                else
                        failed += replay_file(argv[i]) != 0;
        }
        if (failed)
                printf("not ok - %s: unreadable inputs\n", FUZZ_NAME);
        printf("%d passed, %d failed\n", replay_passed, failed);
        return failed ? 1 : 0;
}
