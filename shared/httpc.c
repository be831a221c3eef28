/*
 * httpc — blocking libcurl requests with caps; see httpc.h.
 */
#include "httpc.h"
#include "err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

int httpc_global_init(void)
{
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? ERR_OK : ERR_INTERNAL;
}

static size_t httpc_write(char *data, size_t size, size_t n, void *arg)
{
        struct strbuf *sb = arg;

        strbuf_add(sb, data, size * n);
        return sb->failed ? 0 : size * n; /* 0 makes curl stop with CURLE_WRITE_ERROR */
}

int httpc_perform(const struct httpc_request *req, struct httpc_response *res)
{
        struct curl_slist *headers = NULL;
        char auth[512];
        CURLcode cc;
        int rc = ERR_OK;
        CURL *c = curl_easy_init();

        res->status = 0;
        res->total_ms = 0;
        res->error[0] = '\0';
        if (!c) {
                snprintf(res->error, sizeof(res->error), "cannot create a curl handle");
                return ERR_INTERNAL;
        }
        headers = curl_slist_append(headers, "Accept: application/json");
        if (req->bearer && *req->bearer) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", req->bearer);
                headers = curl_slist_append(headers, auth);
        }
        if (req->json_body) {
                headers = curl_slist_append(headers, "Content-Type: application/json");
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->json_body);
        }
        curl_easy_setopt(c, CURLOPT_URL, req->url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, httpc_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &res->body);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "loom/0.1");
        cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
        {
                double t = 0;

                curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
                res->total_ms = t * 1000.0;
        }
        if (cc == CURLE_WRITE_ERROR && res->body.failed) {
                snprintf(res->error, sizeof(res->error), "reply larger than %zu bytes",
                         res->body.max);
                rc = ERR_TOO_LARGE;
        } else if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
                snprintf(res->error, sizeof(res->error), "%s", curl_easy_strerror(cc));
                rc = ERR_INVALID;
        } else if (cc != CURLE_OK) {
                snprintf(res->error, sizeof(res->error), "%s", curl_easy_strerror(cc));
                rc = ERR_UNAVAILABLE;
        }
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        return rc;
}
