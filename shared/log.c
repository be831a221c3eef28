/*
 * log — leveled stderr logging with a per-thread context; see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *log_program = "loom";
static _Thread_local char log_context[128];

static const char *const log_names[] = {"debug", "info", "warn", "error"};

bool log_parse_level(const char *name, enum log_level *out)
{
        for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
                if (strcmp(name, log_names[i]) == 0) {
                        *out = (enum log_level)i;
                        return true;
                }
        }
        return false;
}

void log_setup(const char *program)
{
        const char *lvl = getenv("LOOM_LOG_LEVEL");

        log_program = program;
        if (lvl && *lvl && !log_parse_level(lvl, &log_threshold))
                log_write(LOG_LEVEL_WARN, "unknown LOOM_LOG_LEVEL '%s', using info", lvl);
}

void log_set_context(const char *ctx)
{
        size_t n;

        if (!ctx) {
                log_context[0] = '\0';
                return;
        }
        n = strlen(ctx);
        if (n > 120)
                n = 120;
        memcpy(log_context, ctx, n);
        log_context[n] = '\0';
}

void log_write(enum log_level level, const char *fmt, ...)
{
        char line[2048];
        struct timespec ts;
        struct tm tm;
        size_t n;
        va_list ap;
        int w;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        w = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s[%d]%s%s%s ", ts.tv_nsec / 1000000,
                     log_names[level], log_program, (int)getpid(), log_context[0] ? " [" : "",
                     log_context, log_context[0] ? "]" : "");
        if (w > 0 && (size_t)w < sizeof(line) - n)
                n += (size_t)w;
        va_start(ap, fmt);
        w = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
        va_end(ap);
        if (w > 0) {
                size_t end =
                        n + ((size_t)w < sizeof(line) - n - 1 ? (size_t)w : sizeof(line) - n - 2);

                /* one event, one line: fold the newlines and tabs libpq puts in its messages */
                for (; n < end; n++) {
                        if ((unsigned char)line[n] < 0x20)
                                line[n] = ' ';
                }
        }
        line[n++] = '\n';
        /* one write per line keeps lines from different threads whole */
        if (write(STDERR_FILENO, line, n) < 0)
                return;
}
