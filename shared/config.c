/*
 * config — LOOM_* environment settings; see config.h.
 */
#include "config.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

const char *config_str(const char *name, const char *def)
{
        const char *v = getenv(name);

        return v && *v ? v : def;
}

int config_parse_long(const char *s, long min, long max, long *out)
{
        char *end;
        long v;

        if (!s || !*s)
                return ERR_INVALID;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return ERR_INVALID;
        *out = v;
        return ERR_OK;
}

long config_long(const char *name, long def, long min, long max)
{
        const char *v = getenv(name);
        long out;

        if (!v || !*v)
                return def;
        if (config_parse_long(v, min, max, &out) != ERR_OK) {
                log_error("invalid %s '%s': want an integer from %ld to %ld", name, v, min, max);
                exit(2);
        }
        return out;
}

const char *config_database_url(void)
{
        return config_str("LOOM_DATABASE_URL", "dbname=loom");
}
