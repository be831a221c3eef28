/*
 * output — loomctl's tables and JSON; see loomctl.h.
 *
 * Widths count characters (UTF-8 code points), not bytes; control characters in values become
 * spaces, so a title with a newline cannot break a table's lines.
 */
#include "loomctl.h"

#include <stdlib.h>
#include <string.h>

#define CLI_CELL_MAX 4096

json_object *cli_field(json_object *obj, const char *field)
{
        char key[128];

        while (obj && json_object_is_type(obj, json_type_object)) {
                const char *dot = strchr(field, '.');
                json_object *v;

                if (!dot)
                        return json_object_object_get_ex(obj, field, &v) ? v : NULL;
                snprintf(key, sizeof(key), "%.*s", (int)(dot - field), field);
                obj = json_object_object_get_ex(obj, key, &v) ? v : NULL;
                field = dot + 1;
        }
        return NULL;
}

/* Characters (not continuation bytes) in s. */
static size_t cli_width(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += ((unsigned char)*s & 0xC0) != 0x80;
        return n;
}

/* Cuts sb to at most max characters, the last one "…". */
static void cli_truncate(struct strbuf *sb, int max)
{
        size_t chars = 0, i = 0;

        if (max <= 0 || cli_width(sb->buf) <= (size_t)max)
                return;
        for (; sb->buf[i]; i++) {
                if (((unsigned char)sb->buf[i] & 0xC0) != 0x80 && ++chars == (size_t)max)
                        break;
        }
        sb->len = i;
        sb->buf[i] = '\0';
        strbuf_addstr(sb, "…");
}

static void cli_add_clean(struct strbuf *sb, const char *s)
{
        for (; *s; s++)
                strbuf_addch(sb, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static void cli_add_scalar(struct strbuf *sb, json_object *v, enum cli_col_kind kind)
{
        const char *s;

        switch (json_object_get_type(v)) {
        case json_type_null:
                strbuf_addch(sb, '-');
                return;
        case json_type_boolean:
                if (kind == COL_YESNO)
                        strbuf_addstr(sb, json_object_get_boolean(v) ? "yes" : "no");
                else
                        strbuf_addstr(sb, json_object_get_boolean(v) ? "true" : "false");
                return;
        case json_type_int:
                if (kind == COL_PRIORITY)
                        strbuf_addch(sb, 'P');
                strbuf_addf(sb, "%lld", (long long)json_object_get_int64(v));
                return;
        case json_type_string:
                s = json_object_get_string(v);
                if (kind == COL_TIME && strlen(s) >= 19 && s[10] == 'T') {
                        strbuf_add(sb, s, 10);
                        strbuf_addch(sb, ' ');
                        strbuf_add(sb, s + 11, 8);
                        return;
                }
                if (!*s)
                        strbuf_addch(sb, '-');
                cli_add_clean(sb, s);
                return;
        default:
                cli_add_clean(sb, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        }
}

void cli_cell_text(struct strbuf *sb, json_object *v, enum cli_col_kind kind)
{
        if (!v) {
                strbuf_addch(sb, '-');
                return;
        }
        if (!json_object_is_type(v, json_type_array)) {
                cli_add_scalar(sb, v, kind);
                return;
        }
        if (json_object_array_length(v) == 0)
                strbuf_addch(sb, '-');
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                if (i)
                        strbuf_addch(sb, ',');
                cli_add_scalar(sb, json_object_array_get_idx(v, i), kind);
        }
}

static char *cli_cell(json_object *row, const struct cli_col *col)
{
        struct strbuf sb;

        strbuf_init(&sb, CLI_CELL_MAX);
        cli_cell_text(&sb, cli_field(row, col->field), col->kind);
        cli_truncate(&sb, col->width);
        return strbuf_take(&sb, NULL);
}

static void cli_pad(const char *s, size_t width, bool last)
{
        fputs(s, stdout);
        if (last)
                return;
        for (size_t n = cli_width(s); n < width + 2; n++)
                putchar(' ');
}

void cli_print_table(json_object *rows, const struct cli_col *cols, size_t ncols)
{
        size_t nrows = rows && json_object_is_type(rows, json_type_array)
                               ? json_object_array_length(rows)
                               : 0;
        char **cells = calloc(nrows * ncols + 1, sizeof(char *));
        size_t *width = calloc(ncols, sizeof(size_t));

        if (!cells || !width)
                abort();
        for (size_t c = 0; c < ncols; c++)
                width[c] = cli_width(cols[c].title);
        for (size_t r = 0; r < nrows; r++) {
                for (size_t c = 0; c < ncols; c++) {
                        char *s = cli_cell(json_object_array_get_idx(rows, r), &cols[c]);

                        cells[r * ncols + c] = s;
                        if (cli_width(s) > width[c])
                                width[c] = cli_width(s);
                }
        }
        for (size_t c = 0; c < ncols; c++)
                cli_pad(cols[c].title, width[c], c + 1 == ncols);
        putchar('\n');
        for (size_t r = 0; r < nrows; r++) {
                for (size_t c = 0; c < ncols; c++)
                        cli_pad(cells[r * ncols + c], width[c], c + 1 == ncols);
                putchar('\n');
        }
        for (size_t i = 0; i < nrows * ncols; i++)
                free(cells[i]);
        free(cells);
        free(width);
}

void cli_print_fields(json_object *obj, const struct cli_col *cols, size_t ncols)
{
        size_t w = 0;

        for (size_t c = 0; c < ncols; c++) {
                if (cli_width(cols[c].title) > w)
                        w = cli_width(cols[c].title);
        }
        for (size_t c = 0; c < ncols; c++) {
                char *s = cli_cell(obj, &cols[c]);

                cli_pad(cols[c].title, w, false);
                printf("%s\n", s);
                free(s);
        }
}

void cli_print_json(json_object *v)
{
        if (v && json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0) {
                puts("[]");
                return;
        }
        puts(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Columns for an array of objects: the scalar keys of its first object. */
static void cli_print_rows_any(const char *title, json_object *arr)
{
        struct cli_col cols[16];
        size_t n = 0;
        json_object *first = json_object_array_get_idx(arr, 0);

        printf("\n%s:\n", title);
        if (!first || !json_object_is_type(first, json_type_object)) {
                struct strbuf sb;

                strbuf_init(&sb, CLI_CELL_MAX);
                cli_cell_text(&sb, arr, COL_TEXT);
                printf("  %s\n", sb.buf);
                strbuf_release(&sb);
                return;
        }
        json_object_object_foreach(first, key, val)
        {
                if (n < 16 && !json_object_is_type(val, json_type_object) &&
                    !json_object_is_type(val, json_type_array))
                        cols[n++] = (struct cli_col){key, key, COL_TEXT, 60};
        }
        cli_print_table(arr, cols, n);
}

static void cli_print_scalars(const char *prefix, json_object *obj)
{
        json_object_object_foreach(obj, key, val)
        {
                struct strbuf sb;

                if (json_object_is_type(val, json_type_array))
                        continue;
                if (json_object_is_type(val, json_type_object)) {
                        char p[128];

                        snprintf(p, sizeof(p), "%s%s.", prefix, key);
                        cli_print_scalars(p, val);
                        continue;
                }
                strbuf_init(&sb, CLI_CELL_MAX);
                cli_cell_text(&sb, val, COL_TEXT);
                printf("%s%s: %s\n", prefix, key, sb.buf);
                strbuf_release(&sb);
        }
}

void cli_print_any(json_object *v)
{
        if (!v || !json_object_is_type(v, json_type_object)) {
                if (v && json_object_is_type(v, json_type_array))
                        cli_print_rows_any("items", v);
                else
                        cli_print_json(v);
                return;
        }
        cli_print_scalars("", v);
        json_object_object_foreach(v, key, val)
        {
                if (json_object_is_type(val, json_type_array))
                        cli_print_rows_any(key, val);
        }
}
