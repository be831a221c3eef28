-- 002_api: the write paths of the bead/project API as functions.
--
-- Each API request that changes something is ONE call to one of these functions, so it is one
-- transaction: the change, its dependency edges, its events row and the NOTIFY commit together
-- or not at all, in one round trip.  The C layer has already checked the request's shape (types,
-- enums, lengths, unknown fields); these functions check what needs the database: that referenced
-- objects exist, state transitions, dependency cycles.  Errors use Loom's SQLSTATEs:
--   LM400 invalid request   LM404 named object not found   LM409 conflicts with current state
-- and their message is shown to the client as-is, so it names the problem.

CREATE FUNCTION loom_raise(code text, msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg;
END $$;

-- Helpers that run statements are PL/pgSQL, not SQL: PL/pgSQL caches their plans per session,
-- while a SQL function that cannot be inlined is planned again on every call.
CREATE FUNCTION loom_event(etype text, proj text, bead text, actor text, payload jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
BEGIN
    INSERT INTO events (type, project_id, bead_id, actor, payload)
    VALUES (etype, proj, bead, coalesce(actor, 'system'), coalesce(payload, '{}'))
    RETURNING id INTO eid;
    RETURN eid;
END $$;

-- ---- JSON views --------------------------------------------------------------------------

-- A bead as the API shows it: one row, no subqueries, so the planner inlines it anywhere.
CREATE FUNCTION loom_bead_json(b beads) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', b.id, 'type', b.type, 'title', b.title, 'description', b.description,
        'status', b.status, 'priority', b.priority, 'project_id', b.project_id,
        'assigned_to', b.assigned_to, 'blocked_by', b.blocked_by, 'blocks', b.blocks,
        'related_to', b.related_to, 'parent', b.parent, 'children', b.children,
        'tags', b.tags, 'context', b.context,
        'due_date', b.due_date, 'milestone_id', b.milestone_id,
        'estimated_time', b.estimated_time,
        'created_at', b.created_at, 'updated_at', b.updated_at, 'closed_at', b.closed_at)
$$;

-- The bead with this id as JSON (NULL when there is none), re-read after links changed.
CREATE FUNCTION loom_bead_json(bid text) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT loom_bead_json(b) FROM beads b WHERE b.id = bid);
END $$;

CREATE FUNCTION loom_bead_seq(pid text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'loom_bead_seq_' || md5(pid)
$$;

CREATE FUNCTION loom_project_json(p projects) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id, 'name', p.name, 'description', p.description, 'git_repo', p.git_repo,
        'branch', p.branch, 'beads_path', p.beads_path, 'bead_prefix', p.bead_prefix,
        'parent_id', p.parent_id, 'status', p.status, 'is_perpetual', p.is_perpetual,
        'is_sticky', p.is_sticky, 'git_strategy', p.git_strategy,
        'git_auth_method', p.git_auth_method, 'use_worktrees', p.use_worktrees,
        'use_container', p.use_container, 'github_repo', p.github_repo,
        'default_branch', p.default_branch, 'context', p.context,
        'created_at', p.created_at, 'updated_at', p.updated_at, 'closed_at', p.closed_at)
$$;

CREATE FUNCTION loom_comment_json(c bead_comments) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', c.id, 'bead_id', c.bead_id, 'parent_id', c.parent_id, 'author_id', c.author_id,
        'author_username', c.author_username, 'content', c.content, 'edited', c.edited,
        'deleted', c.deleted, 'created_at', c.created_at, 'updated_at', c.updated_at)
$$;

CREATE FUNCTION loom_event_json(e events) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', e.id, 'type', e.type, 'timestamp', e.created_at, 'source', e.actor,
        'project_id', e.project_id, 'bead_id', e.bead_id, 'data', e.payload)
$$;

-- ---- dependencies ------------------------------------------------------------------------

-- Beads that keep bid from being ready: its own blockers and those of every ancestor, that are
-- not closed.
CREATE FUNCTION loom_open_blockers(bid text) RETURNS text[] LANGUAGE sql STABLE AS $$
    WITH RECURSIVE anc(id) AS (
        SELECT bid
        UNION
        SELECT d.depends_on_id FROM bead_deps d JOIN anc ON d.bead_id = anc.id
        WHERE d.kind = 'parent')
    SELECT coalesce(array_agg(DISTINCT x.id ORDER BY x.id), '{}')
    FROM anc JOIN bead_deps d ON d.bead_id = anc.id AND d.kind = 'blocks'
             JOIN beads x ON x.id = d.depends_on_id
    WHERE x.status <> 'closed'
$$;

-- Adds the edge "u waits on v" (kind blocks or parent) unless it closes a cycle.
CREATE FUNCTION loom_dep_add(u text, v text, k text, field text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF u = v THEN
        PERFORM loom_raise('LM400', format('%s: bead %s cannot depend on itself', field, u));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM beads WHERE id = v) THEN
        PERFORM loom_raise('LM400', format('%s: bead %s does not exist', field, v));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM beads WHERE id = u) THEN
        PERFORM loom_raise('LM400', format('%s: bead %s does not exist', field, u));
    END IF;
    IF k <> 'related' AND EXISTS (
        WITH RECURSIVE r(id) AS (
            SELECT v
            UNION
            SELECT d.depends_on_id FROM bead_deps d JOIN r ON d.bead_id = r.id
            WHERE d.kind IN ('blocks', 'parent'))
        SELECT 1 FROM r WHERE id = u)
    THEN
        PERFORM loom_raise('LM409', format(
            '%s: dependency cycle: %s %s %s, but %s already waits on %s', field, u,
            CASE k WHEN 'parent' THEN 'would be a child of' ELSE 'would be blocked by' END,
            v, v, u));
    END IF;
    IF k = 'related' THEN
        INSERT INTO bead_deps (bead_id, depends_on_id, kind)
        VALUES (least(u, v), greatest(u, v), 'related') ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO bead_deps (bead_id, depends_on_id, kind) VALUES (u, v, k)
        ON CONFLICT DO NOTHING;
    END IF;
END $$;

CREATE FUNCTION loom_json_ids(p jsonb, field text) RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN ARRAY(SELECT DISTINCT x FROM jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(p -> field) = 'array' THEN p -> field ELSE '[]' END) AS x);
END $$;

-- Replaces the link sets named in p (blocked_by, blocks, parent, children, related_to) of bid.
-- Returns true when any link field was present.  Dependency changes are serialised by an
-- advisory lock so that two concurrent requests cannot build a cycle between them.
CREATE FUNCTION loom_bead_set_links(bid text, p jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    x text;
BEGIN
    IF NOT (p ?| ARRAY['blocked_by', 'blocks', 'parent', 'children', 'related_to']) THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(7606203, 1);
    IF p ? 'blocked_by' THEN
        DELETE FROM bead_deps WHERE bead_id = bid AND kind = 'blocks';
        FOREACH x IN ARRAY loom_json_ids(p, 'blocked_by') LOOP
            PERFORM loom_dep_add(bid, x, 'blocks', 'blocked_by');
        END LOOP;
    END IF;
    IF p ? 'blocks' THEN
        DELETE FROM bead_deps WHERE depends_on_id = bid AND kind = 'blocks';
        FOREACH x IN ARRAY loom_json_ids(p, 'blocks') LOOP
            PERFORM loom_dep_add(x, bid, 'blocks', 'blocks');
        END LOOP;
    END IF;
    IF p ? 'parent' THEN
        DELETE FROM bead_deps WHERE bead_id = bid AND kind = 'parent';
        IF jsonb_typeof(p -> 'parent') = 'string' AND p ->> 'parent' <> '' THEN
            PERFORM loom_dep_add(bid, p ->> 'parent', 'parent', 'parent');
        END IF;
    END IF;
    IF p ? 'children' THEN
        DELETE FROM bead_deps WHERE depends_on_id = bid AND kind = 'parent';
        FOREACH x IN ARRAY loom_json_ids(p, 'children') LOOP
            DELETE FROM bead_deps WHERE bead_id = x AND kind = 'parent';
            PERFORM loom_dep_add(x, bid, 'parent', 'children');
        END LOOP;
    END IF;
    IF p ? 'related_to' THEN
        DELETE FROM bead_deps WHERE (bead_id = bid OR depends_on_id = bid) AND kind = 'related';
        FOREACH x IN ARRAY loom_json_ids(p, 'related_to') LOOP
            PERFORM loom_dep_add(bid, x, 'related', 'related_to');
        END LOOP;
    END IF;
    RETURN true;
END $$;

-- ---- beads -------------------------------------------------------------------------------

CREATE FUNCTION loom_json_text_array(v jsonb) RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF v IS NULL OR jsonb_typeof(v) <> 'array' THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(SELECT jsonb_array_elements_text(v));
END $$;

-- Context patch: keys with null values are removed, others set (JSON merge patch, one level).
CREATE FUNCTION loom_context_merge(cur jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (cur || jsonb_strip_nulls(patch))
           - ARRAY(SELECT key FROM jsonb_each(patch) WHERE value = 'null'::jsonb);
END $$;

CREATE FUNCTION loom_bead_create(p jsonb, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    proj projects;
    b beads;
    doc json;
BEGIN
    -- no lock of our own: the foreign key check already holds the project against a delete
    SELECT * INTO proj FROM projects WHERE id = p ->> 'project_id';
    IF NOT FOUND THEN
        PERFORM loom_raise('LM400', format('project_id: project %s does not exist',
                                           p ->> 'project_id'));
    END IF;
    IF proj.status = 'closed' THEN
        PERFORM loom_raise('LM409', format('project %s is closed', proj.id));
    END IF;
    INSERT INTO beads (id, project_id, type, title, description, status, priority, assigned_to,
                       tags, context, due_date, milestone_id, estimated_time, closed_at)
    VALUES (proj.bead_prefix || '-' || nextval(loom_bead_seq(proj.id)::regclass), proj.id,
            coalesce(p ->> 'type', 'task'), p ->> 'title', coalesce(p ->> 'description', ''),
            coalesce(p ->> 'status', 'open'), coalesce((p ->> 'priority')::smallint, 2),
            nullif(p ->> 'assigned_to', ''),
            coalesce(loom_json_text_array(p -> 'tags'), '{}'),
            coalesce(jsonb_strip_nulls(p -> 'context'), '{}'),
            (p ->> 'due_date')::timestamptz, p ->> 'milestone_id',
            (p ->> 'estimated_time')::integer,
            CASE WHEN p ->> 'status' = 'closed' THEN now() END)
    RETURNING * INTO b;
    IF loom_bead_set_links(b.id, p) THEN
        SELECT * INTO b FROM beads WHERE id = b.id; -- the trigger filled the link arrays
    END IF;
    doc := loom_bead_json(b);
    PERFORM loom_event('bead.created', b.project_id, b.id, actor,
                       jsonb_build_object('bead', doc::jsonb - 'description'));
    RETURN doc;
END $$;

-- Applies a validated partial update to one bead and writes its events; the row is returned.
CREATE FUNCTION loom_bead_apply(bid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    old beads;
    b beads;
    doc json;
BEGIN
    IF p ?| ARRAY['blocked_by', 'blocks', 'parent', 'children', 'related_to'] THEN
        PERFORM pg_advisory_xact_lock(7606203, 1); -- before any row lock: see set_links
    END IF;
    SELECT * INTO old FROM beads WHERE id = bid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    UPDATE beads SET
        type = CASE WHEN p ? 'type' THEN p ->> 'type' ELSE type END,
        title = CASE WHEN p ? 'title' THEN p ->> 'title' ELSE title END,
        description = CASE WHEN p ? 'description' THEN coalesce(p ->> 'description', '')
                           ELSE description END,
        status = CASE WHEN p ? 'status' THEN p ->> 'status' ELSE status END,
        priority = CASE WHEN p ? 'priority' THEN (p ->> 'priority')::smallint ELSE priority END,
        assigned_to = CASE WHEN p ? 'assigned_to' THEN nullif(p ->> 'assigned_to', '')
                           ELSE assigned_to END,
        tags = CASE WHEN p ? 'tags' THEN loom_json_text_array(p -> 'tags') ELSE tags END,
        context = CASE WHEN p ? 'context' THEN loom_context_merge(context, p -> 'context')
                       ELSE context END,
        due_date = CASE WHEN p ? 'due_date' THEN (p ->> 'due_date')::timestamptz
                        ELSE due_date END,
        milestone_id = CASE WHEN p ? 'milestone_id' THEN p ->> 'milestone_id'
                            ELSE milestone_id END,
        estimated_time = CASE WHEN p ? 'estimated_time' THEN (p ->> 'estimated_time')::integer
                              ELSE estimated_time END,
        closed_at = CASE WHEN NOT p ? 'status' THEN closed_at
                         WHEN p ->> 'status' <> 'closed' THEN NULL
                         ELSE coalesce(closed_at, now()) END,
        updated_at = now()
    WHERE id = bid
    RETURNING * INTO b;
    IF loom_bead_set_links(bid, p) THEN
        SELECT * INTO b FROM beads WHERE id = bid; -- the trigger refreshed the link arrays
    END IF;
    doc := loom_bead_json(b);
    PERFORM loom_event('bead.updated', b.project_id, b.id, actor,
                       jsonb_build_object('bead', doc::jsonb - 'description',
                                          'fields', (SELECT jsonb_agg(k ORDER BY k)
                                                     FROM jsonb_object_keys(p) k)));
    IF b.status IS DISTINCT FROM old.status THEN
        PERFORM loom_event('bead.status_change', b.project_id, b.id, actor,
                           jsonb_build_object('from', old.status, 'to', b.status));
        IF b.status = 'closed' THEN
            PERFORM loom_event('bead.completed', b.project_id, b.id, actor, '{}');
        END IF;
    END IF;
    IF b.assigned_to IS NOT NULL AND b.assigned_to IS DISTINCT FROM old.assigned_to THEN
        PERFORM loom_event('bead.assigned', b.project_id, b.id, actor,
                           jsonb_build_object('assigned_to', b.assigned_to));
    END IF;
    RETURN doc;
END $$;

CREATE FUNCTION loom_bead_update(bid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
BEGIN
    RETURN loom_bead_apply(bid, p, actor);
END $$;

-- Bulk PATCH: {filter, updates}.  The filter must name something; at most 1000 beads change,
-- all or none, locked in id order so concurrent bulk updates cannot deadlock.
CREATE FUNCTION loom_bead_bulk_update(f jsonb, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
    x text;
BEGIN
    SELECT array_agg(id ORDER BY id) INTO ids FROM (
        SELECT id FROM beads
        WHERE (NOT f ? 'ids' OR id = ANY (loom_json_text_array(f -> 'ids')))
          AND (NOT f ? 'project_id' OR project_id = f ->> 'project_id')
          AND (NOT f ? 'status' OR status = f ->> 'status')
          AND (NOT f ? 'type' OR type = f ->> 'type')
          AND (NOT f ? 'assigned_to' OR assigned_to = f ->> 'assigned_to')
          AND (NOT f ? 'priority' OR priority = (f ->> 'priority')::smallint)
          AND (NOT f ? 'tag' OR tags @> ARRAY[f ->> 'tag'])
        LIMIT 1001) s;
    IF cardinality(ids) > 1000 THEN
        PERFORM loom_raise('LM400', 'filter matches more than 1000 beads; narrow it');
    END IF;
    IF ids IS NULL THEN
        RETURN json_build_object('updated', 0, 'ids', '[]'::json);
    END IF;
    FOREACH x IN ARRAY ids LOOP
        PERFORM loom_bead_apply(x, p, actor);
    END LOOP;
    RETURN json_build_object('updated', cardinality(ids), 'ids', to_json(ids));
END $$;

-- Atomic claim: only an open, ready bead, by exactly one agent.  Claiming a bead the same agent
-- already holds is a no-op that succeeds.
CREATE FUNCTION loom_bead_claim(bid text, agent text, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    cur beads;
    b beads;
    waiting text[];
BEGIN
    SELECT * INTO cur FROM beads WHERE id = bid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    IF cur.assigned_to = agent AND cur.status = 'in_progress' THEN
        RETURN loom_bead_json(cur);
    END IF;
    IF cur.assigned_to IS NOT NULL AND cur.status <> 'open' THEN
        PERFORM loom_raise('LM409', format('bead %s is already claimed by %s',
                                           bid, cur.assigned_to));
    END IF;
    IF cur.status <> 'open' THEN
        PERFORM loom_raise('LM409', format('bead %s is %s; only open beads can be claimed',
                                           bid, cur.status));
    END IF;
    IF cur.assigned_to IS NOT NULL AND cur.assigned_to <> agent THEN
        PERFORM loom_raise('LM409', format('bead %s is assigned to %s', bid, cur.assigned_to));
    END IF;
    waiting := loom_open_blockers(bid);
    IF cardinality(waiting) > 0 THEN
        PERFORM loom_raise('LM409', format('bead %s is blocked by %s', bid,
                                           array_to_string(waiting, ', ')));
    END IF;
    UPDATE beads SET assigned_to = agent, status = 'in_progress', updated_at = now()
    WHERE id = bid RETURNING * INTO b;
    PERFORM loom_event('bead.assigned', b.project_id, b.id, actor,
                       jsonb_build_object('assigned_to', agent,
                                          'bead', loom_bead_json(b)::jsonb - 'description'));
    PERFORM loom_event('bead.status_change', b.project_id, b.id, actor,
                       jsonb_build_object('from', cur.status, 'to', b.status));
    RETURN loom_bead_json(b);
END $$;

-- Redispatch: back to open and unassigned, with the engine's failure bookkeeping cleared so the
-- dispatcher treats it as fresh work.
CREATE FUNCTION loom_bead_redispatch(bid text, reason text, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    cur beads;
    b beads;
BEGIN
    SELECT * INTO cur FROM beads WHERE id = bid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    UPDATE beads SET
        status = 'open', assigned_to = NULL, closed_at = NULL, updated_at = now(),
        context = (context - ARRAY['dispatch_count', 'error_history', 'last_run_error',
                                   'last_failed_at', 'loop_detected', 'loop_detected_reason',
                                   'loop_detected_at', 'ralph_blocked_at', 'ralph_blocked_reason',
                                   'terminal_reason'])
                  || jsonb_build_object('redispatch_requested', 'true',
                                        'redispatch_requested_at', now(),
                                        'redispatch_requested_reason', coalesce(reason, ''))
    WHERE id = bid RETURNING * INTO b;
    PERFORM loom_event('bead.redispatched', b.project_id, b.id, actor,
                       jsonb_build_object('reason', reason,
                                          'bead', loom_bead_json(b)::jsonb - 'description'));
    IF cur.status <> 'open' THEN
        PERFORM loom_event('bead.status_change', b.project_id, b.id, actor,
                           jsonb_build_object('from', cur.status, 'to', 'open'));
    END IF;
    RETURN loom_bead_json(b);
END $$;

CREATE FUNCTION loom_bead_delete(bid text, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    b beads;
BEGIN
    DELETE FROM beads WHERE id = bid RETURNING * INTO b;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    PERFORM loom_event('bead.deleted', b.project_id, b.id, actor,
                       jsonb_build_object('id', b.id, 'title', b.title));
    RETURN json_build_object('id', bid, 'deleted', true);
END $$;

-- ---- comments ----------------------------------------------------------------------------

CREATE FUNCTION loom_comment_create(bid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    c bead_comments;
    parent_bead text;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    IF p ? 'parent_id' AND jsonb_typeof(p -> 'parent_id') = 'number' THEN
        SELECT bead_id INTO parent_bead FROM bead_comments WHERE id = (p ->> 'parent_id')::bigint;
        IF parent_bead IS NULL THEN
            PERFORM loom_raise('LM400', format('parent_id: comment %s does not exist',
                                               p ->> 'parent_id'));
        ELSIF parent_bead <> bid THEN
            PERFORM loom_raise('LM400', format('parent_id: comment %s belongs to bead %s',
                                               p ->> 'parent_id', parent_bead));
        END IF;
    END IF;
    INSERT INTO bead_comments (bead_id, parent_id, author_id, author_username, content)
    VALUES (bid, (p ->> 'parent_id')::bigint, coalesce(p ->> 'author_id', actor),
            coalesce(p ->> 'author_username', ''), p ->> 'content')
    RETURNING * INTO c;
    PERFORM loom_event('comment.created', b.project_id, bid, actor,
                       jsonb_build_object('comment', loom_comment_json(c)::jsonb));
    RETURN loom_comment_json(c);
END $$;

CREATE FUNCTION loom_comment_update(cid bigint, new_content text, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    c bead_comments;
BEGIN
    UPDATE bead_comments SET content = new_content, edited = true,
                             updated_at = now()
    WHERE id = cid AND NOT deleted RETURNING * INTO c;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('comment %s not found', cid));
    END IF;
    PERFORM loom_event('comment.updated', (SELECT project_id FROM beads WHERE id = c.bead_id),
                       c.bead_id, actor, jsonb_build_object('comment', loom_comment_json(c)::jsonb));
    RETURN loom_comment_json(c);
END $$;

-- Deleting keeps the row (replies stay threaded) but drops its content.
CREATE FUNCTION loom_comment_delete(cid bigint, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    c bead_comments;
BEGIN
    UPDATE bead_comments SET content = '', deleted = true, updated_at = now()
    WHERE id = cid AND NOT deleted RETURNING * INTO c;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('comment %s not found', cid));
    END IF;
    PERFORM loom_event('comment.deleted', (SELECT project_id FROM beads WHERE id = c.bead_id),
                       c.bead_id, actor, jsonb_build_object('comment_id', cid));
    RETURN loom_comment_json(c);
END $$;

-- ---- projects ----------------------------------------------------------------------------

CREATE FUNCTION loom_slug(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT left(trim(BOTH '-' FROM regexp_replace(lower(s), '[^a-z0-9]+', '-', 'g')), 63)
$$;

CREATE FUNCTION loom_project_create(p jsonb, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    pid text := coalesce(p ->> 'id', loom_slug(p ->> 'name'));
    prefix text;
    r projects;
BEGIN
    IF pid = '' OR pid !~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
        PERFORM loom_raise('LM400', format('id: cannot derive a project id from name %L; give '
                                           'an id of lower-case letters, digits and dashes',
                                           p ->> 'name'));
    END IF;
    IF EXISTS (SELECT 1 FROM projects WHERE id = pid) THEN
        PERFORM loom_raise('LM409', format('project %s already exists', pid));
    END IF;
    prefix := coalesce(p ->> 'bead_prefix', left(regexp_replace(pid, '[^a-z0-9]', '', 'g'), 16));
    IF prefix !~ '^[A-Za-z]' THEN
        prefix := left('p' || prefix, 16);
    END IF;
    IF EXISTS (SELECT 1 FROM projects WHERE bead_prefix = prefix) THEN
        PERFORM loom_raise('LM409', format('bead_prefix %s is already used by project %s', prefix,
                                           (SELECT id FROM projects WHERE bead_prefix = prefix)));
    END IF;
    IF p ? 'parent_id' AND p ->> 'parent_id' IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM projects WHERE id = p ->> 'parent_id') THEN
        PERFORM loom_raise('LM400', format('parent_id: project %s does not exist',
                                           p ->> 'parent_id'));
    END IF;
    INSERT INTO projects (id, name, description, git_repo, branch, beads_path, bead_prefix,
                          parent_id, is_perpetual, is_sticky, git_strategy, git_auth_method,
                          use_worktrees, use_container, github_repo, default_branch, context)
    VALUES (pid, p ->> 'name', coalesce(p ->> 'description', ''), coalesce(p ->> 'git_repo', ''),
            coalesce(p ->> 'branch', 'main'), coalesce(p ->> 'beads_path', '.beads'), prefix,
            p ->> 'parent_id', coalesce((p ->> 'is_perpetual')::boolean, false),
            coalesce((p ->> 'is_sticky')::boolean, false),
            coalesce(p ->> 'git_strategy', 'direct'), coalesce(p ->> 'git_auth_method', 'none'),
            coalesce((p ->> 'use_worktrees')::boolean, true),
            coalesce((p ->> 'use_container')::boolean, false),
            coalesce(p ->> 'github_repo', ''),
            coalesce(p ->> 'default_branch', p ->> 'branch', 'main'),
            coalesce(jsonb_strip_nulls(p -> 'context'), '{}'))
    RETURNING * INTO r;
    EXECUTE format('CREATE SEQUENCE %I', loom_bead_seq(pid));
    PERFORM loom_event('project.created', r.id, NULL, actor,
                       jsonb_build_object('project', loom_project_json(r)::jsonb));
    RETURN loom_project_json(r);
END $$;

CREATE FUNCTION loom_project_update(pid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    r projects;
BEGIN
    PERFORM 1 FROM projects WHERE id = pid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    IF p ? 'bead_prefix' AND EXISTS (SELECT 1 FROM beads WHERE project_id = pid)
       AND p ->> 'bead_prefix' <> (SELECT bead_prefix FROM projects WHERE id = pid) THEN
        PERFORM loom_raise('LM409', format('bead_prefix of project %s cannot change: it '
                                           'already has beads', pid));
    END IF;
    IF p ? 'bead_prefix' AND EXISTS (SELECT 1 FROM projects
                                     WHERE bead_prefix = p ->> 'bead_prefix' AND id <> pid) THEN
        PERFORM loom_raise('LM409', format('bead_prefix %s is already used by another project',
                                           p ->> 'bead_prefix'));
    END IF;
    IF p ->> 'parent_id' IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM projects WHERE id = p ->> 'parent_id') THEN
        PERFORM loom_raise('LM400', format('parent_id: project %s does not exist',
                                           p ->> 'parent_id'));
    END IF;
    UPDATE projects SET
        name = CASE WHEN p ? 'name' THEN p ->> 'name' ELSE name END,
        description = CASE WHEN p ? 'description' THEN coalesce(p ->> 'description', '')
                           ELSE description END,
        git_repo = CASE WHEN p ? 'git_repo' THEN coalesce(p ->> 'git_repo', '') ELSE git_repo END,
        branch = CASE WHEN p ? 'branch' THEN p ->> 'branch' ELSE branch END,
        beads_path = CASE WHEN p ? 'beads_path' THEN p ->> 'beads_path' ELSE beads_path END,
        bead_prefix = CASE WHEN p ? 'bead_prefix' THEN p ->> 'bead_prefix' ELSE bead_prefix END,
        parent_id = CASE WHEN p ? 'parent_id' THEN p ->> 'parent_id' ELSE parent_id END,
        is_perpetual = CASE WHEN p ? 'is_perpetual' THEN (p ->> 'is_perpetual')::boolean
                            ELSE is_perpetual END,
        is_sticky = CASE WHEN p ? 'is_sticky' THEN (p ->> 'is_sticky')::boolean ELSE is_sticky END,
        git_strategy = CASE WHEN p ? 'git_strategy' THEN p ->> 'git_strategy'
                            ELSE git_strategy END,
        git_auth_method = CASE WHEN p ? 'git_auth_method' THEN p ->> 'git_auth_method'
                               ELSE git_auth_method END,
        use_worktrees = CASE WHEN p ? 'use_worktrees' THEN (p ->> 'use_worktrees')::boolean
                             ELSE use_worktrees END,
        use_container = CASE WHEN p ? 'use_container' THEN (p ->> 'use_container')::boolean
                             ELSE use_container END,
        github_repo = CASE WHEN p ? 'github_repo' THEN coalesce(p ->> 'github_repo', '')
                           ELSE github_repo END,
        default_branch = CASE WHEN p ? 'default_branch' THEN p ->> 'default_branch'
                              ELSE default_branch END,
        context = CASE WHEN p ? 'context' THEN loom_context_merge(context, p -> 'context')
                       ELSE context END,
        updated_at = now()
    WHERE id = pid RETURNING * INTO r;
    PERFORM loom_event('project.updated', r.id, NULL, actor,
                       jsonb_build_object('project', loom_project_json(r)::jsonb,
                                          'fields', (SELECT jsonb_agg(k ORDER BY k)
                                                     FROM jsonb_object_keys(p) k)));
    RETURN loom_project_json(r);
END $$;

CREATE FUNCTION loom_project_delete(pid text, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    r projects;
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM beads WHERE project_id = pid;
    DELETE FROM projects WHERE id = pid RETURNING * INTO r;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    EXECUTE format('DROP SEQUENCE IF EXISTS %I', loom_bead_seq(pid));
    PERFORM loom_event('project.deleted', pid, NULL, actor,
                       jsonb_build_object('id', pid, 'beads_deleted', n));
    RETURN json_build_object('id', pid, 'deleted', true, 'beads_deleted', n);
END $$;

CREATE FUNCTION loom_project_state(pid text) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    r projects;
    counts json;
    unfinished bigint;
BEGIN
    SELECT * INTO r FROM projects WHERE id = pid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    SELECT json_build_object(
               'open', count(*) FILTER (WHERE status = 'open'),
               'in_progress', count(*) FILTER (WHERE status = 'in_progress'),
               'blocked', count(*) FILTER (WHERE status = 'blocked'),
               'deferred', count(*) FILTER (WHERE status = 'deferred'),
               'closed', count(*) FILTER (WHERE status = 'closed')),
           count(*) FILTER (WHERE status IN ('open', 'in_progress', 'blocked'))
    INTO counts, unfinished
    FROM beads WHERE project_id = pid;
    RETURN json_build_object('id', r.id, 'status', r.status, 'perpetual', r.is_perpetual,
                             'sticky', r.is_sticky, 'open_beads', unfinished,
                             'beads_by_status', counts,
                             'can_close', unfinished = 0 AND NOT r.is_perpetual
                                          AND r.status <> 'closed');
END $$;

-- Close refuses while work is unfinished (open, in progress or blocked beads) or the project is
-- perpetual, unless forced.  Reopen is the way back.
CREATE FUNCTION loom_project_close(pid text, force boolean, comment text, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    r projects;
    unfinished bigint;
BEGIN
    SELECT * INTO r FROM projects WHERE id = pid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    IF r.status = 'closed' THEN
        PERFORM loom_raise('LM409', format('project %s is already closed', pid));
    END IF;
    SELECT count(*) INTO unfinished FROM beads
    WHERE project_id = pid AND status IN ('open', 'in_progress', 'blocked');
    IF NOT force AND unfinished > 0 THEN
        PERFORM loom_raise('LM409', format('project %s has %s unfinished beads; close them or '
                                           'pass "force": true', pid, unfinished));
    END IF;
    IF NOT force AND r.is_perpetual THEN
        PERFORM loom_raise('LM409', format('project %s is perpetual; pass "force": true', pid));
    END IF;
    UPDATE projects SET status = 'closed', closed_at = now(), updated_at = now()
    WHERE id = pid RETURNING * INTO r;
    PERFORM loom_event('project.updated', pid, NULL, actor,
                       jsonb_build_object('project', loom_project_json(r)::jsonb,
                                          'action', 'close', 'comment', comment));
    RETURN loom_project_json(r);
END $$;

CREATE FUNCTION loom_project_reopen(pid text, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    r projects;
BEGIN
    SELECT * INTO r FROM projects WHERE id = pid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    IF r.status <> 'closed' THEN
        PERFORM loom_raise('LM409', format('project %s is not closed', pid));
    END IF;
    UPDATE projects SET status = 'reopened', closed_at = NULL, updated_at = now()
    WHERE id = pid RETURNING * INTO r;
    PERFORM loom_event('project.updated', pid, NULL, actor,
                       jsonb_build_object('project', loom_project_json(r)::jsonb,
                                          'action', 'reopen'));
    RETURN loom_project_json(r);
END $$;
