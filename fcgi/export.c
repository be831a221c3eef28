/*
 * export — CSV and JSON renderings of a PGresult; see export.h.
 */
#include "export.h"

#include <string.h>

/* PostgreSQL type oids (pg_type.h is a server header) */
#define EXPORT_OID_BOOL    16
#define EXPORT_OID_INT8    20
#define EXPORT_OID_INT2    21
#define EXPORT_OID_INT4    23
#define EXPORT_OID_FLOAT4  700
#define EXPORT_OID_FLOAT8  701
#define EXPORT_OID_NUMERIC 1700

static bool export_needs_quotes(const char *v, size_t len)
{
        if (len == 0)
                return true; /* "" is an empty string; nothing at all is NULL */
        if (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' || v[len - 1] == '\t')
                return true;
        for (size_t i = 0; i < len; i++) {
                if (v[i] == ',' || v[i] == '"' || v[i] == '\r' || v[i] == '\n')
                        return true;
        }
        return false;
}

void export_csv_field(struct strbuf *sb, const char *value, size_t len, bool first)
{
        size_t start = 0;

        if (!first)
                strbuf_addch(sb, ',');
        if (!value)
                return;
        if (!export_needs_quotes(value, len)) {
                strbuf_add(sb, value, len);
                return;
        }
        strbuf_addch(sb, '"');
        for (size_t i = 0; i < len; i++) {
                if (value[i] != '"')
                        continue;
                strbuf_add(sb, value + start, i + 1 - start); /* up to and with the quote */
                strbuf_addch(sb, '"');                        /* doubled */
                start = i + 1;
        }
        strbuf_add(sb, value + start, len - start);
        strbuf_addch(sb, '"');
}

void export_csv(struct strbuf *sb, const PGresult *res, int nrows)
{
        int nf = PQnfields(res), nt = nrows < PQntuples(res) ? nrows : PQntuples(res);

        for (int f = 0; f < nf; f++)
                export_csv_field(sb, PQfname(res, f), strlen(PQfname(res, f)), f == 0);
        strbuf_addstr(sb, "\r\n");
        for (int r = 0; r < nt; r++) {
                for (int f = 0; f < nf; f++)
                        export_csv_field(sb, PQgetisnull(res, r, f) ? NULL : PQgetvalue(res, r, f),
                                         (size_t)PQgetlength(res, r, f), f == 0);
                strbuf_addstr(sb, "\r\n");
        }
}

/* Whether a column's text is a JSON number as it stands (NaN and infinities are not). */
static bool export_is_number(Oid type, const char *v)
{
        if (type != EXPORT_OID_INT2 && type != EXPORT_OID_INT4 && type != EXPORT_OID_INT8 &&
            type != EXPORT_OID_FLOAT4 && type != EXPORT_OID_FLOAT8 && type != EXPORT_OID_NUMERIC)
                return false;
        return strspn(v, "0123456789-+.eE") == strlen(v) && strcmp(v, "-") != 0 && *v;
}

static void export_json_value(struct strbuf *sb, const PGresult *res, int r, int f)
{
        const char *v = PQgetvalue(res, r, f);
        Oid type = PQftype(res, f);

        if (PQgetisnull(res, r, f))
                strbuf_addstr(sb, "null");
        else if (type == EXPORT_OID_BOOL)
                strbuf_addstr(sb, strcmp(v, "t") == 0 ? "true" : "false");
        else if (export_is_number(type, v))
                strbuf_addstr(sb, v);
        else
                strbuf_add_json_str(sb, v, (size_t)PQgetlength(res, r, f));
}

void export_json(struct strbuf *sb, const PGresult *res, int nrows)
{
        int nf = PQnfields(res), nt = nrows < PQntuples(res) ? nrows : PQntuples(res);

        strbuf_addch(sb, '[');
        for (int r = 0; r < nt; r++) {
                strbuf_addstr(sb, r ? ",{" : "{");
                for (int f = 0; f < nf; f++) {
                        if (f)
                                strbuf_addch(sb, ',');
                        strbuf_add_json_str(sb, PQfname(res, f), strlen(PQfname(res, f)));
                        strbuf_addch(sb, ':');
                        export_json_value(sb, res, r, f);
                }
                strbuf_addch(sb, '}');
        }
        strbuf_addch(sb, ']');
}
