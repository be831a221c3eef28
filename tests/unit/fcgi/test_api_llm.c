/* Unit tests for fcgi/api_llm.c: the cap on LLM requests under way in one loom-api process. */
#include "api_llm.h"
#include "err.h"
#include "testlib.h"

TEST(the_cap_refuses_with_503_and_frees_on_release)
{
        struct arena arena;
        struct request req;

        arena_init(&arena, 0);
        http_request_init(&req, NULL, &arena, NULL);
        api_llm_cfg.max_inflight = 2;
        CHECK_INT(api_llm_acquire(&req), ERR_OK);
        CHECK_INT(api_llm_acquire(&req), ERR_OK);
        CHECK_INT(api_llm_acquire(&req), ERR_UNAVAILABLE);
        CHECK_INT(http_status_for(ERR_UNAVAILABLE), 503);
        CHECK_HAS(req.error, "already has 2 LLM requests under way");
        api_llm_release();
        CHECK_INT(api_llm_acquire(&req), ERR_OK);
        api_llm_release();
        api_llm_release();
        CHECK_INT(api_llm_acquire(&req), ERR_OK);
        api_llm_release();
        http_request_release(&req);
        arena_release(&arena);
}

TEST(keys_are_opened_or_absent)
{
        struct arena arena;
        struct request req;
        const char *key = "x";

        arena_init(&arena, 0);
        http_request_init(&req, NULL, &arena, NULL);
        CHECK_INT(api_llm_open_key(&req, "p", NULL, &key), ERR_OK);
        CHECK(key == NULL);
        /* no process key loaded here: a sealed value cannot be opened, and the message says whose
         */
        CHECK_INT(api_llm_open_key(&req, "prov1", "v1:AAAA", &key), ERR_CONFLICT);
        CHECK_HAS(req.error, "provider prov1");
        http_request_release(&req);
        arena_release(&arena);
}

TESTS(TESTLIB_CASE(the_cap_refuses_with_503_and_frees_on_release),
      TESTLIB_CASE(keys_are_opened_or_absent))
