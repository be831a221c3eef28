/*
 * cmd_misc — loomctl agent list, provider list / register, decision list / decide, analytics
 * stats / costs, login and whoami.
 */
#include "loomctl.h"

#include <errno.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define NCOLS(a)   (sizeof(a) / sizeof((a)[0]))
#define SECRET_MAX 4096

static const struct cli_col agent_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"NAME", "name", COL_TEXT, 30},
        {"PERSONA", "persona_name", COL_TEXT, 0},
        {"PROJECT", "project_id", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"PROVIDER", "provider_id", COL_TEXT, 0},
        {"BEAD", "current_bead", COL_TEXT, 0},
};

static const struct cli_col provider_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"MODEL", "model", COL_TEXT, 40},
        {"ENDPOINT", "endpoint", COL_TEXT, 60},
        {"KEY", "has_api_key", COL_YESNO, 0},
        {"LATENCY MS", "last_heartbeat_latency_ms", COL_TEXT, 0},
        {"LAST ERROR", "last_heartbeat_error", COL_TEXT, 50},
};

static const struct cli_col provider_show_cols[] = {
        {"ID", "id", COL_TEXT, 0},         {"NAME", "name", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0}, {"ENDPOINT", "endpoint", COL_TEXT, 0},
        {"MODEL", "model", COL_TEXT, 0},   {"KEY", "has_api_key", COL_YESNO, 0},
        {"TAGS", "tags", COL_TEXT, 0},     {"CREATED", "created_at", COL_TIME, 0},
};

static const struct cli_col decision_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"PRI", "priority", COL_PRIORITY, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"DECISION", "decision", COL_TEXT, 0},
        {"FOR BEAD", "escalated_from", COL_TEXT, 0},
        {"QUESTION", "question", COL_TEXT, 60},
};

static const struct cli_col decision_show_cols[] = {
        {"ID", "id", COL_TEXT, 0},
        {"STATUS", "status", COL_TEXT, 0},
        {"DECISION", "decision", COL_TEXT, 0},
        {"RATIONALE", "rationale", COL_TEXT, 0},
        {"DECIDER", "decider_id", COL_TEXT, 0},
        {"FOR BEAD", "escalated_from", COL_TEXT, 0},
        {"QUESTION", "question", COL_TEXT, 200},
};

static const struct cli_col whoami_cols[] = {
        {"USER", "user.username", COL_TEXT, 0},
        {"ROLE", "user.role", COL_TEXT, 0},
        {"NAME", "user.display_name", COL_TEXT, 0},
        {"CREDENTIAL", "kind", COL_TEXT, 0},
        {"PROJECTS", "user.projects", COL_TEXT, 0},
        {"LAST LOGIN", "user.last_login_at", COL_TIME, 0},
};

static void put_str(json_object *o, const char *key, const char *v)
{
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

/* GET prefix with the listed (option, query parameter) pairs, printed as a table. */
static int list_with(struct cli *c, const struct cli_args *a, const char *prefix,
                     const char *const *pairs, const struct cli_col *cols, size_t ncols)
{
        struct strbuf url;
        int rc;

        strbuf_init(&url, 0);
        strbuf_addstr(&url, prefix);
        for (int i = 0; pairs[i]; i += 2)
                cli_url_query(&url, pairs[i + 1], cli_get(a, pairs[i]));
        rc = cli_fetch_print(c, "GET", url.buf, NULL, cols, ncols, true);
        strbuf_release(&url);
        return rc;
}

static int agent_list(struct cli *c, const struct cli_args *a)
{
        static const char *const q[] = {"project", "project_id",   "status", "status",
                                        "persona", "persona_name", NULL};

        return list_with(c, a, "/api/v1/agents", q, agent_cols, NCOLS(agent_cols));
}

static int provider_list(struct cli *c, const struct cli_args *a)
{
        static const char *const q[] = {NULL};

        return list_with(c, a, "/api/v1/providers", q, provider_cols, NCOLS(provider_cols));
}

/* The first line of standard input, without its line end; CLI_USAGE when there is none. */
static int read_stdin_line(const struct cli *c, const char *what, char *buf, size_t len)
{
        size_t n;

        if (!fgets(buf, (int)len, stdin)) {
                fprintf(stderr, "%s: no %s on standard input\n", c->prog, what);
                return CLI_USAGE;
        }
        n = strcspn(buf, "\r\n");
        buf[n] = '\0';
        if (n == 0) {
                fprintf(stderr, "%s: the %s on standard input is empty\n", c->prog, what);
                return CLI_USAGE;
        }
        return CLI_OK;
}

static int provider_register(struct cli *c, const struct cli_args *a)
{
        char key[SECRET_MAX];
        json_object *body, *tags;
        long cw;
        int rc = CLI_OK;

        if (!cli_has(a, "endpoint"))
                return cli_usage_error(c, a, "--endpoint is required");
        if (cli_has(a, "context-window"))
                rc = cli_get_long(c, a, "context-window", 1, 100000000, &cw);
        if (!rc && cli_has(a, "api-key-stdin"))
                rc = read_stdin_line(c, "API key", key, sizeof(key));
        if (rc)
                return rc;
        body = json_object_new_object();
        put_str(body, "id", a->pos[0]);
        put_str(body, "endpoint", cli_get(a, "endpoint"));
        put_str(body, "model", cli_get(a, "model"));
        put_str(body, "name", cli_get(a, "name"));
        if (cli_has(a, "api-key-stdin"))
                put_str(body, "api_key", key);
        if (cli_has(a, "context-window"))
                json_object_object_add(body, "context_window", json_object_new_int64(cw));
        if (cli_has(a, "tag")) {
                const char *t;

                tags = json_object_new_array();
                for (int i = 0; (t = cli_get_nth(a, "tag", i)); i++)
                        json_object_array_add(tags, json_object_new_string(t));
                json_object_object_add(body, "tags", tags);
        }
        rc = cli_fetch_print(c, "POST", "/api/v1/providers", body, provider_show_cols,
                             NCOLS(provider_show_cols), false);
        explicit_bzero(key, sizeof(key));
        json_object_put(body);
        return rc;
}

static int decision_list(struct cli *c, const struct cli_args *a)
{
        static const char *const q[] = {"project", "project_id", "status", "status", NULL};

        return list_with(c, a, "/api/v1/decisions", q, decision_cols, NCOLS(decision_cols));
}

static int decision_decide(struct cli *c, const struct cli_args *a)
{
        static const char *const verdicts[] = {"approve", "deny", "needs_more_info", NULL};
        const char *v = a->pos[1];
        json_object *body;
        struct strbuf sb;
        int rc, i;

        for (i = 0; verdicts[i] && strcmp(verdicts[i], v) != 0; i++)
                ;
        if (!verdicts[i])
                return cli_usage_error(c, a, "'%s' is not approve, deny or needs_more_info", v);
        body = json_object_new_object();
        put_str(body, "decision", v);
        put_str(body, "rationale", cli_get(a, "rationale"));
        put_str(body, "decider_id", cli_get(a, "decider"));
        strbuf_init(&sb, 0);
        rc = cli_fetch_print(c, "POST", cli_path(&sb, "/api/v1/decisions/", a->pos[0], "/decide"),
                             body, decision_show_cols, NCOLS(decision_show_cols), false);
        strbuf_release(&sb);
        json_object_put(body);
        return rc;
}

/* GET an analytics route and print it as it comes; missing_hint explains a missing route. */
static int analytics_get(struct cli *c, const struct cli_args *a, const char *route,
                         const char *missing_hint)
{
        struct cli_reply r = {0};
        struct strbuf url;
        int rc;

        strbuf_init(&url, 0);
        strbuf_addstr(&url, route);
        cli_url_query(&url, "project_id", cli_get(a, "project"));
        cli_url_query(&url, "period", cli_get(a, "period"));
        rc = cli_call_quiet(c, "GET", url.buf, NULL, &r, true);
        if (rc && r.status == 404) {
                json_object *e = cli_field(r.body, "error");
                const char *msg = e ? json_object_get_string(e) : "";

                if (strncmp(msg, "no route", 8) == 0 || !e)
                        fprintf(stderr, "%s: this server has no %s: %s\n", c->prog, route,
                                missing_hint);
                else
                        cli_print_api_error(c, &r);
        }
        if (!rc && c->json)
                cli_print_json(r.body);
        else if (!rc)
                cli_print_any(r.body);
        cli_reply_release(&r);
        strbuf_release(&url);
        return rc;
}

static int analytics_stats(struct cli *c, const struct cli_args *a)
{
        return analytics_get(c, a, "/api/v1/analytics/stats", "it is older than analytics");
}

static int analytics_costs(struct cli *c, const struct cli_args *a)
{
        return analytics_get(c, a, "/api/v1/analytics/costs",
                             "cost reports came later than this Loom; "
                             "'loomctl analytics stats' has the cost totals");
}

/* Reads a line from the terminal with echo off; CLI_USAGE when there is no terminal. */
static int read_secret_tty(const struct cli *c, const char *prompt, char *buf, size_t len,
                           bool echo)
{
        struct termios old, quiet;
        FILE *tty = fopen("/dev/tty", "r+");
        bool saved = false;
        int rc = CLI_OK;

        if (!tty) {
                fprintf(stderr,
                        "%s: login: no terminal to ask on (%s); use --username and "
                        "--password-stdin\n",
                        c->prog, strerror(errno));
                return CLI_USAGE;
        }
        fputs(prompt, tty);
        fflush(tty);
        if (!echo && tcgetattr(fileno(tty), &old) == 0) {
                saved = true;
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        }
        if (!fgets(buf, (int)len, tty))
                rc = CLI_USAGE;
        if (saved)
                tcsetattr(fileno(tty), TCSAFLUSH, &old);
        if (!echo)
                fputs("\n", tty); /* the user's Enter was not echoed */
        fclose(tty);
        buf[rc ? 0 : strcspn(buf, "\r\n")] = '\0';
        if (!rc && !*buf)
                rc = CLI_USAGE;
        return rc;
}

static int login_credentials(const struct cli *c, const struct cli_args *a, char *user, size_t ulen,
                             char *pass, size_t plen)
{
        int rc = CLI_OK;

        if (cli_has(a, "username"))
                snprintf(user, ulen, "%s", cli_get(a, "username"));
        else
                rc = read_secret_tty(c, "Username: ", user, ulen, true);
        if (rc)
                return rc;
        if (cli_has(a, "password-stdin"))
                return read_stdin_line(c, "password", pass, plen);
        return read_secret_tty(c, "Password: ", pass, plen, false);
}

static int cmd_login(struct cli *c, const struct cli_args *a)
{
        char user[256], pass[SECRET_MAX];
        struct cli_reply r = {0};
        json_object *body;
        struct cli anon = *c;
        int rc = login_credentials(c, a, user, sizeof(user), pass, sizeof(pass));

        if (rc) {
                explicit_bzero(pass, sizeof(pass));
                return rc;
        }
        body = json_object_new_object();
        put_str(body, "username", user);
        put_str(body, "password", pass);
        explicit_bzero(pass, sizeof(pass));
        anon.token = NULL;
        rc = cli_call(&anon, "POST", "/api/v1/auth/login", body, &r);
        json_object_put(body);
        if (!rc && c->json) {
                cli_print_json(r.body);
        } else if (!rc) {
                printf("%s\n", json_object_get_string(cli_field(r.body, "token")));
                fprintf(stderr,
                        "logged in as %s (%s) until %s; set LOOM_TOKEN to the token "
                        "above (export LOOM_TOKEN=$(%s login ...))\n",
                        json_object_get_string(cli_field(r.body, "user.username")),
                        json_object_get_string(cli_field(r.body, "user.role")),
                        json_object_get_string(cli_field(r.body, "expires_at")), c->prog);
        }
        cli_reply_release(&r);
        return rc;
}

static int cmd_whoami(struct cli *c, const struct cli_args *a)
{
        (void)a;
        return cli_fetch_print(c, "GET", "/api/v1/auth/me", NULL, whoami_cols, NCOLS(whoami_cols),
                               false);
}

static const struct cli_opt agent_list_opts[] = {
        {"project", 'p', "ID", "only this project's agents"},
        {"status", 0, "STATUS", "idle, working, paused, ..."},
        {"persona", 0, "NAME", "only agents of this persona"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt provider_register_opts[] = {
        {"endpoint", 0, "URL", "OpenAI-compatible base URL (required), e.g. http://host:8000/v1"},
        {"model", 0, "MODEL", "the model to use"},
        {"name", 0, "NAME", "a display name"},
        {"api-key-stdin", 0, NULL, "read the API key from the first line of standard input"},
        {"context-window", 0, "N", "the model's context window in tokens"},
        {"tag", 0, "TAG", "a tag (repeat for more)"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt decision_list_opts[] = {
        {"project", 'p', "ID", "only this project's decisions"},
        {"status", 0, "STATUS", "open (default), closed or all"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt decision_decide_opts[] = {
        {"rationale", 'r', "TEXT", "why (shown to the agent)"},
        {"decider", 0, "NAME", "who decided (default: you)"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt analytics_opts[] = {
        {"project", 'p', "ID", "only this project"},
        {"period", 0, "PERIOD", "1h, 24h (default), 7d or 30d"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt login_opts[] = {
        {"username", 'u', "NAME", "the user (default: asked on the terminal)"},
        {"password-stdin", 0, NULL, "read the password from the first line of standard input"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_opt no_opts[] = {{NULL, 0, NULL, NULL}};

const struct cli_cmd cli_misc_cmds[] = {
        {"agent", "list", "", 0, 0, "List agents.",
         "Example:\n  loomctl agent list --project demo\n", agent_list_opts, agent_list},
        {"provider", "list", "", 0, 0, "List LLM providers and their health.",
         "Example:\n  loomctl provider list -o json\n", no_opts, provider_list},
        {"provider", "register", "<provider-id>", 1, 1,
         "Register an OpenAI-compatible provider (it is probed at once).",
         "Examples:\n  loomctl provider register local --endpoint http://127.0.0.1:8000/v1 "
         "--model qwen2.5-coder\n"
         "  printf '%s\\n' \"$KEY\" | loomctl provider register openai --endpoint "
         "https://api.openai.com/v1 --model gpt-4o --api-key-stdin\n",
         provider_register_opts, provider_register},
        {"decision", "list", "", 0, 0, "List decisions waiting for a person (or decided).",
         "Example:\n  loomctl decision list --project demo --status all\n", decision_list_opts,
         decision_list},
        {"decision", "decide", "<decision-id> <approve|deny|needs_more_info>", 2, 2,
         "Decide: approve closes the waiting bead, deny reopens it for triage, needs_more_info "
         "sends it back to its agent.",
         "Example:\n  loomctl decision decide demo-9 approve --rationale 'PostgreSQL it is'\n",
         decision_decide_opts, decision_decide},
        {"analytics", "stats", "", 0, 0,
         "LLM calls of a period: totals, and by project, agent, model and hour.",
         "Example:\n  loomctl analytics stats --period 7d --project demo\n", analytics_opts,
         analytics_stats},
        {"analytics", "costs", "", 0, 0, "LLM costs of a period (GET /api/v1/analytics/costs).",
         "Example:\n  loomctl analytics costs --period 30d\n", analytics_opts, analytics_costs},
        {"login", NULL, "", 0, 0,
         "Log in and print a session token for LOOM_TOKEN (the password is asked with echo "
         "off).",
         "Examples:\n  export LOOM_TOKEN=$(loomctl login -u admin)\n"
         "  loomctl login -u ci --password-stdin < password.txt\n",
         login_opts, cmd_login},
        {"whoami", NULL, "", 0, 0, "Show who the token belongs to.", "Example:\n  loomctl whoami\n",
         no_opts, cmd_whoami},
        {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};
