-- 008_auth: users, sessions, API keys, project membership, the audit log and login throttling;
-- row-level security that confines a non-admin to the projects they belong to.
--
-- Who checks what: loom-api hashes and verifies passwords (Argon2id, in C) and mints tokens
-- (128-bit CSPRNG values); PostgreSQL stores only SHA-256 digests of tokens, so a leaked table
-- yields no usable credential.  Every authenticated request starts with loom_auth(), which
-- checks the token and sets the connection's scope for that request:
--   loom.uid    the user's id
--   loom.scope  '' for an admin (sees everything), 'member' otherwise
-- Workers, loom-sse and loom-migrate never set a scope: they see every row.  Row-level
-- security is FORCEd, so it applies to the owning role the API connects as, and its policies
-- let an unscoped session through.  A non-admin asking for another project's bead finds no
-- row: 404, as if it did not exist.

CREATE TABLE users (
    id                  bigserial PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    display_name        text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    email               text NOT NULL DEFAULT '' CHECK (length(email) <= 320),
    role                text NOT NULL CHECK (role IN ('admin', 'user', 'viewer', 'service')),
    password_hash       text, -- Argon2id encoded; NULL: no password login (service accounts)
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz,
    last_login_at       timestamptz
);

CREATE TABLE sessions (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    csrf_token   text NOT NULL,
    idle_seconds integer NOT NULL CHECK (idle_seconds > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    ip           text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix       text NOT NULL, -- the first characters of the key, shown in lists
    key_hash     bytea NOT NULL UNIQUE,
    permissions  text[],        -- NULL: the user's role; else only these (and within the role)
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE project_members (
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by   text NOT NULL DEFAULT 'system',
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id, project_id);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    user_id bigint,
    action  text NOT NULL, -- login, logout, denied, api_key.create, user.update, ...
    target  text NOT NULL DEFAULT '',
    outcome text NOT NULL CHECK (outcome IN ('ok', 'failed', 'denied')),
    ip      text NOT NULL DEFAULT '',
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (id DESC);

-- Failed logins per key ("ip:<addr>", "user:<name>") in a sliding window.
CREATE TABLE auth_throttle (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL DEFAULT now(),
    failures     integer NOT NULL DEFAULT 0,
    locked_until timestamptz
);

-- Whoever creates a project owns it and can always see it (also within the INSERT itself,
-- before the membership row exists).  Triggers fire in name order: "projects_a_owned" adds the
-- membership before "projects_default_agents" inserts the agents.
ALTER TABLE projects ADD COLUMN owner_id bigint REFERENCES users (id) ON DELETE SET NULL
    DEFAULT nullif(current_setting('loom.uid', true), '')::bigint;

-- ---- scope ---------------------------------------------------------------------------------

CREATE FUNCTION loom_uid() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('loom.uid', true), '')::bigint
$$;

-- True when the session may see project p: unscoped (workers, admins) or a member.
CREATE FUNCTION loom_sees(p text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('loom.scope', true), '') = ''
        OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p AND m.user_id = loom_uid())
$$;

CREATE FUNCTION loom_projects_owned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.owner_id IS NOT NULL THEN
        INSERT INTO project_members (project_id, user_id, added_by)
        VALUES (NEW.id, NEW.owner_id, 'owner') ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER projects_a_owned AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION loom_projects_owned();

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_scope ON projects USING (loom_sees(id) OR owner_id = loom_uid());

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['beads', 'agents', 'runs', 'actions', 'lessons'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (loom_sees(project_id))', t || '_scope', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['events', 'command_logs', 'llm_calls'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (project_id IS NULL OR loom_sees(project_id))',
                       t || '_scope', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['bead_comments', 'messages'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (coalesce(current_setting(''loom.scope'', '
                       'true), '''') = '''' OR EXISTS (SELECT 1 FROM beads b WHERE b.id = bead_id))',
                       t || '_scope', t);
    END LOOP;
END $$;

-- ---- tokens and sessions -------------------------------------------------------------------

CREATE FUNCTION loom_token_hash(token text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to(token, 'UTF8'))
$$;

CREATE FUNCTION loom_user_json(u users) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', u.id, 'username', u.username, 'display_name', u.display_name, 'email', u.email,
        'role', u.role, 'disabled', u.disabled, 'has_password', u.password_hash IS NOT NULL,
        'created_at', u.created_at, 'updated_at', u.updated_at,
        'password_changed_at', u.password_changed_at, 'last_login_at', u.last_login_at,
        'projects', (SELECT coalesce(json_agg(m.project_id ORDER BY m.project_id), '[]')
                     FROM project_members m WHERE m.user_id = u.id))
$$;

-- The start of every authenticated request: checks a session token ("lms_…") or an API key
-- ("lmk_…") and sets the connection's scope.  No row when the credential is unknown, expired,
-- revoked or its user disabled; the scope is then one that sees nothing.
CREATE FUNCTION loom_auth(token text)
RETURNS TABLE (user_id bigint, username text, role text, kind text, csrf_token text,
               permissions text[], credential_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    h bytea := loom_token_hash(token);
    s sessions;
    k api_keys;
    u users;
BEGIN
    PERFORM set_config('loom.scope', 'member', false), set_config('loom.uid', '', false);
    IF left(token, 4) = 'lmk_' THEN
        SELECT * INTO k FROM api_keys a WHERE a.key_hash = h AND a.revoked_at IS NULL
            AND (a.expires_at IS NULL OR a.expires_at > now());
        IF NOT FOUND THEN
            RETURN;
        END IF;
        SELECT * INTO u FROM users x WHERE x.id = k.user_id AND NOT x.disabled;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        UPDATE api_keys SET last_used_at = now()
        WHERE id = k.id AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds');
        kind := 'api_key';
        permissions := k.permissions;
        credential_id := k.id;
    ELSE
        SELECT * INTO s FROM sessions x WHERE x.token_hash = h AND x.revoked_at IS NULL
            AND x.expires_at > now()
            AND x.last_seen_at + make_interval(secs => x.idle_seconds) > now();
        IF NOT FOUND THEN
            RETURN;
        END IF;
        SELECT * INTO u FROM users x WHERE x.id = s.user_id AND NOT x.disabled;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        UPDATE sessions SET last_seen_at = now()
        WHERE id = s.id AND last_seen_at < now() - interval '30 seconds';
        kind := 'session';
        csrf_token := s.csrf_token;
        credential_id := s.id;
    END IF;
    PERFORM set_config('loom.uid', u.id::text, false),
            set_config('loom.scope', CASE WHEN u.role = 'admin' THEN '' ELSE 'member' END, false);
    user_id := u.id;
    username := u.username;
    role := u.role;
    RETURN NEXT;
END $$;

-- Before a password check: the user's hash (NULL when unknown or disabled, so the caller can
-- spend the same time on a dummy check) and, when the user or the address is locked out, the
-- seconds left.
CREATE FUNCTION loom_login_begin(uname text, addr text)
RETURNS TABLE (user_id bigint, password_hash text, retry_after integer)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT ceil(extract(epoch FROM max(t.locked_until) - now()))::int INTO retry_after
    FROM auth_throttle t
    WHERE t.key IN ('ip:' || addr, 'user:' || lower(uname)) AND t.locked_until > now();
    SELECT u.id, u.password_hash INTO user_id, password_hash
    FROM users u WHERE u.username = lower(uname) AND NOT u.disabled;
    RETURN NEXT;
END $$;

-- Counts a failed login against the address and the user name; locks a key out for the
-- window once it reaches its limit.  Returns the seconds of the lock-out now in force (0: none).
CREATE FUNCTION loom_login_failed(uname text, addr text, user_max integer, ip_max integer,
                                  window_s integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    w interval := make_interval(secs => window_s);
    locked integer;
BEGIN
    INSERT INTO auth_throttle AS t (key, failures)
    VALUES ('user:' || lower(left(uname, 100)), 1), ('ip:' || addr, 1)
    ON CONFLICT (key) DO UPDATE
        SET failures = CASE WHEN t.window_start < now() - w THEN 1 ELSE t.failures + 1 END,
            window_start = CASE WHEN t.window_start < now() - w THEN now() ELSE t.window_start END;
    UPDATE auth_throttle SET locked_until = now() + w
    WHERE (key = 'user:' || lower(left(uname, 100)) AND failures >= user_max)
       OR (key = 'ip:' || addr AND failures >= ip_max);
    INSERT INTO audit_log (actor, action, target, outcome, ip, detail)
    VALUES (left(uname, 100), 'login', left(uname, 100), 'failed', addr, '{}');
    SELECT coalesce(ceil(extract(epoch FROM max(locked_until) - now()))::int, 0) INTO locked
    FROM auth_throttle
    WHERE key IN ('ip:' || addr, 'user:' || lower(left(uname, 100))) AND locked_until > now();
    RETURN locked;
END $$;

-- A session for a user whose password (or old session, on refresh) was just checked.
CREATE FUNCTION loom_session_open(uid bigint, token text, csrf text, idle_s integer,
                                  absolute_s integer, addr text, agent text, why text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    s sessions;
    u users;
BEGIN
    INSERT INTO sessions (user_id, token_hash, csrf_token, idle_seconds, expires_at, ip, user_agent)
    VALUES (uid, loom_token_hash(token), csrf, idle_s, now() + make_interval(secs => absolute_s),
            addr, left(coalesce(agent, ''), 300))
    RETURNING * INTO s;
    IF why = 'login' THEN
        UPDATE users SET last_login_at = now() WHERE id = uid RETURNING * INTO u;
        DELETE FROM auth_throttle WHERE key = 'user:' || u.username;
    ELSE
        SELECT * INTO u FROM users WHERE id = uid;
    END IF;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip)
    VALUES (u.username, uid, why, u.username, 'ok', addr);
    RETURN json_build_object('user', loom_user_json(u), 'csrf_token', csrf,
                             'expires_at', s.expires_at, 'idle_seconds', s.idle_seconds);
END $$;

CREATE FUNCTION loom_session_revoke(sid bigint, actor text, addr text, why text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET revoked_at = now() WHERE id = sid AND revoked_at IS NULL;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip)
    VALUES (actor, loom_uid(), why, actor, 'ok', addr);
END $$;

-- A new password; every other session of the user ends.
CREATE FUNCTION loom_password_set(uid bigint, hash text, keep_session bigint, actor text,
                                  addr text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET password_hash = hash, password_changed_at = now(), updated_at = now()
    WHERE id = uid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('user %s not found', uid));
    END IF;
    UPDATE sessions SET revoked_at = now()
    WHERE user_id = uid AND revoked_at IS NULL AND id IS DISTINCT FROM keep_session;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip)
    VALUES (actor, uid, 'password.change', (SELECT username FROM users WHERE id = uid), 'ok', addr);
END $$;

-- ---- users (admin) -------------------------------------------------------------------------

CREATE FUNCTION loom_user_create(p jsonb, hash text, actor text, addr text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    u users;
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE username = lower(p ->> 'username')) THEN
        PERFORM loom_raise('LM409', format('user %s already exists', lower(p ->> 'username')));
    END IF;
    INSERT INTO users (username, display_name, email, role, password_hash, password_changed_at)
    VALUES (lower(p ->> 'username'), coalesce(p ->> 'display_name', ''),
            coalesce(p ->> 'email', ''), coalesce(p ->> 'role', 'user'), hash,
            CASE WHEN hash IS NULL THEN NULL ELSE now() END)
    RETURNING * INTO u;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip, detail)
    VALUES (actor, loom_uid(), 'user.create', u.username, 'ok', addr,
            jsonb_build_object('role', u.role));
    RETURN loom_user_json(u);
END $$;

-- Role, display name, email, disabled and (hash not NULL) a new password.  Disabling ends the
-- user's sessions and keys at once, a new password their sessions; the last enabled admin can
-- be neither demoted nor disabled.
CREATE FUNCTION loom_user_update(uname text, p jsonb, hash text, actor text, addr text)
RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    u users;
BEGIN
    SELECT * INTO u FROM users WHERE username = lower(uname) FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('user %s not found', uname));
    END IF;
    IF u.role = 'admin' AND NOT u.disabled
       AND (coalesce(p ->> 'role', 'admin') <> 'admin' OR coalesce((p ->> 'disabled')::boolean, false))
       AND NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled AND id <> u.id) THEN
        PERFORM loom_raise('LM409', format('%s is the last admin: make another admin first',
                                           u.username));
    END IF;
    UPDATE users SET role = coalesce(p ->> 'role', role),
                     display_name = coalesce(p ->> 'display_name', display_name),
                     email = coalesce(p ->> 'email', email),
                     disabled = coalesce((p ->> 'disabled')::boolean, disabled),
                     updated_at = now()
    WHERE id = u.id RETURNING * INTO u;
    IF hash IS NOT NULL THEN
        UPDATE users SET password_hash = hash, password_changed_at = now() WHERE id = u.id
        RETURNING * INTO u;
    END IF;
    IF u.disabled OR hash IS NOT NULL THEN
        UPDATE sessions SET revoked_at = now() WHERE user_id = u.id AND revoked_at IS NULL;
    END IF;
    IF u.disabled THEN
        UPDATE api_keys SET revoked_at = now() WHERE user_id = u.id AND revoked_at IS NULL;
    END IF;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip, detail)
    VALUES (actor, loom_uid(), 'user.update', u.username, 'ok', addr,
            p - 'password' || jsonb_build_object('password_changed', hash IS NOT NULL));
    RETURN loom_user_json(u);
END $$;

-- The first admin, for `make up`: created when no admin exists yet.  True when created.
CREATE FUNCTION loom_admin_bootstrap(hash text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE role = 'admin') THEN
        RETURN false;
    END IF;
    INSERT INTO users (username, display_name, role, password_hash, password_changed_at)
    VALUES ('admin', 'Administrator', 'admin', hash, now())
    ON CONFLICT (username) DO UPDATE SET role = 'admin', password_hash = hash, disabled = false;
    INSERT INTO audit_log (actor, action, target, outcome)
    VALUES ('loom-migrate', 'user.create', 'admin', 'ok');
    RETURN true;
END $$;

-- ---- API keys ------------------------------------------------------------------------------

CREATE FUNCTION loom_api_key_json(k api_keys) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', k.id, 'name', k.name, 'prefix', k.prefix, 'user_id', k.user_id,
        'permissions', k.permissions, 'created_at', k.created_at, 'expires_at', k.expires_at,
        'last_used_at', k.last_used_at, 'revoked_at', k.revoked_at,
        'active', k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))
$$;

CREATE FUNCTION loom_api_key_create(uid bigint, p jsonb, token text, actor text, addr text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    k api_keys;
BEGIN
    INSERT INTO api_keys (user_id, name, prefix, key_hash, permissions, expires_at)
    VALUES (uid, p ->> 'name', left(token, 12), loom_token_hash(token),
            CASE WHEN p ? 'permissions' THEN ARRAY(SELECT jsonb_array_elements_text(p -> 'permissions')) END,
            CASE WHEN p ? 'expires_in_days'
                 THEN now() + make_interval(days => (p ->> 'expires_in_days')::int) END)
    RETURNING * INTO k;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip, detail)
    VALUES (actor, uid, 'api_key.create', k.prefix, 'ok', addr, jsonb_build_object('name', k.name));
    RETURN loom_api_key_json(k);
END $$;

-- Revokes key kid of user uid (any user's when admin).
CREATE FUNCTION loom_api_key_revoke(kid bigint, uid bigint, admin boolean, actor text, addr text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    k api_keys;
BEGIN
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
    WHERE id = kid AND (user_id = uid OR admin) RETURNING * INTO k;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('API key %s not found', kid));
    END IF;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip)
    VALUES (actor, uid, 'api_key.revoke', k.prefix, 'ok', addr);
    RETURN loom_api_key_json(k);
END $$;

-- ---- project membership --------------------------------------------------------------------

CREATE FUNCTION loom_member_json(pid text) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object('user_id', u.id, 'username', u.username,
                                               'role', u.role, 'added_by', m.added_by,
                                               'added_at', m.added_at,
                                               'owner', p.owner_id = u.id)
                             ORDER BY u.username), '[]')
    FROM project_members m JOIN users u ON u.id = m.user_id JOIN projects p ON p.id = m.project_id
    WHERE m.project_id = pid
$$;

-- Adds (add = true) or removes a member.  Only an admin or the project's owner may.
CREATE FUNCTION loom_member_set(pid text, uname text, add boolean, actor text, addr text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    p projects;
    u users;
BEGIN
    SELECT * INTO p FROM projects WHERE id = pid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    IF coalesce(current_setting('loom.scope', true), '') <> ''
       AND p.owner_id IS DISTINCT FROM loom_uid() THEN
        PERFORM loom_raise('LM403', format('only an admin or the owner of %s changes its members',
                                           pid));
    END IF;
    SELECT * INTO u FROM users WHERE username = lower(uname);
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('user %s not found', uname));
    END IF;
    IF add THEN
        INSERT INTO project_members (project_id, user_id, added_by)
        VALUES (pid, u.id, actor) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM project_members WHERE project_id = pid AND user_id = u.id;
        IF NOT FOUND THEN
            PERFORM loom_raise('LM404', format('%s is not a member of %s', u.username, pid));
        END IF;
    END IF;
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip, detail)
    VALUES (actor, loom_uid(), CASE WHEN add THEN 'member.add' ELSE 'member.remove' END, pid,
            'ok', addr, jsonb_build_object('user', u.username));
    RETURN loom_member_json(pid);
END $$;

CREATE FUNCTION loom_audit(actor text, action text, target text, outcome text, addr text,
                           detail jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (actor, user_id, action, target, outcome, ip, detail)
    VALUES (actor, loom_uid(), action, coalesce(target, ''), outcome, coalesce(addr, ''),
            coalesce(detail, '{}'))
$$;
