/*
 * sse_fcgi — FastCGI record decoder and encoders; see sse_fcgi.h.
 */
#include "sse_fcgi.h"

#include <stdio.h>
#include <string.h>

bool sse_fcgi_is_stream(uint8_t type)
{
        return type == SSE_FCGI_PARAMS || type == SSE_FCGI_STDIN || type == SSE_FCGI_DATA ||
               type == SSE_FCGI_STDERR;
}

void sse_fcgi_decoder_init(struct sse_fcgi_decoder *d)
{
        memset(d, 0, sizeof(*d));
        d->state = SSE_FCGI_AT_HEADER;
}

int sse_fcgi_parse_header(const uint8_t *buf, struct sse_fcgi_header *out)
{
        if (buf[0] != SSE_FCGI_VERSION)
                return -1;
        out->type = buf[1];
        out->request_id = (uint16_t)(buf[2] << 8 | buf[3]);
        out->content_len = (uint16_t)(buf[4] << 8 | buf[5]);
        out->padding_len = buf[6];
        return 0;
}

static size_t fcgi_broken(struct sse_fcgi_decoder *d, struct sse_fcgi_piece *out, size_t used,
                          const char *why)
{
        d->state = SSE_FCGI_BROKEN;
        d->error = why;
        out->kind = SSE_FCGI_ERROR;
        out->error = why;
        return used;
}

/* The record is fully consumed: back to headers, and emit it if something is owed. */
static bool fcgi_record_done(struct sse_fcgi_decoder *d, struct sse_fcgi_piece *out)
{
        bool emit = d->emit_at_end;

        d->state = SSE_FCGI_AT_HEADER;
        d->emit_at_end = false;
        if (!emit)
                return false;
        out->hdr = d->hdr;
        if (sse_fcgi_is_stream(d->hdr.type)) {
                out->kind = SSE_FCGI_CONTENT; /* an empty stream record: end of stream */
                out->data = d->small;
                out->len = 0;
        } else {
                out->kind = SSE_FCGI_RECORD;
                out->data = d->small;
                out->len = d->small_len;
        }
        return true;
}

/* After the content: padding to skip, or the record is done. */
static bool fcgi_after_content(struct sse_fcgi_decoder *d, struct sse_fcgi_piece *out)
{
        if (d->padding_left) {
                d->state = SSE_FCGI_AT_PADDING;
                return false;
        }
        return fcgi_record_done(d, out);
}

/* Gathers header bytes; returns bytes used, *emitted when out holds a piece. */
static size_t fcgi_take_header(struct sse_fcgi_decoder *d, const uint8_t *buf, size_t len,
                               struct sse_fcgi_piece *out, bool *emitted)
{
        size_t n = SSE_FCGI_HEADER_LEN - d->head_len;

        if (n > len)
                n = len;
        memcpy(d->head + d->head_len, buf, n);
        d->head_len = (uint8_t)(d->head_len + n);
        if (d->head_len < SSE_FCGI_HEADER_LEN)
                return n;
        d->head_len = 0;
        if (sse_fcgi_parse_header(d->head, &d->hdr) != 0)
                return fcgi_broken(d, out, n, "unsupported FastCGI version");
        if (!sse_fcgi_is_stream(d->hdr.type) && d->hdr.content_len > SSE_FCGI_SMALL_MAX)
                return fcgi_broken(d, out, n, "record too long for its type");
        d->content_left = d->hdr.content_len;
        d->padding_left = d->hdr.padding_len;
        d->small_len = 0;
        /* whole records are emitted at their end; so is an empty stream record */
        d->emit_at_end = !sse_fcgi_is_stream(d->hdr.type) || d->hdr.content_len == 0;
        if (d->content_left) {
                d->state = SSE_FCGI_AT_CONTENT;
                return n;
        }
        *emitted = fcgi_after_content(d, out);
        return n;
}

static size_t fcgi_take_content(struct sse_fcgi_decoder *d, const uint8_t *buf, size_t len,
                                struct sse_fcgi_piece *out, bool *emitted)
{
        size_t n = d->content_left < len ? d->content_left : len;

        d->content_left = (uint16_t)(d->content_left - n);
        if (sse_fcgi_is_stream(d->hdr.type)) {
                out->kind = SSE_FCGI_CONTENT;
                out->hdr = d->hdr;
                out->data = buf;
                out->len = n;
                *emitted = true;
                if (!d->content_left)
                        fcgi_after_content(d, out); /* never emits: emit_at_end is false */
                return n;
        }
        memcpy(d->small + d->small_len, buf, n);
        d->small_len = (uint16_t)(d->small_len + n);
        if (!d->content_left)
                *emitted = fcgi_after_content(d, out);
        return n;
}

size_t sse_fcgi_decode(struct sse_fcgi_decoder *d, const uint8_t *buf, size_t len,
                       struct sse_fcgi_piece *out)
{
        size_t used = 0;
        bool emitted = false;

        memset(out, 0, sizeof(*out));
        if (d->state == SSE_FCGI_BROKEN)
                return fcgi_broken(d, out, 0, d->error);
        while (used < len && !emitted) {
                size_t n;

                switch (d->state) {
                case SSE_FCGI_AT_HEADER:
                        used += fcgi_take_header(d, buf + used, len - used, out, &emitted);
                        if (d->state == SSE_FCGI_BROKEN)
                                return used;
                        break;
                case SSE_FCGI_AT_CONTENT:
                        used += fcgi_take_content(d, buf + used, len - used, out, &emitted);
                        break;
                case SSE_FCGI_AT_PADDING:
                        n = d->padding_left < len - used ? d->padding_left : len - used;
                        d->padding_left = (uint8_t)(d->padding_left - n);
                        used += n;
                        if (!d->padding_left)
                                emitted = fcgi_record_done(d, out);
                        break;
                case SSE_FCGI_BROKEN:
                        return used;
                }
        }
        if (!emitted)
                out->kind = SSE_FCGI_NEED_MORE;
        return used;
}

/* Reads a 1- or 4-byte length at buf[*pos]; false when truncated. */
static bool fcgi_nv_len(const uint8_t *buf, size_t len, size_t *pos, size_t *out)
{
        const uint8_t *p = buf + *pos;

        if (*pos >= len)
                return false;
        if (!(p[0] & 0x80)) {
                *out = p[0];
                *pos += 1;
                return true;
        }
        if (len - *pos < 4)
                return false;
        *out = (size_t)(p[0] & 0x7f) << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        *pos += 4;
        return true;
}

int sse_fcgi_nv_next(const uint8_t *buf, size_t len, size_t *pos, struct sse_fcgi_nv *out)
{
        size_t p = *pos, nlen, vlen;

        if (p >= len)
                return 0;
        if (!fcgi_nv_len(buf, len, &p, &nlen) || !fcgi_nv_len(buf, len, &p, &vlen))
                return -1;
        /* compare against what is left: nlen + vlen could overflow on 32-bit size_t */
        if (nlen > SSE_FCGI_MAX_NAME || nlen > len - p || vlen > len - p - nlen)
                return -1;
        out->name = buf + p;
        out->name_len = nlen;
        out->value = buf + p + nlen;
        out->value_len = vlen;
        *pos = p + nlen + vlen;
        return 1;
}

void sse_fcgi_header_put(uint8_t *out, uint8_t type, uint16_t request_id, uint16_t content_len,
                         uint8_t padding_len)
{
        out[0] = SSE_FCGI_VERSION;
        out[1] = type;
        out[2] = (uint8_t)(request_id >> 8);
        out[3] = (uint8_t)request_id;
        out[4] = (uint8_t)(content_len >> 8);
        out[5] = (uint8_t)content_len;
        out[6] = padding_len;
        out[7] = 0;
}

void sse_fcgi_add_records(struct strbuf *sb, uint8_t type, uint16_t request_id, const void *data,
                          size_t len)
{
        const uint8_t *p = data;
        uint8_t head[SSE_FCGI_HEADER_LEN];

        do {
                size_t n = len < SSE_FCGI_MAX_CONTENT ? len : SSE_FCGI_MAX_CONTENT;

                sse_fcgi_header_put(head, type, request_id, (uint16_t)n, 0);
                strbuf_add(sb, head, sizeof(head));
                strbuf_add(sb, p, n);
                p += n;
                len -= n;
        } while (len);
}

void sse_fcgi_add_end_request(struct strbuf *sb, uint16_t request_id, uint32_t app_status,
                              uint8_t protocol_status)
{
        uint8_t rec[SSE_FCGI_HEADER_LEN + 8] = {0};

        sse_fcgi_header_put(rec, SSE_FCGI_END_REQUEST, request_id, 8, 0);
        rec[8] = (uint8_t)(app_status >> 24);
        rec[9] = (uint8_t)(app_status >> 16);
        rec[10] = (uint8_t)(app_status >> 8);
        rec[11] = (uint8_t)app_status;
        rec[12] = protocol_status;
        strbuf_add(sb, rec, sizeof(rec));
}

static void fcgi_add_len(struct strbuf *sb, size_t n)
{
        uint8_t b[4];

        if (n < 0x80) {
                b[0] = (uint8_t)n;
                strbuf_add(sb, b, 1);
                return;
        }
        b[0] = (uint8_t)(0x80 | (n >> 24));
        b[1] = (uint8_t)(n >> 16);
        b[2] = (uint8_t)(n >> 8);
        b[3] = (uint8_t)n;
        strbuf_add(sb, b, 4);
}

void sse_fcgi_add_nv(struct strbuf *sb, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
        fcgi_add_len(sb, name_len);
        fcgi_add_len(sb, value_len);
        strbuf_add(sb, name, name_len);
        strbuf_add(sb, value, value_len);
}

void sse_fcgi_add_unknown_type(struct strbuf *sb, uint8_t type)
{
        uint8_t body[8] = {type};

        sse_fcgi_add_records(sb, SSE_FCGI_UNKNOWN_TYPE, 0, body, sizeof(body));
}

static bool fcgi_name_is(const struct sse_fcgi_nv *nv, const char *name)
{
        return nv->name_len == strlen(name) && memcmp(nv->name, name, nv->name_len) == 0;
}

int sse_fcgi_add_values_result(struct strbuf *sb, const uint8_t *body, size_t len,
                               const struct sse_fcgi_values *v)
{
        struct strbuf pairs;
        struct sse_fcgi_nv nv;
        size_t pos = 0;
        int rc;

        strbuf_init(&pairs, SSE_FCGI_MAX_CONTENT);
        while ((rc = sse_fcgi_nv_next(body, len, &pos, &nv)) == 1) {
                char num[24];
                long val;

                if (fcgi_name_is(&nv, "FCGI_MAX_CONNS"))
                        val = v->max_conns;
                else if (fcgi_name_is(&nv, "FCGI_MAX_REQS"))
                        val = v->max_reqs;
                else if (fcgi_name_is(&nv, "FCGI_MPXS_CONNS"))
                        val = 0; /* one request per connection */
                else
                        continue;
                snprintf(num, sizeof(num), "%ld", val);
                sse_fcgi_add_nv(&pairs, (const char *)nv.name, nv.name_len, num, strlen(num));
        }
        if (rc == 0 && !pairs.failed)
                sse_fcgi_add_records(sb, SSE_FCGI_GET_VALUES_RESULT, 0, pairs.buf, pairs.len);
        strbuf_release(&pairs);
        return rc == 0 ? 0 : -1;
}
