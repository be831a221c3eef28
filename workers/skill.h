/*
 * skill — parses a persona's SKILL.md: YAML front matter (the small subset personas use) and
 * a markdown body of instructions.
 *
 *   ---
 *   name: qa-engineer
 *   description: ...
 *   license: Apache-2.0
 *   metadata:
 *     role: QA Engineer
 *     specialties:
 *       - test plans
 *     autonomy_level: full
 *   ---
 *   # QA Engineer ...
 *
 * Scalars may be plain or quoted ("..." with \" and \\ escapes, or '...').  Keys it does not
 * know are skipped; anything it cannot read is an error naming the line.
 */
#ifndef LOOM_SKILL_H
#define LOOM_SKILL_H

#include "arena.h"

#include <stddef.h>

#define SKILL_MAX_BYTES       ((size_t)256 << 10)
#define SKILL_MAX_SPECIALTIES 32

struct skill {
        const char *name, *description, *license, *compatibility;
        const char *role, *author, *version, *autonomy_level;
        const char *specialties[SKILL_MAX_SPECIALTIES];
        int nspecialties;
        const char *instructions; /* the body after the front matter */
};

/*
 * Parses text[0..len) into *out; strings live in arena.  Returns 0, or ERR_INVALID with a
 * message "line N: ..." in err (errlen bytes).  name is required.
 */
int skill_parse(const char *text, size_t len, struct arena *arena, struct skill *out, char *err,
                size_t errlen) __attribute__((warn_unused_result));

#endif
