-- 015_pair: pair programming, people talking into a running loop, project memory, and lessons
-- that merge their repeats and fade.
--
--   pair_sessions / pair_messages  a person's conversation with an agent about a bead
--                       (POST /api/v1/pair), kept 7 days after its last use; ids "pair_<hex>"
--   injections          messages a person sent into a bead's action loop
--                       (POST /api/v1/conversations/{bead}/inject); the executor takes the
--                       pending ones before its next LLM call (loom_injections_take)
--   project_memory      what a project knows about itself (conventions, build system, GitHub,
--                       failures, lessons): (project, category, key) → value with a confidence;
--                       set by people (PUT /projects/{id}/memory/...) and agents (remember)
--   lessons             gain a fingerprint (the same failure is one row, counted), a relevance
--                       that halves every 7 days unseen, and last_seen_at
--   llm_calls.source    run (the action loop), pair, or proxy (/api/v1/chat/completions)
--
-- Every new table holding project rows has row-level security like 008_auth.sql.  Expired pair
-- sessions, old injections and faded lessons are pruned by loom-ralph (loom_pair_prune).

-- ---- pair programming ----------------------------------------------------------------------

CREATE TABLE pair_sessions (
    id          text PRIMARY KEY DEFAULT 'pair_' || replace(gen_random_uuid()::text, '-', ''),
    bead_id     text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     bigint REFERENCES users (id) ON DELETE CASCADE,
    username    text NOT NULL,
    agent_id    text REFERENCES agents (id) ON DELETE SET NULL,
    agent_name  text NOT NULL DEFAULT '',
    tokens_used bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL DEFAULT now() + interval '7 days'
);
CREATE INDEX pair_sessions_bead_idx ON pair_sessions (bead_id, user_id);
CREATE INDEX pair_sessions_project_idx ON pair_sessions (project_id, updated_at);
CREATE INDEX pair_sessions_expiry_idx ON pair_sessions (expires_at);

CREATE TABLE pair_messages (
    id         bigserial PRIMARY KEY,
    session_id text NOT NULL REFERENCES pair_sessions (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    role       text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, seq)
);

CREATE TABLE injections (
    id          bigserial PRIMARY KEY,
    bead_id     text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    run_id      bigint REFERENCES runs (id) ON DELETE SET NULL, -- live when sent; then the taker
    content     text NOT NULL CHECK (length(content) BETWEEN 1 AND 65536),
    author      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    consumed_at timestamptz
);
CREATE INDEX injections_pending_idx ON injections (bead_id, id) WHERE consumed_at IS NULL;
CREATE INDEX injections_bead_idx ON injections (bead_id, id);

CREATE TABLE project_memory (
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    category    text NOT NULL CHECK (category IN ('convention', 'build_system', 'github',
                                                   'failure', 'lesson')),
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    value       text NOT NULL CHECK (length(value) BETWEEN 1 AND 10000),
    confidence  real NOT NULL DEFAULT 0.5 CHECK (confidence BETWEEN 0 AND 1),
    source_bead text,
    updated_by  text NOT NULL DEFAULT 'system',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, category, key)
);
CREATE INDEX project_memory_rank_idx ON project_memory (project_id, confidence DESC, updated_at DESC);

ALTER TABLE llm_calls
    ADD COLUMN source text NOT NULL DEFAULT 'run' CHECK (source IN ('run', 'pair', 'proxy'));

-- ---- lessons: one row per distinct failure, counted, fading ---------------------------------

ALTER TABLE lessons
    ADD COLUMN fingerprint  text,
    ADD COLUMN occurrences  integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    ADD COLUMN relevance    real NOT NULL DEFAULT 1 CHECK (relevance BETWEEN 0 AND 1),
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();

-- The dedup key of a lesson: case, digits (line numbers, timings, ids) and spacing do not count.
CREATE FUNCTION loom_lesson_fingerprint(category text, key text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT md5(category || ':' || left(regexp_replace(regexp_replace(lower(coalesce(key, '')),
                                                                     '[0-9]+', '#', 'g'),
                                                      '\s+', ' ', 'g'), 500))
$$;

UPDATE lessons l SET last_seen_at = l.created_at,
    fingerprint = loom_lesson_fingerprint(l.category, l.title)
                  || CASE WHEN x.n > 1 THEN '-' || l.id ELSE '' END
FROM (SELECT id, row_number() OVER (PARTITION BY project_id, category,
                                    loom_lesson_fingerprint(category, title) ORDER BY id) AS n
      FROM lessons) x
WHERE x.id = l.id;
ALTER TABLE lessons ALTER COLUMN fingerprint SET NOT NULL;
CREATE UNIQUE INDEX lessons_fingerprint_idx ON lessons (project_id, category, fingerprint);

-- A plain INSERT (no fingerprint: code that predates loom_lesson_record) still works; its row
-- gets a fingerprint of its own, so it is never merged with another.
CREATE FUNCTION loom_lessons_fingerprint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.fingerprint := loom_lesson_fingerprint(NEW.category, NEW.title) || '-' || NEW.id;
    RETURN NEW;
END $$;
CREATE TRIGGER lessons_fingerprint BEFORE INSERT ON lessons
    FOR EACH ROW WHEN (NEW.fingerprint IS NULL) EXECUTE FUNCTION loom_lessons_fingerprint();

-- Relevance now: the stored relevance halved for every 7 days since the lesson was last seen.
CREATE FUNCTION loom_lesson_relevance(rel real, seen timestamptz) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT rel * power(0.5, greatest(extract(epoch FROM now() - seen), 0) / 604800.0)
$$;

-- Records a lesson; the same (category, key) in the project again counts an occurrence and makes
-- it fully relevant once more instead of adding a row.  Returns the lesson's id.
CREATE FUNCTION loom_lesson_record(pid text, cat text, ttl text, det text, key text, bead text,
                                   agent text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    lid bigint;
BEGIN
    INSERT INTO lessons AS l (project_id, category, title, detail, source_bead_id,
                              source_agent_id, fingerprint)
    VALUES (pid, cat, left(ttl, 300), left(coalesce(det, ''), 2000), bead, nullif(agent, ''),
            loom_lesson_fingerprint(cat, coalesce(key, ttl)))
    ON CONFLICT (project_id, category, fingerprint) DO UPDATE
        SET occurrences = l.occurrences + 1, relevance = 1, last_seen_at = now(),
            title = EXCLUDED.title, detail = EXCLUDED.detail,
            source_bead_id = EXCLUDED.source_bead_id, source_agent_id = EXCLUDED.source_agent_id
    RETURNING id INTO lid;
    RETURN lid;
END $$;

CREATE OR REPLACE FUNCTION loom_lesson_json(l lessons) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', l.id, 'project_id', l.project_id, 'category', l.category,
                             'title', l.title, 'detail', l.detail,
                             'source_bead_id', l.source_bead_id,
                             'source_agent_id', l.source_agent_id, 'created_at', l.created_at,
                             'occurrences', l.occurrences, 'last_seen_at', l.last_seen_at,
                             'relevance', round(loom_lesson_relevance(l.relevance,
                                                                      l.last_seen_at)::numeric, 3))
$$;

-- ---- row-level security (as in 008_auth.sql) -------------------------------------------------

ALTER TABLE pair_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY pair_sessions_scope ON pair_sessions USING (loom_sees(project_id));
ALTER TABLE injections ENABLE ROW LEVEL SECURITY;
CREATE POLICY injections_scope ON injections USING (loom_sees(project_id));
ALTER TABLE project_memory ENABLE ROW LEVEL SECURITY;
CREATE POLICY project_memory_scope ON project_memory USING (loom_sees(project_id));
ALTER TABLE pair_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY pair_messages_scope ON pair_messages
    USING (coalesce(current_setting('loom.scope', true), '') = ''
           OR EXISTS (SELECT 1 FROM pair_sessions s WHERE s.id = session_id));

-- ---- JSON shapes -------------------------------------------------------------------------------

CREATE FUNCTION loom_pair_message_json(m pair_messages) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', m.id, 'session_id', m.session_id, 'seq', m.seq,
                             'role', m.role, 'content', m.content, 'created_at', m.created_at)
$$;

CREATE FUNCTION loom_injection_json(i injections) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', i.id, 'bead_id', i.bead_id, 'project_id', i.project_id,
                             'run_id', i.run_id, 'content', i.content, 'author', i.author,
                             'status', CASE WHEN i.consumed_at IS NULL THEN 'pending'
                                            ELSE 'delivered' END,
                             'created_at', i.created_at, 'consumed_at', i.consumed_at)
$$;

CREATE FUNCTION loom_memory_json(m project_memory) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('project_id', m.project_id, 'category', m.category, 'key', m.key,
                             'value', m.value, 'confidence', round(m.confidence::numeric, 3),
                             'source_bead', m.source_bead, 'updated_by', m.updated_by,
                             'created_at', m.created_at, 'updated_at', m.updated_at)
$$;

-- A conversation as listed: the bead's action loop (id = the bead id) or a pair session.
CREATE FUNCTION loom_pair_session_json(s pair_sessions, title text, n bigint) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', s.id, 'kind', 'pair', 'bead_id', s.bead_id,
                             'project_id', s.project_id, 'title', title, 'user', s.username,
                             'agent_id', s.agent_id, 'agent_name', s.agent_name,
                             'message_count', n, 'tokens_used', s.tokens_used,
                             'live_run_id', NULL, 'created_at', s.created_at,
                             'updated_at', s.updated_at, 'expires_at', s.expires_at)
$$;

-- ---- pair sessions ---------------------------------------------------------------------------

-- What a pair turn needs, in one call: the bead (LM404 when unseen), the agent — the one asked
-- for, else the one this user last paired with on this bead, else the bead's assignee, else one
-- on a healthy provider, not paused, an engineering manager first — with a provider (LM409 when
-- no agent of the project has one),
-- its persona and provider, and whether a run of the bead is live.
CREATE FUNCTION loom_pair_target(bid text, aid text, uid bigint)
RETURNS TABLE (project_id text, title text, description text, agent_id text, agent_name text,
               persona_description text, instructions text, provider_id text, endpoint text,
               api_key_sealed text, model text, provider_status text, context_window integer,
               live_run boolean, git_repo text, default_branch text, allow_network boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b beads;
    a agents;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    IF aid IS NOT NULL THEN
        SELECT * INTO a FROM agents x WHERE x.id = aid AND x.project_id = b.project_id;
        IF NOT FOUND THEN
            PERFORM loom_raise('LM404', format('agent %s not found in project %s', aid,
                                               b.project_id));
        END IF;
        IF a.provider_id IS NULL THEN
            PERFORM loom_raise('LM409', format('agent %s has no provider to talk with', aid));
        END IF;
    ELSE
        SELECT x.* INTO a FROM agents x
        LEFT JOIN providers p ON p.id = x.provider_id
        WHERE x.project_id = b.project_id AND x.provider_id IS NOT NULL
        ORDER BY coalesce(x.id = (SELECT s.agent_id FROM pair_sessions s
                                  WHERE s.bead_id = bid AND s.user_id IS NOT DISTINCT FROM uid
                                    AND s.expires_at > now() ORDER BY s.updated_at DESC LIMIT 1),
                          false) DESC,
                 coalesce(x.id = b.assigned_to, false) DESC,
                 coalesce(p.status = 'healthy', false) DESC, (x.status <> 'paused') DESC,
                 (x.persona_name = 'engineering-manager') DESC, x.created_at, x.id
        LIMIT 1;
        IF NOT FOUND THEN
            PERFORM loom_raise('LM409', format('no agent of project %s has a provider to talk '
                                               'with; give one a provider first', b.project_id));
        END IF;
    END IF;
    RETURN QUERY
    SELECT b.project_id, b.title, b.description, a.id, a.name, pe.description, pe.instructions,
           pv.id, pv.endpoint, pv.api_key_sealed, pv.model, pv.status,
           coalesce(pv.context_window, 32768),
           EXISTS (SELECT 1 FROM runs r WHERE r.bead_id = bid AND r.state IN ('queued', 'running')),
           pr.git_repo, pr.default_branch,
           coalesce(pr.context ->> 'allow_network' IN ('true', '1', 'yes'), false)
    FROM providers pv, personas pe, projects pr
    WHERE pv.id = a.provider_id AND pe.name = a.persona_name AND pr.id = b.project_id;
END $$;

CREATE FUNCTION loom_pair_message_add(sid text, r text, body text) RETURNS integer
LANGUAGE sql AS $$
    INSERT INTO pair_messages (session_id, seq, role, content)
    SELECT sid, coalesce(max(seq), 0) + 1, r, body FROM pair_messages WHERE session_id = sid
    RETURNING seq
$$;

-- A turn begins: this user's live session with the agent on the bead (a new one, whose first
-- message is the system prompt sys, when there is none), 7 more days to live, and the person's
-- message.  {session_id, message_count, created}.
CREATE FUNCTION loom_pair_open(bid text, aid text, uid bigint, uname text, sys text, msg text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    s pair_sessions;
    made boolean := false;
    n integer;
BEGIN
    SELECT * INTO s FROM pair_sessions x
    WHERE x.bead_id = bid AND x.user_id IS NOT DISTINCT FROM uid AND x.agent_id = aid
      AND x.expires_at > now()
    ORDER BY x.updated_at DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO pair_sessions (bead_id, project_id, user_id, username, agent_id, agent_name)
        SELECT b.id, b.project_id, uid, uname, a.id, a.name
        FROM beads b, agents a WHERE b.id = bid AND a.id = aid
        RETURNING * INTO s;
        PERFORM loom_pair_message_add(s.id, 'system', sys);
        made := true;
        PERFORM loom_event('pair.started', s.project_id, bid, uname,
                           jsonb_build_object('session_id', s.id, 'agent_id', aid));
    END IF;
    UPDATE pair_sessions SET updated_at = now(), expires_at = now() + interval '7 days'
    WHERE id = s.id;
    n := loom_pair_message_add(s.id, 'user', msg);
    RETURN json_build_object('session_id', s.id, 'message_count', n, 'created', made);
END $$;

-- The agent's answer to a turn, and what it cost.
CREATE FUNCTION loom_pair_reply(sid text, body text, tokens bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    n := loom_pair_message_add(sid, 'assistant', body);
    UPDATE pair_sessions SET tokens_used = tokens_used + coalesce(tokens, 0), updated_at = now()
    WHERE id = sid;
    RETURN n;
END $$;

-- ---- injections ------------------------------------------------------------------------------

-- A person's message for the bead's live run (queued or running), taken at its next iteration.
CREATE FUNCTION loom_inject(bid text, body text, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    rid bigint;
    i injections;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    SELECT r.id INTO rid FROM runs r WHERE r.bead_id = bid AND r.state IN ('queued', 'running');
    IF rid IS NULL THEN
        PERFORM loom_raise('LM409', format('no run of bead %s is live: nothing would read the '
                                           'message; comment on the bead instead', bid));
    END IF;
    INSERT INTO injections (bead_id, project_id, run_id, content, author)
    VALUES (bid, b.project_id, rid, body, actor) RETURNING * INTO i;
    PERFORM loom_event('conversation.injected', b.project_id, bid, actor,
                       jsonb_build_object('injection_id', i.id, 'run_id', rid,
                                          'content', left(body, 500)));
    RETURN loom_injection_json(i);
END $$;

-- The executor, before an LLM call: the bead's pending messages, oldest first, each stored in
-- the conversation as a user message ("A person (name) says: …") and marked delivered, in this
-- one transaction.  Returns the stored texts.
CREATE FUNCTION loom_injections_take(rid bigint) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    i injections;
    txt text;
BEGIN
    SELECT * INTO r FROM runs WHERE id = rid;
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM injections x WHERE x.bead_id = r.bead_id
                                AND x.consumed_at IS NULL) THEN
        RETURN;
    END IF;
    FOR i IN SELECT * FROM injections x WHERE x.bead_id = r.bead_id AND x.consumed_at IS NULL
             ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
        txt := format('A person (%s) says: %s', i.author, i.content);
        PERFORM loom_message_add(r.bead_id, rid, 'user', txt);
        UPDATE injections SET consumed_at = now(), run_id = rid WHERE id = i.id;
        PERFORM loom_event('conversation.delivered', r.project_id, r.bead_id, i.author,
                           jsonb_build_object('injection_id', i.id, 'run_id', rid,
                                              'iteration', r.iterations));
        RETURN NEXT txt;
    END LOOP;
END $$;

-- ---- conversations: reset and delete ----------------------------------------------------------

-- Clears a conversation.  A bead's (the action loop's; refused while a run of it is live) loses
-- its messages, and with remove also its pending injections; a pair session keeps its system
-- prompt, or with remove is deleted.  Returns the conversation's id.
CREATE FUNCTION loom_conversation_clear(cid text, remove boolean, actor text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    s pair_sessions;
BEGIN
    IF left(cid, 5) = 'pair_' THEN
        SELECT * INTO s FROM pair_sessions WHERE id = cid FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM loom_raise('LM404', format('conversation %s not found', cid));
        END IF;
        IF remove THEN
            DELETE FROM pair_sessions WHERE id = cid;
        ELSE
            DELETE FROM pair_messages WHERE session_id = cid AND role <> 'system';
            UPDATE pair_sessions SET updated_at = now() WHERE id = cid;
        END IF;
        PERFORM loom_event(CASE WHEN remove THEN 'conversation.deleted' ELSE 'conversation.reset' END,
                           s.project_id, s.bead_id, actor,
                           jsonb_build_object('conversation_id', cid, 'kind', 'pair'));
        RETURN cid;
    END IF;
    SELECT * INTO b FROM beads WHERE id = cid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('conversation %s not found', cid));
    END IF;
    IF EXISTS (SELECT 1 FROM runs r WHERE r.bead_id = cid AND r.state IN ('queued', 'running')) THEN
        PERFORM loom_raise('LM409', format('a run of bead %s is live and uses this conversation; '
                                           'cancel the run first', cid));
    END IF;
    DELETE FROM messages WHERE bead_id = cid;
    IF remove THEN
        DELETE FROM injections WHERE bead_id = cid AND consumed_at IS NULL;
    END IF;
    PERFORM loom_event(CASE WHEN remove THEN 'conversation.deleted' ELSE 'conversation.reset' END,
                       b.project_id, cid, actor,
                       jsonb_build_object('conversation_id', cid, 'kind', 'bead'));
    RETURN cid;
END $$;

-- ---- project memory --------------------------------------------------------------------------

-- Sets (creates or replaces) a memory entry; checks what the API checks, for agents' remember.
CREATE FUNCTION loom_memory_put(pid text, cat text, k text, val text, conf real, bead text,
                                actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    m project_memory;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM projects WHERE id = pid) THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    IF cat IS NULL OR cat NOT IN ('convention', 'build_system', 'github', 'failure', 'lesson') THEN
        PERFORM loom_raise('LM400', format('category: must be one of convention, build_system, '
                                           'github, failure, lesson (not %s)',
                                           coalesce(left(cat, 60), 'null')));
    END IF;
    IF k IS NULL OR length(k) NOT BETWEEN 1 AND 200 OR k ~ '[[:cntrl:]]' THEN
        PERFORM loom_raise('LM400', 'key: must be 1 to 200 characters without control characters');
    END IF;
    IF val IS NULL OR length(val) NOT BETWEEN 1 AND 10000 THEN
        PERFORM loom_raise('LM400', 'value: must be 1 to 10000 characters');
    END IF;
    IF conf IS NULL OR conf < 0 OR conf > 1 THEN
        PERFORM loom_raise('LM400', 'confidence: must be a number from 0 to 1');
    END IF;
    INSERT INTO project_memory AS x (project_id, category, key, value, confidence, source_bead,
                                     updated_by)
    VALUES (pid, cat, k, val, conf, bead, coalesce(actor, 'system'))
    ON CONFLICT (project_id, category, key) DO UPDATE
        SET value = EXCLUDED.value, confidence = EXCLUDED.confidence,
            source_bead = coalesce(EXCLUDED.source_bead, x.source_bead),
            updated_by = EXCLUDED.updated_by, updated_at = now()
    RETURNING * INTO m;
    PERFORM loom_event('memory.updated', pid, bead, actor,
                       jsonb_build_object('category', cat, 'key', k,
                                          'confidence', round(conf::numeric, 3)));
    RETURN loom_memory_json(m);
END $$;

CREATE FUNCTION loom_memory_delete(pid text, cat text, k text, actor text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM projects WHERE id = pid) THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    DELETE FROM project_memory WHERE project_id = pid AND category = cat AND key = k;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s has no memory %s/%s', pid, cat, left(k, 200)));
    END IF;
    PERFORM loom_event('memory.deleted', pid, NULL, actor,
                       jsonb_build_object('category', cat, 'key', k));
    RETURN true;
END $$;

-- ---- LLM calls outside runs ------------------------------------------------------------------

-- After loom_llm_call_record (which fills bead, agent, project and provider from the run): the
-- same for a call that belongs to no run (pair, proxy), from the record c, and its source.
CREATE FUNCTION loom_llm_call_attach(cid bigint, c jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    UPDATE llm_calls SET source = coalesce(c ->> 'source', source),
                         bead_id = coalesce(bead_id, c ->> 'bead_id'),
                         agent_id = coalesce(agent_id, c ->> 'agent_id'),
                         project_id = coalesce(project_id, c ->> 'project_id'),
                         provider_id = coalesce(provider_id, c ->> 'provider_id')
    WHERE id = cid;
    RETURN cid;
END $$;

-- ---- loom-ralph: pruning ---------------------------------------------------------------------

-- Expired pair sessions, injections delivered (or left undelivered) over 7 days ago, and lessons
-- whose relevance has faded below 2 % (about 40 days unseen).  Returns how many rows went.
CREATE FUNCTION loom_pair_prune() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
    k integer;
BEGIN
    DELETE FROM pair_sessions WHERE expires_at < now();
    GET DIAGNOSTICS k = ROW_COUNT;
    n := n + k;
    DELETE FROM injections WHERE created_at < now() - interval '7 days';
    GET DIAGNOSTICS k = ROW_COUNT;
    n := n + k;
    DELETE FROM lessons WHERE loom_lesson_relevance(relevance, last_seen_at) < 0.02;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN n + k;
END $$;
