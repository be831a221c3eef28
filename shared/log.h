/*
 * log — leveled logging to stderr (supervisord collects it).
 *
 * The macros test the level before evaluating their arguments, so a disabled debug line costs a
 * comparison.  Each thread may set a context string (request id and route, or run and bead) that
 * is printed on every line it logs.  Messages are lower-case: what failed, the object, the cause.
 */
#ifndef LOOM_LOG_H
#define LOOM_LOG_H

#include <stdbool.h>

enum log_level {
        LOG_LEVEL_DEBUG = 0,
        LOG_LEVEL_INFO = 1,
        LOG_LEVEL_WARN = 2,
        LOG_LEVEL_ERROR = 3,
};

extern enum log_level log_threshold;

/* Sets the program name and the level from LOOM_LOG_LEVEL (debug|info|warn|error). */
void log_setup(const char *program);
/* Parses a level name; false when unknown. */
bool log_parse_level(const char *name, enum log_level *out) __attribute__((warn_unused_result));
/* Sets this thread's context (copied, truncated to 120 bytes); NULL or "" clears it. */
void log_set_context(const char *ctx);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                                                                         \
        do {                                                                                       \
                if ((level) >= log_threshold)                                                      \
                        log_write((level), __VA_ARGS__);                                           \
        } while (0)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
