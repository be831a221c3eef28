/*
 * api_llm — what loom-api needs to call a provider itself (POST /api/v1/pair and the chat
 * proxy, /api/v1/chat/completions[/stream]): settings read once at start, a cap on concurrent
 * LLM requests per process (each one holds a request thread for its whole length, so without
 * a cap a few slow answers would starve the API), the provider's key, the llm_calls record,
 * and the sandbox pair programming runs commands in.
 */
#ifndef LOOM_API_LLM_H
#define LOOM_API_LLM_H

#include "http.h"
#include "llm.h"
#include "sandbox.h"

#include <stdbool.h>

struct api_llm_settings {
        long connect_ms, timeout_ms; /* LOOM_LLM_CONNECT_TIMEOUT_SECONDS (10), _TIMEOUT_ (120) */
        int retries;                 /* LOOM_LLM_RETRIES (3) */
        int max_inflight;            /* LOOM_API_LLM_REQUESTS: per process, default threads/2 */
        int command_timeout_s;       /* LOOM_PAIR_COMMAND_TIMEOUT_SECONDS (120) */
        char projects_dir[4096];     /* LOOM_PROJECTS_DIR, else <LOOM_VAR>/projects */
        struct sandbox sandbox;      /* LOOM_SANDBOX*, as loom-executor chooses it */
        bool sandbox_ok;             /* false: LOOM_SANDBOX=bwrap cannot run here */
        char sandbox_error[600];     /* why not, for the model and the log */
};

/* Read-only once api_llm_setup() returned. */
extern struct api_llm_settings api_llm_cfg;

/*
 * Reads the settings and probes the sandbox; call once before the request threads start
 * (threads: how many this process runs).  Cannot fail: a sandbox that cannot be had turns pair
 * programming's programs off (logged), everything else keeps working.
 */
void api_llm_setup(int threads);

/*
 * Takes one of this process's LLM request slots.  0, or ERR_UNAVAILABLE (503 with Retry-After)
 * with a message when all are in use.  Every 0 must be paired with api_llm_release().
 */
int api_llm_acquire(struct request *req) __attribute__((warn_unused_result));
void api_llm_release(void);

/* Timeouts and retries from the settings, and a keepalive that abandons the call when the
 * client goes away.  The other fields are the caller's. */
void api_llm_request_init(struct llm_request *lr, struct request *req);

/* Opens a provider's sealed key (NULL: none) into the request's arena.  0, or ERR_CONFLICT
 * with a message naming the provider. */
int api_llm_open_key(struct request *req, const char *provider, const char *sealed,
                     const char **key) __attribute__((warn_unused_result));

/* One llm_calls row for a call made outside a run. */
struct api_llm_call {
        const char *source;                                        /* "pair" or "proxy" */
        const char *project_id, *bead_id, *agent_id, *provider_id; /* NULL when none */
        const char *model;                                         /* requested */
        bool streamed;
};
/* Records the call (logged, not returned, when the database refuses). */
void api_llm_record(struct request *req, const struct api_llm_call *call,
                    const struct llm_result *res, bool ok);

#endif
