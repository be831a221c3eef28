-- 016_rls_roles: row-level security that costs nothing where nobody is scoped.
--
-- 008_auth FORCEd row-level security on the project-owned tables so that it applied to the
-- owning role everything connects as, with policies that let an unscoped session through.  The
-- policy is then evaluated on every row every worker touches: make bench-dispatch measured a
-- claim + finish at twice the cost (0.36 + 0.62 ms unforced against 0.59 + 1.29 ms forced).
-- Now the policies apply only to the role loom_api, which loom-api takes for the requests of
-- non-admin users (loom_auth() below, and on every new connection before it).  The owner --
-- workers, loom-sse, loom-migrate, and loom-api for an admin -- is not subject to row
-- security at all, as PostgreSQL has it without FORCE.
--
-- loom_api is a NOLOGIN role the connecting user is a member of.  `make up` and the test
-- clusters create it as the superuser; on a database of your own, run once as a superuser:
--     CREATE ROLE loom_api NOLOGIN; GRANT loom_api TO <the user Loom connects as>;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loom_api') THEN
        BEGIN
            CREATE ROLE loom_api NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'the role loom_api is missing and % may not create it; as a superuser run: CREATE ROLE loom_api NOLOGIN; GRANT loom_api TO %;',
                current_user, current_user;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'loom_api', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT loom_api TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION '% is not a member of loom_api; as a superuser run: GRANT loom_api TO %;',
                current_user, current_user;
        END;
    END IF;
END $$;

GRANT USAGE, CREATE ON SCHEMA public TO loom_api;
GRANT ALL ON ALL TABLES IN SCHEMA public TO loom_api;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO loom_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO loom_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO loom_api;

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relforcerowsecurity LOOP
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;

-- As in 008_auth, but the session takes the role loom_api first, and an admin leaves it.
CREATE OR REPLACE FUNCTION loom_auth(token text)
RETURNS TABLE (user_id bigint, username text, role text, kind text, csrf_token text,
               permissions text[], credential_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    h bytea := loom_token_hash(token);
    s sessions;
    k api_keys;
    u users;
BEGIN
    -- until the credential checks out: the restricted role, seeing no project
    PERFORM set_config('role', 'loom_api', false), set_config('loom.scope', 'member', false),
            set_config('loom.uid', '', false);
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
    IF u.role = 'admin' THEN
        PERFORM set_config('role', 'none', false); -- back to the owner: row security off
    END IF;
    user_id := u.id;
    username := u.username;
    role := u.role;
    RETURN NEXT;
END $$;


-- The events doorbell: one NOTIFY per transaction, not one per event.  Readers never used the
-- payload (loom-sse reads every row after the last id it has), and identical notifications of
-- one transaction are delivered once, so an empty payload from a statement-level trigger rings
-- once however many events a change writes.  A finished run writes five: this took a quarter
-- off a claim + finish under four executors (make bench-dispatch).
CREATE OR REPLACE FUNCTION loom_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loom_events', '');
    RETURN NULL;
END $$;

DROP TRIGGER events_notify ON events;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION loom_events_notify();
