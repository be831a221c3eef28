/*
 * config — settings from the environment (LOOM_*), read once at start.
 *
 * Every setting has a default; a malformed value is a fatal start-up error with a message that
 * names the variable, because a daemon that silently ignores its configuration is worse than one
 * that refuses to start.
 */
#ifndef LOOM_CONFIG_H
#define LOOM_CONFIG_H

/* Value of name, or def when unset or empty. Borrowed from the environment. */
const char *config_str(const char *name, const char *def);
/* Integer value of name in [min, max], def when unset; exits(2) with a message when malformed. */
long config_long(const char *name, long def, long min, long max);
/* Parses a whole decimal integer in [min, max]; 0 ok, ERR_INVALID otherwise. */
int config_parse_long(const char *s, long min, long max, long *out)
        __attribute__((warn_unused_result));
/* The connection string: LOOM_DATABASE_URL, else a local default. Borrowed. */
const char *config_database_url(void);

#endif
