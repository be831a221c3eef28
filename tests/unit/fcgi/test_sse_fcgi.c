/*
 * Unit tests for fcgi/sse_fcgi.c: the record decoder fed at every split, bounds, name-value
 * pairs, encoders, GET_VALUES.  The Makefile links only the shared and common FastCGI objects
 * into unit tests, so the module is compiled in here.
 */
#include "sse_fcgi.h"
#include "testlib.h"

#include <stdint.h>

/* A record with explicit padding (the encoders never pad; nginx may). */
static void add_record(struct strbuf *sb, uint8_t type, uint16_t id, const void *data, size_t len,
                       uint8_t padding)
{
        uint8_t head[8], pad[255] = {0};

        sse_fcgi_header_put(head, type, id, (uint16_t)len, padding);
        strbuf_add(sb, head, 8);
        strbuf_add(sb, data, len);
        strbuf_add(sb, pad, padding);
}

/*
 * What a decoder made of some input, as text: "R<type>/<id>[<content>]" for whole records,
 * "C<type>/<id>[<bytes>]" for stream content (adjacent chunks of the same record merged, so
 * any split gives the same text), "E<type>/<id>" for the end of a stream, "!<error>".
 */
struct transcript {
        struct strbuf text;
        int last_type, last_id; /* the open C entry, -1 when none */
};

static void transcript_piece(struct transcript *t, const struct sse_fcgi_piece *p)
{
        if (p->kind == SSE_FCGI_CONTENT && p->len > 0) {
                if (t->last_type != p->hdr.type || t->last_id != p->hdr.request_id) {
                        if (t->last_type >= 0)
                                strbuf_addstr(&t->text, "] ");
                        strbuf_addf(&t->text, "C%d/%d[", p->hdr.type, p->hdr.request_id);
                        t->last_type = p->hdr.type;
                        t->last_id = p->hdr.request_id;
                }
                strbuf_add(&t->text, p->data, p->len);
                return;
        }
        if (t->last_type >= 0)
                strbuf_addstr(&t->text, "] ");
        t->last_type = t->last_id = -1;
        if (p->kind == SSE_FCGI_CONTENT)
                strbuf_addf(&t->text, "E%d/%d ", p->hdr.type, p->hdr.request_id);
        else if (p->kind == SSE_FCGI_RECORD) {
                strbuf_addf(&t->text, "R%d/%d[", p->hdr.type, p->hdr.request_id);
                for (size_t i = 0; i < p->len; i++)
                        strbuf_addf(&t->text, "%02x", p->data[i]);
                strbuf_addstr(&t->text, "] ");
        } else if (p->kind == SSE_FCGI_ERROR)
                strbuf_addf(&t->text, "!%s ", p->error);
}

/* Feeds buf[0..len) and checks the consumption contract; false when it was broken. */
static bool feed(struct sse_fcgi_decoder *d, struct transcript *t, const uint8_t *buf, size_t len)
{
        size_t off = 0;

        while (off < len) {
                struct sse_fcgi_piece p;
                size_t used = sse_fcgi_decode(d, buf + off, len - off, &p);

                if (used > len - off)
                        return false;
                if (p.kind == SSE_FCGI_ERROR) {
                        transcript_piece(t, &p);
                        return true;
                }
                if (used == 0)
                        return false; /* would loop forever */
                if (p.kind == SSE_FCGI_NEED_MORE && off + used != len)
                        return false;
                off += used;
                if (p.kind != SSE_FCGI_NEED_MORE)
                        transcript_piece(t, &p);
        }
        return true;
}

static void transcript_init(struct transcript *t)
{
        strbuf_init(&t->text, 0);
        t->last_type = t->last_id = -1;
}

/* The close of a transcript: an open content entry ends. */
static const char *transcript_done(struct transcript *t)
{
        if (t->last_type >= 0)
                strbuf_addstr(&t->text, "] ");
        t->last_type = -1;
        return t->text.buf;
}

/* A typical nginx request plus every kind of record a decoder must survive. */
static void build_session(struct strbuf *sb)
{
        static const uint8_t begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
        struct strbuf params;
        uint8_t body[7] = {1, 2, 3, 4, 5, 6, 7};

        strbuf_init(&params, 0);
        sse_fcgi_add_nv(&params, "REQUEST_METHOD", 14, "GET", 3);
        sse_fcgi_add_nv(&params, "DOCUMENT_URI", 12, "/api/v1/events/stream", 21);
        add_record(sb, SSE_FCGI_BEGIN_REQUEST, 1, begin, 8, 0);
        add_record(sb, SSE_FCGI_PARAMS, 1, params.buf, 20, 4); /* a pair split over records */
        add_record(sb, SSE_FCGI_PARAMS, 1, params.buf + 20, params.len - 20, 0);
        add_record(sb, SSE_FCGI_PARAMS, 1, "", 0, 3);
        add_record(sb, SSE_FCGI_STDIN, 1, body, sizeof(body), 1);
        add_record(sb, SSE_FCGI_STDIN, 1, "", 0, 0);
        add_record(sb, SSE_FCGI_GET_VALUES, 0,
                   "\x0e\x00"
                   "FCGI_MAX_CONNS",
                   16, 0);
        add_record(sb, 42, 0, "xy", 2, 6); /* an unknown management type */
        add_record(sb, SSE_FCGI_ABORT_REQUEST, 1, "", 0, 0);
        strbuf_release(&params);
}

TEST(decodes_a_session)
{
        struct sse_fcgi_decoder d;
        struct transcript t;
        struct strbuf in;

        strbuf_init(&in, 0);
        build_session(&in);
        transcript_init(&t);
        sse_fcgi_decoder_init(&d);
        CHECK(feed(&d, &t, (const uint8_t *)in.buf, in.len));
        CHECK_STR(transcript_done(&t),
                  "R1/1[0001000000000000] "
                  "C4/1[\x0e\x03REQUEST_METHODGET\x0c\x15"
                  "DOCUMENT_URI/api/v1/events/stream] E4/1 "
                  "C5/1[\x01\x02\x03\x04\x05\x06\x07] E5/1 "
                  "R9/0[0e00464347495f4d41585f434f4e4e53] R42/0[7879] R2/1[] ");
        strbuf_release(&t.text);
        strbuf_release(&in);
}

TEST(any_split_gives_the_same_records)
{
        struct strbuf in;
        struct transcript whole;
        struct sse_fcgi_decoder d;

        strbuf_init(&in, 0);
        build_session(&in);
        transcript_init(&whole);
        sse_fcgi_decoder_init(&d);
        CHECK(feed(&d, &whole, (const uint8_t *)in.buf, in.len));
        transcript_done(&whole);
        for (size_t cut = 0; cut <= in.len; cut++) {
                struct transcript t;

                transcript_init(&t);
                sse_fcgi_decoder_init(&d);
                CHECK(feed(&d, &t, (const uint8_t *)in.buf, cut));
                CHECK(feed(&d, &t, (const uint8_t *)in.buf + cut, in.len - cut));
                CHECK_STR(transcript_done(&t), whole.text.buf);
                strbuf_release(&t.text);
        }
        /* and one byte at a time */
        {
                struct transcript t;

                transcript_init(&t);
                sse_fcgi_decoder_init(&d);
                for (size_t i = 0; i < in.len; i++)
                        CHECK(feed(&d, &t, (const uint8_t *)in.buf + i, 1));
                CHECK_STR(transcript_done(&t), whole.text.buf);
                strbuf_release(&t.text);
        }
        strbuf_release(&whole.text);
        strbuf_release(&in);
}

TEST(bad_version_breaks_the_decoder_for_good)
{
        static const uint8_t bad[8] = {2, 1, 0, 1, 0, 8, 0, 0};
        struct sse_fcgi_decoder d;
        struct sse_fcgi_piece p;

        sse_fcgi_decoder_init(&d);
        CHECK_INT(sse_fcgi_decode(&d, bad, 7, &p), 7);
        CHECK_INT(p.kind, SSE_FCGI_NEED_MORE);
        CHECK_INT(sse_fcgi_decode(&d, bad + 7, 1, &p), 1);
        CHECK_INT(p.kind, SSE_FCGI_ERROR);
        CHECK_HAS(p.error, "version");
        /* sticky: nothing more is decoded, nothing consumed */
        CHECK_INT(sse_fcgi_decode(&d, bad, 8, &p), 0);
        CHECK_INT(p.kind, SSE_FCGI_ERROR);
}

TEST(whole_records_are_bounded)
{
        uint8_t big[SSE_FCGI_SMALL_MAX + 1] = {0};
        struct sse_fcgi_decoder d;
        struct transcript t;
        struct strbuf in;

        /* exactly the limit is fine */
        strbuf_init(&in, 0);
        add_record(&in, SSE_FCGI_GET_VALUES, 0, big, SSE_FCGI_SMALL_MAX, 0);
        transcript_init(&t);
        sse_fcgi_decoder_init(&d);
        CHECK(feed(&d, &t, (const uint8_t *)in.buf, in.len));
        CHECK(strncmp(t.text.buf, "R9/0[", 5) == 0);
        strbuf_release(&t.text);
        /* one more byte is malformed, detected at the header */
        strbuf_reset(&in);
        add_record(&in, SSE_FCGI_BEGIN_REQUEST, 1, big, sizeof(big), 0);
        transcript_init(&t);
        sse_fcgi_decoder_init(&d);
        CHECK(feed(&d, &t, (const uint8_t *)in.buf, 8));
        CHECK_HAS(t.text.buf, "!record too long");
        strbuf_release(&t.text);
        strbuf_release(&in);
}

TEST(large_stream_records_come_in_chunks)
{
        static uint8_t big[SSE_FCGI_MAX_CONTENT];
        struct sse_fcgi_decoder d;
        struct sse_fcgi_piece p;
        struct strbuf in;
        size_t off = 0, got = 0;

        memset(big, 'x', sizeof(big));
        strbuf_init(&in, 0);
        add_record(&in, SSE_FCGI_STDIN, 3, big, sizeof(big), 255);
        sse_fcgi_decoder_init(&d);
        /* read() sizes: 1000 bytes at a time */
        while (off < in.len) {
                size_t n = in.len - off < 1000 ? in.len - off : 1000;
                size_t part = 0;

                while (part < n) {
                        part += sse_fcgi_decode(&d, (const uint8_t *)in.buf + off + part, n - part,
                                                &p);
                        if (p.kind == SSE_FCGI_CONTENT) {
                                CHECK(p.len <= 1000);
                                CHECK_INT(p.hdr.request_id, 3);
                                got += p.len;
                        }
                        CHECK(p.kind != SSE_FCGI_ERROR);
                }
                off += n;
        }
        CHECK_INT(got, sizeof(big));
        CHECK_INT(d.state, SSE_FCGI_AT_HEADER); /* the padding was skipped */
        strbuf_release(&in);
}

TEST(name_value_pairs)
{
        struct strbuf sb;
        struct sse_fcgi_nv nv;
        char value[300];
        size_t pos = 0;

        memset(value, 'v', sizeof(value));
        strbuf_init(&sb, 0);
        sse_fcgi_add_nv(&sb, "A", 1, "short", 5);
        sse_fcgi_add_nv(&sb, "LONG", 4, value, sizeof(value)); /* 4-byte value length */
        sse_fcgi_add_nv(&sb, "E", 1, "", 0);
        CHECK_INT(sb.len, 2 + 6 + 1 + 4 + 4 + 300 + 2 + 1);
        CHECK_INT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv), 1);
        CHECK(nv.name_len == 1 && nv.value_len == 5 && memcmp(nv.value, "short", 5) == 0);
        CHECK_INT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv), 1);
        CHECK(nv.name_len == 4 && nv.value_len == 300 && nv.value[299] == 'v');
        CHECK_INT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv), 1);
        CHECK(nv.name_len == 1 && nv.value_len == 0);
        CHECK_INT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv), 0);
        /* every truncation of the whole is malformed, never a read past the end */
        for (size_t cut = 1; cut < sb.len; cut++) {
                int rc;

                pos = 0;
                while ((rc = sse_fcgi_nv_next((const uint8_t *)sb.buf, cut, &pos, &nv)) == 1)
                        CHECK(pos <= cut);
                if (cut != 8 && cut != 8 + 5 + 4 + 300)
                        CHECK_INT(rc, -1);
                else
                        CHECK_INT(rc, 0); /* a cut between pairs is a shorter, valid body */
        }
        strbuf_release(&sb);
}

TEST(name_value_bounds)
{
        static const uint8_t huge_value[] = {0x01, 0xff, 0xff, 0xff, 0xff, 'a'};
        static const uint8_t short_len[] = {0x80, 0x00, 0x01};
        static const uint8_t past_end[] = {0x01, 0x05, 'a', 'b'};
        struct strbuf sb;
        struct sse_fcgi_nv nv;
        size_t pos = 0;
        char name[SSE_FCGI_MAX_NAME + 1];

        CHECK_INT(sse_fcgi_nv_next(huge_value, sizeof(huge_value), &pos, &nv), -1);
        pos = 0;
        CHECK_INT(sse_fcgi_nv_next(short_len, sizeof(short_len), &pos, &nv), -1);
        pos = 0;
        CHECK_INT(sse_fcgi_nv_next(past_end, sizeof(past_end), &pos, &nv), -1);
        CHECK_INT(pos, 0);
        memset(name, 'n', sizeof(name));
        strbuf_init(&sb, 0);
        sse_fcgi_add_nv(&sb, name, SSE_FCGI_MAX_NAME, "", 0);
        pos = 0;
        CHECK_INT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv), 1);
        strbuf_reset(&sb);
        sse_fcgi_add_nv(&sb, name, sizeof(name), "", 0);
        pos = 0;
        CHECK_INT(sse_fcgi_nv_next((const uint8_t *)sb.buf, sb.len, &pos, &nv), -1);
        strbuf_release(&sb);
}

TEST(encoders)
{
        static uint8_t big[SSE_FCGI_MAX_CONTENT + 10];
        struct sse_fcgi_decoder d;
        struct transcript t;
        struct strbuf sb;

        strbuf_init(&sb, 0);
        sse_fcgi_add_end_request(&sb, 0x0102, 0x0a0b0c0d, SSE_FCGI_UNKNOWN_ROLE);
        CHECK_INT(sb.len, 16);
        CHECK(memcmp(sb.buf, "\x01\x03\x01\x02\x00\x08\x00\x00\x0a\x0b\x0c\x0d\x03\0\0\0", 16) ==
              0);
        strbuf_reset(&sb);
        sse_fcgi_add_records(&sb, SSE_FCGI_STDOUT, 1, "", 0);
        CHECK_INT(sb.len, 8);
        CHECK(memcmp(sb.buf, "\x01\x06\x00\x01\x00\x00\x00\x00", 8) == 0);
        strbuf_reset(&sb);
        sse_fcgi_add_unknown_type(&sb, 42);
        CHECK(sb.len == 16 && (uint8_t)sb.buf[1] == SSE_FCGI_UNKNOWN_TYPE && sb.buf[8] == 42);
        /* more than one record's worth is split, and decodes back whole */
        strbuf_reset(&sb);
        memset(big, 'b', sizeof(big));
        sse_fcgi_add_records(&sb, SSE_FCGI_STDOUT, 7, big, sizeof(big));
        CHECK_INT(sb.len, sizeof(big) + 16);
        /* STDOUT is not a stream type on the way in: decode it as STDERR to see the bytes */
        sb.buf[1] = SSE_FCGI_STDERR;
        sb.buf[8 + SSE_FCGI_MAX_CONTENT + 1] = SSE_FCGI_STDERR;
        transcript_init(&t);
        sse_fcgi_decoder_init(&d);
        CHECK(feed(&d, &t, (const uint8_t *)sb.buf, sb.len));
        CHECK_INT(strlen(transcript_done(&t)), strlen("C7/7[] ") + sizeof(big));
        strbuf_release(&t.text);
        strbuf_release(&sb);
}

TEST(get_values_result)
{
        struct sse_fcgi_values v = {.max_conns = 10000, .max_reqs = 9000};
        struct strbuf q, out;
        struct sse_fcgi_nv nv;
        const uint8_t *body;
        size_t pos = 0;
        uint16_t clen;

        strbuf_init(&q, 0);
        strbuf_init(&out, 0);
        sse_fcgi_add_nv(&q, "FCGI_MAX_CONNS", 14, "", 0);
        sse_fcgi_add_nv(&q, "FCGI_NOT_A_THING", 16, "", 0);
        sse_fcgi_add_nv(&q, "FCGI_MPXS_CONNS", 15, "", 0);
        CHECK_INT(sse_fcgi_add_values_result(&out, (const uint8_t *)q.buf, q.len, &v), 0);
        CHECK_INT((uint8_t)out.buf[1], SSE_FCGI_GET_VALUES_RESULT);
        clen = (uint16_t)((uint8_t)out.buf[4] << 8 | (uint8_t)out.buf[5]);
        CHECK_INT(clen, out.len - 8);
        body = (const uint8_t *)out.buf + 8;
        CHECK_INT(sse_fcgi_nv_next(body, clen, &pos, &nv), 1);
        CHECK(nv.name_len == 14 && nv.value_len == 5 && memcmp(nv.value, "10000", 5) == 0);
        CHECK_INT(sse_fcgi_nv_next(body, clen, &pos, &nv), 1);
        CHECK(nv.name_len == 15 && nv.value_len == 1 && nv.value[0] == '0');
        CHECK_INT(sse_fcgi_nv_next(body, clen, &pos, &nv), 0); /* the unknown name is left out */
        /* a truncated query appends nothing */
        strbuf_reset(&out);
        CHECK_INT(sse_fcgi_add_values_result(&out, (const uint8_t *)q.buf, q.len - 1, &v), -1);
        CHECK_INT(out.len, 0);
        strbuf_release(&q);
        strbuf_release(&out);
}

/* Random bytes at random splits: never a crash, never a read past the end, never a stall. */
TEST(random_input_is_survived)
{
        uint8_t buf[512];
        uint32_t seed = 12345;

        for (int round = 0; round < 3000; round++) {
                struct sse_fcgi_decoder d;
                struct transcript t;
                size_t len, cut;

                for (size_t i = 0; i < sizeof(buf); i++) {
                        seed = seed * 1103515245u + 12345u;
                        buf[i] = (uint8_t)(seed >> 16);
                }
                /* a valid version and a small length now and then, so records do parse */
                buf[0] = 1;
                buf[4] = 0;
                len = 1 + (seed >> 8) % sizeof(buf);
                cut = (seed >> 4) % (len + 1);
                transcript_init(&t);
                sse_fcgi_decoder_init(&d);
                CHECK(feed(&d, &t, buf, cut));
                CHECK(feed(&d, &t, buf + cut, len - cut));
                strbuf_release(&t.text);
        }
}

TESTS(TESTLIB_CASE(decodes_a_session), TESTLIB_CASE(any_split_gives_the_same_records),
      TESTLIB_CASE(bad_version_breaks_the_decoder_for_good),
      TESTLIB_CASE(whole_records_are_bounded), TESTLIB_CASE(large_stream_records_come_in_chunks),
      TESTLIB_CASE(name_value_pairs), TESTLIB_CASE(name_value_bounds), TESTLIB_CASE(encoders),
      TESTLIB_CASE(get_values_result), TESTLIB_CASE(random_input_is_survived))
