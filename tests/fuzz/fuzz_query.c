/*
 * fuzz_query — fcgi/query.c: QUERY_STRING parsing and the typed readers handlers use.
 *
 * Input: the query string on the first line (as nginx passes it, up to the first NUL); the
 * rest is fed to query_decode() as raw bytes.  Checks: a parse either fails with a message or
 * yields at most HTTP_MAX_QUERY distinct, non-empty, NUL-free keys; the readers (get, long,
 * enum, done) agree with what was parsed; decoding never grows the text and never yields NUL.
 */
#include "fuzz.h"
#include "err.h"
#include "query.h"

static const char *const statuses[] = {"open", "in_progress", "blocked", "closed", NULL};

static void check_parsed(struct request *req)
{
        FUZZ_ASSERT(req->nquery >= 0 && req->nquery <= HTTP_MAX_QUERY);
        for (int i = 0; i < req->nquery; i++) {
                FUZZ_ASSERT(req->query_params[i].key[0]);
                FUZZ_ASSERT(!req->query_params[i].used);
                for (int j = 0; j < i; j++)
                        FUZZ_ASSERT(strcmp(req->query_params[i].key, req->query_params[j].key));
        }
}

/* The readers a list handler uses, in its order; query_done must then name what is left. */
static void read_like_a_handler(struct request *req)
{
        const char *status, *tag;
        long limit;
        int rc;

        rc = query_long(req, "limit", 50, 1, 1000, &limit);
        FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVALID);
        if (rc == ERR_OK)
                FUZZ_ASSERT(limit >= 1 && limit <= 1000);
        else
                FUZZ_ASSERT(strstr(req->error, "limit"));
        rc = query_enum(req, "status", statuses, &status);
        FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVALID);
        if (rc == ERR_OK && status)
                FUZZ_ASSERT(strcmp(query_get(req, "status"), status) == 0);
        tag = query_get(req, "tag");
        if (tag)
                FUZZ_ASSERT(strlen(tag) <= QUERY_MAX_LEN);
        rc = query_done(req);
        if (rc == ERR_OK) {
                for (int i = 0; i < req->nquery; i++)
                        FUZZ_ASSERT(req->query_params[i].used);
        } else {
                FUZZ_ASSERT(rc == ERR_INVALID && strstr(req->error, "unknown query parameter"));
        }
}

static void check_decode(const uint8_t *raw, size_t len)
{
        char *out = malloc(len + 1);

        if (!out)
                abort();
        for (int plus = 0; plus < 2; plus++) {
                long n = query_decode((const char *)raw, len, out, plus);

                FUZZ_ASSERT(n >= -1 && n <= (long)len);
                if (n >= 0)
                        FUZZ_ASSERT(out[n] == '\0' && strlen(out) == (size_t)n);
        }
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        struct arena arena;
        struct request req;
        char *query = fuzz_line(&in);
        size_t rawlen;
        uint8_t *raw = fuzz_rest(&in, &rawlen);
        int rc;

        arena_init(&arena, 0);
        memset(&req, 0, sizeof(req));
        req.arena = &arena;
        req.query = query;
        rc = query_parse(&req);
        FUZZ_ASSERT(rc == ERR_OK || (rc == ERR_INVALID && req.error[0]));
        if (rc == ERR_OK) {
                check_parsed(&req);
                read_like_a_handler(&req);
        }
        check_decode(raw, rawlen);
        arena_release(&arena);
        free(query);
        free(raw);
        return 0;
}
