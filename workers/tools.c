/*
 * tools — the agent's file, command, build, test and git actions in its worktree; see tools.h.
 *
 * Paths: every path is checked as text first (relative, no "..", not in .git), then walked one
 * component at a time from a descriptor on the worktree root with O_NOFOLLOW, so a symlink is
 * never followed, wherever it sits.  Commands: run_command's text is parsed like sh would parse
 * it, and only then handed to /bin/sh; each simple command must name an allowlisted program.
 * Programs run through proc with the worktree as cwd and HOME in a directory next to the
 * worktree (".home-<bead>"), so tool caches never end up committed.
 *
 * A refusal or a failing command is a result (ok=false, text for the model), not an error.
 */
#include "tools.h"
#include "err.h"
#include "proc.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOOLS_TEXT_MAX        ((size_t)512 << 10) /* largest result text */
#define TOOLS_OUTPUT_CAP_MAX  ((size_t)256 << 10)
#define TOOLS_OUTPUT_CAP_DEF  ((size_t)16 << 10)
#define TOOLS_READ_MAX_CHARS  32000
#define TOOLS_FILE_MAX        ((size_t)8 << 20) /* read_file/edit_code read at most this */
#define TOOLS_SEARCH_FILE_MAX ((size_t)2 << 20)
#define TOOLS_SEARCH_LINE_MAX 300
#define TOOLS_BINARY_PROBE    8192
#define TOOLS_PATH_MAX        1024 /* a path an agent names */
#define TOOLS_WALK_DEPTH_MAX  24   /* search_text recursion */
#define TOOLS_TIMEOUT_DEF     300
#define TOOLS_TIMEOUT_MAX     3600
#define TOOLS_GIT_TIMEOUT_S   120
#define TOOLS_PUSH_TIMEOUT_S  300
#define TOOLS_COMMAND_MAX     16384
#define TOOLS_MAX_ARGS        128
#define TOOLS_META_MAX        ((size_t)1 << 20) /* Makefile, package.json */

/* One action being carried out. */
struct tools_ctx {
        const struct tool_env *env;
        json_object *action;
        struct tool_result *res;
        int rootfd;
        char home[PATH_MAX];
        size_t output_cap;
        bool jailed; /* the last program ran inside bubblewrap */
};

/* A path an agent named, checked and normalised: components joined by '/', "" = the root. */
struct tools_path {
        const char *shown;
        char norm[TOOLS_PATH_MAX];
        size_t ncomp;
};

/* ---- results ----------------------------------------------------------------------------- */

static void res_vset(struct tool_result *res, bool ok, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void res_vset(struct tool_result *res, bool ok, const char *fmt, va_list ap)
{
        res->ok = ok;
        strbuf_reset(&res->text);
        strbuf_vaddf(&res->text, fmt, ap);
}

/* The action is refused or failed: ok=false and fmt is the whole text. */
static void res_fail(struct tool_result *res, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void res_fail(struct tool_result *res, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        res_vset(res, false, fmt, ap);
        va_end(ap);
}

static void res_ok(struct tool_result *res, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void res_ok(struct tool_result *res, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        res_vset(res, true, fmt, ap);
        va_end(ap);
}

void tool_result_init(struct tool_result *res)
{
        memset(res, 0, sizeof(*res));
        strbuf_init(&res->text, TOOLS_TEXT_MAX);
}

void tool_result_release(struct tool_result *res)
{
        if (res)
                strbuf_release(&res->text);
}

/* ---- action fields ----------------------------------------------------------------------- */

/* The string field key (or NULL when missing or not a string); *len its length. */
static const char *field_str(json_object *a, const char *key, size_t *len)
{
        json_object *v;

        if (!json_object_object_get_ex(a, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        if (len)
                *len = (size_t)json_object_get_string_len(v);
        return json_object_get_string(v);
}

/* The first of two spellings that is present. */
static const char *field_str2(json_object *a, const char *k1, const char *k2, size_t *len)
{
        const char *s = field_str(a, k1, len);

        return s ? s : field_str(a, k2, len);
}

/* An integer field (a number or a numeric string), or def. */
static long field_int(json_object *a, const char *key, long def)
{
        json_object *v;
        char *end;
        long n;

        if (!json_object_object_get_ex(a, key, &v))
                return def;
        if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
                return (long)json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_string))
                return def;
        errno = 0;
        n = strtol(json_object_get_string(v), &end, 10);
        return errno || *end || end == json_object_get_string(v) ? def : n;
}

static bool field_bool(json_object *a, const char *key)
{
        json_object *v;

        if (!json_object_object_get_ex(a, key, &v))
                return false;
        if (json_object_is_type(v, json_type_string))
                return strcmp(json_object_get_string(v), "true") == 0;
        return json_object_get_boolean(v);
}

/* Copies src into dst[size], cut to fit (size > 0). */
static void str_copy(char *dst, size_t size, const char *src)
{
        size_t n = strnlen(src, size - 1);

        memcpy(dst, src, n);
        dst[n] = '\0';
}

static long clamp(long v, long lo, long hi)
{
        return v < lo ? lo : v > hi ? hi : v;
}

/* ---- paths ------------------------------------------------------------------------------- */

/* Checks p as text and normalises it into tp; false with the refusal in res. */
static bool path_parse(struct tools_ctx *c, const char *p, size_t len, struct tools_path *tp)
{
        size_t n = 0;

        tp->shown = p;
        tp->ncomp = 0;
        tp->norm[0] = '\0';
        if (!p || !*p) {
                res_fail(c->res, "the path is empty; name a file relative to the worktree root");
                return false;
        }
        if (strlen(p) != len) {
                res_fail(c->res, "the path contains a NUL byte");
                return false;
        }
        if (len >= TOOLS_PATH_MAX) {
                res_fail(c->res, "the path is longer than %d bytes", TOOLS_PATH_MAX - 1);
                return false;
        }
        if (p[0] == '/') {
                res_fail(c->res,
                         "\"%s\" is absolute; paths are relative to the worktree root "
                         "(e.g. src/main.c)",
                         p);
                return false;
        }
        for (const char *s = p; *s;) {
                size_t clen = strcspn(s, "/");

                if (clen == 2 && memcmp(s, "..", 2) == 0) {
                        res_fail(c->res,
                                 "\"%s\" contains \"..\"; paths must stay inside the "
                                 "worktree",
                                 p);
                        return false;
                }
                if (clen == 4 && memcmp(s, ".git", 4) == 0) {
                        res_fail(c->res,
                                 "\"%s\" is inside .git; git's metadata is not a file "
                                 "to touch (use the git_* actions)",
                                 p);
                        return false;
                }
                if (clen > NAME_MAX) {
                        res_fail(c->res, "\"%s\" has a component longer than %d bytes", p,
                                 NAME_MAX);
                        return false;
                }
                if (clen && !(clen == 1 && *s == '.')) {
                        if (n)
                                tp->norm[n++] = '/';
                        memcpy(tp->norm + n, s, clen);
                        n += clen;
                        tp->norm[n] = '\0';
                        tp->ncomp++;
                }
                s += clen;
                if (*s == '/')
                        s++;
        }
        return true;
}

/* Parses the string field key as a path (required); records it in res->path. */
static bool path_field(struct tools_ctx *c, const char *key, const char *alt, struct tools_path *tp)
{
        size_t len = 0;
        const char *p =
                alt ? field_str2(c->action, key, alt, &len) : field_str(c->action, key, &len);

        if (!p) {
                res_fail(c->res, "\"%s\" is required: a path relative to the worktree root", key);
                return false;
        }
        if (!c->res->path[0])
                str_copy(c->res->path, sizeof(c->res->path), p);
        return path_parse(c, p, len, tp);
}

/* Why openat/mkdirat of name (ending the prefix tp->norm[0..plen)) failed, into res. */
static void path_explain(struct tools_ctx *c, const struct tools_path *tp, int dirfd,
                         const char *name, size_t plen, int err)
{
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                res_fail(c->res,
                         "\"%s\": \"%.*s\" is a symlink; paths must stay inside the "
                         "worktree, and symlinks are not followed",
                         tp->shown, (int)plen, tp->norm);
        else if (err == ENOENT)
                res_fail(c->res, "\"%s\": \"%.*s\" does not exist (read_tree shows what does)",
                         tp->shown, (int)plen, tp->norm);
        else if (err == ENOTDIR)
                res_fail(c->res, "\"%s\": \"%.*s\" is not a directory", tp->shown, (int)plen,
                         tp->norm);
        else
                res_fail(c->res, "\"%s\": %s", tp->shown, strerror(err));
}

/*
 * Opens the directory made of the first n components of tp, following no symlink; missing
 * ones are made (0755) when create.  Returns the descriptor, or -1 with the refusal in res.
 */
static int path_open_dir(struct tools_ctx *c, const struct tools_path *tp, size_t n, bool create)
{
        char buf[TOOLS_PATH_MAX];
        char *comp = buf;
        int fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);

        memcpy(buf, tp->norm, sizeof(buf));
        for (size_t i = 0; i < n && fd >= 0; i++) {
                char *slash = strchr(comp, '/');
                int next, err;

                if (slash)
                        *slash = '\0';
                next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0 && errno == ENOENT && create &&
                    (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST))
                        next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                err = errno;
                if (next < 0)
                        path_explain(c, tp, fd, comp, (size_t)(comp - buf) + strlen(comp), err);
                close(fd);
                fd = next;
                comp = slash ? slash + 1 : comp + strlen(comp);
        }
        return fd;
}

/* The parent directory of tp (made when create) and its last component in name. */
static int path_open_parent(struct tools_ctx *c, const struct tools_path *tp, bool create,
                            const char **name)
{
        const char *slash = strrchr(tp->norm, '/');

        *name = slash ? slash + 1 : tp->norm;
        return path_open_dir(c, tp, tp->ncomp ? tp->ncomp - 1 : 0, create);
}

/* Is name in dirfd a symlink?  Sets the refusal when so. */
static bool path_final_symlink(struct tools_ctx *c, const struct tools_path *tp, int dirfd,
                               const char *name)
{
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode))
                return false;
        res_fail(c->res,
                 "\"%s\" is a symlink; paths must stay inside the worktree, and "
                 "symlinks are not followed",
                 tp->shown);
        return true;
}

/* The absolute path of tp for a cwd (after path_open_dir has vetted it). */
static void path_absolute(struct tools_ctx *c, const struct tools_path *tp, char *out,
                          size_t outlen)
{
        if (tp->ncomp)
                snprintf(out, outlen, "%s/%s", c->env->root, tp->norm);
        else
                str_copy(out, outlen, c->env->root);
}

/* ---- files ------------------------------------------------------------------------------- */

/* Reads fd to EOF, at most max bytes (*more set when there was more). False on read error. */
static bool file_read_fd(int fd, size_t max, struct strbuf *out, bool *more)
{
        char buf[65536];
        ssize_t n;

        *more = false;
        for (;;) {
                size_t want = max - out->len < sizeof(buf) ? max - out->len : sizeof(buf);

                if (want == 0) { /* full: is there more? */
                        do {
                                n = read(fd, buf, 1);
                        } while (n < 0 && errno == EINTR);
                        *more = n > 0;
                        return n >= 0;
                }
                n = read(fd, buf, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n == 0;
                strbuf_add(out, buf, (size_t)n);
        }
}

static bool file_write_all(int fd, const char *data, size_t len)
{
        while (len) {
                ssize_t n = write(fd, data, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                data += n;
                len -= (size_t)n;
        }
        return true;
}

static bool file_is_binary(const char *data, size_t len)
{
        return memchr(data, '\0', len < TOOLS_BINARY_PROBE ? len : TOOLS_BINARY_PROBE) != NULL;
}

/*
 * Opens the existing regular file tp for reading, following no symlink.  Returns the fd with
 * *size set, or -1 with the refusal in res.
 */
static int file_open_read(struct tools_ctx *c, const struct tools_path *tp, off_t *size)
{
        const char *name;
        struct stat st;
        int dirfd, fd = -1;

        if (!tp->ncomp) {
                res_fail(c->res, "\"%s\" is the worktree root, a directory; use read_tree",
                         tp->shown);
                return -1;
        }
        dirfd = path_open_parent(c, tp, false, &name);
        if (dirfd < 0)
                return -1;
        if (!path_final_symlink(c, tp, dirfd, name)) {
                fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        path_explain(c, tp, dirfd, name, strlen(tp->norm), errno);
        }
        close(dirfd);
        if (fd >= 0 && fstat(fd, &st) != 0)
                st.st_mode = 0;
        if (fd >= 0 && !S_ISREG(st.st_mode)) {
                res_fail(c->res, "\"%s\" is %s", tp->shown,
                         S_ISDIR(st.st_mode) ? "a directory; use read_tree" : "not a regular file");
                close(fd);
                return -1;
        }
        if (fd >= 0)
                *size = st.st_size;
        return fd;
}

/* Reads the regular file tp whole (up to max); false with the refusal in res. */
static bool file_load(struct tools_ctx *c, const struct tools_path *tp, size_t max,
                      struct strbuf *data, bool *more)
{
        off_t size = 0;
        int fd = file_open_read(c, tp, &size);
        bool ok;

        if (fd < 0)
                return false;
        ok = file_read_fd(fd, max, data, more);
        close(fd);
        if (!ok)
                res_fail(c->res, "\"%s\": read failed: %s", tp->shown, strerror(errno));
        return ok;
}

/* Writes data to tp (creating parent directories); false with the refusal in res. */
static bool file_store(struct tools_ctx *c, const struct tools_path *tp, const char *data,
                       size_t len, bool create, bool *created)
{
        const char *name;
        struct stat st;
        int dirfd, fd = -1;
        bool ok = false;

        if (!tp->ncomp) {
                res_fail(c->res, "\"%s\" is the worktree root, not a file", tp->shown);
                return false;
        }
        dirfd = path_open_parent(c, tp, create, &name);
        if (dirfd < 0)
                return false;
        *created = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0;
        if (!*created && S_ISLNK(st.st_mode))
                (void)path_final_symlink(c, tp, dirfd, name);
        else if (!*created && !S_ISREG(st.st_mode))
                res_fail(c->res, "\"%s\" exists and is not a regular file", tp->shown);
        else if (!*created && st.st_nlink > 1)
                res_fail(c->res, "\"%s\" has %lu hard links; refusing to write through it",
                         tp->shown, (unsigned long)st.st_nlink);
        else if ((fd = openat(dirfd, name,
                              O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0),
                              0644)) < 0)
                path_explain(c, tp, dirfd, name, strlen(tp->norm), errno);
        else if (!(ok = file_write_all(fd, data, len)))
                res_fail(c->res, "\"%s\": write failed: %s", tp->shown, strerror(errno));
        if (fd >= 0)
                close(fd);
        close(dirfd);
        return ok;
}

/* ---- directory walks --------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dirfd (not "." or ".."), sorted; caller frees each and the array. */
static char **dir_list(int dirfd, size_t *count)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        char **names = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *e;

        if (!d) {
                if (fd >= 0)
                        close(fd);
                *count = 0;
                return NULL;
        }
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        names = xrealloc(names, alloc * sizeof(*names));
                }
                names[n++] = xstrdup(e->d_name);
        }
        closedir(d);
        if (n)
                qsort(names, n, sizeof(*names), cmp_names);
        *count = n;
        return names;
}

static void dir_list_free(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* "dir/name" or "name" when dir is "". */
static void rel_join(char *out, size_t outlen, const char *dir, const char *name)
{
        if (*dir)
                snprintf(out, outlen, "%s/%s", dir, name);
        else
                str_copy(out, outlen, name);
}

/* ---- read_file ----------------------------------------------------------------------------- */

/* The longest prefix of s[0..n) that does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n)
{
        size_t k = n;

        while (k > 0 && k > n - 4 && ((unsigned char)s[k] & 0xC0) == 0x80)
                k--;
        return k;
}

/* Appends lines [start, end] (end 0 = to EOF) of data to res->text within the char cap. */
static void read_lines(struct tools_ctx *c, const char *shown, const struct strbuf *data,
                       long start, long end)
{
        const char *p = data->buf, *e = data->buf + data->len;
        struct strbuf *t = &c->res->text;
        long line = 1;

        while (p < e && line < start) {
                const char *nl = memchr(p, '\n', (size_t)(e - p));

                p = nl ? nl + 1 : e;
                line++;
        }
        if (p >= e && (data->len || start > 1)) {
                res_fail(c->res, "\"%s\" has %ld lines; start_line %ld is past the end", shown,
                         line - 1, start);
                return;
        }
        for (; p < e && (end == 0 || line <= end); line++) {
                const char *nl = memchr(p, '\n', (size_t)(e - p));
                size_t len = nl ? (size_t)(nl - p + 1) : (size_t)(e - p);

                if (t->len + len > TOOLS_READ_MAX_CHARS) {
                        if (t->len == 0) { /* one huge line: show its start */
                                strbuf_add(t, p, utf8_cut(p, TOOLS_READ_MAX_CHARS));
                                strbuf_addf(t,
                                            "\n[… line %ld is longer than %d characters; the "
                                            "rest of it is not shown …]",
                                            line, TOOLS_READ_MAX_CHARS);
                                return;
                        }
                        strbuf_addf(t,
                                    "[… truncated at %d characters; continue with "
                                    "start_line=%ld …]",
                                    TOOLS_READ_MAX_CHARS, line);
                        return;
                }
                strbuf_add(t, p, len);
                p += len;
        }
        if (!t->len)
                strbuf_addstr(t, "(empty file)");
}

static void act_read_file(struct tools_ctx *c)
{
        long start = field_int(c->action, "start_line", 1);
        long end = field_int(c->action, "end_line", 0);
        struct tools_path tp;
        struct strbuf data;
        bool more = false;

        if (!path_field(c, "path", NULL, &tp))
                return;
        if (start == 0) /* models say 0 for "the top" */
                start = 1;
        if (start < 1 || end < 0 || (end && end < start)) {
                res_fail(c->res,
                         "start_line must be >= 1 and end_line >= start_line "
                         "(got %ld and %ld)",
                         start, end);
                return;
        }
        strbuf_init(&data, TOOLS_FILE_MAX);
        if (!file_load(c, &tp, TOOLS_FILE_MAX, &data, &more))
                goto out;
        if (file_is_binary(data.buf, data.len)) {
                res_ok(c->res, "\"%s\" is a binary file (%s%zu bytes); not shown", tp.shown,
                       more ? "over " : "", data.len);
                goto out;
        }
        res_ok(c->res, "%s", "");
        read_lines(c, tp.shown, &data, start, end);
        if (more && c->res->ok)
                strbuf_addf(&c->res->text,
                            "\n[… only the first %zu bytes of the file can be "
                            "read …]",
                            TOOLS_FILE_MAX);
out:
        strbuf_release(&data);
}

/* ---- write_file, edit_code, move, delete ----------------------------------------------------- */

static void act_write_file(struct tools_ctx *c)
{
        struct tools_path tp;
        const char *content;
        size_t len = 0;
        bool created = false;

        if (!path_field(c, "path", NULL, &tp))
                return;
        content = field_str(c->action, "content", &len);
        if (!content) {
                res_fail(c->res, "\"content\" is required (a string; \"\" for an empty file)");
                return;
        }
        if (!file_store(c, &tp, content, len, true, &created))
                return;
        c->res->mutated = true;
        res_ok(c->res, "%s \"%s\" (%zu bytes)", created ? "created" : "wrote", tp.norm, len);
}

static void act_apply_patch(struct tools_ctx *c);

/* Counts occurrences of needle (overlapping ones too: they make the edit ambiguous). */
static size_t count_matches(const char *hay, size_t hlen, const char *needle, size_t nlen,
                            const char **first)
{
        size_t count = 0;

        *first = NULL;
        for (const char *p = hay; (size_t)(hay + hlen - p) >= nlen;) {
                const char *m = memmem(p, (size_t)(hay + hlen - p), needle, nlen);

                if (!m)
                        break;
                if (!count)
                        *first = m;
                count++;
                p = m + 1;
        }
        return count;
}

static long line_of(const char *start, const char *at)
{
        long line = 1;

        for (const char *p = start; p < at; p++)
                line += *p == '\n';
        return line;
}

static void act_edit_code(struct tools_ctx *c)
{
        size_t olen = 0, nlen = 0, count;
        const char *old = field_str2(c->action, "old_text", "old", &olen);
        const char *new = field_str2(c->action, "new_text", "new", &nlen);
        struct tools_path tp;
        struct strbuf data, out;
        const char *at;
        bool more = false, created;

        if (!old && field_str(c->action, "patch", NULL)) {
                act_apply_patch(c);
                return;
        }
        if (!path_field(c, "path", NULL, &tp))
                return;
        if (!old || !olen || !new) {
                res_fail(c->res, "edit_code needs \"old_text\" (non-empty, copied exactly from "
                                 "the file) and \"new_text\" (\"\" to delete), or a \"patch\"");
                return;
        }
        strbuf_init(&data, TOOLS_FILE_MAX);
        strbuf_init(&out, TOOLS_FILE_MAX + nlen);
        if (!file_load(c, &tp, TOOLS_FILE_MAX, &data, &more))
                goto out;
        if (more) {
                res_fail(c->res, "\"%s\" is larger than %zu bytes; too large to edit", tp.shown,
                         TOOLS_FILE_MAX);
                goto out;
        }
        count = count_matches(data.buf, data.len, old, olen, &at);
        if (count != 1) {
                res_fail(c->res,
                         count ? "old_text matches %zu times in \"%s\"; include more surrounding "
                                 "lines so it matches exactly once"
                               : "old_text was found %zu times in \"%s\"; read the file and copy "
                                 "the text exactly (whitespace and indentation included)",
                         count, tp.shown);
                goto out;
        }
        strbuf_add(&out, data.buf, (size_t)(at - data.buf));
        strbuf_add(&out, new, nlen);
        strbuf_add(&out, at + olen, data.len - (size_t)(at - data.buf) - olen);
        if (!file_store(c, &tp, out.buf, out.len, false, &created))
                goto out;
        c->res->mutated = true;
        res_ok(c->res, "replaced 1 occurrence in \"%s\" at line %ld (%zu bytes -> %zu bytes)",
               tp.norm, line_of(data.buf, at), olen, nlen);
out:
        strbuf_release(&out);
        strbuf_release(&data);
}

static void act_move_file(struct tools_ctx *c)
{
        struct tools_path src, dst;
        const char *sname, *dname, *new_name = field_str(c->action, "new_name", NULL);
        char joined[TOOLS_PATH_MAX + NAME_MAX + 2];
        int sfd = -1, dfd = -1;
        struct stat st;

        if (!path_field(c, "source_path", "path", &src))
                return;
        if (!src.ncomp) {
                res_fail(c->res, "the worktree root cannot be moved");
                return;
        }
        if (new_name && !field_str(c->action, "target_path", NULL)) {
                const char *slash = strrchr(src.norm, '/');

                if (!*new_name || strchr(new_name, '/')) {
                        res_fail(c->res, "\"new_name\" is a file name without '/' (use "
                                         "target_path to move elsewhere)");
                        return;
                }
                snprintf(joined, sizeof(joined), "%.*s%s%s", slash ? (int)(slash - src.norm) : 0,
                         src.norm, slash ? "/" : "", new_name);
                if (!path_parse(c, joined, strlen(joined), &dst))
                        return;
        } else {
                size_t len = 0;
                const char *t = field_str(c->action, "target_path", &len);

                if (!t) {
                        res_fail(c->res, "\"target_path\" (or \"new_name\") is required");
                        return;
                }
                if (!path_parse(c, t, len, &dst))
                        return;
        }
        if (!dst.ncomp) {
                res_fail(c->res, "the target cannot be the worktree root");
                return;
        }
        sfd = path_open_parent(c, &src, false, &sname);
        if (sfd < 0)
                goto out;
        if (fstatat(sfd, sname, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                path_explain(c, &src, sfd, sname, strlen(src.norm), errno);
                goto out;
        }
        dfd = path_open_parent(c, &dst, true, &dname);
        if (dfd < 0)
                goto out;
        if (fstatat(dfd, dname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                res_fail(c->res,
                         "\"%s\" already exists; delete it first or choose another "
                         "name",
                         dst.shown);
                goto out;
        }
        if (renameat(sfd, sname, dfd, dname) != 0) {
                res_fail(c->res, "cannot move \"%s\" to \"%s\": %s", src.shown, dst.shown,
                         strerror(errno));
                goto out;
        }
        c->res->mutated = true;
        res_ok(c->res, "moved \"%s\" to \"%s\"", src.norm, dst.norm);
out:
        if (dfd >= 0)
                close(dfd);
        if (sfd >= 0)
                close(sfd);
}

static void act_delete_file(struct tools_ctx *c)
{
        struct tools_path tp;
        const char *name;
        struct stat st;
        int dirfd;

        if (!path_field(c, "path", NULL, &tp))
                return;
        if (!tp.ncomp) {
                res_fail(c->res, "the worktree root cannot be deleted");
                return;
        }
        dirfd = path_open_parent(c, &tp, false, &name);
        if (dirfd < 0)
                return;
        /* unlinkat never follows: deleting a symlink itself is safe. */
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                path_explain(c, &tp, dirfd, name, strlen(tp.norm), errno);
        else if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0)
                res_fail(c->res, "cannot delete \"%s\": %s", tp.shown,
                         errno == ENOTEMPTY || errno == EEXIST
                                 ? "the directory is not empty; delete its files first"
                                 : strerror(errno));
        else {
                c->res->mutated = true;
                res_ok(c->res, "deleted \"%s\"", tp.norm);
        }
        close(dirfd);
}

/* ---- read_tree ------------------------------------------------------------------------------ */

struct tree_walk {
        struct tools_ctx *c;
        long max_depth, limit, count;
        bool stopped;
};

static void tree_dir(struct tree_walk *w, int dirfd, const char *rel, long depth)
{
        size_t n = 0;
        char **names = dir_list(dirfd, &n);

        for (size_t i = 0; i < n && !w->stopped; i++) {
                char path[TOOLS_PATH_MAX * 2], target[256];
                struct stat st;
                ssize_t tl;

                if (strcmp(names[i], ".git") == 0 ||
                    fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
                        continue;
                if (w->count >= w->limit) {
                        w->stopped = true;
                        break;
                }
                w->count++;
                rel_join(path, sizeof(path), rel, names[i]);
                if (S_ISLNK(st.st_mode)) {
                        tl = readlinkat(dirfd, names[i], target, sizeof(target) - 1);
                        target[tl > 0 ? tl : 0] = '\0';
                        strbuf_addf(&w->c->res->text, "%s -> %s (symlink)\n", path, target);
                } else if (S_ISDIR(st.st_mode)) {
                        strbuf_addf(&w->c->res->text, "%s/\n", path);
                        if (depth < w->max_depth) {
                                int sub = openat(dirfd, names[i],
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                                if (sub >= 0) {
                                        tree_dir(w, sub, path, depth + 1);
                                        close(sub);
                                }
                        }
                } else {
                        strbuf_addf(&w->c->res->text, "%s\n", path);
                }
        }
        dir_list_free(names, n);
}

static void act_read_tree(struct tools_ctx *c)
{
        struct tree_walk w = {.c = c};
        struct tools_path tp;
        const char *p = field_str(c->action, "path", NULL);
        int fd;

        w.max_depth = clamp(field_int(c->action, "max_depth", 2), 1, 6);
        w.limit = clamp(field_int(c->action, "limit", 200), 1, 2000);
        if (!p || !*p)
                p = ".";
        str_copy(c->res->path, sizeof(c->res->path), p);
        if (!path_parse(c, p, strlen(p), &tp))
                return;
        fd = path_open_dir(c, &tp, tp.ncomp, false);
        if (fd < 0)
                return;
        res_ok(c->res, "%s", "");
        tree_dir(&w, fd, tp.norm, 1);
        close(fd);
        if (!w.count)
                strbuf_addstr(&c->res->text, "(empty directory)\n");
        if (w.stopped)
                strbuf_addf(&c->res->text,
                            "[… stopped at %ld entries; name a deeper path or "
                            "raise limit (at most 2000) …]\n",
                            w.limit);
}

/* ---- search_text ---------------------------------------------------------------------------- */

struct search {
        struct tools_ctx *c;
        const char *query;
        regex_t re;
        bool use_re, icase;
        long limit, found;
        bool stopped;
        struct strbuf data;
};

static bool search_line_matches(struct search *s, const char *line)
{
        if (s->use_re)
                return regexec(&s->re, line, 0, NULL, 0) == 0;
        return s->icase ? strcasestr(line, s->query) != NULL : strstr(line, s->query) != NULL;
}

static void search_file(struct search *s, int dirfd, const char *name, const char *rel)
{
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        bool more = false;
        char *p, *e;
        long line = 1;

        if (fd < 0)
                return;
        strbuf_reset(&s->data);
        if (!file_read_fd(fd, TOOLS_SEARCH_FILE_MAX, &s->data, &more) || more ||
            file_is_binary(s->data.buf, s->data.len)) {
                close(fd);
                return;
        }
        close(fd);
        p = s->data.buf;
        e = p + s->data.len;
        for (; p < e && !s->stopped; line++) {
                char *nl = memchr(p, '\n', (size_t)(e - p));
                size_t len;

                if (nl)
                        *nl = '\0';
                len = strlen(p);
                if (search_line_matches(s, p)) {
                        if (s->found >= s->limit) {
                                s->stopped = true;
                                break;
                        }
                        s->found++;
                        if (len > TOOLS_SEARCH_LINE_MAX)
                                len = utf8_cut(p, TOOLS_SEARCH_LINE_MAX);
                        strbuf_addf(&s->c->res->text, "%s:%ld: %.*s%s\n", rel, line, (int)len, p,
                                    strlen(p) > len ? " […]" : "");
                }
                p = nl ? nl + 1 : e;
        }
}

static void search_dir(struct search *s, int dirfd, const char *rel, int depth)
{
        size_t n = 0;
        char **names = depth < TOOLS_WALK_DEPTH_MAX ? dir_list(dirfd, &n) : NULL;

        for (size_t i = 0; i < n && !s->stopped; i++) {
                char path[TOOLS_PATH_MAX * 2];
                struct stat st;

                if (strcmp(names[i], ".git") == 0 ||
                    fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
                        continue;
                rel_join(path, sizeof(path), rel, names[i]);
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, names[i],
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (sub >= 0) {
                                search_dir(s, sub, path, depth + 1);
                                close(sub);
                        }
                } else if (S_ISREG(st.st_mode) && (size_t)st.st_size <= TOOLS_SEARCH_FILE_MAX) {
                        search_file(s, dirfd, names[i], path);
                }
        }
        dir_list_free(names, n);
}

static void act_search_text(struct tools_ctx *c)
{
        struct search s = {.c = c};
        const char *p = field_str(c->action, "path", NULL);
        struct tools_path tp;
        size_t qlen = 0;
        int fd, rc;

        s.query = field_str2(c->action, "query", "pattern", &qlen);
        s.limit = clamp(field_int(c->action, "limit", 50), 1, 500);
        s.use_re = field_bool(c->action, "regex");
        s.icase = field_bool(c->action, "ignore_case");
        if (!s.query || !qlen || strlen(s.query) != qlen) {
                res_fail(c->res, "\"query\" is required: the text to look for");
                return;
        }
        if (!p || !*p)
                p = ".";
        str_copy(c->res->path, sizeof(c->res->path), p);
        if (!path_parse(c, p, strlen(p), &tp))
                return;
        if (s.use_re &&
            (rc = regcomp(&s.re, s.query, REG_EXTENDED | REG_NOSUB | (s.icase ? REG_ICASE : 0)))) {
                char why[200];

                regerror(rc, &s.re, why, sizeof(why));
                res_fail(c->res, "the regex does not compile: %s", why);
                return;
        }
        strbuf_init(&s.data, TOOLS_SEARCH_FILE_MAX + 1);
        res_ok(c->res, "%s", "");
        fd = path_open_dir(c, &tp, tp.ncomp, false);
        if (fd >= 0) {
                search_dir(&s, fd, tp.norm, 0);
                close(fd);
        } else if (tp.ncomp) { /* not a directory: maybe a file */
                const char *name;
                struct stat st;
                int dirfd = path_open_parent(c, &tp, false, &name);

                if (dirfd >= 0 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(st.st_mode)) {
                        res_ok(c->res, "%s", "");
                        search_file(&s, dirfd, name, tp.norm);
                }
                if (dirfd >= 0)
                        close(dirfd);
        }
        if (c->res->ok && !s.found)
                res_ok(c->res,
                       "no matches for \"%s\" in \"%s\" (binary files, files over 2 MiB and "
                       ".git are skipped)",
                       s.query, p);
        else if (s.stopped)
                strbuf_addf(&c->res->text, "[… more matches; stopped at limit %ld (max 500) …]\n",
                            s.limit);
        if (s.use_re)
                regfree(&s.re);
        strbuf_release(&s.data);
}

/* ---- running programs ------------------------------------------------------------------------ */

/*
 * Runs argv in cwd with the tool limits and records it in res (ran_command, command, exit
 * code, timing).  Returns true when it ran (pr holds the output; release it), false with the
 * failure in res.
 */
static bool tools_exec(struct tools_ctx *c, const char *const *argv, const char *display,
                       const char *cwd, int timeout_s, bool git, struct proc_result *pr)
{
        char home[PATH_MAX + 8];
        const char *env[] = {home, "CI=true", git ? "GIT_CONFIG_GLOBAL=/dev/null" : NULL, NULL};
        struct sandbox_job job = {.sb = c->env->sandbox,
                                  .worktree = c->env->root,
                                  .home = c->home,
                                  .allow_network = c->env->allow_network,
                                  .outside = git};
        struct proc_opts o = {.cwd = cwd,
                              .timeout_s = timeout_s,
                              .output_cap = c->output_cap,
                              .env = env,
                              .keep_tail = true,
                              .sandbox = c->env->sandbox ? &job : NULL};
        char err[512];

        snprintf(home, sizeof(home), "HOME=%s", c->home);
        c->res->ran_command = true;
        str_copy(c->res->command, sizeof(c->res->command), display);
        if (proc_run(argv, &o, pr, err, sizeof(err)) != ERR_OK) {
                proc_result_release(pr);
                c->res->exit_code = 127;
                res_fail(c->res, "cannot run %s: %s", display, err);
                return false;
        }
        c->res->exit_code = pr->exit_code;
        c->res->timed_out = pr->timed_out;
        c->res->duration_ms = pr->duration_ms;
        c->jailed = sandbox_jailed(o.sandbox);
        return true;
}

/* The standard text for a program's outcome: status line, then the output. */
static void tools_exec_text(struct tools_ctx *c, const char *prefix, int timeout_s,
                            const struct proc_result *pr)
{
        bool ok = pr->exit_code == 0 && !pr->timed_out;

        if (pr->timed_out)
                res_fail(c->res,
                         "%stimed out after %d s; the command was killed (exit code %d, "
                         "%ld ms)\n",
                         prefix, timeout_s, pr->exit_code, pr->duration_ms);
        else if (ok)
                res_ok(c->res, "%sexit code 0 (%ld ms)\n", prefix, pr->duration_ms);
        else
                res_fail(c->res, "%sexit code %d (%ld ms)\n", prefix, pr->exit_code,
                         pr->duration_ms);
        strbuf_add(&c->res->text, pr->output.buf, pr->output.len);
        if (!pr->output.len)
                strbuf_addstr(&c->res->text, "(no output)");
        if (!ok && c->jailed && strstr(pr->output.buf, "Read-only file system"))
                strbuf_addstr(&c->res->text,
                              "\n[sandbox: only the worktree and /tmp are writable and .git is "
                              "read-only; commit with the git_commit action]");
}

static int command_timeout(struct tools_ctx *c)
{
        long def = c->env->command_timeout_s > 0 ? c->env->command_timeout_s : TOOLS_TIMEOUT_DEF;

        return (int)clamp(field_int(c->action, "timeout_seconds", def), 1, TOOLS_TIMEOUT_MAX);
}

/* ---- run_command: what a command line may contain -------------------------------------------- */

static const char *const tools_allowed[] = {
        "go",     "make",    "cmake", "npm",  "npx",   "yarn",  "pip",   "pip3",  "git",
        "pytest", "jest",    "mocha", "ls",   "cat",   "grep",  "egrep", "fgrep", "find",
        "echo",   "pwd",     "date",  "wc",   "head",  "tail",  "diff",  "tree",  "node",
        "python", "python3", "ruby",  "java", "javac", "rustc", "cargo", "gcc",   "cc",
        "clang",  "sed",     "awk",   "sort", "uniq",  "cut",   "tr",    "true",  "false",
        "test",   "mkdir",   "touch", "cp",   "mv",    "rm",
};

/* Programs whose arguments are paths they change: those must stay in the worktree. */
static const char *const tools_path_programs[] = {"rm", "mv", "cp", "mkdir", "touch"};

enum sh_kind { SH_WORD, SH_SEP };

struct sh_token {
        enum sh_kind kind;
        char *text;  /* the word with its quotes removed */
        bool assign; /* starts NAME= outside quotes */
        bool dollar; /* has an expansion ('$' outside single quotes) */
};

struct sh_parse {
        struct tools_ctx *c;
        const char *s;
        size_t i, n;
        struct sh_token tok[TOOLS_MAX_ARGS * 2];
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (strcmp(s, list[i]) == 0)
                        return true;
        }
        return false;
}

#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

/* Does p have a ".." component, or (git_too) a ".git" one? */
static bool has_component(const char *p, bool git_too)
{
        while (*p) {
                size_t n = strcspn(p, "/");

                if ((n == 2 && memcmp(p, "..", 2) == 0) ||
                    (git_too && n == 4 && memcmp(p, ".git", 4) == 0))
                        return true;
                p += n;
                p += *p == '/';
        }
        return false;
}

static bool sh_meta(char ch)
{
        return ch && strchr(" \t\n;&|<>()", ch);
}

static bool sh_push(struct sh_parse *sp, enum sh_kind kind, const char *text, bool assign,
                    bool dollar)
{
        if (sp->n == sizeof(sp->tok) / sizeof(sp->tok[0])) {
                res_fail(sp->c->res, "the command has too many words (at most %d)",
                         TOOLS_MAX_ARGS * 2);
                return false;
        }
        sp->tok[sp->n++] = (struct sh_token){
                .kind = kind, .text = xstrdup(text), .assign = assign, .dollar = dollar};
        return true;
}

/* Inside "...": escapes, and no command substitution. */
static bool sh_dquote(struct sh_parse *sp, struct strbuf *w, bool *dollar)
{
        const char *s = sp->s;

        for (sp->i++; s[sp->i] != '"'; sp->i++) {
                char ch = s[sp->i];

                if (!ch) {
                        res_fail(sp->c->res, "unterminated double quote in the command");
                        return false;
                }
                if (ch == '`' || (ch == '$' && s[sp->i + 1] == '(')) {
                        res_fail(sp->c->res, "command substitution (%s) is not allowed",
                                 ch == '`' ? "backticks" : "$(...)");
                        return false;
                }
                *dollar |= ch == '$';
                if (ch == '\\' && s[sp->i + 1] && strchr("$`\"\\\n", s[sp->i + 1]))
                        ch = s[++sp->i];
                strbuf_addch(w, ch);
        }
        sp->i++;
        return true;
}

/* One word at sp->i, quotes removed, into w. */
static bool sh_word(struct sh_parse *sp, struct strbuf *w, bool *assign, bool *dollar)
{
        const char *s = sp->s;
        bool plain = true; /* only [A-Za-z0-9_] so far, outside quotes */

        strbuf_reset(w);
        *assign = *dollar = false;
        while (s[sp->i] && !sh_meta(s[sp->i])) {
                char ch = s[sp->i];

                if (ch == '`' || (ch == '$' && s[sp->i + 1] == '(')) {
                        res_fail(sp->c->res, "command substitution (%s) is not allowed",
                                 ch == '`' ? "backticks" : "$(...)");
                        return false;
                }
                if (ch == '=' && plain && w->len && !(w->buf[0] >= '0' && w->buf[0] <= '9'))
                        *assign = true;
                if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9')))
                        plain = false;
                *dollar |= ch == '$';
                if (ch == '\'') {
                        const char *close = strchr(s + sp->i + 1, '\'');

                        if (!close) {
                                res_fail(sp->c->res, "unterminated single quote in the command");
                                return false;
                        }
                        strbuf_add(w, s + sp->i + 1, (size_t)(close - (s + sp->i + 1)));
                        sp->i = (size_t)(close - s) + 1;
                } else if (ch == '"') {
                        if (!sh_dquote(sp, w, dollar))
                                return false;
                } else if (ch == '\\') {
                        sp->i++;
                        if (s[sp->i] && s[sp->i] != '\n')
                                strbuf_addch(w, s[sp->i]);
                        if (s[sp->i])
                                sp->i++;
                } else {
                        strbuf_addch(w, ch);
                        sp->i++;
                }
        }
        return true;
}

/* A redirection at sp->i ([n]> [n]>> [n]< [n]>&m): its target must stay in the worktree. */
static bool sh_redirect(struct sh_parse *sp, struct strbuf *w)
{
        const char *s = sp->s;
        bool assign, dollar;
        char op;

        while (s[sp->i] >= '0' && s[sp->i] <= '9')
                sp->i++;
        op = s[sp->i++];
        if (op == '<' && s[sp->i] == '<') {
                res_fail(sp->c->res, "here-documents (<<) are not allowed; write the file with "
                                     "write_file and read it from there");
                return false;
        }
        if (s[sp->i] == '&') { /* 2>&1, >&2, <&- */
                size_t start = ++sp->i;

                while (s[sp->i] >= '0' && s[sp->i] <= '9')
                        sp->i++;
                if (sp->i == start && s[sp->i] == '-')
                        sp->i++;
                if (sp->i == start || (s[sp->i] && !sh_meta(s[sp->i]))) {
                        res_fail(sp->c->res, "after %c& comes a descriptor number (like 2>&1)", op);
                        return false;
                }
                return true;
        }
        if ((op == '>' && (s[sp->i] == '>' || s[sp->i] == '|')) || (op == '<' && s[sp->i] == '>'))
                sp->i++;
        while (s[sp->i] == ' ' || s[sp->i] == '\t')
                sp->i++;
        if (!s[sp->i] || sh_meta(s[sp->i])) {
                res_fail(sp->c->res, "a redirection (%c) needs a file name", op);
                return false;
        }
        if (!sh_word(sp, w, &assign, &dollar))
                return false;
        if (!w->len || dollar || w->buf[0] == '~') {
                res_fail(sp->c->res,
                         "redirection target \"%s\" must be a plain file name inside "
                         "the worktree (no $ or ~)",
                         w->buf);
                return false;
        }
        if (w->buf[0] == '/' && strcmp(w->buf, "/dev/null") != 0) {
                res_fail(sp->c->res,
                         "redirection to an absolute path (%s) is not allowed; name "
                         "a file inside the worktree",
                         w->buf);
                return false;
        }
        if (has_component(w->buf, true)) {
                res_fail(sp->c->res,
                         "redirection target \"%s\" leaves the worktree or enters "
                         ".git",
                         w->buf);
                return false;
        }
        return true;
}

/* Splits the command into words and separators, refusing what it cannot vouch for. */
static bool sh_lex(struct sh_parse *sp)
{
        const char *s = sp->s;
        struct strbuf w;
        bool ok = true, assign, dollar;

        strbuf_init(&w, TOOLS_COMMAND_MAX);
        while (ok) {
                char ch;
                size_t k;

                while (s[sp->i] == ' ' || s[sp->i] == '\t')
                        sp->i++;
                ch = s[sp->i];
                for (k = sp->i; s[k] >= '0' && s[k] <= '9';)
                        k++;
                if (!ch)
                        break;
                if (ch == '#') {
                        sp->i += strcspn(s + sp->i, "\n");
                } else if (ch == '\n' || ch == ';') {
                        sp->i++;
                        ok = sh_push(sp, SH_SEP, ";", false, false);
                } else if ((ch == '&' || ch == '|') && s[sp->i + 1] == ch) {
                        sp->i += 2;
                        ok = sh_push(sp, SH_SEP, ch == '&' ? "&&" : "||", false, false);
                } else if (ch == '&' || (ch == '|' && s[sp->i + 1] == '&')) {
                        res_fail(sp->c->res, "running in the background (&) is not allowed; "
                                             "commands run to completion");
                        ok = false;
                } else if (ch == '|') {
                        sp->i++;
                        ok = sh_push(sp, SH_SEP, "|", false, false);
                } else if (ch == '(' || ch == ')') {
                        res_fail(sp->c->res, "subshells and ( ) grouping are not allowed");
                        ok = false;
                } else if (ch == '<' || ch == '>' || s[k] == '<' || s[k] == '>') {
                        ok = sh_redirect(sp, &w);
                } else {
                        ok = sh_word(sp, &w, &assign, &dollar) &&
                             sh_push(sp, SH_WORD, w.buf, assign, dollar);
                }
        }
        strbuf_release(&w);
        return ok;
}

/* Arguments of rm/mv/cp/mkdir/touch: inside the worktree, outside .git. */
static bool sh_check_paths(struct sh_parse *sp, size_t first, size_t end)
{
        const char *root = sp->c->env->root;
        size_t rlen = strlen(root);

        for (size_t k = first + 1; k < end; k++) {
                const char *a = sp->tok[k].text;

                if (a[0] == '-') {
                        a = strchr(a, '=');
                        if (!a)
                                continue;
                        a++;
                }
                if (sp->tok[k].dollar || a[0] == '~' ||
                    (a[0] == '/' &&
                     !(strncmp(a, root, rlen) == 0 && (a[rlen] == '/' || a[rlen] == '\0'))) ||
                    has_component(a, true)) {
                        res_fail(sp->c->res,
                                 "%s: \"%s\" is not a path inside the worktree "
                                 "(no $, ~, .., .git or outside absolute paths)",
                                 sp->tok[first].text, sp->tok[k].text);
                        return false;
                }
        }
        return true;
}

/* git push goes through git_push, which knows which branches are off limits. */
static bool sh_check_git(struct sh_parse *sp, size_t first, size_t end)
{
        static const char *const with_value[] = {"-C", "-c", "--git-dir", "--work-tree",
                                                 "--namespace"};

        for (size_t k = first + 1; k < end; k++) {
                const char *a = sp->tok[k].text;

                if (IN_LIST(a, with_value)) {
                        k++;
                        continue;
                }
                if (a[0] == '-')
                        continue;
                if (strcmp(a, "push") == 0) {
                        res_fail(sp->c->res, "git push is not allowed in run_command; use the "
                                             "git_push action");
                        return false;
                }
                break;
        }
        return true;
}

static bool sh_check_simple(struct sh_parse *sp, size_t first, size_t end)
{
        const struct sh_token *t = &sp->tok[first];
        struct strbuf list;

        if (t->assign) {
                res_fail(sp->c->res,
                         "environment assignments (%s) are not allowed before a "
                         "command",
                         t->text);
                return false;
        }
        if (!IN_LIST(t->text, tools_allowed)) {
                if (strcmp(t->text, "cd") == 0) {
                        res_fail(sp->c->res, "cd is not available; set \"working_dir\" (a "
                                             "directory inside the worktree) instead");
                        return false;
                }
                strbuf_init(&list, 4096);
                for (size_t i = 0; i < sizeof(tools_allowed) / sizeof(tools_allowed[0]); i++)
                        strbuf_addf(&list, "%s%s", i ? ", " : "", tools_allowed[i]);
                res_fail(sp->c->res, "\"%s\" is not an allowed program. Allowed: %s", t->text,
                         list.buf);
                strbuf_release(&list);
                return false;
        }
        if (strcmp(t->text, "git") == 0)
                return sh_check_git(sp, first, end);
        if (IN_LIST(t->text, tools_path_programs))
                return sh_check_paths(sp, first, end);
        return true;
}

/* True when every simple command in cmd names an allowed program; else the refusal in res. */
static bool sh_check(struct tools_ctx *c, const char *cmd)
{
        struct sh_parse *sp = xcalloc(1, sizeof(*sp));
        size_t first = 0;
        bool ok;

        sp->c = c;
        sp->s = cmd;
        ok = sh_lex(sp);
        for (size_t k = 0; ok && k <= sp->n; k++) {
                if (k < sp->n && sp->tok[k].kind == SH_WORD)
                        continue;
                if (k > first)
                        ok = sh_check_simple(sp, first, k);
                first = k + 1;
        }
        for (size_t k = 0; k < sp->n; k++)
                free(sp->tok[k].text);
        free(sp);
        return ok;
}

/* The directory a command runs in: the worktree, or working_dir inside it. */
static bool tools_cwd(struct tools_ctx *c, char *cwd, size_t len)
{
        size_t wlen = 0;
        const char *wd = field_str(c->action, "working_dir", &wlen);
        struct tools_path tp;
        int fd;

        if (!wd || !*wd) {
                str_copy(cwd, len, c->env->root);
                return true;
        }
        if (!path_parse(c, wd, wlen, &tp))
                return false;
        fd = path_open_dir(c, &tp, tp.ncomp, false);
        if (fd < 0)
                return false;
        close(fd);
        path_absolute(c, &tp, cwd, len);
        return true;
}

/* Checks cmd and runs it with /bin/sh -c; prefix starts the text. */
static void tools_run_shell(struct tools_ctx *c, const char *key, const char *prefix)
{
        size_t len = 0;
        const char *cmd = field_str(c->action, key, &len);
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        int timeout_s = command_timeout(c);
        struct proc_result pr;
        char cwd[PATH_MAX + TOOLS_PATH_MAX];
        char head[TOOLS_COMMAND_MAX + 8];

        if (!cmd || !len || strlen(cmd) != len) {
                res_fail(c->res, "\"%s\" is required: a command line", key);
                return;
        }
        if (len > TOOLS_COMMAND_MAX) {
                res_fail(c->res, "the command is longer than %d bytes", TOOLS_COMMAND_MAX);
                return;
        }
        if (!sh_check(c, cmd) || !tools_cwd(c, cwd, sizeof(cwd)))
                return;
        if (!tools_exec(c, argv, cmd, cwd, timeout_s, false, &pr))
                return;
        head[0] = '\0';
        if (prefix)
                snprintf(head, sizeof(head), "$ %s\n", cmd);
        tools_exec_text(c, head, timeout_s, &pr);
        proc_result_release(&pr);
}

static void act_run_command(struct tools_ctx *c)
{
        const char *wd = field_str(c->action, "working_dir", NULL);

        if (wd)
                str_copy(c->res->path, sizeof(c->res->path), wd);
        tools_run_shell(c, "command", NULL);
}

/* ---- build_project, run_tests ---------------------------------------------------------------- */

static bool root_file(struct tools_ctx *c, const char *name)
{
        struct stat st;

        return fstatat(c->rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* A small file at the root (Makefile, package.json); false when missing or unreadable. */
static bool root_read(struct tools_ctx *c, const char *name, struct strbuf *out)
{
        int fd = openat(c->rootfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        bool more = false, ok;

        if (fd < 0)
                return false;
        ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
             file_read_fd(fd, TOOLS_META_MAX, out, &more);
        close(fd);
        return ok;
}

static const char *makefile_name(struct tools_ctx *c)
{
        static const char *const names[] = {"GNUmakefile", "makefile", "Makefile"};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (root_file(c, names[i]))
                        return names[i];
        }
        return NULL;
}

/* Does the makefile have a rule line naming target ("test:", "all test: x")? */
static bool makefile_has_target(struct tools_ctx *c, const char *mk, const char *target)
{
        struct strbuf data;
        size_t tlen = strlen(target);
        bool found = false;

        strbuf_init(&data, TOOLS_META_MAX);
        if (!root_read(c, mk, &data))
                goto out;
        for (const char *line = data.buf; *line && !found;) {
                size_t len = strcspn(line, "\n");
                const char *colon = memchr(line, ':', len);
                const char *eq = memchr(line, '=', len);

                if (colon && colon[1] != '=' && (!eq || eq > colon) && line[0] != '\t' &&
                    line[0] != '#') {
                        for (const char *p = line; p < colon && !found;) {
                                size_t wl;

                                p += strspn(p, " \t");
                                wl = strcspn(p, " \t:");
                                found = wl == tlen && memcmp(p, target, tlen) == 0;
                                p += wl;
                        }
                }
                line += len + (line[len] == '\n');
        }
out:
        strbuf_release(&data);
        return found;
}

static bool package_has_script(struct tools_ctx *c, const char *script)
{
        struct strbuf data;
        json_object *root = NULL, *scripts, *s;
        bool found = false;

        strbuf_init(&data, TOOLS_META_MAX);
        if (root_read(c, "package.json", &data))
                root = json_tokener_parse(data.buf);
        found = root && json_object_object_get_ex(root, "scripts", &scripts) &&
                json_object_object_get_ex(scripts, script, &s) &&
                json_object_is_type(s, json_type_string);
        json_object_put(root);
        strbuf_release(&data);
        return found;
}

static bool has_python_tests(struct tools_ctx *c)
{
        size_t n = 0;
        char **names = NULL;
        bool found = root_file(c, "pytest.ini") || root_file(c, "pyproject.toml") ||
                     root_file(c, "setup.py");
        int fd;

        if (found)
                return true;
        fd = openat(c->rootfd, "tests", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return false;
        names = dir_list(fd, &n);
        for (size_t i = 0; i < n && !found; i++) {
                size_t l = strlen(names[i]);

                found = l > 3 && strcmp(names[i] + l - 3, ".py") == 0;
        }
        dir_list_free(names, n);
        close(fd);
        return found;
}

/* Runs a detected argv in the worktree: "$ cmd" then the standard text. */
static void tools_run_argv(struct tools_ctx *c, const char *const *argv, const char *note)
{
        int timeout_s = command_timeout(c);
        struct proc_result pr;
        struct strbuf display;
        char head[1200];

        strbuf_init(&display, sizeof(c->res->command) - 1);
        for (size_t i = 0; argv[i]; i++)
                strbuf_addf(&display, "%s%s", i ? " " : "", argv[i]);
        if (tools_exec(c, argv, display.buf, c->env->root, timeout_s, false, &pr)) {
                snprintf(head, sizeof(head), "$ %s\n%s", display.buf, note ? note : "");
                tools_exec_text(c, head, timeout_s, &pr);
                proc_result_release(&pr);
        }
        strbuf_release(&display);
}

static void act_build_project(struct tools_ctx *c)
{
        static const char *const make[] = {"make", NULL}, *const npm[] = {"npm", "run", "build",
                                                                          NULL};
        static const char *const cargo[] = {"cargo", "build", NULL}, *const go[] = {"go", "build",
                                                                                    "./...", NULL};
        const char *cmd = field_str(c->action, "build_command", NULL);

        if (cmd && *cmd)
                tools_run_shell(c, "build_command", "$");
        else if (makefile_name(c))
                tools_run_argv(c, make, NULL);
        else if (package_has_script(c, "build"))
                tools_run_argv(c, npm, NULL);
        else if (root_file(c, "Cargo.toml"))
                tools_run_argv(c, cargo, NULL);
        else if (root_file(c, "go.mod"))
                tools_run_argv(c, go, NULL);
        else
                res_fail(c->res, "no build system found (looked for Makefile, package.json, "
                                 "Cargo.toml, go.mod); give \"build_command\"");
}

static void act_run_tests(struct tools_ctx *c)
{
        const char *cmd = field_str(c->action, "test_command", NULL);
        const char *pat = field_str(c->action, "test_pattern", NULL);
        const char *argv[8] = {NULL};
        const char *mk = makefile_name(c), *note = NULL;
        size_t n = 0;

        if (cmd && *cmd) {
                tools_run_shell(c, "test_command", "$");
                return;
        }
        if (pat && (!*pat || pat[0] == '-')) {
                res_fail(c->res, "test_pattern must be a name or pattern, not an option");
                return;
        }
        if (mk && (makefile_has_target(c, mk, "test") || makefile_has_target(c, mk, "check"))) {
                argv[n++] = "make";
                argv[n++] = makefile_has_target(c, mk, "test") ? "test" : "check";
                note = pat ? "(test_pattern is not passed to make)\n" : NULL;
        } else if (package_has_script(c, "test")) {
                argv[n++] = "npm";
                argv[n++] = "test";
                if (pat) {
                        argv[n++] = "--";
                        argv[n++] = pat;
                }
        } else if (root_file(c, "Cargo.toml")) {
                argv[n++] = "cargo";
                argv[n++] = "test";
                if (pat)
                        argv[n++] = pat;
        } else if (root_file(c, "go.mod")) {
                argv[n++] = "go";
                argv[n++] = "test";
                if (pat) {
                        argv[n++] = "-run";
                        argv[n++] = pat;
                }
                argv[n++] = "./...";
        } else if (has_python_tests(c)) {
                argv[n++] = "python3";
                argv[n++] = "-m";
                argv[n++] = "pytest";
                if (pat) {
                        argv[n++] = "-k";
                        argv[n++] = pat;
                }
        } else {
                res_fail(c->res, "no test command found (looked for Makefile test/check targets, "
                                 "package.json scripts.test, Cargo.toml, go.mod, "
                                 "pytest.ini/pyproject.toml/setup.py/tests/*.py); give "
                                 "\"test_command\"");
                return;
        }
        tools_run_argv(c, argv, note);
}

/* ---- git --------------------------------------------------------------------------------------
 */

/*
 * Runs git -c safe.directory=* args in the worktree; the display leaves out -c pairs.  This git
 * runs outside the sandbox, so it must not run anything the worktree holds: an agent can make a
 * repository inside it (git init sub), which git add turns into a gitlink; git status and git
 * diff would then run git status in it, with its core.fsmonitor and filters.  So a submodule's
 * files are never looked at (diff.ignoreSubmodules=dirty; a new gitlink commit still shows),
 * git add is kept out of them (git_stage), and, in case, no fsmonitor at all (the setting
 * reaches the git run for a submodule too).
 */
static bool tools_git(struct tools_ctx *c, const char *const *args, int timeout_s,
                      struct proc_result *pr)
{
        const char *argv[TOOLS_MAX_ARGS + 12] = {"git",
                                                 "-c",
                                                 "safe.directory=*",
                                                 "-c",
                                                 "core.fsmonitor=false",
                                                 "-c",
                                                 "diff.ignoreSubmodules=dirty"};
        struct strbuf display;
        size_t n = 7;
        bool ran;

        strbuf_init(&display, sizeof(c->res->command) - 1);
        strbuf_addstr(&display, "git");
        for (size_t i = 0; args[i] && n < TOOLS_MAX_ARGS + 11; i++) {
                argv[n++] = args[i];
                if (strcmp(args[i], "-c") == 0 && args[i + 1]) {
                        argv[n++] = args[++i];
                        continue;
                }
                strbuf_addf(&display, " %s", args[i]);
        }
        argv[n] = NULL;
        ran = tools_exec(c, argv, display.buf, c->env->root, timeout_s, true, pr);
        strbuf_release(&display);
        return ran;
}

static void trim_end(struct strbuf *sb)
{
        while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == ' '))
                sb->buf[--sb->len] = '\0';
}

/* A git command whose output is the answer: ok → output (or empty_text), else the failure. */
static void tools_git_show(struct tools_ctx *c, const char *const *args, const char *empty_text)
{
        struct proc_result pr;

        if (!tools_git(c, args, TOOLS_GIT_TIMEOUT_S, &pr))
                return;
        while (pr.output.len > 1 && pr.output.buf[pr.output.len - 1] == '\n' &&
               pr.output.buf[pr.output.len - 2] == '\n') /* git log's blank line at the end */
                pr.output.buf[--pr.output.len] = '\0';
        if (pr.exit_code == 0 && !pr.timed_out) {
                res_ok(c->res, "%s", pr.output.len ? "" : empty_text);
                strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
        } else {
                res_fail(c->res, "%s failed (exit code %d%s):\n", c->res->command, pr.exit_code,
                         pr.timed_out ? ", timed out" : "");
                strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
        }
        proc_result_release(&pr);
}

static void act_git_status(struct tools_ctx *c)
{
        static const char *const args[] = {"status", "--short", "--branch", NULL};

        tools_git_show(c, args, "(no output)");
}

static void act_git_diff(struct tools_ctx *c)
{
        const char *args[8] = {"diff", "--no-color", "--no-ext-diff"};
        bool staged = field_bool(c->action, "staged");
        size_t n = 3, plen = 0;
        const char *path = field_str(c->action, "path", &plen);
        struct tools_path tp;

        if (staged)
                args[n++] = "--cached";
        if (path && *path) {
                str_copy(c->res->path, sizeof(c->res->path), path);
                if (!path_parse(c, path, plen, &tp))
                        return;
                args[n++] = "--";
                args[n++] = tp.ncomp ? tp.norm : ".";
        }
        tools_git_show(c, args,
                       staged ? "(nothing staged)"
                              : "(no differences in tracked files; new files show in "
                                "git_status)");
}

static void act_git_log(struct tools_ctx *c)
{
        char count[32];
        const char *args[] = {
                "log",        "-n",           count,
                "--no-color", "--date=short", "--format=%h %ad %an: %s%n%(trailers:only,unfold)",
                NULL};

        snprintf(count, sizeof(count), "%ld", clamp(field_int(c->action, "max_count", 20), 1, 200));
        tools_git_show(c, args, "(no commits)");
}

/* Puts HEAD on the bead's branch (an agent may have checked out something else). */
static bool git_on_branch(struct tools_ctx *c)
{
        static const char *const head[] = {"symbolic-ref", "-q", "--short", "HEAD", NULL};
        const char *checkout[] = {"checkout", "-q", c->env->branch, NULL};
        struct proc_result pr;
        bool on;

        if (!c->env->branch || !*c->env->branch)
                return true;
        if (!tools_git(c, head, TOOLS_GIT_TIMEOUT_S, &pr))
                return false;
        trim_end(&pr.output);
        on = pr.exit_code == 0 && strcmp(pr.output.buf, c->env->branch) == 0;
        proc_result_release(&pr);
        if (on)
                return true;
        if (!tools_git(c, checkout, TOOLS_GIT_TIMEOUT_S, &pr))
                return false;
        on = pr.exit_code == 0;
        if (!on) {
                res_fail(c->res, "HEAD is not on %s and checking it out failed:\n", c->env->branch);
                strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
        }
        proc_result_release(&pr);
        return on;
}

/*
 * The gitlinks (submodules) in the index, as ":(exclude,literal)<path>" pathspecs for git add:
 * for a gitlink whose directory holds a repository, git add runs git status in it, with that
 * repository's configuration (core.fsmonitor, filters) — an agent can make one in its worktree.
 * Returns how many, or -1 with the failure in res; *out is owned (free each and the array).
 */
static long git_gitlinks(struct tools_ctx *c, char ***out)
{
        static const char *const argv[] = {
                "/bin/sh", "-c",
                "git -c safe.directory=* -c core.fsmonitor=false ls-files -s -z | grep -z "
                "'^160000 '",
                NULL};
        struct proc_result pr;
        char **links = NULL;
        long n = 0;

        *out = NULL;
        if (!tools_exec(c, argv, "git ls-files -s", c->env->root, TOOLS_GIT_TIMEOUT_S, true, &pr))
                return -1;
        if (pr.exit_code > 1 || pr.truncated) {
                res_fail(c->res, "listing the submodules failed (exit code %d%s):\n%s",
                         pr.exit_code, pr.truncated ? ", too many" : "", pr.output.buf);
                proc_result_release(&pr);
                return -1;
        }
        for (const char *p = pr.output.buf; p < pr.output.buf + pr.output.len; p += strlen(p) + 1) {
                const char *tab = strchr(p, '\t');
                size_t len;

                if (!tab || !tab[1])
                        continue;
                len = strlen(tab + 1) + sizeof(":(exclude,literal)");
                links = xrealloc(links, (size_t)(n + 1) * sizeof(*links));
                links[n] = xmalloc(len);
                snprintf(links[n++], len, ":(exclude,literal)%s", tab + 1);
        }
        proc_result_release(&pr);
        *out = links;
        return n;
}

static void git_gitlinks_free(char **links, long n)
{
        for (long i = 0; i < n; i++)
                free(links[i]);
        free(links);
}

/* git add -A, or of the listed files (each checked), never into a submodule; false with the
 * failure in res. */
static bool git_stage(struct tools_ctx *c)
{
        const char *args[TOOLS_MAX_ARGS + 4] = {"add", "-A"};
        struct tools_path *paths = NULL;
        json_object *files;
        size_t n = 2, count = 0;
        struct proc_result pr;
        char **links = NULL;
        long nlinks = git_gitlinks(c, &links);
        bool ok = false;

        if (nlinks < 0)
                return false;
        if (nlinks > TOOLS_MAX_ARGS / 2) {
                res_fail(c->res,
                         "the worktree has %ld submodules; at most %d can be committed "
                         "around",
                         nlinks, TOOLS_MAX_ARGS / 2);
                goto out;
        }

        if (json_object_object_get_ex(c->action, "files", &files) &&
            json_object_is_type(files, json_type_array) && json_object_array_length(files)) {
                count = json_object_array_length(files);
                if (count > TOOLS_MAX_ARGS / 2) {
                        res_fail(c->res, "at most %d files per commit", TOOLS_MAX_ARGS / 2);
                        goto out;
                }
                paths = xcalloc(count, sizeof(*paths));
                args[n++] = "--";
                for (size_t i = 0; i < count; i++) {
                        json_object *f = json_object_array_get_idx(files, i);
                        const char *p = json_object_is_type(f, json_type_string)
                                                ? json_object_get_string(f)
                                                : NULL;

                        if (!path_parse(c, p, p ? (size_t)json_object_get_string_len(f) : 0,
                                        &paths[i]))
                                goto out;
                        args[n++] = paths[i].ncomp ? paths[i].norm : ".";
                }
        } else if (nlinks) {
                args[n++] = "--";
                args[n++] = ".";
        }
        for (long i = 0; i < nlinks; i++)
                args[n++] = links[i];
        args[n] = NULL;
        if (!tools_git(c, args, TOOLS_GIT_TIMEOUT_S, &pr))
                goto out;
        ok = pr.exit_code == 0;
        if (!ok) {
                res_fail(c->res, "git add failed (exit code %d):\n", pr.exit_code);
                strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
        }
        proc_result_release(&pr);
out:
        git_gitlinks_free(links, nlinks);
        free(paths);
        return ok;
}

/* 1 when something is staged, 0 when nothing, -1 with the failure in res. */
static int git_staged(struct tools_ctx *c)
{
        static const char *const args[] = {"diff", "--cached", "--quiet", NULL};
        struct proc_result pr;
        int code;

        if (!tools_git(c, args, TOOLS_GIT_TIMEOUT_S, &pr))
                return -1;
        code = pr.exit_code;
        if (code > 1)
                res_fail(c->res, "git diff --cached failed (exit code %d):\n%s", code,
                         pr.output.buf);
        proc_result_release(&pr);
        return code > 1 ? -1 : code;
}

/* Commits with the trailer; the result names the new short sha. */
static void git_commit_staged(struct tools_ctx *c, const char *const *args)
{
        static const char *const short_sha[] = {"rev-parse", "--short", "HEAD", NULL};
        char command[sizeof(c->res->command)], sha[64] = "?";
        struct proc_result pr, sp;
        long ms;

        if (!tools_git(c, args, TOOLS_GIT_TIMEOUT_S, &pr))
                return;
        if (pr.exit_code != 0 || pr.timed_out) {
                res_fail(c->res, "git commit failed (exit code %d%s):\n", pr.exit_code,
                         pr.timed_out ? ", timed out" : "");
                strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
                proc_result_release(&pr);
                return;
        }
        /* The commit is the command to log, not the rev-parse after it. */
        memcpy(command, c->res->command, sizeof(command));
        ms = c->res->duration_ms;
        if (tools_git(c, short_sha, TOOLS_GIT_TIMEOUT_S, &sp)) {
                trim_end(&sp.output);
                if (sp.exit_code == 0)
                        str_copy(sha, sizeof(sha), sp.output.buf);
                proc_result_release(&sp);
        }
        memcpy(c->res->command, command, sizeof(command));
        c->res->ran_command = true;
        c->res->exit_code = 0;
        c->res->timed_out = false;
        c->res->duration_ms = ms;
        c->res->mutated = true;
        res_ok(c->res, "committed %s on %s\n", sha, c->env->branch ? c->env->branch : "HEAD");
        strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
        proc_result_release(&pr);
}

static void act_git_commit(struct tools_ctx *c)
{
        const struct tool_env *env = c->env;
        const char *msg = field_str2(c->action, "commit_message", "message", NULL);
        char name[300], email[300], trailer[300];
        const char *args[16] = {"-c",     name, "-c", email, "-c", "commit.gpgsign=false",
                                "commit", "-m", msg};
        size_t n = 9;
        int staged;

        if (!msg || !msg[strspn(msg, " \t\n")]) {
                res_fail(c->res, "\"commit_message\" is required: what changed and why");
                return;
        }
        snprintf(name, sizeof(name), "user.name=%s",
                 env->author_name && *env->author_name ? env->author_name : "Loom Agent");
        snprintf(email, sizeof(email), "user.email=%s",
                 env->author_email && *env->author_email ? env->author_email
                                                         : "agent@loom.localhost");
        if (env->bead_id && *env->bead_id) {
                snprintf(trailer, sizeof(trailer), "Loom-Bead: %s", env->bead_id);
                args[n++] = "--trailer";
                args[n++] = trailer;
        }
        args[n] = NULL;
        if (!git_on_branch(c) || !git_stage(c) || (staged = git_staged(c)) < 0)
                return;
        if (staged == 0) {
                res_fail(c->res, "nothing to commit: %s",
                         json_object_object_get_ex(c->action, "files", NULL)
                                 ? "the listed files have no changes"
                                 : "the worktree has no changes since the last commit");
                return;
        }
        git_commit_staged(c, args);
}

/* Is branch one agents must not push to (main, master, the default, origin's HEAD)? */
static bool git_protected_branch(struct tools_ctx *c, const char *branch)
{
        static const char *const origin_head[] = {"symbolic-ref", "-q", "--short",
                                                  "refs/remotes/origin/HEAD", NULL};
        struct proc_result pr;
        bool prot = strcmp(branch, "main") == 0 || strcmp(branch, "master") == 0 ||
                    (c->env->default_branch && strcmp(branch, c->env->default_branch) == 0);

        if (!prot && tools_git(c, origin_head, TOOLS_GIT_TIMEOUT_S, &pr)) {
                trim_end(&pr.output);
                prot = pr.exit_code == 0 && strncmp(pr.output.buf, "origin/", 7) == 0 &&
                       strcmp(pr.output.buf + 7, branch) == 0;
                proc_result_release(&pr);
        }
        return prot;
}

static void act_git_push(struct tools_ctx *c)
{
        const char *branch = c->env->branch;
        const char *args[] = {"push", "-u", "origin", branch, NULL};
        struct proc_result pr;

        if (!c->env->has_remote) {
                res_fail(c->res, "this project has no remote to push to");
                return;
        }
        if (!branch || !*branch || branch[0] == '-') {
                res_fail(c->res, "this run has no branch to push");
                return;
        }
        if (git_protected_branch(c, branch)) {
                res_fail(c->res,
                         "refusing to push %s: it is the default branch; agents push "
                         "only their bead branch",
                         branch);
                return;
        }
        if (!tools_git(c, args, TOOLS_PUSH_TIMEOUT_S, &pr))
                return;
        if (pr.exit_code == 0 && !pr.timed_out)
                res_ok(c->res, "pushed %s to origin\n", branch);
        else
                res_fail(c->res, "git push failed (exit code %d%s):\n", pr.exit_code,
                         pr.timed_out ? ", timed out" : "");
        strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
        proc_result_release(&pr);
}

/* ---- apply_patch ------------------------------------------------------------------------------
 */

/* The path a patch header line names ("a/x", "\"b/y\"", "x\t2024-..."), checked as text. */
static bool patch_check_name(struct tools_ctx *c, const char *p, size_t len, bool strip,
                             char *first, size_t first_len)
{
        char name[TOOLS_PATH_MAX];
        struct tools_path tp;
        size_t n;

        if (len && p[0] == '"') { /* quoted: the escapes do not matter for the checks */
                p++;
                len = len > 1 && p[len - 2] == '"' ? len - 2 : len - 1;
        }
        n = strcspn(p, "\t");
        if (n < len)
                len = n;
        if (len >= sizeof(name))
                len = sizeof(name) - 1;
        memcpy(name, p, len);
        name[len] = '\0';
        if (strcmp(name, "/dev/null") == 0)
                return true;
        if (strip && len > 2 && (name[0] == 'a' || name[0] == 'b') && name[1] == '/')
                memmove(name, name + 2, len - 1);
        if (!path_parse(c, name, strlen(name), &tp))
                return false;
        if (!*first)
                str_copy(first, first_len, tp.norm);
        return true;
}

/* Every file the patch names must stay inside the worktree (git apply checks too). */
static bool patch_check(struct tools_ctx *c, const char *patch, char *first, size_t first_len)
{
        static const struct {
                const char *prefix;
                bool strip;
        } heads[] = {{"--- ", true},        {"+++ ", true},        {"rename from ", false},
                     {"rename to ", false}, {"copy from ", false}, {"copy to ", false}};

        for (const char *line = patch; *line;) {
                size_t len = strcspn(line, "\n");

                for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
                        size_t pl = strlen(heads[i].prefix);

                        if (len > pl && strncmp(line, heads[i].prefix, pl) == 0 &&
                            !patch_check_name(c, line + pl, len - pl, heads[i].strip, first,
                                              first_len))
                                return false;
                }
                line += len + (line[len] == '\n');
        }
        return true;
}

static void act_apply_patch(struct tools_ctx *c)
{
        size_t len = 0;
        const char *patch = field_str(c->action, "patch", &len);
        char file[] = "/tmp/loom-patch-XXXXXX", first[sizeof(c->res->path)] = "";
        const char *check[] = {"apply", "--check", "--recount", "--whitespace=nowarn", file, NULL};
        const char *apply[] = {"apply", "--recount", "--whitespace=nowarn", file, NULL};
        struct proc_result pr;
        int fd;
        bool ok;

        if (!patch || !len || strlen(patch) != len) {
                res_fail(c->res, "\"patch\" is required: a unified diff (paths relative to the "
                                 "worktree root, a/ and b/ prefixes as git diff writes them)");
                return;
        }
        if (!patch_check(c, patch, first, sizeof(first)))
                return;
        str_copy(c->res->path, sizeof(c->res->path), first);
        fd = mkstemp(file);
        if (fd < 0) {
                res_fail(c->res, "cannot make a temporary file for the patch: %s", strerror(errno));
                return;
        }
        ok = file_write_all(fd, patch, len) &&
             (patch[len - 1] == '\n' || file_write_all(fd, "\n", 1));
        close(fd);
        if (!ok) {
                res_fail(c->res, "cannot write the patch to %s: %s", file, strerror(errno));
                goto out;
        }
        for (int step = 0; step < 2; step++) {
                if (!tools_git(c, step ? apply : check, TOOLS_GIT_TIMEOUT_S, &pr))
                        goto out;
                ok = pr.exit_code == 0 && !pr.timed_out;
                if (!ok) {
                        res_fail(c->res, "the patch does not apply (nothing was changed):\n");
                        strbuf_add(&c->res->text, pr.output.buf, pr.output.len);
                }
                proc_result_release(&pr);
                if (!ok)
                        goto out;
        }
        c->res->mutated = true;
        res_ok(c->res, "applied the patch%s%s", *first ? "; first file: " : "", first);
out:
        unlink(file);
}

/* ---- dispatch ---------------------------------------------------------------------------------
 */

static const struct tools_action {
        const char *type;
        void (*run)(struct tools_ctx *c);
} tools_actions[] = {
        {.type = "read_file", .run = act_read_file},
        {.type = "read_code", .run = act_read_file},
        {.type = "write_file", .run = act_write_file},
        {.type = "edit_code", .run = act_edit_code},
        {.type = "apply_patch", .run = act_apply_patch},
        {.type = "read_tree", .run = act_read_tree},
        {.type = "search_text", .run = act_search_text},
        {.type = "move_file", .run = act_move_file},
        {.type = "rename_file", .run = act_move_file},
        {.type = "delete_file", .run = act_delete_file},
        {.type = "run_command", .run = act_run_command},
        {.type = "build_project", .run = act_build_project},
        {.type = "run_tests", .run = act_run_tests},
        {.type = "git_status", .run = act_git_status},
        {.type = "git_diff", .run = act_git_diff},
        {.type = "git_log", .run = act_git_log},
        {.type = "git_commit", .run = act_git_commit},
        {.type = "git_push", .run = act_git_push},
};

static const struct tools_action *tools_find(const char *type)
{
        for (size_t i = 0; type && i < sizeof(tools_actions) / sizeof(tools_actions[0]); i++) {
                if (strcmp(type, tools_actions[i].type) == 0)
                        return &tools_actions[i];
        }
        return NULL;
}

bool tools_handles(const char *type)
{
        return tools_find(type) != NULL;
}

/* ---- lessons ----------------------------------------------------------------------------- */

/* Lines of a program's result that are ours, not the program's output. */
static bool tools_is_status_line(const char *line, size_t n)
{
        return (n >= 2 && line[0] == '$' && line[1] == ' ') ||
               (n >= 9 && strncmp(line, "exit code", 9) == 0) ||
               (n >= 9 && strncmp(line, "timed out", 9) == 0) || (n >= 1 && line[0] == '[') ||
               (n >= 1 && line[0] == '(');
}

/* True when the line looks like the one that says what went wrong. */
static bool tools_is_error_line(const char *line, size_t n)
{
        static const char *const marks[] = {"error",  "fail",      "undefined", "traceback",
                                            "assert", "not found", "cannot",    "no such file"};
        char low[256];
        size_t m = n < sizeof(low) - 1 ? n : sizeof(low) - 1;

        for (size_t i = 0; i < m; i++)
                low[i] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] + 32 : line[i]);
        low[m] = '\0';
        for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
                if (strstr(low, marks[i]))
                        return true;
        }
        return false;
}

/* The program output's first error-looking line, else its last non-empty one, into out. */
static void tools_key_line(const char *text, char *out, size_t outlen)
{
        const char *last = NULL, *p = text;
        size_t last_n = 0;

        out[0] = '\0';
        while (*p) {
                size_t n = strcspn(p, "\n");
                size_t lead = strspn(p, " \t");

                if (n > lead && !tools_is_status_line(p + lead, n - lead)) {
                        if (tools_is_error_line(p + lead, n - lead)) {
                                snprintf(out, outlen, "%.*s", (int)(n - lead), p + lead);
                                return;
                        }
                        last = p + lead;
                        last_n = n - lead;
                }
                p += n + (p[n] == '\n');
        }
        if (last)
                snprintf(out, outlen, "%.*s", (int)last_n, last);
}

bool tools_lesson(const char *type, const struct tool_result *res, struct tool_lesson *out)
{
        bool build = type && strcmp(type, "build_project") == 0;
        char line[240];
        size_t len, from;

        if ((!build && !(type && strcmp(type, "run_tests") == 0)) || !res->ran_command ||
            (res->exit_code == 0 && !res->timed_out))
                return false;
        tools_key_line(res->text.buf, line, sizeof(line));
        if (!line[0])
                snprintf(line, sizeof(line), "exit code %d", res->exit_code);
        out->category = build ? "compiler_error" : "test_failure";
        snprintf(out->title, sizeof(out->title), "%s %s: %s", build ? "Build" : "Tests",
                 res->timed_out ? "timed out" : "failed", line);
        snprintf(out->key, sizeof(out->key), "%.400s | %s", res->command, line);
        len = res->text.len;
        from = len > 1200 ? len - 1200 : 0;
        snprintf(out->detail, sizeof(out->detail), "`%.300s` %s (exit code %d). Output%s:\n%s",
                 res->command, res->timed_out ? "timed out" : "failed", res->exit_code,
                 from ? " (end)" : "", res->text.buf + from);
        return true;
}

/* HOME for programs: "<parent>/.home-<worktree>", made on first use; the worktree if not. */
static void tools_home(struct tools_ctx *c)
{
        const char *root = c->env->root, *slash = strrchr(root, '/');

        if (slash && slash > root && slash[1] &&
            (size_t)snprintf(c->home, sizeof(c->home), "%.*s/.home-%s", (int)(slash - root), root,
                             slash + 1) < sizeof(c->home) &&
            (mkdir(c->home, 0700) == 0 || errno == EEXIST))
                return;
        str_copy(c->home, sizeof(c->home), root);
}

static void tools_result_reset(struct tool_result *res)
{
        strbuf_reset(&res->text);
        res->ok = false;
        res->mutated = false;
        res->path[0] = '\0';
        res->ran_command = false;
        res->command[0] = '\0';
        res->exit_code = 0;
        res->timed_out = false;
        res->duration_ms = 0;
}

int tools_run(const struct tool_env *env, const char *type, json_object *action,
              struct tool_result *res)
{
        const struct tools_action *a = tools_find(type);
        struct tools_ctx c = {.env = env, .action = action, .res = res, .rootfd = -1};
        struct strbuf *t = &res->text;

        tools_result_reset(res);
        if (!a) {
                res_fail(res, "unknown action type \"%s\"", type ? type : "");
                return ERR_OK;
        }
        c.rootfd = env->root ? open(env->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (c.rootfd < 0) {
                res_fail(res, "the worktree %s is not available: %s",
                         env->root ? env->root : "(none)", strerror(errno));
                return ERR_INTERNAL;
        }
        c.output_cap = env->output_cap ? env->output_cap : TOOLS_OUTPUT_CAP_DEF;
        if (c.output_cap > TOOLS_OUTPUT_CAP_MAX)
                c.output_cap = TOOLS_OUTPUT_CAP_MAX;
        tools_home(&c);
        a->run(&c);
        close(c.rootfd);
        if (t->failed) { /* an append passed TOOLS_TEXT_MAX: say so where it stopped */
                t->failed = false;
                if (t->len > t->max - 64)
                        t->buf[t->len = t->max - 64] = '\0';
                strbuf_addstr(t, "\n[… the result was cut at 512 KiB …]");
        }
        return ERR_OK;
}
