-- 005_work: what a run leaves behind, and the rules that keep work from looping.
--
--   messages      the conversation of a bead, across its runs (a later run resumes it)
--   actions       every action an agent asked for, with its outcome
--   command_logs  every program an action ran (command, exit code, time, output head)
--   llm_calls     one row per chat completion: tokens, cost, latency, errors, retries
--   model_prices  USD per million tokens, by model name prefix, for providers that send no cost
--   lessons       what went wrong before, fed to later runs of the project
--
-- The loop detector (Loom's thresholds) runs where a run ends and in loom-ralph; a bead it
-- blocks carries the reason in context.ralph_blocked_reason, which decides whether and when
-- loom-ralph gives it another chance.

ALTER TABLE runs
    ADD COLUMN cached_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
    ADD COLUMN llm_calls integer NOT NULL DEFAULT 0,
    ADD COLUMN worktree text,
    DROP CONSTRAINT runs_terminal_reason_check,
    ADD CONSTRAINT runs_terminal_reason_check CHECK (terminal_reason IN (
        'completed', 'escalated', 'max_iterations', 'error', 'no_actions', 'parse_failures',
        'validation_failures', 'inner_loop', 'loop_detected', 'progress_stagnant',
        'context_canceled', 'lease_expired', 'provider_error', 'canceled'));

-- Why an agent is paused: 'no_provider' (loom_provider_probed may wake it) or 'person'.
ALTER TABLE agents ADD COLUMN paused_reason text
    CHECK (paused_reason IN ('no_provider', 'person'));
UPDATE agents SET paused_reason = 'no_provider' WHERE status = 'paused' AND provider_id IS NULL;

CREATE TABLE messages (
    id         bigserial PRIMARY KEY,
    bead_id    text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    run_id     bigint REFERENCES runs (id) ON DELETE SET NULL,
    seq        integer NOT NULL,
    role       text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bead_id, seq)
);
CREATE INDEX messages_run_idx ON messages (run_id);

CREATE TABLE actions (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    bead_id     text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    agent_id    text,
    iteration   integer NOT NULL,
    seq         integer NOT NULL,
    type        text NOT NULL,
    args        jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL CHECK (status IN ('executed', 'error')),
    message     text NOT NULL DEFAULT '',
    path        text,
    duration_ms integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX actions_run_idx ON actions (run_id, id);
CREATE INDEX actions_bead_idx ON actions (bead_id, id);

CREATE TABLE command_logs (
    id           bigserial PRIMARY KEY,
    action_id    bigint REFERENCES actions (id) ON DELETE CASCADE,
    run_id       bigint REFERENCES runs (id) ON DELETE CASCADE,
    bead_id      text REFERENCES beads (id) ON DELETE CASCADE,
    project_id   text REFERENCES projects (id) ON DELETE CASCADE,
    agent_id     text,
    command      text NOT NULL,
    working_dir  text NOT NULL DEFAULT '',
    exit_code    integer,
    timed_out    boolean NOT NULL DEFAULT false,
    duration_ms  integer NOT NULL DEFAULT 0,
    output       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_logs_bead_idx ON command_logs (bead_id, id);
CREATE INDEX command_logs_project_idx ON command_logs (project_id, id);

CREATE TABLE model_prices (
    model_prefix         text PRIMARY KEY CHECK (model_prefix <> ''),
    prompt_per_mtok      numeric(12, 4) NOT NULL CHECK (prompt_per_mtok >= 0),
    completion_per_mtok  numeric(12, 4) NOT NULL CHECK (completion_per_mtok >= 0),
    cached_per_mtok      numeric(12, 4) CHECK (cached_per_mtok >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- List prices (USD per million tokens) of common models; a model matches the longest prefix
-- found anywhere in its name ("openai/gpt-4o-mini" matches "gpt-4o-mini").  Edit freely.
INSERT INTO model_prices (model_prefix, prompt_per_mtok, completion_per_mtok, cached_per_mtok)
VALUES ('gpt-4o', 2.50, 10.00, 1.25), ('gpt-4o-mini', 0.15, 0.60, 0.075),
       ('gpt-4.1', 2.00, 8.00, 0.50), ('gpt-4.1-mini', 0.40, 1.60, 0.10),
       ('gpt-4.1-nano', 0.10, 0.40, 0.025), ('gpt-5', 1.25, 10.00, 0.125),
       ('gpt-5-mini', 0.25, 2.00, 0.025), ('gpt-5-nano', 0.05, 0.40, 0.005),
       ('o3', 2.00, 8.00, 0.50), ('o4-mini', 1.10, 4.40, 0.275),
       ('claude-opus-4', 15.00, 75.00, 1.50), ('claude-sonnet-4', 3.00, 15.00, 0.30),
       ('claude-3-5-haiku', 0.80, 4.00, 0.08), ('claude-haiku-4', 1.00, 5.00, 0.10),
       ('gemini-2.5-pro', 1.25, 10.00, 0.31), ('gemini-2.5-flash', 0.30, 2.50, 0.075);

CREATE TABLE llm_calls (
    id                bigserial PRIMARY KEY,
    run_id            bigint REFERENCES runs (id) ON DELETE SET NULL,
    bead_id           text,
    agent_id          text,
    project_id        text,
    provider_id       text,
    iteration         integer,
    requested_model   text NOT NULL DEFAULT '',
    served_model      text NOT NULL DEFAULT '',
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cached_tokens     integer NOT NULL DEFAULT 0,
    cost_usd          numeric(14, 6) NOT NULL DEFAULT 0,
    cost_source       text NOT NULL DEFAULT 'none'
                      CHECK (cost_source IN ('provider', 'price_table', 'none')),
    ttft_ms           integer,
    latency_ms        integer NOT NULL DEFAULT 0,
    status            text NOT NULL CHECK (status IN ('ok', 'error')),
    http_status       integer,
    error_class       text,
    error             text,
    retries           integer NOT NULL DEFAULT 0,
    streamed          boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_run_idx ON llm_calls (run_id);
CREATE INDEX llm_calls_project_idx ON llm_calls (project_id, created_at);
CREATE INDEX llm_calls_created_idx ON llm_calls (created_at);

CREATE TABLE lessons (
    id             bigserial PRIMARY KEY,
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    category       text NOT NULL CHECK (category IN ('compiler_error', 'test_failure',
                       'edit_failure', 'loop_pattern', 'conversation_insight')),
    title          text NOT NULL,
    detail         text NOT NULL DEFAULT '',
    source_bead_id text,
    source_agent_id text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lessons_project_idx ON lessons (project_id, id DESC);

-- JSON shapes for the API
CREATE FUNCTION loom_message_json(m messages) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', m.id, 'bead_id', m.bead_id, 'run_id', m.run_id,
                             'seq', m.seq, 'role', m.role, 'content', m.content,
                             'created_at', m.created_at)
$$;

CREATE FUNCTION loom_action_json(a actions) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', a.id, 'run_id', a.run_id, 'bead_id', a.bead_id,
                             'project_id', a.project_id, 'agent_id', a.agent_id,
                             'iteration', a.iteration, 'seq', a.seq, 'type', a.type,
                             'args', a.args, 'status', a.status, 'message', a.message,
                             'path', a.path, 'duration_ms', a.duration_ms,
                             'created_at', a.created_at)
$$;

CREATE FUNCTION loom_command_json(c command_logs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', c.id, 'action_id', c.action_id, 'run_id', c.run_id,
                             'bead_id', c.bead_id, 'project_id', c.project_id,
                             'agent_id', c.agent_id, 'command', c.command,
                             'working_dir', c.working_dir, 'exit_code', c.exit_code,
                             'timed_out', c.timed_out, 'duration_ms', c.duration_ms,
                             'output', c.output, 'created_at', c.created_at)
$$;

CREATE FUNCTION loom_llm_call_json(c llm_calls) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', c.id, 'run_id', c.run_id, 'bead_id', c.bead_id,
                             'agent_id', c.agent_id, 'project_id', c.project_id,
                             'provider_id', c.provider_id, 'iteration', c.iteration,
                             'requested_model', c.requested_model,
                             'served_model', c.served_model,
                             'prompt_tokens', c.prompt_tokens,
                             'completion_tokens', c.completion_tokens,
                             'cached_tokens', c.cached_tokens, 'cost_usd', c.cost_usd,
                             'cost_source', c.cost_source, 'ttft_ms', c.ttft_ms,
                             'latency_ms', c.latency_ms, 'status', c.status,
                             'http_status', c.http_status, 'error_class', c.error_class,
                             'error', c.error, 'retries', c.retries, 'streamed', c.streamed,
                             'created_at', c.created_at)
$$;

CREATE FUNCTION loom_lesson_json(l lessons) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', l.id, 'project_id', l.project_id, 'category', l.category,
                             'title', l.title, 'detail', l.detail,
                             'source_bead_id', l.source_bead_id,
                             'source_agent_id', l.source_agent_id, 'created_at', l.created_at)
$$;

CREATE OR REPLACE FUNCTION loom_run_json(r runs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', r.id, 'bead_id', r.bead_id, 'project_id', r.project_id, 'agent_id', r.agent_id,
        'provider_id', r.provider_id, 'persona_name', r.persona_name, 'state', r.state,
        'attempt', r.attempt, 'iterations', r.iterations, 'max_iterations', r.max_iterations,
        'terminal_reason', r.terminal_reason, 'error', r.error,
        'prompt_tokens', r.prompt_tokens, 'completion_tokens', r.completion_tokens,
        'cached_tokens', r.cached_tokens, 'cost_usd', r.cost_usd, 'llm_calls', r.llm_calls,
        'worktree', r.worktree, 'lease_owner', r.lease_owner,
        'lease_expires_at', r.lease_expires_at, 'heartbeat_at', r.heartbeat_at,
        'created_at', r.created_at, 'started_at', r.started_at, 'finished_at', r.finished_at)
$$;

-- A run's iteration budget: the project's context.max_iterations (1..500) when set.
CREATE FUNCTION loom_runs_budget() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    SELECT context ->> 'max_iterations' INTO v FROM projects WHERE id = NEW.project_id;
    IF v ~ '^[0-9]{1,3}$' AND v::integer BETWEEN 1 AND 500 THEN
        NEW.max_iterations := v::integer;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER runs_budget BEFORE INSERT ON runs
    FOR EACH ROW WHEN (NEW.max_iterations = 25) EXECUTE FUNCTION loom_runs_budget();

-- The conversation so far, for the next message's seq.
CREATE FUNCTION loom_message_add(bid text, rid bigint, r text, body text) RETURNS integer
LANGUAGE sql AS $$
    INSERT INTO messages (bead_id, run_id, seq, role, content)
    SELECT bid, rid, coalesce(max(seq), 0) + 1, r, body FROM messages WHERE bead_id = bid
    RETURNING seq
$$;

-- An iteration begins: the lease is renewed (false when the run is no longer ours), and the
-- iteration is an event for the dashboard.
CREATE FUNCTION loom_run_progress(rid bigint, owner text, lease_s integer, iters integer,
                                  info jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r runs;
BEGIN
    UPDATE runs SET lease_expires_at = now() + make_interval(secs => lease_s),
                    heartbeat_at = now(), iterations = iters
    WHERE id = rid AND lease_owner = owner AND state = 'running'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE agents SET last_active = now() WHERE id = r.agent_id;
    IF info IS NOT NULL THEN
        PERFORM loom_event('run.iteration', r.project_id, r.bead_id, r.agent_id,
                           jsonb_build_object('run_id', r.id, 'iteration', iters,
                                              'max_iterations', r.max_iterations) || info);
    END IF;
    RETURN true;
END $$;

-- The price of a call from the table: NULL when no prefix matches.
CREATE FUNCTION loom_model_cost(model text, ptok bigint, ctok bigint, cached bigint)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT round(((ptok - least(cached, ptok)) * p.prompt_per_mtok
                  + least(cached, ptok) * coalesce(p.cached_per_mtok, p.prompt_per_mtok)
                  + ctok * p.completion_per_mtok) / 1000000.0, 6)
    FROM model_prices p
    WHERE position(p.model_prefix IN lower(model)) > 0
    ORDER BY length(p.model_prefix) DESC LIMIT 1
$$;

-- One chat completion, accounted: the row, and the run's totals.  c is the executor's record;
-- cost_usd in it is the provider's own figure, else the price table's, else 0.
CREATE FUNCTION loom_llm_call_record(c jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    cost numeric;
    src text := 'none';
    ptok integer := coalesce((c ->> 'prompt_tokens')::integer, 0);
    ctok integer := coalesce((c ->> 'completion_tokens')::integer, 0);
    cached integer := coalesce((c ->> 'cached_tokens')::integer, 0);
    cid bigint;
BEGIN
    SELECT * INTO r FROM runs WHERE id = (c ->> 'run_id')::bigint;
    IF c ? 'cost_usd' AND c ->> 'cost_usd' IS NOT NULL THEN
        cost := (c ->> 'cost_usd')::numeric;
        src := 'provider';
    ELSE
        cost := loom_model_cost(coalesce(nullif(c ->> 'served_model', ''),
                                         c ->> 'requested_model', ''), ptok, ctok, cached);
        IF cost IS NOT NULL THEN
            src := 'price_table';
        END IF;
    END IF;
    INSERT INTO llm_calls (run_id, bead_id, agent_id, project_id, provider_id, iteration,
                           requested_model, served_model, prompt_tokens, completion_tokens,
                           cached_tokens, cost_usd, cost_source, ttft_ms, latency_ms, status,
                           http_status, error_class, error, retries, streamed)
    VALUES (r.id, r.bead_id, r.agent_id, r.project_id, r.provider_id,
            (c ->> 'iteration')::integer, coalesce(c ->> 'requested_model', ''),
            coalesce(c ->> 'served_model', ''), ptok, ctok, cached, coalesce(cost, 0), src,
            (c ->> 'ttft_ms')::integer, coalesce((c ->> 'latency_ms')::integer, 0),
            c ->> 'status', (c ->> 'http_status')::integer, c ->> 'error_class',
            left(c ->> 'error', 2000), coalesce((c ->> 'retries')::integer, 0),
            coalesce((c ->> 'streamed')::boolean, false))
    RETURNING id INTO cid;
    IF r.id IS NOT NULL THEN
        UPDATE runs SET prompt_tokens = prompt_tokens + ptok,
                        completion_tokens = completion_tokens + ctok,
                        cached_tokens = cached_tokens + cached,
                        cost_usd = cost_usd + coalesce(cost, 0), llm_calls = llm_calls + 1
        WHERE id = r.id;
    END IF;
    RETURN cid;
END $$;

-- Loom's loop detector over a bead's error history (its last 10 entries), once the bead was
-- dispatched 5 times and failed 5 times: 3 auth errors, 5 provider errors, 5 rate limits or
-- 5 identical errors in a row mean the bead is stuck.  NULL: not stuck.
CREATE FUNCTION loom_bead_loop_reason(ctx jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    hist jsonb := coalesce(ctx -> 'error_history', '[]');
    n integer := jsonb_array_length(coalesce(ctx -> 'error_history', '[]'));
    errs text[];
    e text;
    prev text;
    auth integer := 0;
    prov integer := 0;
    rate integer := 0;
    same integer := 0;
    best integer := 0;
BEGIN
    IF jsonb_typeof(hist) <> 'array' OR n < 5
       OR coalesce((ctx ->> 'dispatch_count')::integer, 0) < 5 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(lower(coalesce(x ->> 'error', '') || ' ' || coalesce(x ->> 'reason', ''))
                     ORDER BY o)
    INTO errs FROM jsonb_array_elements(hist) WITH ORDINALITY AS t(x, o) WHERE o > n - 10;
    FOREACH e IN ARRAY errs LOOP
        IF e ~ '(\m401\M|\m403\M|authentication|forbidden|no api key|invalid api key|auth:)' THEN
            auth := auth + 1;
        ELSIF e ~ '(\m429\M|rate limit|rate_limit)' THEN
            rate := rate + 1;
        ELSIF e ~ '(\m50[0234]\M|provider_error|server error|bad gateway|unavailable|timeout|network)' THEN
            prov := prov + 1;
        END IF;
        same := CASE WHEN e = prev THEN same + 1 ELSE 1 END;
        best := greatest(best, same);
        prev := e;
    END LOOP;
    IF auth >= 3 THEN
        RETURN format('%s auth errors in the last %s runs', auth, cardinality(errs));
    ELSIF prov >= 5 THEN
        RETURN format('%s provider errors in the last %s runs', prov, cardinality(errs));
    ELSIF rate >= 5 THEN
        RETURN format('%s rate limit errors in the last %s runs', rate, cardinality(errs));
    ELSIF best >= 5 THEN
        RETURN format('Identical error repeated %s times: %s', best, left(prev, 200));
    END IF;
    RETURN NULL;
END $$;

-- Blocks a bead the loop detector (or the action loop) found stuck.
CREATE FUNCTION loom_bead_block_loop(bid text, why text, actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loom_bead_apply(bid, jsonb_build_object('status', 'blocked', 'assigned_to', NULL,
        'context', jsonb_build_object(
            'loop_detected', true, 'loop_detected_reason', why, 'loop_detected_at', now(),
            'ralph_blocked_at', now(), 'redispatch_requested', false,
            'ralph_blocked_reason', 'auto-blocked by Ralph: ' || why)), actor);
    PERFORM loom_event('bead.loop_detected', (SELECT project_id FROM beads WHERE id = bid), bid,
                       actor, jsonb_build_object('reason', why));
END $$;

-- The end of a run, in one transaction: its state; the bead's status (closed when completed;
-- blocked when escalated or stuck in a loop; else open again with the failure in its error
-- history, so the dispatcher backs off); the agent back to idle; the lease gone.  False when
-- the run was not ours any more.
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
                    terminal_reason = reason, error = left(err, 4000),
                    iterations = greatest(iterations, iters), finished_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL
    WHERE id = rid AND lease_owner = owner AND state = 'running'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO b FROM beads WHERE id = r.bead_id FOR UPDATE;
    ctx := jsonb_build_object('terminal_reason', reason, 'last_run_error', err,
                              'last_failed_at', CASE WHEN ok THEN NULL ELSE now()::text END);
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

-- Cancels a live run.  A queued run ends at once; a running one is marked canceled and its
-- executor, finding the lease gone at its next iteration, stops without writing.
CREATE FUNCTION loom_run_cancel(rid bigint, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    r runs;
BEGIN
    SELECT * INTO r FROM runs WHERE id = rid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('run %s not found', rid));
    END IF;
    IF r.state NOT IN ('queued', 'running') THEN
        PERFORM loom_raise('LM409', format('run %s already ended (%s)', rid, r.state));
    END IF;
    UPDATE runs SET state = 'canceled', terminal_reason = 'canceled',
                    error = format('canceled by %s', actor), finished_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL
    WHERE id = rid RETURNING * INTO r;
    PERFORM loom_bead_apply(r.bead_id, jsonb_build_object('status', 'open', 'assigned_to', NULL,
        'context', jsonb_build_object('terminal_reason', 'canceled',
                                      'last_failed_at', now()::text)), actor)
    FROM beads WHERE id = r.bead_id AND status = 'in_progress';
    UPDATE agents SET status = 'idle', current_bead = NULL, updated_at = now()
    WHERE id = r.agent_id AND status = 'working';
    PERFORM loom_event('run.finished', r.project_id, r.bead_id, actor,
                       jsonb_build_object('run', loom_run_json(r)::jsonb));
    RETURN loom_run_json(r);
END $$;

-- escalate_ceo: a decision bead for a person, blocking the bead that asked.
CREATE FUNCTION loom_escalate(bid text, why text, actor text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    d json;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid;
    d := loom_bead_create(jsonb_build_object(
        'project_id', b.project_id, 'type', 'decision', 'priority', least(b.priority, 1),
        'title', left('Decision needed: ' || b.title, 500),
        'description', format(E'%s asks for a decision on %s (%s).\n\n%s', actor, b.id,
                              b.title, why),
        'tags', jsonb_build_array('decision', 'escalated'),
        'context', jsonb_build_object('requires_human', 'true', 'escalated_from', b.id,
                                      'escalation_reason', left(why, 4000))), actor);
    PERFORM loom_bead_apply(bid, jsonb_build_object(
        'blocked_by', to_jsonb(b.blocked_by) || jsonb_build_array(d ->> 'id'),
        'context', jsonb_build_object('escalated_to_ceo_decision_id', d ->> 'id',
                                      'escalated_to_ceo_at', now(),
                                      'escalated_to_ceo_reason', left(why, 4000))), actor);
    PERFORM loom_event('decision.created', b.project_id, d ->> 'id', actor,
                       jsonb_build_object('decision_id', d ->> 'id', 'bead_id', bid,
                                          'reason', left(why, 1000)));
    RETURN d ->> 'id';
END $$;

-- When a decision bead closes, the beads escalated on it go back to open (their blocker gone).
CREATE FUNCTION loom_decision_closed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bid text;
BEGIN
    FOR bid IN SELECT id FROM beads
               WHERE status = 'blocked' AND context ->> 'escalated_to_ceo_decision_id' = NEW.id
    LOOP
        PERFORM loom_bead_apply(bid, jsonb_build_object('status', 'open', 'context',
            jsonb_build_object('decision_resolved_at', now())), 'loom');
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER beads_decision_closed AFTER UPDATE OF status ON beads
    FOR EACH ROW WHEN (NEW.type = 'decision' AND NEW.status = 'closed'
                       AND OLD.status <> 'closed')
    EXECUTE FUNCTION loom_decision_closed();

-- Redispatch also forgets the conversation (a fresh start, as in Loom).
CREATE OR REPLACE FUNCTION loom_bead_redispatch(bid text, reason text, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    cur beads;
    b beads;
BEGIN
    SELECT * INTO cur FROM beads WHERE id = bid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('bead %s not found', bid));
    END IF;
    DELETE FROM messages WHERE bead_id = bid;
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

-- A healthy provider wakes only agents paused for the lack of one, never those a person paused.
CREATE OR REPLACE FUNCTION loom_provider_probed(pid text, ok boolean, latency_ms integer,
                                                err text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r providers;
    was text;
BEGIN
    SELECT status INTO was FROM providers WHERE id = pid FOR UPDATE;
    IF NOT FOUND OR was = 'inactive' THEN
        RETURN;
    END IF;
    UPDATE providers SET status = CASE WHEN ok THEN 'healthy' ELSE 'failed' END,
                         last_heartbeat_at = now(), last_heartbeat_latency_ms = latency_ms,
                         last_heartbeat_error = CASE WHEN ok THEN NULL ELSE left(err, 1000) END
    WHERE id = pid RETURNING * INTO r;
    IF r.status IS DISTINCT FROM was THEN
        PERFORM loom_event('provider.updated', NULL, NULL, 'loom-ralph',
                           jsonb_build_object('provider', loom_provider_json(r)::jsonb,
                                              'from', was));
    END IF;
    IF ok THEN
        UPDATE agents SET provider_id = pid, status = 'idle', paused_reason = NULL,
                          updated_at = now()
        WHERE provider_id IS NULL AND status = 'paused'
          AND coalesce(paused_reason, 'no_provider') = 'no_provider';
    END IF;
END $$;

CREATE FUNCTION loom_agents_paused_reason() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'paused' THEN
        NEW.paused_reason := NULL;
    ELSIF NEW.paused_reason IS NULL THEN
        -- paused through the API (or created without a provider)
        NEW.paused_reason := CASE WHEN NEW.provider_id IS NULL AND TG_OP = 'INSERT'
                                  THEN 'no_provider' ELSE 'person' END;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER agents_paused_reason BEFORE INSERT OR UPDATE OF status ON agents
    FOR EACH ROW EXECUTE FUNCTION loom_agents_paused_reason();

-- loom-ralph, phase 1: agents "working" with no live run, quiet for longer than the limit,
-- go back to idle.
CREATE FUNCTION loom_agents_reset_stuck(quiet_s integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    a agents;
    n integer := 0;
BEGIN
    FOR a IN SELECT * FROM agents ag
             WHERE ag.status = 'working'
               AND coalesce(ag.last_active, ag.updated_at) < now() - make_interval(secs => quiet_s)
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.agent_id = ag.id
                               AND (r.state = 'queued' OR (r.state = 'running'
                                    AND r.lease_expires_at > now())))
             FOR UPDATE SKIP LOCKED LOOP
        UPDATE agents SET status = 'idle', current_bead = NULL, updated_at = now()
        WHERE id = a.id;
        PERFORM loom_event('agent.reset', a.project_id, a.current_bead, 'loom-ralph',
                           jsonb_build_object('agent_id', a.id,
                                              'reason', format('working with no live run for over %s s',
                                                               quiet_s)));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- loom-ralph, phase 2: open beads the loop detector finds stuck (or marked loop_detected by
-- someone else) are blocked with the reason.
CREATE FUNCTION loom_beads_block_loops() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    why text;
    n integer := 0;
BEGIN
    FOR b IN SELECT * FROM beads x
             WHERE x.status IN ('open', 'in_progress')
               AND (x.context ? 'error_history' OR x.context ->> 'loop_detected' = 'true')
               AND NOT x.context ? 'ralph_blocked_at'
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.bead_id = x.id
                               AND r.state IN ('queued', 'running'))
             FOR UPDATE SKIP LOCKED LOOP
        why := CASE WHEN b.context ->> 'loop_detected' = 'true'
                    THEN coalesce(b.context ->> 'loop_detected_reason', 'loop detected')
                    ELSE loom_bead_loop_reason(b.context) END;
        CONTINUE WHEN why IS NULL;
        PERFORM loom_bead_block_loop(b.id, why, 'loom-ralph');
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- loom-ralph, phase 4: beads blocked for a transient cause (provider errors, rate limits,
-- timeouts, lost executors) get another chance after transient_s; auth errors after auth_s.
-- Budget and hard dispatch-limit blocks are never lifted automatically.
CREATE FUNCTION loom_beads_recover(transient_s integer, auth_s integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    why text;
    n integer := 0;
BEGIN
    FOR b IN SELECT * FROM beads x
             WHERE x.status = 'blocked' AND x.context ? 'ralph_blocked_reason'
             FOR UPDATE SKIP LOCKED LOOP
        why := lower(b.context ->> 'ralph_blocked_reason');
        CONTINUE WHEN why ~ '(budget|hard_dispatch_limit|hop limit)';
        CONTINUE WHEN NOT why ~ '(provider|rate limit|context canceled|unavailable|identical error repeated|timeout|lost its executor|auth)';
        CONTINUE WHEN coalesce((b.context ->> 'ralph_blocked_at')::timestamptz, now())
                      > now() - make_interval(secs => CASE WHEN why ~ 'auth'
                                                            THEN auth_s ELSE transient_s END);
        UPDATE beads SET status = 'open', assigned_to = NULL, updated_at = now(),
            context = (context - ARRAY['ralph_blocked_at', 'ralph_blocked_reason',
                                       'loop_detected', 'loop_detected_reason',
                                       'loop_detected_at', 'error_history', 'last_run_error',
                                       'last_failed_at'])
                      || jsonb_build_object('dispatch_count', 0, 'redispatch_requested', 'true',
                                            'ralph_recovered_at', now())
        WHERE id = b.id;
        PERFORM loom_event('bead.recovered', b.project_id, b.id, 'loom-ralph',
                           jsonb_build_object('was', b.context ->> 'ralph_blocked_reason'));
        PERFORM loom_event('bead.status_change', b.project_id, b.id, 'loom-ralph',
                           jsonb_build_object('from', 'blocked', 'to', 'open'));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- An executor that is shutting down hands its run back: queued again, same attempt, so the
-- next executor resumes the conversation at once instead of waiting out the lease.
CREATE FUNCTION loom_run_release(rid bigint, owner text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r runs;
BEGIN
    UPDATE runs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL
    WHERE id = rid AND lease_owner = owner AND state = 'running'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM loom_event('run.released', r.project_id, r.bead_id, owner,
                       jsonb_build_object('run_id', r.id, 'iterations', r.iterations));
    PERFORM pg_notify('loom_runs', '');
    RETURN true;
END $$;
