/*
 * fuzz_sse_fcgi — fcgi/sse_fcgi.c: loom-sse's FastCGI record decoder and the name-value pairs.
 *
 * Input: one byte that chooses how to cut the rest, then the bytes nginx would send.  The
 * decoder runs over them whole and again in pieces of 1..32 bytes, and both runs must tell the
 * same story (pieces, record headers, stream bytes, where it broke): the decoder promises any
 * split.  Along the way: every call consumes something unless it reports an error, a piece
 * never points outside what it was given, a broken decoder stays broken, the PARAMS stream of
 * each request is read pair by pair (slices inside the buffer), GET_VALUES gets its answer
 * built, and pairs written by sse_fcgi_add_nv read back the same.
 */
#include "fuzz.h"
#include "sse_fcgi.h"

/* What a run saw, as bytes: one line per piece plus the stream contents. */
struct story {
        struct strbuf log;
        struct strbuf params; /* the PARAMS stream of the current request */
};

static void check_pairs(const uint8_t *buf, size_t len)
{
        struct sse_fcgi_nv nv;
        size_t pos = 0, last = 0;
        int rc;

        while ((rc = sse_fcgi_nv_next(buf, len, &pos, &nv)) == 1) {
                FUZZ_ASSERT(pos > last && pos <= len);
                FUZZ_ASSERT(nv.name >= buf && nv.name + nv.name_len <= buf + len);
                FUZZ_ASSERT(nv.value >= nv.name + nv.name_len &&
                            nv.value + nv.value_len <= buf + len);
                FUZZ_ASSERT(nv.name_len <= SSE_FCGI_MAX_NAME);
                last = pos;
        }
        FUZZ_ASSERT(rc == 0 || rc == -1);
        if (rc == 0)
                FUZZ_ASSERT(pos == len);
}

static void on_record(struct story *s, const struct sse_fcgi_piece *p)
{
        struct sse_fcgi_values v = {.max_conns = 100, .max_reqs = 100};
        struct strbuf out;

        FUZZ_ASSERT(!sse_fcgi_is_stream(p->hdr.type));
        FUZZ_ASSERT(p->len == p->hdr.content_len && p->len <= SSE_FCGI_SMALL_MAX);
        if (p->hdr.type == SSE_FCGI_GET_VALUES) {
                strbuf_init(&out, 0);
                if (sse_fcgi_add_values_result(&out, p->data, p->len, &v) == 0)
                        FUZZ_ASSERT(out.len >= SSE_FCGI_HEADER_LEN);
                else
                        FUZZ_ASSERT(out.len == 0);
                strbuf_release(&out);
        }
        if (p->hdr.type == SSE_FCGI_BEGIN_REQUEST)
                strbuf_reset(&s->params);
}

static void on_content(struct story *s, const struct sse_fcgi_piece *p)
{
        FUZZ_ASSERT(sse_fcgi_is_stream(p->hdr.type));
        strbuf_add(&s->log, p->data, p->len);
        if (p->hdr.type != SSE_FCGI_PARAMS)
                return;
        if (p->len) {
                strbuf_add(&s->params, p->data, p->len);
                return;
        }
        if (!s->params.failed)
                check_pairs((const uint8_t *)s->params.buf, s->params.len);
        strbuf_reset(&s->params);
}

/* Decodes buf[0..len) cut by seed (0: whole), writing what happened to s. */
static void run(const uint8_t *buf, size_t len, uint8_t seed, struct story *s)
{
        struct sse_fcgi_decoder d;
        size_t off = 0;

        strbuf_init(&s->log, 0);
        strbuf_init(&s->params, SSE_FCGI_MAX_PARAMS);
        sse_fcgi_decoder_init(&d);
        while (off < len) {
                size_t end = seed ? off + (size_t)((seed + off * 13) % 32) + 1 : len, used = 0;

                if (end > len)
                        end = len;
                while (off + used < end) {
                        struct sse_fcgi_piece p;
                        size_t avail = end - off - used;
                        size_t n = sse_fcgi_decode(&d, buf + off + used, avail, &p);

                        FUZZ_ASSERT(n <= avail);
                        if (p.kind == SSE_FCGI_ERROR) {
                                FUZZ_ASSERT(p.error && d.state == SSE_FCGI_BROKEN);
                                FUZZ_ASSERT(sse_fcgi_decode(&d, buf, len, &p) == 0 &&
                                            p.kind == SSE_FCGI_ERROR);
                                strbuf_addf(&s->log, "\nerror %s at %zu\n", p.error,
                                            off + used + n);
                                return;
                        }
                        FUZZ_ASSERT(n > 0);
                        used += n;
                        if (p.kind == SSE_FCGI_NEED_MORE) {
                                FUZZ_ASSERT(off + used == end);
                                continue;
                        }
                        FUZZ_ASSERT(p.data);
                        if (p.kind == SSE_FCGI_CONTENT && p.len)
                                FUZZ_ASSERT(p.data >= buf + off && p.data + p.len <= buf + end);
                        /* stream bytes are logged bare: how they were cut must not show */
                        if (p.kind == SSE_FCGI_RECORD || p.len == 0)
                                strbuf_addf(&s->log, "\n%d %u %u %u\n", (int)p.kind, p.hdr.type,
                                            p.hdr.request_id, p.hdr.content_len);
                        if (p.kind == SSE_FCGI_RECORD)
                                on_record(s, &p);
                        else
                                on_content(s, &p);
                }
                off = end;
        }
}

/* Pairs built from the input's own bytes read back as they were written. */
static void check_roundtrip(const uint8_t *buf, size_t len)
{
        struct strbuf sb;
        struct sse_fcgi_nv nv;
        size_t half = len / 2, pos = 0;

        strbuf_init(&sb, 0);
        sse_fcgi_add_nv(&sb, (const char *)buf, half, (const char *)buf + half, len - half);
        FUZZ_ASSERT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv) ==
                    (half <= SSE_FCGI_MAX_NAME ? 1 : -1));
        if (half <= SSE_FCGI_MAX_NAME) {
                FUZZ_ASSERT(nv.name_len == half && memcmp(nv.name, buf, half) == 0);
                FUZZ_ASSERT(nv.value_len == len - half &&
                            memcmp(nv.value, buf + half, len - half) == 0);
                FUZZ_ASSERT(pos == sb.len);
        }
        strbuf_release(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        uint8_t seed = fuzz_byte(&in);
        struct story whole, cut;
        size_t len;
        uint8_t *buf = fuzz_rest(&in, &len);

        run(buf, len, 0, &whole);
        run(buf, len, seed ? seed : 1, &cut);
        FUZZ_ASSERT(whole.log.len == cut.log.len);
        FUZZ_ASSERT(memcmp(whole.log.buf, cut.log.buf, whole.log.len) == 0);
        strbuf_release(&whole.log);
        strbuf_release(&whole.params);
        strbuf_release(&cut.log);
        strbuf_release(&cut.params);
        check_roundtrip(buf, len);
        check_pairs(buf, len);
        free(buf);
        return 0;
}
