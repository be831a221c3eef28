-- 018_metrics_families: the rest of Loom's Prometheus families.
--
--   loom_agents_total, loom_beads_total, loom_providers_total   gauges, counted at scrape time
--   loom_database_connections{state}   this database's connections by state (pg_stat_activity)
--   loom_agent_tasks_total{persona, result}   runs finished, by persona and state
--   loom_agent_task_duration_seconds{persona}   started_at → finished_at of those that started
--   loom_bead_transitions_total{from, to}   bead status changes
--   loom_beads_processed_total   beads closed
--   loom_bead_duration_seconds   created_at → closed_at of a bead, when it closes
--
-- What each costs where it happens (make bench-dispatch measures the run path):
--   a finished run   no new row: the loom_runs_finished_total row it already updates now also
--                    carries the persona, and a scrape reads loom_agent_tasks_total from those
--                    rows (and drops the persona for loom_runs_finished_total); one histogram
--                    row more when the run had started, for its duration.
--   a bead's status change   one row: a counter row for {from, to}, or for a close the
--                    duration histogram's row keyed by {from} instead, whose count is then
--                    both the transitions to closed and loom_beads_processed_total.
-- The new series count from this migration on: the history before it is not split by persona
-- or known transition (rows of loom_runs_finished_total without a persona still add up there).

CREATE FUNCTION loom_run_bounds() RETURNS double precision[] LANGUAGE sql IMMUTABLE AS $$
    SELECT '{0.25,0.5,1,2.5,5,10,20,30,60,120,300,600,1800,3600}'::double precision[]
$$;

-- a bead lives from seconds (a stub, a chore) to days
CREATE FUNCTION loom_bead_bounds() RETURNS double precision[] LANGUAGE sql IMMUTABLE AS $$
    SELECT '{1,10,60,300,900,1800,3600,7200,14400,28800,86400,259200,604800}'::double precision[]
$$;

-- As in 011, with the persona in the finished-run counter and the duration of a started run.
CREATE OR REPLACE FUNCTION loom_metrics_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM loom_metric_add('loom_dispatch_hops_total', '{}', 1);
    END IF;
    -- a run written already ended (an import, a repair by hand) has finished too
    IF NEW.state IN ('succeeded', 'failed', 'canceled') THEN
        PERFORM loom_metric_add('loom_runs_finished_total',
                                jsonb_build_object('state', NEW.state,
                                                   'reason', coalesce(NEW.terminal_reason, 'none'),
                                                   'persona', NEW.persona_name),
                                1);
        IF NEW.started_at IS NOT NULL THEN
            PERFORM loom_metric_observe('loom_agent_task_duration_seconds',
                                        jsonb_build_object('persona', NEW.persona_name),
                                        loom_run_bounds(),
                                        greatest(extract(epoch FROM NEW.finished_at
                                                                    - NEW.started_at), 0));
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        RETURN NULL;
    END IF;
    IF OLD.state = 'running' AND NEW.state = 'queued' AND NEW.attempt > OLD.attempt THEN
        PERFORM loom_metric_add('loom_lease_expiries_total', '{"outcome": "requeued"}', 1);
    ELSIF OLD.state = 'running' AND NEW.terminal_reason = 'lease_expired' THEN
        PERFORM loom_metric_add('loom_lease_expiries_total', '{"outcome": "failed"}', 1);
    END IF;
    RETURN NULL;
END $$;

-- A bead's status change: a close is an observation of its duration (keyed by the status it
-- left), any other change a transition counted.
CREATE FUNCTION loom_metrics_bead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'closed' THEN
        PERFORM loom_metric_observe('loom_bead_duration_seconds',
                                    jsonb_build_object('from', OLD.status), loom_bead_bounds(),
                                    greatest(extract(epoch FROM NEW.closed_at - NEW.created_at),
                                             0));
    ELSE
        PERFORM loom_metric_add('loom_bead_transitions_total',
                                jsonb_build_object('from', OLD.status, 'to', NEW.status), 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER beads_metrics_status AFTER UPDATE OF status ON beads
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION loom_metrics_bead();

-- Always present, at 0 until the first close.
INSERT INTO metric_histograms (name, labels, bounds, buckets, sum, count)
SELECT 'loom_bead_duration_seconds', '{"from": "in_progress"}', loom_bead_bounds(),
       array_fill(0::bigint, ARRAY[cardinality(loom_bead_bounds()) + 1]), 0, 0
ON CONFLICT DO NOTHING;

-- As in 011, with the families above.
CREATE OR REPLACE FUNCTION loom_metrics_scrape()
RETURNS TABLE (family text, labels jsonb, value double precision, bounds double precision[],
               buckets bigint[], hsum double precision, hcount bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- until the end of this statement's transaction: aggregates over every project
    PERFORM set_config('loom.scope', '', true);
    RETURN QUERY
    WITH live AS (SELECT process, program FROM metric_processes
                  WHERE seen_at > now() - interval '30 seconds')
    SELECT * FROM (
        SELECT 'loom_bead_status', jsonb_build_object('status', s), count(b.id)::float8,
               NULL::float8[], NULL::bigint[], NULL::float8, NULL::bigint
        FROM unnest(ARRAY['open', 'in_progress', 'blocked', 'closed', 'deferred']) s
        LEFT JOIN beads b ON b.status = s GROUP BY s
        UNION ALL
        SELECT 'loom_agent_status', jsonb_build_object('status', s), count(a.id), NULL, NULL,
               NULL, NULL
        FROM unnest(ARRAY['idle', 'working', 'paused', 'blocked', 'deciding']) s
        LEFT JOIN agents a ON a.status = s GROUP BY s
        UNION ALL
        SELECT 'loom_provider_status', jsonb_build_object('status', s), count(p.id), NULL, NULL,
               NULL, NULL
        FROM unnest(ARRAY['pending', 'healthy', 'failed', 'inactive']) s
        LEFT JOIN providers p ON p.status = s GROUP BY s
        UNION ALL
        SELECT 'loom_beads_total', '{}', count(*), NULL, NULL, NULL, NULL FROM beads
        UNION ALL
        SELECT 'loom_agents_total', '{}', count(*), NULL, NULL, NULL, NULL FROM agents
        UNION ALL
        SELECT 'loom_providers_total', '{}', count(*), NULL, NULL, NULL, NULL FROM providers
        UNION ALL
        SELECT 'loom_database_connections', jsonb_build_object('state', s), count(a.pid), NULL,
               NULL, NULL, NULL
        FROM unnest(ARRAY['active', 'idle', 'idle in transaction']) s
        LEFT JOIN pg_stat_activity a ON a.state = s AND a.datname = current_database()
        GROUP BY s
        UNION ALL
        SELECT 'loom_runs', jsonb_build_object('state', s), count(r.id), NULL, NULL, NULL, NULL
        FROM unnest(ARRAY['queued', 'running', 'succeeded', 'failed', 'canceled']) s
        LEFT JOIN runs r ON r.state = s GROUP BY s
        UNION ALL
        SELECT 'loom_run_queue_depth', '{}', count(*), NULL, NULL, NULL, NULL
        FROM runs WHERE state = 'queued'
        UNION ALL
        SELECT 'loom_events_published_total', '{}',
               coalesce(pg_sequence_last_value('events_id_seq'), 0), NULL, NULL, NULL, NULL
        UNION ALL
        SELECT 'loom_processes', jsonb_build_object('program', program), count(*), NULL, NULL,
               NULL, NULL
        FROM live GROUP BY program
        UNION ALL
        -- the persona of a finished run is loom_agent_tasks_total's, below
        SELECT name, CASE WHEN name = 'loom_runs_finished_total' THEN labels - 'persona'
                          ELSE labels END,
               sum(value), NULL, NULL, NULL, NULL
        FROM metric_counters GROUP BY 1, 2
        UNION ALL
        SELECT 'loom_agent_tasks_total',
               jsonb_build_object('persona', labels ->> 'persona', 'result', labels ->> 'state'),
               sum(value), NULL, NULL, NULL, NULL
        FROM metric_counters WHERE name = 'loom_runs_finished_total' AND labels ? 'persona'
        GROUP BY 2
        UNION ALL
        -- a close counted as a duration is a transition to closed and a bead processed
        SELECT 'loom_bead_transitions_total',
               jsonb_build_object('from', labels ->> 'from', 'to', 'closed'), sum(count), NULL,
               NULL, NULL, NULL
        FROM metric_histograms WHERE name = 'loom_bead_duration_seconds' GROUP BY 2
        UNION ALL
        SELECT 'loom_beads_processed_total', '{}', coalesce(sum(count), 0), NULL, NULL, NULL,
               NULL
        FROM metric_histograms WHERE name = 'loom_bead_duration_seconds'
        UNION ALL
        SELECT g.name, g.labels, sum(g.value), NULL, NULL, NULL, NULL
        FROM metric_gauges g JOIN live USING (process) GROUP BY g.name, g.labels
        UNION ALL
        SELECT name, CASE WHEN name = 'loom_bead_duration_seconds' THEN '{}'::jsonb
                          ELSE labels END,
               NULL, bounds, loom_hist_total(buckets), sum(sum), sum(count)::bigint
        FROM metric_histograms GROUP BY 1, 2, bounds
    ) x (f, l, v, b, k, s, n)
    ORDER BY 1, 2, 7 DESC NULLS LAST;
END $$;
