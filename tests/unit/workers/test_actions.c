/* Unit tests for workers/actions.c: finding the action envelope in what models really send. */
#include "actions.h"
#include "err.h"
#include "testlib.h"

static json_object *root, *actions;
static char err[200];

static int parse(const char *reply)
{
        json_object_put(root);
        root = actions = NULL;
        err[0] = '\0';
        return actions_parse(reply, strlen(reply), &root, &actions, err, sizeof(err));
}

TEST(plain_envelope)
{
        CHECK_INT(parse("{\"actions\":[{\"type\":\"done\",\"reason\":\"ok\"}],\"notes\":\"n\"}"),
                  ERR_OK);
        CHECK_INT(json_object_array_length(actions), 1);
        CHECK_STR(actions_type(json_object_array_get_idx(actions, 0)), "done");
}

TEST(fences_prose_and_thinking)
{
        CHECK_INT(parse("<think>maybe {\"actions\": []} no</think>\nSure! Here it is:\n```json\n"
                        "{\"actions\":[{\"type\":\"close_bead\",\"bead_id\":\"a-1\","
                        "\"reason\":\"has } and \\\" inside\"}]}\n```\nThanks."),
                  ERR_OK);
        CHECK_STR(actions_type(json_object_array_get_idx(actions, 0)), "close_bead");
}

TEST(single_action_form)
{
        CHECK_INT(parse("{\"action\":\"done\",\"reason\":\"finished\"}"), ERR_OK);
        CHECK_INT(json_object_array_length(actions), 1);
        CHECK_STR(actions_type(json_object_array_get_idx(actions, 0)), "done");
}

TEST(unusable_replies)
{
        CHECK_INT(parse("I would like to ask a question first."), ERR_INVALID);
        CHECK_HAS(err, "no JSON object");
        CHECK_INT(parse("{\"actions\": [ {\"type\": \"done\" "), ERR_INVALID);
        CHECK_INT(parse("{\"notes\":\"nothing\"}"), ERR_INVALID);
        CHECK_HAS(err, "no \"actions\" array");
        CHECK_INT(parse("{\"actions\":[{\"reason\":\"x\"}]}"), ERR_INVALID);
        CHECK_HAS(err, "no \"type\"");
        CHECK_INT(parse("{\"actions\":\"done\"}"), ERR_INVALID);
        CHECK(root == NULL);
}

TESTS(TESTLIB_CASE(plain_envelope), TESTLIB_CASE(fences_prose_and_thinking),
      TESTLIB_CASE(single_action_form), TESTLIB_CASE(unusable_replies))
