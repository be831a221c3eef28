-- 004_runs: the work queue.  A run is one attempt of one bead by one agent.
--
-- Coordination rules (DESIGN.md): the ready filter and the enqueue are one statement per bead
-- under FOR UPDATE SKIP LOCKED; a claim is one UPDATE … SKIP LOCKED; the terminal state, the
-- bead's new status, the agent's release and the lease's end are one transaction; leases expire
-- and loom-ralph re-queues them, a bounded number of times, then blocks the bead with a reason.

CREATE TABLE runs (
    id                bigserial PRIMARY KEY,
    bead_id           text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    project_id        text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    agent_id          text REFERENCES agents (id) ON DELETE SET NULL,
    provider_id       text REFERENCES providers (id) ON DELETE SET NULL,
    persona_name      text NOT NULL,
    state             text NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority          smallint NOT NULL,
    attempt           integer NOT NULL DEFAULT 1,
    lease_owner       text,
    lease_expires_at  timestamptz,
    heartbeat_at      timestamptz,
    iterations        integer NOT NULL DEFAULT 0,
    max_iterations    integer NOT NULL DEFAULT 25 CHECK (max_iterations BETWEEN 1 AND 500),
    terminal_reason   text CHECK (terminal_reason IN (
                          'completed', 'escalated', 'max_iterations', 'error', 'no_actions',
                          'parse_failures', 'validation_failures', 'inner_loop',
                          'progress_stagnant', 'context_canceled', 'lease_expired',
                          'provider_error')),
    error             text,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    CHECK ((state IN ('succeeded', 'failed', 'canceled')) = (finished_at IS NOT NULL)),
    CHECK (state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
-- at most one live run per bead: two executors can never work the same bead
CREATE UNIQUE INDEX runs_one_live ON runs (bead_id) WHERE state IN ('queued', 'running');
CREATE INDEX runs_queue_idx ON runs (priority, id) WHERE state = 'queued';
CREATE INDEX runs_lease_idx ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_bead_idx ON runs (bead_id, id);

CREATE FUNCTION loom_run_json(r runs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', r.id, 'bead_id', r.bead_id, 'project_id', r.project_id, 'agent_id', r.agent_id,
        'provider_id', r.provider_id, 'persona_name', r.persona_name, 'state', r.state,
        'attempt', r.attempt, 'iterations', r.iterations, 'max_iterations', r.max_iterations,
        'terminal_reason', r.terminal_reason, 'error', r.error,
        'prompt_tokens', r.prompt_tokens, 'completion_tokens', r.completion_tokens,
        'lease_expires_at', r.lease_expires_at, 'created_at', r.created_at,
        'started_at', r.started_at, 'finished_at', r.finished_at)
$$;

-- The persona a bead asks for, as Loom reads it: context requires_persona, a "[persona]" title
-- prefix, a for-<persona> or <persona>-only tag, then the tag → role defaults.  NULL: any.
CREATE FUNCTION loom_persona_hint(b beads) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    hint text := nullif(b.context ->> 'requires_persona', '');
    t text;
BEGIN
    IF hint IS NULL THEN
        hint := substring(lower(b.title) FROM '^\s*\[([a-z0-9 _-]+)\]');
    END IF;
    IF hint IS NULL THEN
        SELECT coalesce(substring(x FROM '^for-(.+)$'), substring(x FROM '^(.+)-only$'))
        INTO hint FROM unnest(b.tags) x
        WHERE x ~ '^for-.+$' OR x ~ '^.+-only$' LIMIT 1;
    END IF;
    IF hint IS NULL THEN
        FOREACH t IN ARRAY b.tags LOOP
            hint := CASE lower(t)
                WHEN 'devops' THEN 'devops-engineer' WHEN 'infra' THEN 'devops-engineer'
                WHEN 'ci' THEN 'devops-engineer'
                WHEN 'review' THEN 'code-reviewer' WHEN 'pr' THEN 'code-reviewer'
                WHEN 'code-review' THEN 'code-reviewer'
                WHEN 'qa' THEN 'qa-engineer' WHEN 'test' THEN 'qa-engineer'
                WHEN 'testing' THEN 'qa-engineer'
                WHEN 'docs' THEN 'documentation-manager'
                WHEN 'documentation' THEN 'documentation-manager'
                WHEN 'ui' THEN 'web-designer' WHEN 'ux' THEN 'web-designer' END;
            EXIT WHEN hint IS NOT NULL;
        END LOOP;
    END IF;
    RETURN regexp_replace(regexp_replace(trim(hint), '\s+', '-', 'g'), '-(agent|only)$', '');
END $$;

-- An idle agent of the bead's project on a healthy provider: the hinted persona (exact, then a
-- partial name or role match), else the engineering manager, else any.  Locks the agent.
CREATE FUNCTION loom_pick_agent(b beads) RETURNS agents LANGUAGE plpgsql AS $$
DECLARE
    hint text := loom_persona_hint(b);
    a agents;
BEGIN
    SELECT ag.* INTO a FROM agents ag JOIN providers pv ON pv.id = ag.provider_id
    WHERE ag.project_id = b.project_id AND ag.status = 'idle' AND pv.status = 'healthy'
    ORDER BY (hint IS NOT NULL AND ag.persona_name = hint) DESC,
             (hint IS NOT NULL AND (ag.persona_name LIKE '%' || hint || '%'
                                    OR lower(ag.role) LIKE '%' || replace(hint, '-', ' ') || '%'))
                 DESC,
             (ag.persona_name = 'engineering-manager') DESC,
             ag.last_active NULLS FIRST, ag.id
    LIMIT 1 FOR UPDATE OF ag SKIP LOCKED;
    RETURN a;
END $$;

-- One dispatcher pass: ready beads in priority order, each handed to an agent as a queued run.
-- Skips closed projects and those whose context says "dispatch_paused": "true", decision beads
-- waiting for a person, beads that failed in the last backoff_s seconds, projects at their cap;
-- blocks beads past max_hops.  Returns the runs queued.
CREATE FUNCTION loom_dispatch(max_runs integer, max_hops integer, project_cap integer,
                              backoff_s integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    a agents;
    hops integer;
    queued integer := 0;
    rid bigint;
BEGIN
    -- the usual idle state of a busy system: nobody free, nothing to look at
    IF NOT EXISTS (SELECT 1 FROM agents ag JOIN providers pv ON pv.id = ag.provider_id
                   WHERE ag.status = 'idle' AND pv.status = 'healthy') THEN
        RETURN 0;
    END IF;
    FOR b IN
        SELECT x.* FROM beads x JOIN projects pr ON pr.id = x.project_id
        WHERE x.status = 'open' AND pr.status <> 'closed'
          AND coalesce(pr.context ->> 'dispatch_paused', 'false') <> 'true'
          -- only where someone can take it: no locks, no work for beads nobody can run
          AND EXISTS (SELECT 1 FROM agents ag JOIN providers pv ON pv.id = ag.provider_id
                      WHERE ag.project_id = x.project_id AND ag.status = 'idle'
                        AND pv.status = 'healthy')
          AND NOT (x.type = 'decision' AND x.context ->> 'requires_human' = 'true')
          AND coalesce((x.context ->> 'last_failed_at')::timestamptz, '-infinity')
              < now() - make_interval(secs => backoff_s)
          AND NOT EXISTS (SELECT 1 FROM runs r
                          WHERE r.bead_id = x.id AND r.state IN ('queued', 'running'))
          AND cardinality(loom_open_blockers(x.id)) = 0
        ORDER BY x.priority, x.created_at, x.id
        LIMIT max_runs * 4
        FOR UPDATE OF x SKIP LOCKED
    LOOP
        EXIT WHEN queued >= max_runs;
        hops := coalesce((b.context ->> 'dispatch_count')::integer, 0);
        IF hops >= max_hops THEN
            PERFORM loom_bead_apply(b.id, jsonb_build_object('status', 'blocked', 'context',
                jsonb_build_object('ralph_blocked_reason',
                                   format('hop limit: dispatched %s times', hops),
                                   'ralph_blocked_at', now())), 'loom-dispatcher');
            CONTINUE;
        END IF;
        CONTINUE WHEN (SELECT count(*) FROM runs r WHERE r.project_id = b.project_id
                       AND r.state IN ('queued', 'running')) >= project_cap;
        a := loom_pick_agent(b);
        CONTINUE WHEN a.id IS NULL;
        INSERT INTO runs (bead_id, project_id, agent_id, provider_id, persona_name, priority)
        VALUES (b.id, b.project_id, a.id, a.provider_id, a.persona_name, b.priority)
        RETURNING id INTO rid;
        PERFORM loom_bead_apply(b.id, jsonb_build_object('status', 'in_progress',
            'assigned_to', a.id, 'context', jsonb_build_object('dispatch_count', hops + 1,
                                                               'last_run_at', now())),
            'loom-dispatcher');
        UPDATE agents SET status = 'working', current_bead = b.id, last_active = now(),
                          updated_at = now()
        WHERE id = a.id;
        PERFORM loom_event('run.queued', b.project_id, b.id, 'loom-dispatcher',
                           jsonb_build_object('run_id', rid, 'agent_id', a.id,
                                              'persona', a.persona_name));
        queued := queued + 1;
    END LOOP;
    IF queued > 0 THEN
        PERFORM pg_notify('loom_runs', '');
    END IF;
    RETURN queued;
END $$;

-- An executor takes the next queued run: one statement, SKIP LOCKED, a 60 s lease.
CREATE FUNCTION loom_run_claim(owner text, lease_s integer) RETURNS runs LANGUAGE plpgsql AS $$
DECLARE
    r runs;
BEGIN
    UPDATE runs SET state = 'running', lease_owner = owner,
                    lease_expires_at = now() + make_interval(secs => lease_s),
                    heartbeat_at = now(), started_at = coalesce(started_at, now())
    WHERE id = (SELECT id FROM runs WHERE state = 'queued' ORDER BY priority, id
                FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING * INTO r;
    IF FOUND THEN
        PERFORM loom_event('run.started', r.project_id, r.bead_id, owner,
                           jsonb_build_object('run_id', r.id, 'attempt', r.attempt));
    END IF;
    RETURN r;
END $$;

-- Renews the lease; false when it is no longer ours (expired and re-queued, or canceled).
CREATE FUNCTION loom_run_heartbeat(rid bigint, owner text, lease_s integer, iters integer,
                                   ptok bigint, ctok bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE runs SET lease_expires_at = now() + make_interval(secs => lease_s),
                    heartbeat_at = now(), iterations = iters,
                    prompt_tokens = ptok, completion_tokens = ctok
    WHERE id = rid AND lease_owner = owner AND state = 'running';
    IF FOUND THEN
        UPDATE agents SET last_active = now()
        WHERE id = (SELECT agent_id FROM runs WHERE id = rid);
    END IF;
    RETURN FOUND;
END $$;

-- The end of a run, in one transaction: its state, the bead's status (closed when completed,
-- blocked when escalated, else open again with the failure noted so the dispatcher backs off),
-- the agent back to idle, the lease gone.  False when the run was not ours any more.
CREATE FUNCTION loom_run_finish(rid bigint, owner text, reason text, err text, iters integer,
                                ptok bigint, ctok bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    bead_patch jsonb;
BEGIN
    UPDATE runs SET state = CASE WHEN reason IN ('completed', 'escalated') THEN 'succeeded'
                                 ELSE 'failed' END,
                    terminal_reason = reason, error = left(err, 4000), iterations = iters,
                    prompt_tokens = ptok, completion_tokens = ctok, finished_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL
    WHERE id = rid AND lease_owner = owner AND state = 'running'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    bead_patch := CASE reason
        WHEN 'completed' THEN jsonb_build_object('status', 'closed')
        WHEN 'escalated' THEN jsonb_build_object('status', 'blocked')
        ELSE jsonb_build_object('status', 'open', 'assigned_to', NULL)
        END || jsonb_build_object('context', jsonb_build_object(
            'terminal_reason', reason, 'last_run_error', err,
            'last_failed_at', CASE WHEN reason IN ('completed', 'escalated') THEN NULL
                                   ELSE now()::text END));
    PERFORM loom_bead_apply(r.bead_id, bead_patch, owner);
    UPDATE agents SET status = CASE WHEN status = 'working' THEN 'idle' ELSE status END,
                      current_bead = NULL, last_active = now(), updated_at = now()
    WHERE id = r.agent_id;
    PERFORM loom_event('run.finished', r.project_id, r.bead_id, owner,
                       jsonb_build_object('run', loom_run_json(r)::jsonb));
    RETURN true;
END $$;

-- loom-ralph: runs whose lease ran out go back to the queue for another attempt, up to
-- max_attempts; after that the run fails and its bead is blocked with the reason.
CREATE FUNCTION loom_runs_expire(max_attempts integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    n integer := 0;
BEGIN
    FOR r IN SELECT * FROM runs WHERE state = 'running' AND lease_expires_at < now()
             ORDER BY id FOR UPDATE SKIP LOCKED LOOP
        IF r.attempt < max_attempts THEN
            UPDATE runs SET state = 'queued', attempt = attempt + 1, lease_owner = NULL,
                            lease_expires_at = NULL
            WHERE id = r.id;
            PERFORM loom_event('run.requeued', r.project_id, r.bead_id, 'loom-ralph',
                               jsonb_build_object('run_id', r.id, 'attempt', r.attempt + 1));
            PERFORM pg_notify('loom_runs', '');
        ELSE
            UPDATE runs SET state = 'failed', terminal_reason = 'lease_expired',
                            error = format('lease expired %s times', r.attempt),
                            lease_owner = NULL, lease_expires_at = NULL, finished_at = now()
            WHERE id = r.id;
            PERFORM loom_bead_apply(r.bead_id, jsonb_build_object('status', 'blocked',
                'context', jsonb_build_object('ralph_blocked_reason',
                    format('auto-blocked by Ralph: the run lost its executor %s times',
                           r.attempt), 'ralph_blocked_at', now())), 'loom-ralph');
            UPDATE agents SET status = 'idle', current_bead = NULL, updated_at = now()
            WHERE id = r.agent_id AND status = 'working';
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
