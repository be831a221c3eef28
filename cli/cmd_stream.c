/*
 * cmd_stream — loomctl log stream and event stream: follow /api/v1/logs/stream or
 * /api/v1/events/stream and print one line per event until Ctrl-C (or --count events).
 */
#include "loomctl.h"

#include <string.h>

struct stream_out {
        const struct cli *c;
        bool log;  /* log lines instead of events */
        long left; /* events still to print; <0: no limit */
};

static const char *stream_str(json_object *o, const char *field)
{
        json_object *v = cli_field(o, field);

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* What to say about an event: its message, a bead's title and status, else its data (cut). */
static void stream_summary(struct strbuf *sb, json_object *ev)
{
        json_object *m = cli_field(ev, "data.message");
        json_object *title = cli_field(ev, "data.bead.title");

        if (!m || !json_object_is_type(m, json_type_string))
                m = cli_field(ev, "data.msg");
        if (m && json_object_is_type(m, json_type_string)) {
                cli_cell_text(sb, m, COL_TEXT);
                return;
        }
        if (title && json_object_is_type(title, json_type_string)) {
                cli_cell_text(sb, title, COL_TEXT);
                strbuf_addstr(sb, " [");
                cli_cell_text(sb, cli_field(ev, "data.bead.status"), COL_TEXT);
                strbuf_addch(sb, ']');
                return;
        }
        cli_cell_text(sb, cli_field(ev, "data"), COL_TEXT);
        if (sb->len > 160) {
                sb->len = 160;
                while (sb->len && ((unsigned char)sb->buf[sb->len] & 0xC0) == 0x80)
                        sb->len--; /* not inside a UTF-8 character */
                sb->buf[sb->len] = '\0';
                strbuf_addstr(sb, "…");
        }
}

static int stream_print(void *arg, const char *id, const char *type, json_object *ev)
{
        struct stream_out *o = arg;
        struct strbuf when, sum;
        const char *proj = stream_str(ev, "project_id"), *bead = stream_str(ev, "bead_id");

        (void)id;
        if (o->c->json) {
                puts(ev ? json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
                        : "null");
        } else {
                strbuf_init(&when, 0);
                strbuf_init(&sum, 0);
                cli_cell_text(&when, cli_field(ev, "timestamp"), COL_TIME);
                stream_summary(&sum, ev);
                if (o->log)
                        printf("%s %-5s %s: %s\n", when.buf,
                               strncmp(type, "log.", 4) == 0 ? type + 4 : type,
                               stream_str(ev, "source") ? stream_str(ev, "source") : "loom",
                               sum.buf);
                else
                        printf("%s %-22s %s%s%s %s\n", when.buf, type, proj ? proj : "-",
                               bead ? "/" : "", bead ? bead : "", sum.buf);
                strbuf_release(&when);
                strbuf_release(&sum);
        }
        fflush(stdout);
        return o->left > 0 && --o->left == 0;
}

static int stream_run(struct cli *c, const struct cli_args *a, bool log)
{
        struct stream_out o = {.c = c, .log = log, .left = -1};
        struct strbuf url;
        long since = 0;
        int rc = CLI_OK;

        if (cli_has(a, "count"))
                rc = cli_get_long(c, a, "count", 1, 1000000000, &o.left);
        if (!rc && cli_has(a, "since"))
                rc = cli_get_long(c, a, "since", 0, 9000000000000000000L, &since);
        if (rc)
                return rc;
        strbuf_init(&url, 0);
        strbuf_addstr(&url, log ? "/api/v1/logs/stream" : "/api/v1/events/stream");
        cli_url_query(&url, "project_id", cli_get(a, "project"));
        if (!log)
                cli_url_query(&url, "type", cli_get(a, "type"));
        cli_url_query(&url, "last_event_id", cli_get(a, "since"));
        rc = cli_stream(c, url.buf, stream_print, &o);
        strbuf_release(&url);
        return rc;
}

static int log_stream(struct cli *c, const struct cli_args *a)
{
        return stream_run(c, a, true);
}

static int event_stream(struct cli *c, const struct cli_args *a)
{
        return stream_run(c, a, false);
}

static const struct cli_opt log_opts[] = {
        {"project", 'p', "ID", "only this project's lines"},
        {"since", 0, "EVENT-ID", "first replay what came after this event id"},
        {"count", 'n', "N", "stop after N lines"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt event_opts[] = {
        {"project", 'p', "ID", "only this project's events"},
        {"type", 0, "TYPE", "only events of this type, e.g. bead.created"},
        {"since", 0, "EVENT-ID", "first replay what came after this event id"},
        {"count", 'n', "N", "stop after N events"},
        {NULL, 0, NULL, NULL},
};

const struct cli_cmd cli_stream_cmds[] = {
        {"log", "stream", "", 0, 0, "Follow the log lines as they happen, until Ctrl-C.",
         "Examples:\n  loomctl log stream --project demo\n  loomctl log stream -o json | jq .\n",
         log_opts, log_stream},
        {"event", "stream", "", 0, 0,
         "Follow the events (bead, run, agent, decision, ...) as they happen, until Ctrl-C.",
         "Examples:\n  loomctl event stream --project demo --type bead.status_change\n"
         "  loomctl event stream --since 1200 --count 10 -o json\n",
         event_opts, event_stream},
        {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};
