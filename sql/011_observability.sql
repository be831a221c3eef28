-- 011_observability: structured logs, Prometheus counters, and the analytics read models.
--
-- Logs.  A log line is an event of type "log.<level>" (loom_event, so it reaches
-- /api/v1/logs/stream and resumes like every event) and, through the trigger events_log, a row
-- of `logs` with the same id, kept LOOM_LOGS_RETENTION_DAYS (7) by loom-ralph.  The workers
-- write theirs with loom_logs_write (shared/dblog.c batches them off the caller's thread).
-- /logs/recent and /logs/export merge the two sources into one id space: the rows of `logs`
-- and every other event as a line (loom_log_json of 006), never the same line twice.
--
-- Metrics.  Counters that must only grow live in metric_counters / metric_histograms, keyed
-- by (name, labels, process):
--   process ''   counted by the database itself, where it happens: triggers on runs (finished
--                runs by state and reason, lease expiries, dispatch hops), beads (hop-limit
--                blocks) and llm_calls (provider requests, errors, tokens, cost, latency);
--   process X    the cumulative counters of one loom-api or loom-sse process (its HTTP
--                requests and latency by route, its streams), written as absolute values by
--                loom_metrics_report every few seconds and on every scrape.
-- A scrape (loom_metrics_scrape) sums over processes, so any loom-api answers for the whole
-- system and a restarted process never makes a counter go down (its old rows stay in the sum;
-- loom-ralph folds the rows of processes silent for an hour into process '').  Gauges of a
-- process (open streams) count only while it reports (seen in the last 30 s).

-- ---- logs ----------------------------------------------------------------------------------

CREATE TABLE logs (
    id         bigint PRIMARY KEY, -- the id of its log.<level> event
    level      text NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    source     text NOT NULL,
    message    text NOT NULL,
    project_id text,
    bead_id    text,
    agent_id   text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs_created_idx ON logs (created_at);
CREATE INDEX logs_project_idx ON logs (project_id, id);

ALTER TABLE logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY logs_scope ON logs USING (project_id IS NULL OR loom_sees(project_id));

-- Every log.* event is also a row of logs (a level Loom does not know reads as info).
CREATE FUNCTION loom_events_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO logs (id, level, source, message, project_id, bead_id, agent_id, created_at)
    VALUES (NEW.id,
            CASE WHEN substr(NEW.type, 5) IN ('debug', 'info', 'warn', 'error')
                 THEN substr(NEW.type, 5) ELSE 'info' END,
            NEW.actor, left(coalesce(NEW.payload ->> 'message', NEW.type), 4000),
            NEW.project_id, NEW.bead_id, NEW.payload ->> 'agent_id', NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER events_log AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.type LIKE 'log.%') EXECUTE FUNCTION loom_events_log();

-- A batch of log lines from a worker: [{level, source, message, project_id?, bead_id?,
-- agent_id?}, ...].  Returns how many were written.
CREATE FUNCTION loom_logs_write(batch jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    l jsonb;
    n integer := 0;
BEGIN
    FOR l IN SELECT x FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(x, o) ORDER BY o LOOP
        PERFORM loom_event('log.' || CASE WHEN l ->> 'level' IN ('debug', 'info', 'warn', 'error')
                                          THEN l ->> 'level' ELSE 'info' END,
                           nullif(l ->> 'project_id', ''), nullif(l ->> 'bead_id', ''),
                           coalesce(nullif(l ->> 'source', ''), 'loom'),
                           jsonb_build_object('message', left(l ->> 'message', 4000),
                                              'agent_id', nullif(l ->> 'agent_id', '')));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE FUNCTION loom_log_line(l logs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', l.id, 'timestamp', l.created_at, 'level', l.level, 'source', l.source,
        'type', 'log.' || l.level, 'project_id', l.project_id, 'bead_id', l.bead_id,
        'agent_id', l.agent_id, 'message', l.message)
$$;

-- The merged log: rows of logs, and every event that is not a log.* event as a line.  Ids
-- after since_id, made at or after not_before; the newest lim lines, newest first, or (not
-- newest_first) the oldest lim, oldest first.
CREATE FUNCTION loom_logs_select(since_id bigint, not_before timestamptz, pid text, bid text,
                                 aid text, src text, lvl text, lim integer, newest_first boolean)
RETURNS TABLE (id bigint, line json) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    IF newest_first THEN
        RETURN QUERY SELECT x.id, x.line FROM (
            (SELECT l.id, loom_log_line(l) AS line FROM logs l
             WHERE l.id > since_id AND l.created_at >= not_before
               AND (pid IS NULL OR l.project_id = pid) AND (bid IS NULL OR l.bead_id = bid)
               AND (aid IS NULL OR l.agent_id = aid) AND (src IS NULL OR l.source = src)
               AND loom_level_rank(l.level) >= loom_level_rank(lvl)
             ORDER BY l.id DESC LIMIT lim)
            UNION ALL
            (SELECT e.id, loom_log_json(e) FROM events e
             WHERE e.id > since_id AND e.created_at >= not_before AND e.type NOT LIKE 'log.%'
               AND e.recipient IS NULL -- a person's notifications are theirs alone (013)
               AND (pid IS NULL OR e.project_id = pid) AND (bid IS NULL OR e.bead_id = bid)
               AND (aid IS NULL OR e.payload ->> 'agent_id' = aid
                    OR e.payload #>> '{run,agent_id}' = aid)
               AND (src IS NULL OR e.actor = src)
               AND loom_level_rank(loom_event_level(e)) >= loom_level_rank(lvl)
             ORDER BY e.id DESC LIMIT lim)) x
        ORDER BY x.id DESC LIMIT lim;
    ELSE
        RETURN QUERY SELECT x.id, x.line FROM (
            (SELECT l.id, loom_log_line(l) AS line FROM logs l
             WHERE l.id > since_id AND l.created_at >= not_before
               AND (pid IS NULL OR l.project_id = pid) AND (bid IS NULL OR l.bead_id = bid)
               AND (aid IS NULL OR l.agent_id = aid) AND (src IS NULL OR l.source = src)
               AND loom_level_rank(l.level) >= loom_level_rank(lvl)
             ORDER BY l.id LIMIT lim)
            UNION ALL
            (SELECT e.id, loom_log_json(e) FROM events e
             WHERE e.id > since_id AND e.created_at >= not_before AND e.type NOT LIKE 'log.%'
               AND e.recipient IS NULL -- a person's notifications are theirs alone (013)
               AND (pid IS NULL OR e.project_id = pid) AND (bid IS NULL OR e.bead_id = bid)
               AND (aid IS NULL OR e.payload ->> 'agent_id' = aid
                    OR e.payload #>> '{run,agent_id}' = aid)
               AND (src IS NULL OR e.actor = src)
               AND loom_level_rank(loom_event_level(e)) >= loom_level_rank(lvl)
             ORDER BY e.id LIMIT lim)) x
        ORDER BY x.id LIMIT lim;
    END IF;
END $$;

-- The rows of an export (flat, for CSV too): the merged log of a period, oldest first.
CREATE FUNCTION loom_logs_export(per text, pid text, bid text, aid text, src text, lvl text,
                                 lim integer)
RETURNS TABLE ("id" bigint, "timestamp" text, "level" text, "source" text, "type" text,
               "project_id" text, "bead_id" text, "agent_id" text, "message" text)
LANGUAGE sql STABLE AS $$
    SELECT s.id, to_char((s.line ->> 'timestamp')::timestamptz AT TIME ZONE 'UTC',
                         'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           s.line ->> 'level', s.line ->> 'source', s.line ->> 'type', s.line ->> 'project_id',
           s.line ->> 'bead_id', s.line ->> 'agent_id', s.line ->> 'message'
    FROM loom_logs_select(0, now() - loom_period(per), pid, bid, aid, src, lvl, lim, false) s
$$;

-- loom-ralph: log lines (and their events) older than days go, oldest first, in batches.
CREATE FUNCTION loom_logs_prune(days integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH gone AS (
        DELETE FROM logs WHERE id IN (
            SELECT l.id FROM logs l WHERE l.created_at < now() - make_interval(days => days)
            ORDER BY l.created_at LIMIT 10000)
        RETURNING id)
    DELETE FROM events e USING gone g WHERE e.id = g.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- a line whose event was already pruned by LOOM_EVENTS_RETENTION_DAYS is gone too, uncounted
    RETURN n;
END $$;

-- ---- metrics: tables and helpers -----------------------------------------------------------

CREATE TABLE metric_processes (
    process    text PRIMARY KEY, -- host:pid:start of a loom-api or loom-sse process
    program    text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metric_counters (
    name    text NOT NULL,
    labels  jsonb NOT NULL DEFAULT '{}',
    process text NOT NULL DEFAULT '',
    value   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (name, labels, process)
);

-- buckets[i]: observations in (bounds[i-1], bounds[i]]; the last one those above every bound
CREATE TABLE metric_histograms (
    name    text NOT NULL,
    labels  jsonb NOT NULL DEFAULT '{}',
    process text NOT NULL DEFAULT '',
    bounds  double precision[] NOT NULL,
    buckets bigint[] NOT NULL CHECK (cardinality(buckets) = cardinality(bounds) + 1),
    sum     double precision NOT NULL DEFAULT 0,
    count   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (name, labels, process)
);

CREATE TABLE metric_gauges (
    name    text NOT NULL,
    labels  jsonb NOT NULL DEFAULT '{}',
    process text NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (name, labels, process)
);

-- The counters that have no labels (or fixed ones) exist from the start, at 0.
INSERT INTO metric_counters (name, labels) VALUES
    ('loom_dispatch_hops_total', '{}'), ('loom_dispatch_hop_limit_total', '{}'),
    ('loom_lease_expiries_total', '{"outcome": "requeued"}'),
    ('loom_lease_expiries_total', '{"outcome": "failed"}');

CREATE FUNCTION loom_hist_one(bounds double precision[], v double precision) RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(CASE WHEN i = coalesce((SELECT min(j) FROM generate_subscripts(bounds, 1) j
                                             WHERE v <= bounds[j]), cardinality(bounds) + 1)
                          THEN 1 ELSE 0 END ORDER BY i)::bigint[]
    FROM generate_series(1, cardinality(bounds) + 1) i
$$;

CREATE FUNCTION loom_hist_sum(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT array_agg(x + y ORDER BY o) FROM unnest(a, b) WITH ORDINALITY AS t(x, y, o)
$$;

-- Element-wise sum of bucket arrays (of equal length).
CREATE AGGREGATE loom_hist_total(bigint[]) (SFUNC = loom_hist_sum, STYPE = bigint[]);

-- Adds v to a database-counted counter.
-- The row a database-counted metric goes to: one of 16 per series, by backend, so that
-- concurrent transactions (four executors finishing runs, every event written) do not queue on
-- one counter row's lock; a scrape adds the rows up like those of the processes.
CREATE FUNCTION loom_metric_shard() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'db' || (pg_backend_pid() % 16)::text
$$;

CREATE FUNCTION loom_metric_add(n text, l jsonb, v double precision) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_counters AS m (name, labels, process, value)
    VALUES (n, l, loom_metric_shard(), v)
    ON CONFLICT (name, labels, process) DO UPDATE SET value = m.value + EXCLUDED.value;
END $$;

-- One observation of a database-counted histogram.
CREATE FUNCTION loom_metric_observe(n text, l jsonb, bounds double precision[],
                                    v double precision) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_histograms AS h (name, labels, process, bounds, buckets, sum, count)
    VALUES (n, l, loom_metric_shard(), bounds, loom_hist_one(bounds, v), v, 1)
    ON CONFLICT (name, labels, process) DO UPDATE
        SET buckets = loom_hist_sum(h.buckets, EXCLUDED.buckets), sum = h.sum + EXCLUDED.sum,
            count = h.count + 1
        WHERE h.bounds = EXCLUDED.bounds;
END $$;

-- ---- metrics counted where things happen ---------------------------------------------------

CREATE FUNCTION loom_llm_bounds() RETURNS double precision[] LANGUAGE sql IMMUTABLE AS $$
    SELECT '{0.25,0.5,1,2.5,5,10,20,30,60,120,300}'::double precision[]
$$;

CREATE FUNCTION loom_llm_labels(c llm_calls) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('provider', coalesce(c.provider_id, ''),
                              'model', coalesce(nullif(c.served_model, ''), c.requested_model))
$$;

CREATE FUNCTION loom_metrics_llm_call() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    l jsonb := loom_llm_labels(NEW);
BEGIN
    PERFORM loom_metric_add('loom_provider_requests_total', l, 1);
    IF NEW.status = 'error' THEN
        PERFORM loom_metric_add('loom_provider_errors_total',
                                l || jsonb_build_object('class', coalesce(NEW.error_class, 'unknown')),
                                1);
    END IF;
    PERFORM loom_metric_add('loom_provider_tokens_total', l || '{"type": "prompt"}',
                            NEW.prompt_tokens);
    PERFORM loom_metric_add('loom_provider_tokens_total', l || '{"type": "completion"}',
                            NEW.completion_tokens);
    PERFORM loom_metric_add('loom_provider_tokens_total', l || '{"type": "cached"}',
                            NEW.cached_tokens);
    PERFORM loom_metric_add('loom_provider_cost_usd_cents', l, NEW.cost_usd * 100);
    PERFORM loom_metric_observe('loom_provider_request_duration_seconds', l, loom_llm_bounds(),
                                NEW.latency_ms / 1000.0);
    RETURN NULL;
END $$;
CREATE TRIGGER llm_calls_metrics AFTER INSERT ON llm_calls
    FOR EACH ROW EXECUTE FUNCTION loom_metrics_llm_call();

-- A run queued is a dispatch hop; a run's state change may finish it or expire its lease.
CREATE FUNCTION loom_metrics_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM loom_metric_add('loom_dispatch_hops_total', '{}', 1);
    END IF;
    -- a run written already ended (an import, a repair by hand) has finished too
    IF NEW.state IN ('succeeded', 'failed', 'canceled') THEN
        PERFORM loom_metric_add('loom_runs_finished_total',
                                jsonb_build_object('state', NEW.state,
                                                   'reason', coalesce(NEW.terminal_reason, 'none')),
                                1);
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
CREATE TRIGGER runs_metrics_insert AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION loom_metrics_run();
CREATE TRIGGER runs_metrics_state AFTER UPDATE OF state ON runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION loom_metrics_run();

CREATE FUNCTION loom_metrics_hop_limit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loom_metric_add('loom_dispatch_hop_limit_total', '{}', 1);
    RETURN NULL;
END $$;
CREATE TRIGGER beads_metrics_hop_limit AFTER UPDATE OF status ON beads
    FOR EACH ROW WHEN (NEW.status = 'blocked' AND OLD.status <> 'blocked'
                       AND starts_with(NEW.context ->> 'ralph_blocked_reason', 'hop limit'))
    EXECUTE FUNCTION loom_metrics_hop_limit();

-- What happened before this migration counts too.
INSERT INTO metric_counters (name, labels, value)
SELECT 'loom_runs_finished_total',
       jsonb_build_object('state', state, 'reason', coalesce(terminal_reason, 'none')), count(*)
FROM runs WHERE state IN ('succeeded', 'failed', 'canceled') GROUP BY 2;
UPDATE metric_counters SET value = (SELECT count(*) FROM runs)
WHERE name = 'loom_dispatch_hops_total';
UPDATE metric_counters SET value = (SELECT count(*) FROM runs WHERE terminal_reason = 'lease_expired')
WHERE name = 'loom_lease_expiries_total' AND labels ->> 'outcome' = 'failed';
INSERT INTO metric_counters (name, labels, value)
SELECT n, l, sum(v) FROM llm_calls c, LATERAL (VALUES
    ('loom_provider_requests_total', loom_llm_labels(c), 1::float8),
    ('loom_provider_tokens_total', loom_llm_labels(c) || '{"type": "prompt"}', c.prompt_tokens),
    ('loom_provider_tokens_total', loom_llm_labels(c) || '{"type": "completion"}',
     c.completion_tokens),
    ('loom_provider_tokens_total', loom_llm_labels(c) || '{"type": "cached"}', c.cached_tokens),
    ('loom_provider_cost_usd_cents', loom_llm_labels(c), c.cost_usd * 100),
    ('loom_provider_errors_total',
     loom_llm_labels(c) || jsonb_build_object('class', coalesce(c.error_class, 'unknown')),
     CASE WHEN c.status = 'error' THEN 1 END)) AS x(n, l, v)
WHERE v IS NOT NULL GROUP BY n, l;
INSERT INTO metric_histograms (name, labels, bounds, buckets, sum, count)
SELECT 'loom_provider_request_duration_seconds', loom_llm_labels(c), loom_llm_bounds(),
       loom_hist_total(loom_hist_one(loom_llm_bounds(), c.latency_ms / 1000.0)),
       sum(c.latency_ms / 1000.0), count(*)
FROM llm_calls c GROUP BY 2;

-- ---- metrics reported by processes ---------------------------------------------------------

-- A loom-api or loom-sse process reports its cumulative counters, histograms and gauges:
-- doc = {counters: [{name, labels, value}], histograms: [{name, labels, bounds, buckets, sum,
-- count}], gauges: [{name, labels, value}]}.  Values replace what the process reported before.
CREATE FUNCTION loom_metrics_report(proc text, prog text, doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_processes AS p (process, program) VALUES (proc, prog)
    ON CONFLICT (process) DO UPDATE SET seen_at = now();
    INSERT INTO metric_counters AS m (name, labels, process, value)
    SELECT c ->> 'name', coalesce(c -> 'labels', '{}'), proc, (c ->> 'value')::float8
    FROM jsonb_array_elements(coalesce(doc -> 'counters', '[]')) c
    ON CONFLICT (name, labels, process) DO UPDATE SET value = EXCLUDED.value;
    INSERT INTO metric_histograms AS h (name, labels, process, bounds, buckets, sum, count)
    SELECT x ->> 'name', coalesce(x -> 'labels', '{}'), proc,
           ARRAY(SELECT b::float8 FROM jsonb_array_elements_text(x -> 'bounds')
                 WITH ORDINALITY AS t(b, o) ORDER BY o),
           ARRAY(SELECT b::bigint FROM jsonb_array_elements_text(x -> 'buckets')
                 WITH ORDINALITY AS t(b, o) ORDER BY o),
           (x ->> 'sum')::float8, (x ->> 'count')::bigint
    FROM jsonb_array_elements(coalesce(doc -> 'histograms', '[]')) x
    ON CONFLICT (name, labels, process) DO UPDATE
        SET bounds = EXCLUDED.bounds, buckets = EXCLUDED.buckets, sum = EXCLUDED.sum,
            count = EXCLUDED.count;
    INSERT INTO metric_gauges AS g (name, labels, process, value)
    SELECT x ->> 'name', coalesce(x -> 'labels', '{}'), proc, (x ->> 'value')::float8
    FROM jsonb_array_elements(coalesce(doc -> 'gauges', '[]')) x
    ON CONFLICT (name, labels, process) DO UPDATE SET value = EXCLUDED.value;
END $$;

-- loom-ralph: the rows of processes silent for stale_s seconds are folded into process ''
-- (counters and histograms add up, gauges go).  Returns the processes folded.
CREATE FUNCTION loom_metrics_fold(stale_s integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    gone text[];
BEGIN
    SELECT array_agg(process) INTO gone FROM (
        SELECT process FROM metric_processes
        WHERE seen_at < now() - make_interval(secs => stale_s)
        FOR UPDATE SKIP LOCKED) p;
    IF gone IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO metric_counters AS m (name, labels, process, value)
    SELECT name, labels, '', sum(value) FROM metric_counters
    WHERE process = ANY (gone) GROUP BY name, labels
    ON CONFLICT (name, labels, process) DO UPDATE SET value = m.value + EXCLUDED.value;
    INSERT INTO metric_histograms AS h (name, labels, process, bounds, buckets, sum, count)
    SELECT DISTINCT ON (name, labels) name, labels, '', bounds, buckets, sum, count FROM (
        SELECT name, labels, bounds, loom_hist_total(buckets) AS buckets, sum(sum) AS sum,
               sum(count)::bigint AS count
        FROM metric_histograms WHERE process = ANY (gone) GROUP BY name, labels, bounds) x
    ORDER BY name, labels, count DESC
    ON CONFLICT (name, labels, process) DO UPDATE
        SET buckets = loom_hist_sum(h.buckets, EXCLUDED.buckets), sum = h.sum + EXCLUDED.sum,
            count = h.count + EXCLUDED.count
        WHERE h.bounds = EXCLUDED.bounds;
    DELETE FROM metric_counters WHERE process = ANY (gone);
    DELETE FROM metric_histograms WHERE process = ANY (gone);
    DELETE FROM metric_gauges WHERE process = ANY (gone);
    DELETE FROM metric_processes WHERE process = ANY (gone);
    RETURN cardinality(gone);
END $$;

-- GET /metrics: every sample, family by family (ordered by family, then labels).  A sample has
-- value; a histogram has bounds, non-cumulative buckets, sum and count.  Counts across every
-- project whoever asks (the route needs system:read), hence the unscoped statement.
CREATE FUNCTION loom_metrics_scrape()
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
        SELECT name, labels, sum(value), NULL, NULL, NULL, NULL
        FROM metric_counters GROUP BY name, labels
        UNION ALL
        SELECT g.name, g.labels, sum(g.value), NULL, NULL, NULL, NULL
        FROM metric_gauges g JOIN live USING (process) GROUP BY g.name, g.labels
        UNION ALL
        SELECT name, labels, NULL, bounds, loom_hist_total(buckets), sum(sum), sum(count)::bigint
        FROM metric_histograms GROUP BY name, labels, bounds
    ) x (f, l, v, b, k, s, n)
    ORDER BY 1, 2, 7 DESC NULLS LAST;
END $$;

-- ---- analytics -----------------------------------------------------------------------------

-- GET /analytics/stats, as in 006 plus Loom's headline fields (total_requests, total_tokens,
-- total_cost_usd, avg_latency_ms, p95_latency_ms, error_rate), error rates and p95 per group,
-- a breakdown by provider, and the runs of the period (by state and terminal reason).
CREATE OR REPLACE FUNCTION loom_analytics_stats(pid text, per text) RETURNS json
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT * FROM llm_calls
        WHERE created_at >= now() - loom_period(per) AND (pid IS NULL OR project_id = pid)
    ), g AS (
        SELECT 'project' AS dim, coalesce(project_id, '-') AS key, c.* FROM c
        UNION ALL SELECT 'agent', coalesce(agent_id, '-'), c.* FROM c
        UNION ALL SELECT 'model', coalesce(nullif(served_model, ''), requested_model), c.* FROM c
        UNION ALL SELECT 'provider', coalesce(provider_id, '-'), c.* FROM c
    ), by_key AS (
        SELECT dim, json_agg(json_build_object(
                   'key', key, 'calls', calls, 'requests', calls, 'errors', errors,
                   'error_rate', round(errors::numeric / calls, 4),
                   'prompt_tokens', ptok, 'completion_tokens', ctok, 'tokens', ptok + ctok,
                   'cost_usd', cost, 'avg_latency_ms', lat, 'p95_latency_ms', p95)
                   ORDER BY cost DESC, calls DESC, key) AS rows
        FROM (SELECT dim, key, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
                     sum(prompt_tokens) AS ptok, sum(completion_tokens) AS ctok,
                     round(sum(cost_usd), 6) AS cost, round(avg(latency_ms)) AS lat,
                     round(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::numeric) AS p95
              FROM g GROUP BY dim, key) k
        GROUP BY dim
    ), t AS (
        SELECT count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
               coalesce(sum(prompt_tokens), 0) AS ptok,
               coalesce(sum(completion_tokens), 0) AS ctok,
               coalesce(sum(cached_tokens), 0) AS cached,
               coalesce(round(sum(cost_usd), 6), 0) AS cost,
               coalesce(round(avg(latency_ms)), 0) AS lat,
               coalesce(round(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::numeric),
                        0) AS p95,
               coalesce(round(avg(ttft_ms)), 0) AS ttft
        FROM c
    ), r AS (
        SELECT * FROM runs
        WHERE coalesce(finished_at, created_at) >= now() - loom_period(per)
          AND (pid IS NULL OR project_id = pid)
    )
    SELECT json_build_object(
        'period', per,
        'total_requests', t.calls, 'total_tokens', t.ptok + t.ctok, 'total_cost_usd', t.cost,
        'avg_latency_ms', t.lat, 'p95_latency_ms', t.p95,
        'error_rate', CASE WHEN t.calls > 0 THEN round(t.errors::numeric / t.calls, 4) ELSE 0 END,
        'totals', json_build_object(
            'calls', t.calls, 'requests', t.calls, 'errors', t.errors,
            'error_rate', CASE WHEN t.calls > 0 THEN round(t.errors::numeric / t.calls, 4)
                               ELSE 0 END,
            'prompt_tokens', t.ptok, 'completion_tokens', t.ctok, 'cached_tokens', t.cached,
            'tokens', t.ptok + t.ctok, 'cost_usd', t.cost, 'avg_latency_ms', t.lat,
            'p95_latency_ms', t.p95, 'avg_ttft_ms', t.ttft),
        'by_project', coalesce((SELECT rows FROM by_key WHERE dim = 'project'), '[]'),
        'by_agent', coalesce((SELECT rows FROM by_key WHERE dim = 'agent'), '[]'),
        'by_model', coalesce((SELECT rows FROM by_key WHERE dim = 'model'), '[]'),
        'by_provider', coalesce((SELECT rows FROM by_key WHERE dim = 'provider'), '[]'),
        'by_hour', coalesce((SELECT json_agg(json_build_object(
                       'bucket', h, 'calls', calls, 'errors', errors, 'tokens', tok,
                       'prompt_tokens', ptok, 'completion_tokens', ctok, 'cost_usd', cost,
                       'avg_latency_ms', lat, 'p95_latency_ms', p95) ORDER BY h)
                   FROM (SELECT date_trunc('hour', created_at) AS h, count(*) AS calls,
                                count(*) FILTER (WHERE status = 'error') AS errors,
                                sum(prompt_tokens + completion_tokens) AS tok,
                                sum(prompt_tokens) AS ptok, sum(completion_tokens) AS ctok,
                                round(sum(cost_usd), 6) AS cost, round(avg(latency_ms)) AS lat,
                                round(percentile_cont(0.95) WITHIN GROUP
                                      (ORDER BY latency_ms)::numeric) AS p95
                         FROM c GROUP BY 1) x), '[]'),
        'runs', (SELECT json_build_object(
            'total', count(*),
            'queued', count(*) FILTER (WHERE state = 'queued'),
            'running', count(*) FILTER (WHERE state = 'running'),
            'succeeded', count(*) FILTER (WHERE state = 'succeeded'),
            'failed', count(*) FILTER (WHERE state = 'failed'),
            'canceled', count(*) FILTER (WHERE state = 'canceled'),
            'avg_duration_s', coalesce(round(avg(extract(epoch FROM finished_at - started_at))
                                             FILTER (WHERE finished_at IS NOT NULL
                                                     AND started_at IS NOT NULL)::numeric, 1), 0),
            'by_reason', coalesce((SELECT json_agg(json_build_object('reason', reason, 'runs', n)
                                                   ORDER BY n DESC, reason)
                                   FROM (SELECT terminal_reason AS reason, count(*) AS n FROM r
                                         WHERE terminal_reason IS NOT NULL GROUP BY 1) y), '[]'))
            FROM r))
    FROM t
$$;

-- GET /analytics/costs: cost, requests and tokens of a period grouped by one dimension:
-- project, agent, persona (the run's), model, provider, bead or day.
CREATE FUNCTION loom_analytics_costs(pid text, per text, dim text) RETURNS json
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT c.*, CASE dim
            WHEN 'project' THEN c.project_id
            WHEN 'agent' THEN c.agent_id
            WHEN 'persona' THEN coalesce(r.persona_name,
                                         (SELECT a.persona_name FROM agents a WHERE a.id = c.agent_id))
            WHEN 'model' THEN coalesce(nullif(c.served_model, ''), nullif(c.requested_model, ''))
            WHEN 'provider' THEN c.provider_id
            WHEN 'bead' THEN c.bead_id
            ELSE to_char(date_trunc('day', c.created_at), 'YYYY-MM-DD') END AS key
        FROM llm_calls c LEFT JOIN runs r ON r.id = c.run_id
        WHERE c.created_at >= now() - loom_period(per) AND (pid IS NULL OR c.project_id = pid)
    ), k AS (
        SELECT coalesce(key, '-') AS key, count(*) AS requests,
               count(*) FILTER (WHERE status = 'error') AS errors,
               sum(prompt_tokens) AS ptok, sum(completion_tokens) AS ctok,
               sum(cached_tokens) AS cached, round(sum(cost_usd), 6) AS cost,
               round(avg(latency_ms)) AS lat
        FROM c GROUP BY 1
    ), tot AS (SELECT coalesce(sum(cost), 0) AS cost, coalesce(sum(requests), 0) AS requests,
                      coalesce(sum(ptok + ctok), 0) AS tokens, count(*) AS n FROM k)
    SELECT json_build_object(
        'period', per, 'group_by', dim, 'project_id', pid,
        'total_cost_usd', tot.cost, 'total_requests', tot.requests, 'total_tokens', tot.tokens,
        'truncated', tot.n > 1000,
        'rows', coalesce((SELECT json_agg(json_build_object(
                    'key', key, 'requests', requests, 'errors', errors, 'prompt_tokens', ptok,
                    'completion_tokens', ctok, 'cached_tokens', cached, 'tokens', ptok + ctok,
                    'cost_usd', cost, 'avg_latency_ms', lat,
                    'share', CASE WHEN tot.cost > 0 THEN round(cost / tot.cost, 4) ELSE 0 END)
                    ORDER BY o1, o2 DESC, o3 DESC, key)
                 FROM (SELECT k.*, CASE WHEN dim = 'day' THEN key ELSE '' END AS o1,
                              cost AS o2, requests AS o3
                       FROM k ORDER BY o1, cost DESC, requests DESC, key LIMIT 1000) s), '[]'))
    FROM tot
$$;

-- GET /analytics/export: the LLM calls of a period, oldest first (flat, for CSV too).
CREATE FUNCTION loom_analytics_export(pid text, per text, lim integer, off integer)
RETURNS TABLE ("id" bigint, "timestamp" text, "project_id" text, "bead_id" text,
               "agent_id" text, "run_id" bigint, "provider_id" text, "requested_model" text,
               "served_model" text, "prompt_tokens" integer, "completion_tokens" integer,
               "cached_tokens" integer, "total_tokens" integer, "cost_usd" numeric,
               "cost_source" text, "latency_ms" integer, "ttft_ms" integer, "status" text,
               "http_status" integer, "error_class" text, "error" text, "retries" integer)
LANGUAGE sql STABLE AS $$
    SELECT c.id, to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           c.project_id, c.bead_id, c.agent_id, c.run_id, c.provider_id, c.requested_model,
           c.served_model, c.prompt_tokens, c.completion_tokens, c.cached_tokens,
           c.prompt_tokens + c.completion_tokens, c.cost_usd, c.cost_source, c.latency_ms,
           c.ttft_ms, c.status, c.http_status, c.error_class, c.error, c.retries
    FROM llm_calls c
    WHERE c.created_at >= now() - loom_period(per) AND (pid IS NULL OR c.project_id = pid)
    ORDER BY c.id LIMIT lim OFFSET off
$$;

-- GET /analytics/change-velocity: what agents changed in each project in a period, from the
-- action log: files changed, builds and tests run and passed, commits and pushes made, the
-- programs they ran, commits per day, and the edit → build → test → commit → push funnel
-- (beads that got that far; a rate is the share of the previous step's beads).
CREATE FUNCTION loom_change_velocity(pid text, per text) RETURNS json
LANGUAGE sql STABLE AS $$
    WITH a AS (
        SELECT project_id, bead_id, type, status = 'executed' AS ok, path FROM actions
        WHERE created_at >= now() - loom_period(per) AND (pid IS NULL OR project_id = pid)
    ), edits AS (
        SELECT * FROM a WHERE type IN ('write_file', 'edit_code', 'apply_patch', 'move_file',
                                       'rename_file', 'delete_file')
    ), per_project AS (
        SELECT p.id AS project_id,
               (SELECT count(DISTINCT path) FROM edits e
                WHERE e.project_id = p.id AND e.ok AND e.path <> '') AS files_changed,
               (SELECT count(*) FROM edits e WHERE e.project_id = p.id) AS edits_attempted,
               (SELECT count(*) FROM edits e WHERE e.project_id = p.id AND e.ok) AS edits,
               count(*) FILTER (WHERE a.type = 'build_project') AS builds_run,
               count(*) FILTER (WHERE a.type = 'build_project' AND a.ok) AS builds_passed,
               count(*) FILTER (WHERE a.type = 'run_tests') AS tests_run,
               count(*) FILTER (WHERE a.type = 'run_tests' AND a.ok) AS tests_passed,
               count(*) FILTER (WHERE a.type = 'git_commit') AS commits_attempted,
               count(*) FILTER (WHERE a.type = 'git_commit' AND a.ok) AS commits,
               count(*) FILTER (WHERE a.type = 'git_push') AS pushes_attempted,
               count(*) FILTER (WHERE a.type = 'git_push' AND a.ok) AS pushes,
               count(DISTINCT a.bead_id) FILTER (WHERE a.type IN ('write_file', 'edit_code',
                   'apply_patch', 'move_file', 'rename_file', 'delete_file') AND a.ok) AS f_edit,
               count(DISTINCT a.bead_id) FILTER (WHERE a.type = 'build_project' AND a.ok) AS f_build,
               count(DISTINCT a.bead_id) FILTER (WHERE a.type = 'run_tests' AND a.ok) AS f_test,
               count(DISTINCT a.bead_id) FILTER (WHERE a.type = 'git_commit' AND a.ok) AS f_commit,
               count(DISTINCT a.bead_id) FILTER (WHERE a.type = 'git_push' AND a.ok) AS f_push
        FROM projects p LEFT JOIN a ON a.project_id = p.id
        WHERE pid IS NULL OR p.id = pid
        GROUP BY p.id
    ), cmd AS (
        SELECT project_id, count(*) AS n,
               count(*) FILTER (WHERE exit_code IS DISTINCT FROM 0 OR timed_out) AS failed
        FROM command_logs
        WHERE created_at >= now() - loom_period(per) AND (pid IS NULL OR project_id = pid)
        GROUP BY project_id
    ), rows AS (
        SELECT v.*, coalesce(cmd.n, 0) AS commands_run, coalesce(cmd.failed, 0) AS commands_failed
        FROM per_project v LEFT JOIN cmd USING (project_id)
    )
    SELECT json_build_object(
        'period', per, 'days', round(extract(epoch FROM loom_period(per)) / 86400.0, 4),
        'projects', coalesce((SELECT json_agg(json_build_object(
            'project_id', project_id, 'files_changed', files_changed,
            'edits', edits, 'edits_attempted', edits_attempted,
            'builds_run', builds_run, 'builds_passed', builds_passed,
            'tests_run', tests_run, 'tests_passed', tests_passed,
            'commits', commits, 'commits_attempted', commits_attempted,
            'pushes', pushes, 'pushes_attempted', pushes_attempted,
            'commands_run', commands_run, 'commands_failed', commands_failed,
            'commits_per_day', round(commits / (extract(epoch FROM loom_period(per)) / 86400.0), 3),
            'funnel', json_build_object(
                'edited', f_edit, 'built', f_build, 'tested', f_test, 'committed', f_commit,
                'pushed', f_push,
                'edit_to_build', CASE WHEN f_edit > 0 THEN round(f_build::numeric / f_edit, 4) END,
                'build_to_test', CASE WHEN f_build > 0 THEN round(f_test::numeric / f_build, 4) END,
                'test_to_commit', CASE WHEN f_test > 0 THEN round(f_commit::numeric / f_test, 4) END,
                'commit_to_push', CASE WHEN f_commit > 0 THEN round(f_push::numeric / f_commit, 4)
                                  END))
            ORDER BY commits DESC, files_changed DESC, project_id) FROM rows), '[]'))
$$;
