/*
 * loom-migrate — applies sql/NNN_name.sql files in order, once each.
 *
 * Each file runs in its own transaction together with its schema_migrations row, under an
 * advisory lock, so concurrent runs (two `make up`s, a test and a deploy) apply every file
 * exactly once.  A file whose contents changed after it was applied is reported, not re-run.
 *
 *   loom-migrate [--dir DIR] [--status] [--personas DIR]    connection from LOOM_DATABASE_URL
 *
 * --personas DIR loads DIR/<name>/SKILL.md into the personas table after the schema is current
 * (rows that a person edited through the API are left alone).
 *
 * Then provider API keys stored in plaintext before migration 009 are sealed (shared/secret.c)
 * into providers.api_key_sealed and the plaintext cleared, so no other program ever meets one.
 * The secret key (LOOM_SECRET_KEY, else <LOOM_VAR>/secret.key) is loaded whenever one is
 * configured, so `make up` fails here, with the reason, on a bad key; with neither variable set
 * it is needed only when there is a key to seal.
 *
 * LOOM_ADMIN_PASSWORD, when set, becomes the password of the first admin ("admin"), created
 * only while no admin exists; a password that fails the policy (shared/passwd.c) is refused.
 * `make up` sets it from <var>/admin-password (random on the first run, mode 0600).
 */
#include "config.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "secret.h"
#include "passwd.h"
#include "skill.h"
#include "arena.h"
#include "strbuf.h"
#include "xalloc.h"

#include <dirent.h>
#include <json-c/json.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_MAX_FILES 999
#define MIGRATE_MAX_BYTES ((size_t)4 << 20)
#define MIGRATE_LOCK_KEY  "7606203, 0"

static const char migrate_setup_sql[] =
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())";

static struct db_stmt migrate_applied_stmt = {
        .name = "migrate_applied",
        .sql = "SELECT checksum FROM schema_migrations WHERE version = $1",
        .nparams = 1,
        .readonly = true,
};

static struct db_stmt migrate_persona_stmt = {
        .name = "migrate_persona",
        .sql = "SELECT loom_persona_load($1::jsonb)",
        .nparams = 1,
};

static struct db_stmt migrate_record_stmt = {
        .name = "migrate_record",
        .sql = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        .nparams = 3,
};

/* Locks what it returns: run inside the transaction that seals. */
static struct db_stmt migrate_plain_keys_stmt = {
        .name = "migrate_plain_keys",
        .sql = "SELECT id, api_key FROM providers WHERE api_key IS NOT NULL ORDER BY id FOR UPDATE",
        .nparams = 0,
};

static struct db_stmt migrate_seal_key_stmt = {
        .name = "migrate_seal_key",
        .sql = "UPDATE providers SET api_key_sealed = $2, api_key = NULL WHERE id = $1",
        .nparams = 2,
};

struct migration {
        int version;
        char *name; /* file name, e.g. 001_core.sql */
};

/* FNV-1a, printed as 16 hex digits: enough to notice an edited migration. */
static void migrate_checksum(const char *data, size_t len, char out[17])
{
        unsigned long long h = 1469598103934665603ULL;

        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char)data[i];
                h *= 1099511628211ULL;
        }
        snprintf(out, 17, "%016llx", h);
}

static int migration_cmp(const void *a, const void *b)
{
        const struct migration *x = a, *y = b;

        return (x->version > y->version) - (x->version < y->version);
}

/* Parses "NNN_name.sql" into its version; false for other file names. */
static bool migrate_parse_name(const char *name, int *version)
{
        size_t n = strlen(name);
        int v = 0, i;

        if (n < 9 || strcmp(name + n - 4, ".sql") != 0)
                return false;
        for (i = 0; i < 3; i++) {
                if (name[i] < '0' || name[i] > '9')
                        return false;
                v = v * 10 + (name[i] - '0');
        }
        if (name[3] != '_' || v == 0)
                return false;
        *version = v;
        return true;
}

static int migrate_list(const char *dir, struct migration **out, size_t *count)
{
        struct migration *list = NULL;
        struct dirent *de;
        size_t n = 0;
        DIR *d = opendir(dir);

        if (!d) {
                log_error("cannot open migrations directory %s: %s", dir, strerror(errno));
                return ERR_INVALID;
        }
        while ((de = readdir(d))) {
                int v;

                if (!migrate_parse_name(de->d_name, &v))
                        continue;
                if (n == MIGRATE_MAX_FILES)
                        break;
                list = xrealloc(list, (n + 1) * sizeof(*list));
                list[n].version = v;
                list[n].name = xstrdup(de->d_name);
                n++;
        }
        closedir(d);
        qsort(list, n, sizeof(*list), migration_cmp);
        for (size_t i = 1; i < n; i++) {
                if (list[i].version == list[i - 1].version) {
                        log_error("two migrations share version %03d: %s and %s", list[i].version,
                                  list[i - 1].name, list[i].name);
                        return ERR_INVALID;
                }
        }
        *out = list;
        *count = n;
        return ERR_OK;
}

static int migrate_read_file(const char *path, struct strbuf *sb)
{
        char chunk[8192];
        size_t got;
        FILE *f = fopen(path, "r");

        if (!f) {
                log_error("cannot read %s: %s", path, strerror(errno));
                return ERR_INVALID;
        }
        while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
                strbuf_add(sb, chunk, got);
        fclose(f);
        if (sb->failed) {
                log_error("%s is larger than %zu bytes", path, MIGRATE_MAX_BYTES);
                return ERR_TOO_LARGE;
        }
        return ERR_OK;
}

static int migrate_sql(struct db *db, const char *sql)
{
        PGresult *res;
        int rc = db_exec_sql(db, sql, &res);

        PQclear(res);
        return rc;
}

/* Applies one migration unless already recorded. *applied tells which happened. */
static int migrate_one(struct db *db, const char *dir, const struct migration *m, bool dry,
                       bool *applied)
{
        struct strbuf sql, path;
        char version[12], sum[17];
        const char *params[3];
        PGresult *res = NULL;
        int rc;

        *applied = false;
        strbuf_init(&sql, MIGRATE_MAX_BYTES);
        strbuf_init(&path, 4096);
        strbuf_addf(&path, "%s/%s", dir, m->name);
        rc = migrate_read_file(path.buf, &sql);
        if (rc)
                goto out;
        migrate_checksum(sql.buf, sql.len, sum);
        snprintf(version, sizeof(version), "%d", m->version);
        params[0] = version;
        rc = db_exec(db, &migrate_applied_stmt, params, &res);
        if (rc)
                goto out;
        if (PQntuples(res) == 1) {
                if (strcmp(PQgetvalue(res, 0, 0), sum) != 0)
                        log_warn("migration %s changed after it was applied (checksum %s, was %s);"
                                 " write a new migration instead",
                                 m->name, sum, PQgetvalue(res, 0, 0));
                goto out;
        }
        if (dry) {
                printf("pending  %s\n", m->name);
                goto out;
        }
        rc = migrate_sql(db, "BEGIN");
        if (rc)
                goto out;
        rc = migrate_sql(db, sql.buf);
        if (rc) {
                log_error("migration %s failed: %s (SQLSTATE %s)", m->name, db->errmsg,
                          db->sqlstate);
                if (migrate_sql(db, "ROLLBACK"))
                        db_disconnect(db);
                goto out;
        }
        params[1] = m->name;
        params[2] = sum;
        PQclear(res);
        res = NULL;
        rc = db_exec(db, &migrate_record_stmt, params, &res);
        if (!rc)
                rc = migrate_sql(db, "COMMIT");
        if (rc) {
                log_error("recording migration %s failed: %s", m->name, db->errmsg);
                goto out;
        }
        *applied = true;
        log_info("applied %s", m->name);
out:
        PQclear(res);
        strbuf_release(&sql);
        strbuf_release(&path);
        return rc;
}

static int migrate_run(struct db *db, const char *dir, bool dry)
{
        struct migration *list = NULL;
        size_t n = 0, done = 0;
        int rc = migrate_list(dir, &list, &n);

        if (rc)
                return rc;
        rc = migrate_sql(db, migrate_setup_sql);
        if (!rc)
                rc = migrate_sql(db, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")");
        for (size_t i = 0; !rc && i < n; i++) {
                bool applied;

                rc = migrate_one(db, dir, &list[i], dry, &applied);
                done += applied;
        }
        if (!rc)
                log_info("schema is current: %zu migrations, %zu applied now", n, done);
        for (size_t i = 0; i < n; i++)
                free(list[i].name);
        free(list);
        return rc;
}

static void json_put_str(json_object *o, const char *key, const char *v)
{
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

/* The persona as the JSON loom_persona_load() takes; the caller puts it. */
static json_object *migrate_persona_json(const struct skill *sk)
{
        json_object *o = json_object_new_object(), *list = json_object_new_array();

        json_put_str(o, "name", sk->name);
        json_put_str(o, "description", sk->description);
        json_put_str(o, "license", sk->license);
        json_put_str(o, "compatibility", sk->compatibility);
        json_put_str(o, "role", sk->role);
        json_put_str(o, "author", sk->author);
        json_put_str(o, "version", sk->version);
        json_put_str(o, "autonomy_level", sk->autonomy_level);
        json_put_str(o, "instructions", sk->instructions);
        for (int i = 0; i < sk->nspecialties; i++)
                json_object_array_add(list, json_object_new_string(sk->specialties[i]));
        json_object_object_add(o, "specialties", list);
        return o;
}

/* Loads dir/<name>/SKILL.md; the directory name must be the persona's name. */
static int migrate_persona(struct db *db, const char *dir, const char *name, struct arena *arena,
                           int *loaded)
{
        struct strbuf path, text;
        struct skill sk;
        json_object *doc = NULL;
        const char *params[1];
        PGresult *res = NULL;
        char err[256];
        int rc;

        strbuf_init(&path, 4096);
        strbuf_init(&text, SKILL_MAX_BYTES);
        strbuf_addf(&path, "%s/%s/SKILL.md", dir, name);
        rc = migrate_read_file(path.buf, &text);
        if (rc)
                goto out;
        rc = skill_parse(text.buf, text.len, arena, &sk, err, sizeof(err));
        if (rc) {
                log_error("%s: %s", path.buf, err);
                goto out;
        }
        if (strcmp(sk.name, name) != 0) {
                log_error("%s: name '%s' differs from its directory '%s'", path.buf, sk.name, name);
                rc = ERR_INVALID;
                goto out;
        }
        doc = migrate_persona_json(&sk);
        params[0] = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        rc = db_exec(db, &migrate_persona_stmt, params, &res);
        if (rc) {
                log_error("%s: %s", path.buf, db->errmsg);
                goto out;
        }
        *loaded += strcmp(PQgetvalue(res, 0, 0), "loaded") == 0;
out:
        PQclear(res);
        json_object_put(doc);
        strbuf_release(&path);
        strbuf_release(&text);
        return rc;
}

static int migrate_personas(struct db *db, const char *dir)
{
        struct arena arena;
        struct dirent *de;
        int rc = ERR_OK, seen = 0, loaded = 0;
        DIR *d = opendir(dir);

        if (!d) {
                log_error("cannot open personas directory %s: %s", dir, strerror(errno));
                return ERR_INVALID;
        }
        arena_init(&arena, 0);
        while (!rc && (de = readdir(d))) {
                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                rc = migrate_persona(db, dir, de->d_name, &arena, &loaded);
                seen++;
                arena_reset(&arena);
        }
        closedir(d);
        arena_release(&arena);
        if (!rc)
                log_info("personas: %d found, %d loaded or changed", seen, loaded);
        return rc;
}

/* Seals row i of a migrate_plain_keys result. */
static int migrate_seal_key(struct db *db, struct arena *arena, PGresult *keys, int i)
{
        const char *params[2] = {PQgetvalue(keys, i, 0), NULL};
        PGresult *res = NULL;
        int rc = secret_seal(arena, PQgetvalue(keys, i, 1), &params[1]);

        if (rc) {
                log_error("cannot seal the API key of provider %s: %s", params[0],
                          err_strerror(rc));
                return rc;
        }
        rc = db_exec(db, &migrate_seal_key_stmt, params, &res);
        if (rc)
                log_error("cannot store the sealed API key of provider %s: %s", params[0],
                          db->errmsg);
        PQclear(res);
        return rc;
}

/* Clears the plaintext keys a result holds before it is freed. */
static void migrate_wipe_keys(PGresult *keys)
{
        for (int i = 0; keys && i < PQntuples(keys); i++)
                secret_wipe(PQgetvalue(keys, i, 1), (size_t)PQgetlength(keys, i, 1));
}

/* Seals every plaintext provider key in one transaction (under the migration lock). */
static int migrate_seal_keys(struct db *db)
{
        PGresult *keys = NULL;
        struct arena arena;
        int rc = migrate_sql(db, "BEGIN"), n = 0;

        if (rc)
                return rc;
        arena_init(&arena, 0);
        rc = db_exec(db, &migrate_plain_keys_stmt, NULL, &keys);
        if (!rc)
                n = PQntuples(keys);
        if (!rc && n > 0 && !secret_key_loaded()) {
                log_error("%d provider API keys are stored in plaintext and there is no secret key "
                          "to seal them with: set LOOM_SECRET_KEY, or LOOM_VAR to the directory "
                          "whose secret.key holds it",
                          n);
                rc = ERR_INVALID;
        }
        for (int i = 0; !rc && i < n; i++)
                rc = migrate_seal_key(db, &arena, keys, i);
        migrate_wipe_keys(keys);
        PQclear(keys);
        arena_release(&arena);
        if (!rc)
                rc = migrate_sql(db, "COMMIT");
        else if (migrate_sql(db, "ROLLBACK"))
                db_disconnect(db);
        if (!rc && n > 0)
                log_info("sealed %d provider API keys stored in plaintext before 009_secrets", n);
        return rc;
}

/* The secret key when one is configured (a bad one is an error); none is fine until needed. */
static int migrate_load_key(void)
{
        char err[512];
        int rc;

        if (!config_str("LOOM_SECRET_KEY", NULL) && !config_str("LOOM_VAR", NULL))
                return ERR_OK;
        rc = secret_key_load(err, sizeof(err));
        if (rc)
                log_error("%s", err);
        return rc;
}

static struct db_stmt migrate_admin_stmt = {
        .name = "migrate_admin",
        .sql = "SELECT loom_admin_bootstrap($1)",
        .nparams = 1,
};

/* The first admin, from LOOM_ADMIN_PASSWORD, while no admin exists. */
static int migrate_admin(struct db *db)
{
        const char *pw = config_str("LOOM_ADMIN_PASSWORD", NULL);
        char why[128], hash[PASSWD_HASH_MAX];
        const char *param = hash;
        PGresult *res;
        int rc;

        if (!pw)
                return ERR_OK;
        if (!passwd_acceptable(pw, "admin", why, sizeof(why))) {
                log_error("LOOM_ADMIN_PASSWORD refused: %s", why);
                return ERR_INVALID;
        }
        if (passwd_hash(pw, hash, sizeof(hash)) != ERR_OK) {
                log_error("cannot hash the admin password");
                return ERR_INTERNAL;
        }
        rc = db_exec(db, &migrate_admin_stmt, &param, &res);
        if (rc) {
                log_error("cannot create the admin user: %s", db->errmsg);
                return rc;
        }
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
                log_info("admin user created");
        PQclear(res);
        return ERR_OK;
}

int main(int argc, char **argv)
{
        const char *dir = "sql", *personas = NULL;
        bool dry = false;
        struct db db;
        int rc;

        log_setup("loom-migrate");
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
                        dir = argv[++i];
                } else if (strcmp(argv[i], "--status") == 0) {
                        dry = true;
                } else if (strcmp(argv[i], "--personas") == 0 && i + 1 < argc) {
                        personas = argv[++i];
                } else {
                        fprintf(stderr,
                                "usage: loom-migrate [--dir DIR] [--status] [--personas DIR]\n"
                                "  applies DIR/NNN_*.sql (default ./sql) to "
                                "LOOM_DATABASE_URL\n");
                        return 1;
                }
        }
        if (!dry && migrate_load_key() != ERR_OK)
                return 2;
        db_init(&db, config_database_url());
        rc = db_connect(&db);
        if (rc) {
                log_error("cannot connect to the database (LOOM_DATABASE_URL): %s", db.errmsg);
        } else {
                rc = migrate_run(&db, dir, dry);
                if (!rc && !dry)
                        rc = migrate_seal_keys(&db);
                if (!rc && personas && !dry)
                        rc = migrate_personas(&db, personas);
                if (!rc && !dry)
                        rc = migrate_admin(&db);
        }
        db_release(&db);
        secret_key_forget();
        return rc ? 2 : 0;
}
