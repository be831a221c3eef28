/*
 * loomctl — the command-line client of the Loom API.
 *
 * loomctl.c parses the command line (global options anywhere, then "<group> <command>" or a
 * one-word command, its options and arguments) against the command tables of cmd_*.c and runs
 * one command.  client.c talks HTTP (shared/httpc for requests, libcurl directly for event
 * streams), output.c prints tables and JSON.  Every command returns an exit code:
 *   0  done
 *   1  usage error (unknown command or option, missing argument): nothing was sent
 *   2  the server refused (its {"error"} message is printed), failed, or could not be reached
 */
#ifndef LOOMCTL_H
#define LOOMCTL_H

#include "strbuf.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_OK    0
#define CLI_USAGE 1
#define CLI_API   2

#define CLI_MAX_ARGS 8  /* positional arguments of one command */
#define CLI_MAX_OPTS 64 /* option occurrences on one command line */

/* The session: where the server is, who we are, how to print. */
struct cli {
        const char *server; /* base URL without a trailing slash */
        const char *token;  /* bearer token or API key, or NULL */
        bool json;          /* -o json */
        const char *prog;   /* "loomctl" */
        char *server_copy;  /* owns server once it is cut to shape (freed by main) */
};

/* One option of a command; arg is the metavariable ("ID"), NULL for a flag. */
struct cli_opt {
        const char *name;
        char short_name;
        const char *arg;
        const char *help;
};

struct cli_args;
struct cli_col;

struct cli_cmd {
        const char *group;    /* "bead"; the command itself for one-word commands */
        const char *name;     /* "list"; NULL for one-word commands (export, login) */
        const char *synopsis; /* positional arguments, e.g. "<bead-id>" */
        int min_args, max_args;
        const char *summary;
        const char *help; /* more description and examples, shown by --help */
        const struct cli_opt *opts;
        int (*run)(struct cli *c, const struct cli_args *a);
};

/* A parsed command line: positional arguments and option occurrences in order. */
struct cli_args {
        const struct cli_cmd *cmd;
        const char *pos[CLI_MAX_ARGS];
        int npos;
        struct {
                const char *name;
                const char *value; /* "" for a flag */
        } opt[CLI_MAX_OPTS];
        int nopt;
};

/* The command tables, each ending with an entry whose group is NULL. */
extern const struct cli_cmd cli_bead_cmds[];
extern const struct cli_cmd cli_project_cmds[];
extern const struct cli_cmd cli_misc_cmds[];
extern const struct cli_cmd cli_stream_cmds[];

/* ---- loomctl.c: arguments ------------------------------------------------------------------ */

/* The last value of option name, or NULL when not given.  Borrowed from argv. */
const char *cli_get(const struct cli_args *a, const char *name);
/* Whether flag (or option) name was given. */
bool cli_has(const struct cli_args *a, const char *name);
/* The i-th value of a repeatable option, or NULL past the last. */
const char *cli_get_nth(const struct cli_args *a, const char *name, int i);
/* Prints "loomctl: <group> <name>: <message>" and the --help hint; returns CLI_USAGE. */
int cli_usage_error(const struct cli *c, const struct cli_args *a, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Parses a whole decimal integer in [min, max] given to option name; CLI_USAGE naming it. */
int cli_get_long(const struct cli *c, const struct cli_args *a, const char *name, long min,
                 long max, long *out) __attribute__((warn_unused_result));

/* ---- client.c: HTTP ------------------------------------------------------------------------ */

struct cli_reply {
        long status;
        json_object *body; /* parsed reply, or NULL when it was not JSON */
        struct strbuf text;
};

/* Sets up libcurl; CLI_API when it cannot. */
int cli_client_init(void) __attribute__((warn_unused_result));

/* Appends "?key=value" / "&key=value" (value percent-encoded) to url when value is not NULL. */
void cli_url_query(struct strbuf *url, const char *key, const char *value);
/* Appends s percent-encoded as one path segment. */
void cli_url_segment(struct strbuf *url, const char *s);

/*
 * Sends method path (already encoded, with its query) with body (NULL: none) and reads the
 * reply into *r (released with cli_reply_release even on failure).  Returns CLI_OK for a 2xx,
 * else CLI_API after printing the API's error message, or "cannot reach <server>: <why>".
 * quiet_404: a 404 is returned as CLI_API without printing (the caller explains it).
 */
int cli_call(const struct cli *c, const char *method, const char *path, json_object *body,
             struct cli_reply *r) __attribute__((warn_unused_result));
int cli_call_quiet(const struct cli *c, const char *method, const char *path, json_object *body,
                   struct cli_reply *r, bool quiet_404) __attribute__((warn_unused_result));
void cli_reply_release(struct cli_reply *r);
/* Prints "loomctl: <message>" to stderr for a reply that was not 2xx. */
void cli_print_api_error(const struct cli *c, const struct cli_reply *r);

/*
 * Sends the request and prints the 2xx reply: as JSON with -o json, else as a table of rows
 * (list) or as "TITLE  value" lines.  Returns CLI_OK or CLI_API.
 */
int cli_fetch_print(const struct cli *c, const char *method, const char *path, json_object *body,
                    const struct cli_col *cols, size_t ncols, bool list)
        __attribute__((warn_unused_result));
/* A path: prefix followed by segment, percent-encoded (e.g. "/api/v1/beads/" + id). In sb. */
const char *cli_path(struct strbuf *sb, const char *prefix, const char *segment,
                     const char *suffix);

/* One event of a stream: its id, type and data (parsed JSON, or NULL). */
typedef int (*cli_event_fn)(void *arg, const char *id, const char *type, json_object *data);

/*
 * Follows the Server-Sent Event stream at path until Ctrl-C, until fn returns non-zero
 * (1: done, CLI_OK), or until the server refuses it; reconnects with Last-Event-ID after a
 * dropped connection.  Returns CLI_OK or CLI_API (message printed).
 */
int cli_stream(const struct cli *c, const char *path, cli_event_fn fn, void *arg)
        __attribute__((warn_unused_result));

/* ---- output.c ------------------------------------------------------------------------------ */

enum cli_col_kind {
        COL_TEXT,     /* a scalar as text; arrays comma-joined; null as "-" */
        COL_PRIORITY, /* 2 → "P2" */
        COL_YESNO,    /* true → "yes" */
        COL_TIME,     /* "2026-01-02T03:04:05.6+00:00" → "2026-01-02 03:04:05" */
};

struct cli_col {
        const char *title;
        const char *field; /* key of the row object; "a.b" reaches into a nested object */
        enum cli_col_kind kind;
        int width; /* at most this many characters (0: no limit); longer text ends in "…" */
};

/* Prints rows (a JSON array of objects) as aligned columns under a header line. */
void cli_print_table(json_object *rows, const struct cli_col *cols, size_t ncols);
/* Prints one object as "TITLE  value" lines. */
void cli_print_fields(json_object *obj, const struct cli_col *cols, size_t ncols);
/* Prints v as indented JSON and a newline. */
void cli_print_json(json_object *v);
/* Any JSON shape, readably: scalars as "key: value", arrays of objects as tables. */
void cli_print_any(json_object *v);
/* A cell's text for value v (NULL: "-"), into sb. */
void cli_cell_text(struct strbuf *sb, json_object *v, enum cli_col_kind kind);
/* The value at field ("a.b" reaches into nested objects) of obj, or NULL. Borrowed. */
json_object *cli_field(json_object *obj, const char *field);

#endif
