-- 006_decisions: decisions a person makes, and read models of what happened (analytics of LLM
-- calls, event statistics, a log view of the events).
--
-- A decision is a bead of type "decision" (Loom's DecisionBead): the question is its
-- context.escalation_reason, the bead that waits for it is context.escalated_from, and the
-- verdict (approve / deny / needs_more_info) with its rationale, decider and time go into its
-- context when a person decides.

CREATE INDEX beads_decisions_idx ON beads (project_id, status, created_at) WHERE type = 'decision';

CREATE FUNCTION loom_decision_json(b beads) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', b.id, 'project_id', b.project_id, 'title', b.title, 'description', b.description,
        'status', b.status, 'priority', b.priority,
        'question', coalesce(b.context ->> 'escalation_reason', b.description),
        'escalated_from', b.context ->> 'escalated_from',
        'decision', b.context ->> 'decision', 'rationale', b.context ->> 'rationale',
        'decider_id', b.context ->> 'decider_id', 'decided_at', b.context ->> 'decided_at',
        'created_at', b.created_at, 'updated_at', b.updated_at)
$$;

-- POST /beads/{id}/escalate: a person (or a client) asks for a decision on a bead.
CREATE FUNCTION loom_bead_escalate(bid text, why text, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    did text;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    IF b.type = 'decision' THEN
        PERFORM loom_raise('LM409', format('%s is itself a decision', bid));
    END IF;
    IF b.status = 'closed' THEN
        PERFORM loom_raise('LM409', format('bead %s is closed', bid));
    END IF;
    IF EXISTS (SELECT 1 FROM beads d WHERE d.id = b.context ->> 'escalated_to_ceo_decision_id'
               AND d.status <> 'closed') THEN
        PERFORM loom_raise('LM409', format('bead %s already waits for decision %s', bid,
                                           b.context ->> 'escalated_to_ceo_decision_id'));
    END IF;
    did := loom_escalate(bid, why, actor);
    -- a live run of the bead ends: the question is for a person now
    UPDATE runs SET state = 'canceled', terminal_reason = 'canceled', finished_at = now(),
                    error = 'escalated by ' || actor, lease_owner = NULL, lease_expires_at = NULL
    WHERE bead_id = bid AND state IN ('queued', 'running');
    UPDATE agents SET status = 'idle', current_bead = NULL, updated_at = now()
    WHERE current_bead = bid AND status = 'working';
    PERFORM loom_bead_apply(bid, jsonb_build_object('status', 'blocked', 'assigned_to', NULL),
                            actor);
    RETURN (SELECT loom_decision_json(d) FROM beads d WHERE d.id = did);
END $$;

-- POST /decisions/{id}/decide, with Loom's verdicts applied to the bead that waits:
--   approve          the bead is closed (its work is approved);
--   deny             it goes back to open and unassigned (triage), the rationale as a comment;
--   needs_more_info  it goes back to its agent and is redispatched, the rationale as a comment
--                    (the agent reads it in the bead's context on its next run).
-- The decision bead closes either way; deciding twice is a conflict.
CREATE FUNCTION loom_decision_decide(did text, verdict text, why text, decider text,
                                     actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    d beads;
    w beads;
    waiting text;
    note text := coalesce(nullif(why, ''), '(no rationale given)');
BEGIN
    SELECT * INTO d FROM beads WHERE id = did FOR UPDATE;
    IF NOT FOUND OR d.type <> 'decision' THEN
        PERFORM loom_raise('LM404', format('decision %s not found', did));
    END IF;
    IF d.status = 'closed' OR d.context ? 'decision' THEN
        PERFORM loom_raise('LM409', format('decision %s was already made (%s)', did,
                                           coalesce(d.context ->> 'decision', 'closed')));
    END IF;
    waiting := d.context ->> 'escalated_from';
    SELECT * INTO w FROM beads WHERE id = waiting FOR UPDATE;
    -- closing the decision lifts its block (trigger beads_decision_closed reopens the bead)
    PERFORM loom_bead_apply(did, jsonb_build_object('status', 'closed', 'context',
        jsonb_build_object('decision', verdict, 'rationale', why, 'decider_id', decider,
                           'decided_at', now())), actor);
    IF w.id IS NOT NULL AND w.status <> 'closed' THEN
        PERFORM loom_bead_apply(w.id, jsonb_build_object('context', jsonb_build_object(
            'ceo_decision', verdict, 'ceo_rationale', why, 'ceo_decided_at', now(),
            'ceo_decision_id', did)), actor);
        IF verdict = 'approve' THEN
            PERFORM loom_bead_apply(w.id, jsonb_build_object('status', 'closed', 'context',
                jsonb_build_object('close_reason', 'approved by ' || decider || ': ' || note)),
                actor);
        ELSIF verdict = 'deny' THEN
            PERFORM loom_bead_apply(w.id, jsonb_build_object('status', 'open',
                                                             'assigned_to', NULL), actor);
            PERFORM loom_comment_create(w.id, jsonb_build_object(
                'author_id', decider, 'content', format('Denied (decision %s): %s', did, note)),
                actor);
        ELSE
            PERFORM loom_bead_apply(w.id, jsonb_build_object('status', 'open', 'context',
                jsonb_build_object('redispatch_requested', 'true', 'last_failed_at', NULL,
                                   'requires_persona', (SELECT persona_name FROM agents
                                                        WHERE id = w.assigned_to))), actor);
            PERFORM loom_comment_create(w.id, jsonb_build_object(
                'author_id', decider,
                'content', format('More information needed (decision %s): %s', did, note)),
                actor);
        END IF;
    END IF;
    PERFORM loom_event('decision.decided', d.project_id, did, actor,
                       jsonb_build_object('decision_id', did, 'decision', verdict,
                                          'rationale', why, 'bead_id', waiting));
    RETURN (SELECT loom_decision_json(x) FROM beads x WHERE x.id = did);
END $$;

-- The window of a read model: '1h', '24h', '7d' or '30d'.
CREATE FUNCTION loom_period(p text) RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p WHEN '1h' THEN interval '1 hour' WHEN '7d' THEN interval '7 days'
                  WHEN '30d' THEN interval '30 days' ELSE interval '24 hours' END
$$;

-- GET /analytics/stats: LLM calls of a period, totals and by project, agent, model and hour.
CREATE FUNCTION loom_analytics_stats(pid text, per text) RETURNS json LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT * FROM llm_calls
        WHERE created_at >= now() - loom_period(per) AND (pid IS NULL OR project_id = pid)
    ), g AS (
        SELECT 'project' AS dim, coalesce(project_id, '-') AS key, c.* FROM c
        UNION ALL SELECT 'agent', coalesce(agent_id, '-'), c.* FROM c
        UNION ALL SELECT 'model', coalesce(nullif(served_model, ''), requested_model), c.* FROM c
    ), by_key AS (
        SELECT dim, json_agg(json_build_object(
                   'key', key, 'calls', calls, 'errors', errors,
                   'prompt_tokens', ptok, 'completion_tokens', ctok, 'cost_usd', cost,
                   'avg_latency_ms', lat) ORDER BY cost DESC, calls DESC, key) AS rows
        FROM (SELECT dim, key, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
                     sum(prompt_tokens) AS ptok, sum(completion_tokens) AS ctok,
                     round(sum(cost_usd), 6) AS cost, round(avg(latency_ms)) AS lat
              FROM g GROUP BY dim, key) k
        GROUP BY dim
    )
    SELECT json_build_object(
        'period', per,
        'totals', (SELECT json_build_object(
            'calls', count(*), 'errors', count(*) FILTER (WHERE status = 'error'),
            'prompt_tokens', coalesce(sum(prompt_tokens), 0),
            'completion_tokens', coalesce(sum(completion_tokens), 0),
            'cached_tokens', coalesce(sum(cached_tokens), 0),
            'cost_usd', coalesce(round(sum(cost_usd), 6), 0),
            'avg_latency_ms', coalesce(round(avg(latency_ms)), 0),
            'p95_latency_ms', coalesce(round(percentile_cont(0.95) WITHIN GROUP
                                             (ORDER BY latency_ms)::numeric), 0),
            'avg_ttft_ms', coalesce(round(avg(ttft_ms)), 0)) FROM c),
        'by_project', coalesce((SELECT rows FROM by_key WHERE dim = 'project'), '[]'),
        'by_agent', coalesce((SELECT rows FROM by_key WHERE dim = 'agent'), '[]'),
        'by_model', coalesce((SELECT rows FROM by_key WHERE dim = 'model'), '[]'),
        'by_hour', coalesce((SELECT json_agg(json_build_object(
                       'bucket', h, 'calls', calls, 'tokens', tok, 'cost_usd', cost) ORDER BY h)
                   FROM (SELECT date_trunc('hour', created_at) AS h, count(*) AS calls,
                                sum(prompt_tokens + completion_tokens) AS tok,
                                round(sum(cost_usd), 6) AS cost
                         FROM c GROUP BY 1) x), '[]'))
$$;

-- GET /events/stats: how many events of each type in a period, and by hour.
CREATE FUNCTION loom_events_stats(pid text, per text) RETURNS json LANGUAGE sql STABLE AS $$
    WITH e AS (
        SELECT type, created_at FROM events
        WHERE created_at >= now() - loom_period(per) AND (pid IS NULL OR project_id = pid)
    )
    SELECT json_build_object(
        'period', per, 'total', (SELECT count(*) FROM e),
        'by_type', coalesce((SELECT json_agg(json_build_object('type', type, 'count', n)
                                             ORDER BY n DESC, type)
                             FROM (SELECT type, count(*) AS n FROM e GROUP BY type) t), '[]'),
        'by_hour', coalesce((SELECT json_agg(json_build_object('bucket', h, 'count', n) ORDER BY h)
                             FROM (SELECT date_trunc('hour', created_at) AS h, count(*) AS n
                                   FROM e GROUP BY 1) t), '[]'))
$$;

-- The log level of an event: errors are failures a person should look at, warnings are things
-- the system handled (a re-queued run, a reset agent), debug is the chatter of iterations.
CREATE FUNCTION loom_event_level(e events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e.type LIKE 'log.%' THEN substr(e.type, 5)
        WHEN e.type IN ('run.iteration', 'run.started') THEN 'debug'
        WHEN e.type = 'bead.loop_detected' THEN 'error'
        WHEN e.type = 'provider.updated' AND e.payload #>> '{provider,status}' = 'failed' THEN 'error'
        WHEN e.type = 'run.finished' AND e.payload #>> '{run,terminal_reason}'
             IN ('provider_error', 'error', 'lease_expired', 'parse_failures',
                 'validation_failures') THEN 'error'
        WHEN e.type = 'run.finished' AND e.payload #>> '{run,state}' <> 'succeeded' THEN 'warn'
        WHEN e.type IN ('run.requeued', 'run.released', 'agent.reset', 'bead.recovered',
                        'decision.created') THEN 'warn'
        WHEN e.type = 'bead.status_change' AND e.payload ->> 'to' = 'blocked' THEN 'warn'
        ELSE 'info' END
$$;

CREATE FUNCTION loom_level_rank(l text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE l WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warn' THEN 2 ELSE 3 END
$$;

-- One log line for an event.
CREATE FUNCTION loom_log_json(e events) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', e.id, 'timestamp', e.created_at, 'level', loom_event_level(e),
        'source', coalesce(e.actor, 'loom'), 'type', e.type, 'project_id', e.project_id,
        'bead_id', e.bead_id,
        'agent_id', coalesce(e.payload ->> 'agent_id', e.payload #>> '{run,agent_id}'),
        'message', CASE e.type
            WHEN 'run.finished' THEN format('run %s of %s ended: %s%s',
                e.payload #>> '{run,id}', e.bead_id, e.payload #>> '{run,terminal_reason}',
                coalesce(' (' || left(e.payload #>> '{run,error}', 300) || ')', ''))
            WHEN 'run.iteration' THEN format('%s: iteration %s/%s', e.bead_id,
                e.payload ->> 'iteration', e.payload ->> 'max_iterations')
            WHEN 'run.queued' THEN format('%s queued for %s', e.bead_id, e.payload ->> 'persona')
            WHEN 'run.started' THEN format('run %s of %s started (attempt %s)',
                e.payload ->> 'run_id', e.bead_id, e.payload ->> 'attempt')
            WHEN 'run.requeued' THEN format('run %s of %s lost its executor; re-queued (attempt %s)',
                e.payload ->> 'run_id', e.bead_id, e.payload ->> 'attempt')
            WHEN 'bead.status_change' THEN format('%s: %s → %s', e.bead_id,
                e.payload ->> 'from', e.payload ->> 'to')
            WHEN 'bead.created' THEN format('%s created: %s', e.bead_id,
                e.payload #>> '{bead,title}')
            WHEN 'bead.loop_detected' THEN format('%s blocked: %s', e.bead_id,
                e.payload ->> 'reason')
            WHEN 'agent.reset' THEN format('agent %s reset: %s', e.payload ->> 'agent_id',
                e.payload ->> 'reason')
            WHEN 'provider.updated' THEN format('provider %s is %s%s',
                e.payload #>> '{provider,id}', e.payload #>> '{provider,status}',
                coalesce(': ' || (e.payload #>> '{provider,last_heartbeat_error}'), ''))
            WHEN 'decision.created' THEN format('decision %s asked on %s: %s',
                e.payload ->> 'decision_id', e.payload ->> 'bead_id',
                left(e.payload ->> 'reason', 300))
            WHEN 'decision.decided' THEN format('decision %s: %s', e.payload ->> 'decision_id',
                e.payload ->> 'decision')
            ELSE coalesce(e.payload ->> 'message',
                          e.type || coalesce(' ' || e.bead_id, '')) END)
$$;
