/*
 * sse_fcgi — the FastCGI record protocol, spoken by hand so one thread can hold many streams.
 *
 * libfcgi's blocking API pins a thread per open request (stack notes §3c); loom-sse instead
 * runs an epoll loop and parses records itself.  Everything here is pure: the decoder is a
 * state machine fed with whatever bytes a read() returned (any split, down to one byte at a
 * time), and the encoders append to a strbuf.  Nothing allocates except through the caller's
 * strbuf, nothing reads a socket, so the module can be unit-tested and fuzzed on plain buffers.
 *
 * Bounds: a record's content is at most 65535 bytes by construction; records that are not
 * streams (BEGIN_REQUEST, ABORT_REQUEST, GET_VALUES, unknown types) are kept whole only up to
 * SSE_FCGI_SMALL_MAX bytes, anything longer is malformed.  Stream records (PARAMS, STDIN, DATA,
 * STDERR) are handed out in chunks that point into the caller's buffer; the caller caps what it
 * keeps (the PARAMS stream at SSE_FCGI_MAX_PARAMS).
 */
#ifndef LOOM_SSE_FCGI_H
#define LOOM_SSE_FCGI_H

#include "strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSE_FCGI_VERSION     1
#define SSE_FCGI_HEADER_LEN  8
#define SSE_FCGI_MAX_CONTENT 65535
#define SSE_FCGI_SMALL_MAX   128         /* whole-record content kept by the decoder */
#define SSE_FCGI_MAX_PARAMS  (64 * 1024) /* the whole PARAMS stream of one request */
#define SSE_FCGI_MAX_NAME    4096        /* one parameter name */

enum sse_fcgi_type {
        SSE_FCGI_BEGIN_REQUEST = 1,
        SSE_FCGI_ABORT_REQUEST = 2,
        SSE_FCGI_END_REQUEST = 3,
        SSE_FCGI_PARAMS = 4,
        SSE_FCGI_STDIN = 5,
        SSE_FCGI_STDOUT = 6,
        SSE_FCGI_STDERR = 7,
        SSE_FCGI_DATA = 8,
        SSE_FCGI_GET_VALUES = 9,
        SSE_FCGI_GET_VALUES_RESULT = 10,
        SSE_FCGI_UNKNOWN_TYPE = 11,
};

#define SSE_FCGI_RESPONDER 1 /* the only role loom-sse plays */
#define SSE_FCGI_KEEP_CONN 1 /* BEGIN_REQUEST flag: the server keeps the connection open */

/* protocolStatus of END_REQUEST */
enum sse_fcgi_status {
        SSE_FCGI_REQUEST_COMPLETE = 0,
        SSE_FCGI_CANT_MPX_CONN = 1,
        SSE_FCGI_OVERLOADED = 2,
        SSE_FCGI_UNKNOWN_ROLE = 3,
};

struct sse_fcgi_header {
        uint8_t type;
        uint16_t request_id;
        uint16_t content_len;
        uint8_t padding_len;
};

enum sse_fcgi_piece_kind {
        SSE_FCGI_NEED_MORE, /* every byte given was consumed; feed more */
        SSE_FCGI_RECORD,    /* a whole non-stream record: data/len is its entire content */
        SSE_FCGI_CONTENT,   /* the next data/len bytes of a stream record; len 0 = end of stream */
        SSE_FCGI_ERROR,     /* malformed input; the decoder stays in this state */
};

struct sse_fcgi_piece {
        enum sse_fcgi_piece_kind kind;
        struct sse_fcgi_header hdr; /* RECORD, CONTENT: the record the piece belongs to */
        const uint8_t *data;        /* borrowed: valid until the next decode call */
        size_t len;
        const char *error; /* ERROR: what was wrong, a static string */
};

enum sse_fcgi_decoder_state {
        SSE_FCGI_AT_HEADER,  /* gathering the 8 header bytes of the next record */
        SSE_FCGI_AT_CONTENT, /* content_left bytes of the current record still to come */
        SSE_FCGI_AT_PADDING, /* padding_left bytes to skip, then maybe emit the record */
        SSE_FCGI_BROKEN,     /* a malformed record was seen: nothing more is decoded */
};

struct sse_fcgi_decoder {
        enum sse_fcgi_decoder_state state;
        struct sse_fcgi_header hdr; /* the current record */
        uint8_t head[SSE_FCGI_HEADER_LEN];
        uint8_t head_len;
        uint8_t padding_left;
        uint16_t content_left;
        uint16_t small_len;
        bool emit_at_end; /* emit a piece once content and padding are consumed */
        const char *error;
        uint8_t small[SSE_FCGI_SMALL_MAX];
};

/* Stream records carry a byte stream split over records; the rest are kept whole. */
bool sse_fcgi_is_stream(uint8_t type);

/* A decoder waiting for the first header. Cannot fail. */
void sse_fcgi_decoder_init(struct sse_fcgi_decoder *d);

/*
 * Consumes bytes from buf[0..len) and describes the next thing they complete in *out.
 * Returns how many bytes were consumed: at least one whenever len > 0 and the kind is not
 * ERROR, so a caller loops `while (off < len)`.  out->kind NEED_MORE means all len bytes were
 * consumed without completing anything.  Pure apart from d; never reads past len.
 */
size_t sse_fcgi_decode(struct sse_fcgi_decoder *d, const uint8_t *buf, size_t len,
                       struct sse_fcgi_piece *out);

/* Parses 8 header bytes. 0, or -1 when the version is not 1. */
int sse_fcgi_parse_header(const uint8_t *buf, struct sse_fcgi_header *out)
        __attribute__((warn_unused_result));

/* One name-value pair, slices borrowed from the buffer it was read from. */
struct sse_fcgi_nv {
        const uint8_t *name;
        size_t name_len;
        const uint8_t *value;
        size_t value_len;
};

/*
 * Reads the pair at buf[*pos..len) (a complete PARAMS or GET_VALUES body) and advances *pos.
 * 1 = a pair in *out, 0 = the end (*pos == len), -1 = malformed: a truncated length or pair,
 * a length past the end of buf, or a name longer than SSE_FCGI_MAX_NAME.
 */
int sse_fcgi_nv_next(const uint8_t *buf, size_t len, size_t *pos, struct sse_fcgi_nv *out)
        __attribute__((warn_unused_result));

/* Writes a record header into out[0..8). Cannot fail. */
void sse_fcgi_header_put(uint8_t *out, uint8_t type, uint16_t request_id, uint16_t content_len,
                         uint8_t padding_len);
/*
 * Appends data as records of type, split at 65535 bytes; len 0 appends one empty record (the
 * end of a stream).  Errors surface as sb->failed.
 */
void sse_fcgi_add_records(struct strbuf *sb, uint8_t type, uint16_t request_id, const void *data,
                          size_t len);
/* Appends END_REQUEST. */
void sse_fcgi_add_end_request(struct strbuf *sb, uint16_t request_id, uint32_t app_status,
                              uint8_t protocol_status);
/* Appends a name-value pair in the 1- or 4-byte length encoding (lengths < 2^31). */
void sse_fcgi_add_nv(struct strbuf *sb, const char *name, size_t name_len, const char *value,
                     size_t value_len);
/* Appends UNKNOWN_TYPE for a management record of the given type. */
void sse_fcgi_add_unknown_type(struct strbuf *sb, uint8_t type);

/* What loom-sse answers to GET_VALUES. */
struct sse_fcgi_values {
        long max_conns;
        long max_reqs;
};

/*
 * Appends the GET_VALUES_RESULT for a GET_VALUES body: the variables it knows
 * (FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS = 0), unknown names left out as the
 * specification says.  0, or -1 when the body is malformed (nothing appended).
 */
int sse_fcgi_add_values_result(struct strbuf *sb, const uint8_t *body, size_t len,
                               const struct sse_fcgi_values *v) __attribute__((warn_unused_result));

#endif
