-- 007_dispatch_wakeup: a wake-up channel of its own for the dispatcher, and a completed run
-- that no longer leaves its summary in the bead's last_run_error.
--
-- loom-dispatcher used to LISTEN on loom_events, which rings for every event (run.started,
-- run.iteration, comments …), so it slept a 200 ms coalescing gap after every wake-up and every
-- bead waited for it.  Now loom_event() also rings loom_dispatch, with an empty payload, for
-- the event types that can make a bead dispatchable: new or changed beads (a blocker closed, a
-- link removed), runs that ended (an agent is idle again), agents, providers and projects
-- (closed, reopened, dispatch_paused) that changed.  PostgreSQL delivers identical
-- notifications of one transaction once, so a write that makes several such events rings once.
-- The dispatcher's own writes (actor loom-dispatcher) never ring: what it queued, it has seen.

CREATE OR REPLACE FUNCTION loom_event(etype text, proj text, bead text, actor text, payload jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
BEGIN
    INSERT INTO events (type, project_id, bead_id, actor, payload)
    VALUES (etype, proj, bead, coalesce(actor, 'system'), coalesce(payload, '{}'))
    RETURNING id INTO eid;
    IF etype IN ('bead.created', 'bead.updated', 'bead.status_change', 'bead.redispatched',
                 'bead.recovered', 'bead.deleted', 'run.finished', 'run.released',
                 'run.requeued', 'decision.decided', 'agent.spawned', 'agent.updated',
                 'agent.status_change', 'agent.reset', 'agent.deleted', 'provider.registered',
                 'provider.updated', 'provider.deleted', 'project.created', 'project.updated')
       AND actor IS DISTINCT FROM 'loom-dispatcher' THEN
        PERFORM pg_notify('loom_dispatch', '');
    END IF;
    RETURN eid;
END $$;

-- The end of a run, as in 005_work.sql, except that a run that succeeded records no error: a
-- completed run's summary becomes the bead's close_reason, and last_run_error is cleared.
CREATE OR REPLACE FUNCTION loom_run_finish(rid bigint, owner text, reason text, err text,
                                           iters integer, ptok bigint, ctok bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    b beads;
    ok boolean := reason IN ('completed', 'escalated');
    ctx jsonb;
    why text;
BEGIN
    UPDATE runs SET state = CASE WHEN ok THEN 'succeeded'
                                 WHEN reason = 'canceled' THEN 'canceled' ELSE 'failed' END,
                    terminal_reason = reason,
                    error = CASE WHEN ok THEN NULL ELSE left(err, 4000) END,
                    iterations = greatest(iterations, iters), finished_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL
    WHERE id = rid AND lease_owner = owner AND state = 'running'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO b FROM beads WHERE id = r.bead_id FOR UPDATE;
    ctx := jsonb_build_object('terminal_reason', reason,
                              'last_run_error', CASE WHEN ok THEN NULL ELSE err END,
                              'last_failed_at', CASE WHEN ok THEN NULL ELSE now()::text END);
    IF reason = 'completed' AND err IS NOT NULL THEN
        ctx := ctx || jsonb_build_object('close_reason', left(err, 2000));
    END IF;
    IF NOT ok AND reason <> 'canceled' THEN
        ctx := ctx || jsonb_build_object('error_history',
            (SELECT coalesce(jsonb_agg(x ORDER BY o), '[]') FROM (
                SELECT x, o FROM jsonb_array_elements(
                    coalesce(b.context -> 'error_history', '[]')
                    || jsonb_build_array(jsonb_build_object(
                           'at', now(), 'run_id', r.id, 'reason', reason,
                           'error', left(coalesce(err, reason), 500))))
                    WITH ORDINALITY AS t(x, o)
                ORDER BY o DESC LIMIT 20) k));
        why := loom_bead_loop_reason(b.context || ctx);
    END IF;
    IF reason IN ('loop_detected', 'inner_loop') THEN
        why := coalesce(err, 'the agent repeated the same actions');
    END IF;
    IF b.status = 'in_progress' OR b.status = 'open' THEN
        IF why IS NOT NULL THEN
            PERFORM loom_bead_apply(r.bead_id, jsonb_build_object('context', ctx), owner);
            PERFORM loom_bead_block_loop(r.bead_id, why, owner);
        ELSE
            PERFORM loom_bead_apply(r.bead_id,
                CASE WHEN reason = 'completed' THEN jsonb_build_object('status', 'closed')
                     WHEN reason = 'escalated' THEN jsonb_build_object('status', 'blocked')
                     ELSE jsonb_build_object('status', 'open', 'assigned_to', NULL) END
                || jsonb_build_object('context', ctx), owner);
        END IF;
    ELSE
        -- a person moved the bead meanwhile (closed it, blocked it): keep their status
        PERFORM loom_bead_apply(r.bead_id, jsonb_build_object('context', ctx), owner);
    END IF;
    UPDATE agents SET status = CASE WHEN status = 'working' THEN 'idle' ELSE status END,
                      current_bead = NULL, last_active = now(), updated_at = now()
    WHERE id = r.agent_id;
    PERFORM loom_event('run.finished', r.project_id, r.bead_id, owner,
                       jsonb_build_object('run', loom_run_json(r)::jsonb));
    RETURN true;
END $$;

