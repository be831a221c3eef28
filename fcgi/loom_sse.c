/*
 * loom-sse — placeholder until the stream server lands; answers 503 so clients retry.
 */
#include "http.h"
#include "log.h"
#include "server.h"

static void sse_handle(FCGX_Request *fcgx, struct server_thread *t)
{
        static const char body[] = "{\"error\":\"event streams are not available yet\"}";
        struct request req;

        http_request_init(&req, fcgx, &t->arena, &t->db);
        http_send_json(&req, 503, body, sizeof(body) - 1);
        http_request_release(&req);
}

int main(void)
{
        struct server_config cfg = {.program = "loom-sse", .threads = 4, .handler = sse_handle};

        log_setup("loom-sse");
        return server_run(&cfg);
}
