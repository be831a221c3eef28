/*
 * testshell — a shell command for tests that set up files, repositories and processes:
 * shf("git -C %s log", dir) runs it through popen and keeps its output, trailing newlines
 * trimmed, in `out`.  Include after testlib.h in a test file that needs it.
 */
#ifndef LOOM_TESTSHELL_H
#define LOOM_TESTSHELL_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

static char out[65536];

/* Runs a shell command (formatted) and keeps its output (trimmed) in out; returns its status. */
static int shf(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));

static int shf(const char *fmt, ...)
{
        char cmd[8192];
        va_list ap;
        FILE *p;
        size_t n;
        int st;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        p = popen(cmd, "r");
        if (!p)
                return -1;
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        while (n && out[n - 1] == '\n')
                out[--n] = '\0';
        st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
