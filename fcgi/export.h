/*
 * export — a query result as a download: CSV (RFC 4180) or a JSON array of objects.
 *
 * Pure formatting for the export routes (/api/v1/analytics/export, /api/v1/logs/export): the
 * SQL returns flat rows whose column names are the CSV header and the JSON keys.  CSV rows end
 * in CRLF; a field is quoted when it holds a comma, a quote, CR or LF, or starts or ends with a
 * space or tab, with quotes doubled; SQL NULL is an empty field and the empty string a quoted
 * one (""), so the two stay apart.  In JSON, numeric columns are numbers, booleans booleans,
 * NULL null, everything else a string.
 */
#ifndef LOOM_EXPORT_H
#define LOOM_EXPORT_H

#include "strbuf.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* Appends one CSV field (len bytes of value; value NULL: SQL NULL), preceded by a comma unless
 * first. */
void export_csv_field(struct strbuf *sb, const char *value, size_t len, bool first);
/* The result as CSV: the header row, then its first nrows rows (nrows <= PQntuples). */
void export_csv(struct strbuf *sb, const PGresult *res, int nrows);
/* The first nrows rows of the result as a JSON array of objects keyed by column name. */
void export_json(struct strbuf *sb, const PGresult *res, int nrows);

#endif
