/*
 * fuzz_actions — workers/actions.c: the action envelope in a model's reply, found leniently
 * (code fences, <think>…</think>, prose around it, trailing commas) and checked strictly.
 *
 * Input: the reply, byte for byte (not NUL-terminated: the parser gets a length).  Checks: a
 * success yields an array of objects that each have a non-empty string "type", owned by the
 * root; a failure leaves nothing behind and says why; actions_check() accepts only known types.
 */
#include "fuzz.h"
#include "actions.h"
#include "err.h"

static void check_actions(json_object *actions)
{
        size_t n = json_object_array_length(actions);

        FUZZ_ASSERT(json_object_is_type(actions, json_type_array));
        for (size_t i = 0; i < n; i++) {
                json_object *a = json_object_array_get_idx(actions, i);
                const char *type = actions_type(a);
                char err[512] = "";
                int rc;

                FUZZ_ASSERT(json_object_is_type(a, json_type_object));
                FUZZ_ASSERT(type && *type);
                rc = actions_check(a, err, sizeof(err));
                FUZZ_ASSERT(rc == ERR_OK || (rc == ERR_INVALID && err[0]));
                if (!actions_known(type))
                        FUZZ_ASSERT(rc == ERR_INVALID);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        json_object *root = NULL, *actions = NULL;
        char err[256] = "";
        size_t len;
        uint8_t *reply = fuzz_rest(&in, &len);
        int rc = actions_parse((const char *)reply, len, &root, &actions, err, sizeof(err));

        if (rc == ERR_OK) {
                FUZZ_ASSERT(root && actions);
                check_actions(actions);
        } else {
                FUZZ_ASSERT(rc == ERR_INVALID && !root && !actions && err[0]);
        }
        json_object_put(root);
        free(reply);
        return 0;
}
