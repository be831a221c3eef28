/*
 * loomctl — main: the command line, help, and the dispatch to one command; see loomctl.h.
 *
 *   loomctl [global options] <group> <command> [options] [arguments]
 *
 * Global options may stand anywhere on the line; a command's own options anywhere after its
 * name; "--" ends the options.
 */
#include "loomctl.h"
#include "config.h"
#include "err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8080"

static const struct cli_opt cli_global_opts[] = {
        {"server", 's', "URL",
         "the Loom server (default $LOOM_SERVER, else " CLI_DEFAULT_SERVER ")"},
        {"token", 0, "TOKEN", "bearer token or API key (default $LOOM_TOKEN)"},
        {"output", 'o', "FORMAT", "table (default) or json"},
        {"help", 'h', NULL, "show help for the command"},
        {NULL, 0, NULL, NULL},
};

static const struct cli_cmd *const cli_tables[] = {cli_bead_cmds, cli_project_cmds, cli_misc_cmds,
                                                   cli_stream_cmds, NULL};

/* The order of groups in the overview. */
static const char *const cli_groups[] = {"bead",  "project", "agent",     "provider", "decision",
                                         "log",   "event",   "analytics", "export",   "import",
                                         "login", "whoami",  NULL};

const char *cli_get_nth(const struct cli_args *a, const char *name, int n)
{
        for (int i = 0; i < a->nopt; i++) {
                if (strcmp(a->opt[i].name, name) == 0 && n-- == 0)
                        return a->opt[i].value;
        }
        return NULL;
}

const char *cli_get(const struct cli_args *a, const char *name)
{
        const char *v = NULL;

        for (int i = 0; i < a->nopt; i++) {
                if (strcmp(a->opt[i].name, name) == 0)
                        v = a->opt[i].value;
        }
        return v;
}

bool cli_has(const struct cli_args *a, const char *name)
{
        return cli_get(a, name) != NULL;
}

static void cli_cmd_name(const struct cli_cmd *cmd, char *buf, size_t len)
{
        snprintf(buf, len, "%s%s%s", cmd->group, cmd->name ? " " : "", cmd->name ? cmd->name : "");
}

int cli_usage_error(const struct cli *c, const struct cli_args *a, const char *fmt, ...)
{
        char name[64] = "";
        va_list ap;

        if (a && a->cmd)
                cli_cmd_name(a->cmd, name, sizeof(name));
        fprintf(stderr, "%s: %s%s", c->prog, name, *name ? ": " : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nRun '%s %s%s--help' for usage.\n", c->prog, name, *name ? " " : "");
        return CLI_USAGE;
}

int cli_get_long(const struct cli *c, const struct cli_args *a, const char *name, long min,
                 long max, long *out)
{
        const char *v = cli_get(a, name);

        if (config_parse_long(v, min, max, out) != ERR_OK)
                return cli_usage_error(c, a, "--%s: '%s' is not a whole number from %ld to %ld",
                                       name, v, min, max);
        return CLI_OK;
}

static const struct cli_cmd *cli_find(const char *group, const char *name)
{
        for (int t = 0; cli_tables[t]; t++) {
                for (const struct cli_cmd *cmd = cli_tables[t]; cmd->group; cmd++) {
                        if (strcmp(cmd->group, group) != 0)
                                continue;
                        if (!cmd->name || (name && strcmp(cmd->name, name) == 0))
                                return cmd;
                }
        }
        return NULL;
}

static bool cli_group_exists(const char *group)
{
        for (int g = 0; cli_groups[g]; g++) {
                if (strcmp(cli_groups[g], group) == 0)
                        return true;
        }
        return false;
}

static void cli_print_opts(FILE *f, const struct cli_opt *opts)
{
        for (const struct cli_opt *o = opts; o && o->name; o++) {
                char left[64], flag[4] = "   ";

                if (o->short_name)
                        snprintf(flag, sizeof(flag), "-%c,", o->short_name);
                snprintf(left, sizeof(left), "%s --%s%s%s", flag, o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
                fprintf(f, "  %-30s %s\n", left, o->help);
        }
}

static void cli_help_cmd(const struct cli *c, const struct cli_cmd *cmd)
{
        char name[64];

        cli_cmd_name(cmd, name, sizeof(name));
        printf("Usage: %s %s [options]%s%s\n\n%s\n", c->prog, name, *cmd->synopsis ? " " : "",
               cmd->synopsis, cmd->summary);
        if (cmd->opts && cmd->opts->name) {
                printf("\nOptions:\n");
                cli_print_opts(stdout, cmd->opts);
        }
        printf("\nGlobal options:\n");
        cli_print_opts(stdout, cli_global_opts);
        if (cmd->help && *cmd->help)
                printf("\n%s", cmd->help);
}

static void cli_help_group(FILE *f, const char *group)
{
        for (int t = 0; cli_tables[t]; t++) {
                for (const struct cli_cmd *cmd = cli_tables[t]; cmd->group; cmd++) {
                        char name[64];

                        if (strcmp(cmd->group, group) != 0)
                                continue;
                        cli_cmd_name(cmd, name, sizeof(name));
                        fprintf(f, "  %-22s %s\n", name, cmd->summary);
                }
        }
}

static void cli_help_all(FILE *f, const struct cli *c)
{
        fprintf(f,
                "Usage: %s [global options] <group> <command> [options] [arguments]\n\n"
                "The command-line client of the Loom API.\n\nCommands:\n",
                c->prog);
        for (int g = 0; cli_groups[g]; g++)
                cli_help_group(f, cli_groups[g]);
        fprintf(f, "\nGlobal options (anywhere on the line):\n");
        cli_print_opts(f, cli_global_opts);
        fprintf(f,
                "\nExit status: 0 done, 1 usage error, 2 the server refused, failed or could "
                "not be reached.\n"
                "Start with:  export LOOM_TOKEN=$(%s login -u admin)\n"
                "Then e.g.:   %s bead list --project demo\n"
                "Help on one command: %s <group> <command> --help\n",
                c->prog, c->prog, c->prog);
}

/* The option named by arg ("--name", "--name=value", "-x") in opts, or NULL. */
static const struct cli_opt *cli_match_opt(const struct cli_opt *opts, const char *arg,
                                           const char **inline_value)
{
        *inline_value = NULL;
        for (const struct cli_opt *o = opts; o && o->name; o++) {
                size_t n = strlen(o->name);

                if (arg[1] != '-') {
                        if (o->short_name && arg[1] == o->short_name && arg[2] == '\0')
                                return o;
                        continue;
                }
                if (strncmp(arg + 2, o->name, n) != 0)
                        continue;
                if (arg[2 + n] == '\0')
                        return o;
                if (arg[2 + n] == '=' && o->arg) {
                        *inline_value = arg + 3 + n;
                        return o;
                }
        }
        return NULL;
}

/* Finds the command words (their argv indexes into words); -1 after a usage error. */
static int cli_locate(struct cli *c, int argc, char **argv, int words[2], bool *help)
{
        int n = 0;

        for (int i = 1; i < argc && n < 2; i++) {
                const struct cli_opt *o;
                const char *v;

                if (strcmp(argv[i], "--") == 0)
                        break;
                if (argv[i][0] == '-' && argv[i][1]) {
                        o = cli_match_opt(cli_global_opts, argv[i], &v);
                        if (o && o->arg && !v)
                                i++;
                        if (o && strcmp(o->name, "help") == 0)
                                *help = true;
                        continue;
                }
                words[n++] = i;
                if (n == 1 && strcmp(argv[i], "help") && !cli_group_exists(argv[i])) {
                        cli_usage_error(c, NULL, "unknown command '%s'", argv[i]);
                        return -1;
                }
                /* a one-word command (or help): the rest are its arguments */
                if (n == 1 && (strcmp(argv[i], "help") == 0 || cli_find(argv[i], NULL)))
                        break;
        }
        return n;
}

/* Reads every option and argument after the command into a; globals into c. */
static int cli_parse(struct cli *c, int argc, char **argv, const int *words, int nwords,
                     struct cli_args *a, bool *help)
{
        bool options = true;

        for (int i = 1; i < argc; i++) {
                const struct cli_opt *o;
                const char *v;
                bool global;

                if ((nwords > 0 && i == words[0]) || (nwords > 1 && i == words[1]))
                        continue;
                if (options && strcmp(argv[i], "--") == 0) {
                        options = false;
                        continue;
                }
                if (!options || argv[i][0] != '-' || argv[i][1] == '\0') {
                        if (a->npos == CLI_MAX_ARGS)
                                return cli_usage_error(c, a, "too many arguments");
                        a->pos[a->npos++] = argv[i];
                        continue;
                }
                o = cli_match_opt(cli_global_opts, argv[i], &v);
                global = o != NULL;
                if (!o)
                        o = cli_match_opt(a->cmd ? a->cmd->opts : NULL, argv[i], &v);
                if (!o)
                        return cli_usage_error(c, a, "unknown option '%s'", argv[i]);
                if (o->arg && !v) {
                        if (i + 1 >= argc)
                                return cli_usage_error(c, a, "--%s needs a value (%s)", o->name,
                                                       o->arg);
                        v = argv[++i];
                }
                if (global && strcmp(o->name, "help") == 0) {
                        *help = true;
                } else if (global && strcmp(o->name, "server") == 0) {
                        c->server = v;
                } else if (global && strcmp(o->name, "token") == 0) {
                        c->token = v;
                } else if (global) {
                        if (strcmp(v, "json") && strcmp(v, "table"))
                                return cli_usage_error(c, a, "-o: '%s' is not json or table", v);
                        c->json = strcmp(v, "json") == 0;
                } else {
                        if (a->nopt == CLI_MAX_OPTS)
                                return cli_usage_error(c, a, "too many options");
                        a->opt[a->nopt].name = o->name;
                        a->opt[a->nopt++].value = v ? v : "";
                }
        }
        return CLI_OK;
}

/* The server URL without trailing slashes; http:// or https:// only. */
static int cli_check_server(struct cli *c)
{
        size_t n = strlen(c->server);
        char *s;

        if (strncmp(c->server, "http://", 7) && strncmp(c->server, "https://", 8))
                return cli_usage_error(c, NULL, "--server: '%s' is not an http:// or https:// URL",
                                       c->server);
        while (n > 8 && c->server[n - 1] == '/')
                n--;
        s = strndup(c->server, n);
        if (!s)
                abort();
        c->server = c->server_copy = s;
        return CLI_OK;
}

/* "help", "help bead", "help bead list" */
static int cli_help_command(struct cli *c, const struct cli_args *a)
{
        const struct cli_cmd *cmd;

        if (a->npos == 0) {
                cli_help_all(stdout, c);
                return CLI_OK;
        }
        if (!cli_group_exists(a->pos[0]))
                return cli_usage_error(c, NULL, "unknown command '%s'", a->pos[0]);
        cmd = cli_find(a->pos[0], a->npos > 1 ? a->pos[1] : NULL);
        if (cmd && (!cmd->name || a->npos > 1)) {
                cli_help_cmd(c, cmd);
                return CLI_OK;
        }
        printf("Commands of '%s':\n", a->pos[0]);
        cli_help_group(stdout, a->pos[0]);
        return CLI_OK;
}

/* A group named without its command: list its commands. */
static int cli_group_only(const struct cli *c, const char *group, bool help)
{
        if (help) {
                printf("Commands of '%s':\n", group);
                cli_help_group(stdout, group);
                return CLI_OK;
        }
        fprintf(stderr, "%s: %s: which command?\n", c->prog, group);
        cli_help_group(stderr, group);
        return CLI_USAGE;
}

static int cli_run(struct cli *c, struct cli_args *a, bool help)
{
        int rc;

        if (help) {
                cli_help_cmd(c, a->cmd);
                return CLI_OK;
        }
        if (a->npos < a->cmd->min_args)
                return cli_usage_error(c, a, "missing argument %s", a->cmd->synopsis);
        if (a->npos > a->cmd->max_args)
                return cli_usage_error(c, a, "unexpected argument '%s'", a->pos[a->cmd->max_args]);
        rc = cli_check_server(c);
        if (rc)
                return rc;
        if (cli_client_init())
                return CLI_API;
        return a->cmd->run(c, a);
}

static int cli_main(struct cli *c, int argc, char **argv)
{
        struct cli_args a = {0};
        int words[2] = {0, 0};
        bool help = false;
        int n = cli_locate(c, argc, argv, words, &help), rc;

        if (n < 0)
                return CLI_USAGE;
        if (n == 0) {
                cli_help_all(help ? stdout : stderr, c);
                return help ? CLI_OK : CLI_USAGE;
        }
        if (strcmp(argv[words[0]], "help") == 0) {
                rc = cli_parse(c, argc, argv, words, 1, &a, &help);
                return rc ? rc : cli_help_command(c, &a);
        }
        a.cmd = cli_find(argv[words[0]], n > 1 ? argv[words[1]] : NULL);
        if (!a.cmd && n == 1)
                return cli_group_only(c, argv[words[0]], help);
        if (!a.cmd)
                return cli_usage_error(c, NULL, "unknown command '%s %s'", argv[words[0]],
                                       argv[words[1]]);
        rc = cli_parse(c, argc, argv, words, a.cmd->name ? 2 : 1, &a, &help);
        return rc ? rc : cli_run(c, &a, help);
}

int main(int argc, char **argv)
{
        const char *tok = getenv("LOOM_TOKEN");
        struct cli c = {
                .server = config_str("LOOM_SERVER", CLI_DEFAULT_SERVER),
                .token = tok && *tok ? tok : NULL,
                .prog = "loomctl",
        };
        int rc = cli_main(&c, argc, argv);

        free(c.server_copy);
        fflush(stdout);
        return rc;
}
