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

TEST(trailing_commas)
{
        CHECK_INT(parse("{\"actions\":[{\"type\":\"done\",\"reason\":\"a, }\",},],}"), ERR_OK);
        CHECK_INT(json_object_array_length(actions), 1);
        CHECK_STR(json_object_get_string(
                          json_object_object_get(json_object_array_get_idx(actions, 0), "reason")),
                  "a, }");
        /* a comma that is really missing a value still fails */
        CHECK_INT(parse("{\"actions\":[{\"type\":,}]}"), ERR_INVALID);
}

static int check(const char *action)
{
        json_object *a = json_tokener_parse(action);
        int rc = actions_check(a, err, sizeof(err));

        json_object_put(a);
        return rc;
}

TEST(required_fields)
{
        CHECK_INT(check("{\"type\":\"read_file\",\"path\":\"a.c\"}"), ERR_OK);
        CHECK_INT(check("{\"type\":\"read_file\"}"), ERR_INVALID);
        CHECK_HAS(err, "read_file needs \"path\"");
        CHECK_INT(check("{\"type\":\"read_file\",\"path\":\"\"}"), ERR_INVALID);
        CHECK_INT(check("{\"type\":\"edit_code\",\"path\":\"a\",\"old\":\"x\",\"new\":\"y\"}"),
                  ERR_OK);
        CHECK_INT(check("{\"type\":\"edit_code\",\"path\":\"a\"}"), ERR_INVALID);
        CHECK_HAS(err, "old_text|old|patch");
        CHECK_INT(check("{\"type\":\"create_bead\",\"bead\":{\"title\":\"t\"}}"), ERR_OK);
        CHECK_INT(check("{\"type\":\"create_bead\",\"title\":\"t\"}"), ERR_OK);
        CHECK_INT(check("{\"type\":\"create_bead\",\"bead\":{}}"), ERR_INVALID);
        CHECK_INT(check("{\"type\":\"done\"}"), ERR_OK);
        CHECK_INT(check("{\"type\":\"fly\"}"), ERR_INVALID);
        CHECK_HAS(err, "unknown action type \"fly\"");
        CHECK(actions_known("git_commit"));
        CHECK(!actions_known("git_force_push"));
}

TEST(remember_needs_category_key_and_value)
{
        struct strbuf sb;

        CHECK_INT(check("{\"type\":\"remember\",\"category\":\"convention\",\"key\":\"k\","
                        "\"value\":\"v\"}"),
                  ERR_OK);
        CHECK_INT(check("{\"type\":\"remember\",\"category\":\"convention\",\"key\":\"k\"}"),
                  ERR_INVALID);
        CHECK_HAS(err, "remember needs \"value\"");
        CHECK_INT(check("{\"type\":\"remember\",\"key\":\"k\",\"value\":\"v\"}"), ERR_INVALID);
        CHECK_HAS(err, "remember needs \"category\"");
        strbuf_init(&sb, 0);
        actions_usage(&sb);
        CHECK_HAS(sb.buf, "\"type\": \"remember\"");
        strbuf_release(&sb);
}

TESTS(TESTLIB_CASE(plain_envelope), TESTLIB_CASE(fences_prose_and_thinking),
      TESTLIB_CASE(single_action_form), TESTLIB_CASE(unusable_replies),
      TESTLIB_CASE(trailing_commas), TESTLIB_CASE(required_fields),
      TESTLIB_CASE(remember_needs_category_key_and_value))
