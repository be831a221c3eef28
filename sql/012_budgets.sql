-- 012_budgets: money, and the places where a person must say yes.
--
-- Budgets in USD, per project (all time, and per calendar month in UTC) and per bead.  Before
-- every LLM call the executor reserves the call's estimated cost (loom_budget_reserve: prompt
-- characters / 4 at the model's input price + max_tokens at its output price, from
-- model_prices; no price: a reservation of 0) in one statement that checks every limit while it
-- holds the project's budgets row; loom_llm_call_record reconciles it with the real cost.  So
-- concurrent runs never spend more than a budget, as long as a call costs no more than its
-- estimate (and never more than the calls in flight under-estimated).
--
-- Where the numbers live:
--   projects.context  budget_usd, budget_monthly_usd   the limits ("2.50"; no key: no limit)
--                     approval_cost_usd                 a bead's work may spend this much before a
--                                                       person approves more (the spend gate)
--                     require_approval_merge "true"     a person approves every push and merge
--   beads.context     budget_usd                        the bead's own limit (all its runs)
--                     spend_allowance_usd               what an approved spend gate allows
--                     awaiting_approval                 'merge' or 'spend' while a gate holds it
--                     merge_approved "true"             the next run only merges (no LLM call)
--   budgets                what each project spent, all time and this month: counters kept by
--                          loom_llm_call_record; the row is the lock every reservation takes
--   budget_reservations    one row per call in flight, holding its estimated cost
--   budget_alerts          the thresholds (80 % warning, 100 % exceeded) that already raised
--                          their event, at which limit: one event per crossing, not per call
--
-- Limits sit in the context like max_iterations, so they travel with the project (export,
-- PATCH); the API checks them (fcgi/api_budget.c) and GET/PUT /projects/{id}/budget reads and
-- sets them with the counters.
--
-- A refused reservation ends the run with terminal reason 'budget' (loom_run_gate): the bead
-- is blocked with context.ralph_blocked_reason 'budget: …' (which loom-ralph never lifts), and
-- waits on a decision bead asking a person to raise the budget (one per used-up project budget,
-- however many beads wait on it; one per bead budget).  The gates work the same way with
-- terminal reason 'awaiting_approval': the run ends (no executor waits), the bead is blocked on
-- a decision, and loom_decision_decide applies the verdict to every bead waiting on it.

ALTER TABLE runs
    DROP CONSTRAINT runs_terminal_reason_check,
    ADD CONSTRAINT runs_terminal_reason_check CHECK (terminal_reason IN (
        'completed', 'escalated', 'max_iterations', 'error', 'no_actions', 'parse_failures',
        'validation_failures', 'inner_loop', 'loop_detected', 'progress_stagnant',
        'context_canceled', 'lease_expired', 'provider_error', 'canceled', 'budget',
        'awaiting_approval'));

-- The calendar month budgets count in: its first day, UTC.
CREATE FUNCTION loom_budget_month() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date
$$;

-- An amount in USD as the context holds it ("2.50", or a JSON number's text); NULL unless it
-- is a plain non-negative decimal.  The API refuses anything else; this keeps a value written
-- some other way from breaking a run.
CREATE FUNCTION loom_usd(v text) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v ~ '^\s*[0-9]{1,10}(\.[0-9]+)?\s*$' THEN round(trim(v)::numeric, 6) END
$$;

CREATE TABLE budgets (
    project_id      text PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    spent_usd       numeric(14, 6) NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
    month           date NOT NULL DEFAULT loom_budget_month(),
    month_spent_usd numeric(14, 6) NOT NULL DEFAULT 0 CHECK (month_spent_usd >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE budget_reservations (
    id         bigserial PRIMARY KEY,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    bead_id    text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    run_id     bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    owner      text NOT NULL, -- the executor holding the run's lease when it reserved
    model      text NOT NULL DEFAULT '',
    amount_usd numeric(14, 6) NOT NULL CHECK (amount_usd >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_reservations_project_idx ON budget_reservations (project_id, bead_id);
CREATE INDEX budget_reservations_run_idx ON budget_reservations (run_id);

CREATE TABLE budget_alerts (
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    scope      text NOT NULL, -- 'total', 'monthly:2026-11', 'bead:<bead id>'
    level      text NOT NULL CHECK (level IN ('warning', 'exceeded')),
    limit_usd  numeric(14, 6) NOT NULL,
    spent_usd  numeric(14, 6) NOT NULL,
    raised_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, scope, level)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['budgets', 'budget_reservations', 'budget_alerts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (loom_sees(project_id))', t || '_scope', t);
    END LOOP;
END $$;

-- What projects spent before budgets were counted.
INSERT INTO budgets (project_id, spent_usd, month_spent_usd)
SELECT p.id, coalesce(sum(c.cost_usd), 0),
       coalesce(sum(c.cost_usd) FILTER (
           WHERE c.created_at >= loom_budget_month() AT TIME ZONE 'UTC'), 0)
FROM projects p LEFT JOIN llm_calls c ON c.project_id = p.id
GROUP BY p.id;

-- The project's budgets row, made when missing, locked (every reservation and every
-- reconciliation of the project takes this lock, so their checks and counts are exact), and
-- moved to the current month when a month began.
CREATE FUNCTION loom_budget_lock(pid text) RETURNS budgets LANGUAGE plpgsql AS $$
DECLARE
    g budgets;
BEGIN
    INSERT INTO budgets (project_id) VALUES (pid) ON CONFLICT (project_id) DO NOTHING;
    SELECT * INTO g FROM budgets WHERE project_id = pid FOR UPDATE;
    IF g.month < loom_budget_month() THEN
        UPDATE budgets SET month = loom_budget_month(), month_spent_usd = 0, updated_at = now()
        WHERE project_id = pid RETURNING * INTO g;
    END IF;
    RETURN g;
END $$;

CREATE FUNCTION loom_usd_text(v numeric) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '$' || trim_scale(round(v, 6))::text
$$;

-- The 80 % and 100 % alerts of one budget (kind 'total', 'monthly' with its period, or 'bead'
-- with its bead): budget.warning once spending reaches 80 % of lim, budget.exceeded once it
-- reaches lim or a reservation was refused (exhausted).  Each fires once per limit: a new
-- limit re-arms the thresholds it no longer crosses.  The caller holds the budgets row lock.
CREATE FUNCTION loom_budget_alert(pid text, bid text, kind text, period text, lim numeric,
                                  used numeric, exhausted boolean, actor text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k text := kind || coalesce(':' || period, '') || coalesce(':' || bid, '');
    what text := CASE kind WHEN 'total' THEN format('the budget of project %s', pid)
                           WHEN 'monthly' THEN format('the %s budget of project %s', period, pid)
                           ELSE format('the budget of bead %s', bid) END;
    lvl text;
    a budget_alerts;
    crossed boolean;
BEGIN
    IF lim IS NULL THEN
        RETURN;
    END IF;
    FOREACH lvl IN ARRAY ARRAY['warning', 'exceeded'] LOOP
        crossed := used >= lim * CASE lvl WHEN 'warning' THEN 0.8 ELSE 1 END
                   OR (lvl = 'exceeded' AND exhausted);
        SELECT * INTO a FROM budget_alerts x
        WHERE x.project_id = pid AND x.scope = k AND x.level = lvl;
        CONTINUE WHEN FOUND AND a.limit_usd = lim;
        IF crossed THEN
            INSERT INTO budget_alerts AS x (project_id, scope, level, limit_usd, spent_usd)
            VALUES (pid, k, lvl, lim, used)
            ON CONFLICT (project_id, scope, level) DO UPDATE
                SET limit_usd = EXCLUDED.limit_usd, spent_usd = EXCLUDED.spent_usd,
                    raised_at = now();
            PERFORM loom_event('budget.' || lvl, pid, bid, actor, jsonb_build_object(
                'scope', kind, 'period', period, 'bead_id', bid, 'limit_usd', lim,
                'spent_usd', used,
                'percent', CASE WHEN lim > 0 THEN round(used * 100 / lim, 1) END,
                'message', CASE lvl
                    WHEN 'warning' THEN format('%s: %s of %s spent (%s %%)', what,
                        loom_usd_text(used), loom_usd_text(lim),
                        CASE WHEN lim > 0 THEN round(used * 100 / lim) END)
                    ELSE format('%s (%s) is used up: %s spent', what, loom_usd_text(lim),
                                loom_usd_text(used)) END));
        ELSIF FOUND THEN
            DELETE FROM budget_alerts x WHERE x.project_id = pid AND x.scope = k AND x.level = lvl;
        END IF;
    END LOOP;
END $$;

-- What a bead's runs spent (runs.cost_usd is kept by loom_llm_call_record).
CREATE FUNCTION loom_bead_spent(bid text) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(cost_usd), 0) FROM runs WHERE bead_id = bid
$$;

-- The alerts of every budget a project's call counts against.  The caller holds the lock.
CREATE FUNCTION loom_budget_alerts(pid text, bid text, actor text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    g budgets;
    ctx jsonb;
BEGIN
    SELECT * INTO g FROM budgets WHERE project_id = pid;
    SELECT context INTO ctx FROM projects WHERE id = pid;
    PERFORM loom_budget_alert(pid, NULL, 'total', NULL, loom_usd(ctx ->> 'budget_usd'),
                              g.spent_usd, false, actor);
    PERFORM loom_budget_alert(pid, NULL, 'monthly', to_char(g.month, 'YYYY-MM'),
                              loom_usd(ctx ->> 'budget_monthly_usd'), g.month_spent_usd, false,
                              actor);
    IF bid IS NOT NULL THEN
        SELECT context INTO ctx FROM beads WHERE id = bid;
        PERFORM loom_budget_alert(pid, bid, 'bead', NULL, loom_usd(ctx ->> 'budget_usd'),
                                  loom_bead_spent(bid), false, actor);
    END IF;
END $$;

-- The limit a call would break, if any: a refusal (the budget is used up even with no other
-- call in flight) or 'wait' (only the reservations of calls in flight stand in the way).
CREATE FUNCTION loom_budget_verdict(kind text, what text, lim numeric, spent numeric,
                                    held numeric, amount numeric) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN lim IS NULL THEN NULL
        WHEN spent >= lim OR spent + amount > lim THEN jsonb_build_object(
            'verdict', 'budget', 'scope', kind, 'limit_usd', lim, 'spent_usd', spent,
            'needed_usd', amount,
            'message', format('%s (%s) is used up: %s spent, the next call needs about %s',
                              what, loom_usd_text(lim), loom_usd_text(spent),
                              loom_usd_text(amount)))
        WHEN spent + held + amount > lim THEN jsonb_build_object(
            'verdict', 'wait', 'scope', kind, 'limit_usd', lim, 'spent_usd', spent,
            'reserved_usd', held, 'needed_usd', amount,
            'message', format('%s (%s) is held by calls in flight: %s spent, %s reserved, the next call needs about %s',
                              what, loom_usd_text(lim), loom_usd_text(spent), loom_usd_text(held),
                              loom_usd_text(amount)))
        END
$$;

-- Before an LLM call of run rid (held by owner): reserve its estimated cost, or say why not.
-- Returns {verdict, reservation_id, amount_usd, priced, message, detail}, verdict one of
--   granted   reserved: make the call, then record it with the reservation_id
--   wait      what is left of a project budget is held by calls in flight: ask again soon
--   budget    a budget is used up (detail: scope total / monthly / bead, limit, spent)
--   approval  the bead's spending would pass its allowance (context.spend_allowance_usd, else
--             the project's approval_cost_usd): a person must approve more
--   lost      the run is no longer the owner's
-- Every check and the reservation happen under the project's budgets row lock.
CREATE FUNCTION loom_budget_reserve(rid bigint, owner text, model text, prompt_chars bigint,
                                    max_tokens integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    g budgets;
    pctx jsonb;
    bctx jsonb;
    price numeric := loom_model_cost(coalesce(model, ''), greatest(prompt_chars, 0) / 4,
                                     greatest(max_tokens, 0), 0);
    amount numeric := coalesce(price, 0);
    held numeric;
    bheld numeric;
    bspent numeric;
    gate numeric;
    vt jsonb;
    vm jsonb;
    vb jsonb;
    v jsonb;
    resid bigint;
BEGIN
    SELECT * INTO r FROM runs WHERE id = rid AND state = 'running' AND lease_owner = owner;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('verdict', 'lost');
    END IF;
    g := loom_budget_lock(r.project_id);
    SELECT context INTO pctx FROM projects WHERE id = r.project_id;
    SELECT context INTO bctx FROM beads WHERE id = r.bead_id;
    SELECT coalesce(sum(amount_usd), 0), coalesce(sum(amount_usd) FILTER (
               WHERE bead_id = r.bead_id), 0)
    INTO held, bheld FROM budget_reservations WHERE project_id = r.project_id;
    bspent := loom_bead_spent(r.bead_id);
    vt := loom_budget_verdict('total', format('the budget of project %s', r.project_id),
                              loom_usd(pctx ->> 'budget_usd'), g.spent_usd, held, amount);
    vm := loom_budget_verdict('monthly', format('the %s budget of project %s',
                                                to_char(g.month, 'YYYY-MM'), r.project_id),
                              loom_usd(pctx ->> 'budget_monthly_usd'), g.month_spent_usd, held,
                              amount) || jsonb_build_object('period', to_char(g.month, 'YYYY-MM'));
    vb := loom_budget_verdict('bead', format('the budget of bead %s', r.bead_id),
                              loom_usd(bctx ->> 'budget_usd'), bspent, bheld, amount);
    -- a used-up budget stops the run; past the allowance a person decides; only then wait
    v := CASE WHEN vt ->> 'verdict' = 'budget' THEN vt WHEN vm ->> 'verdict' = 'budget' THEN vm
              WHEN vb ->> 'verdict' = 'budget' THEN vb END;
    gate := CASE WHEN loom_usd(pctx ->> 'approval_cost_usd') IS NOT NULL
                 THEN coalesce(loom_usd(bctx ->> 'spend_allowance_usd'),
                               loom_usd(pctx ->> 'approval_cost_usd')) END;
    IF v IS NULL AND bspent + amount > gate THEN
        v := jsonb_build_object(
            'verdict', 'approval', 'scope', 'spend', 'allowance_usd', gate, 'spent_usd', bspent,
            'needed_usd', amount,
            'message', format('bead %s has spent %s of the %s it may spend without approval; the next call needs about %s',
                              r.bead_id, loom_usd_text(bspent), loom_usd_text(gate),
                              loom_usd_text(amount)));
    END IF;
    v := coalesce(v, vt, vm, vb);
    IF v IS NOT NULL THEN
        IF v ->> 'verdict' = 'budget' THEN
            PERFORM loom_budget_alert(r.project_id,
                                      CASE WHEN v ->> 'scope' = 'bead' THEN r.bead_id END,
                                      v ->> 'scope', v ->> 'period', (v ->> 'limit_usd')::numeric,
                                      (v ->> 'spent_usd')::numeric, true, owner);
        END IF;
        RETURN jsonb_build_object('verdict', v ->> 'verdict', 'amount_usd', amount,
                                  'priced', price IS NOT NULL, 'message', v ->> 'message',
                                  'detail', v - 'verdict' - 'message');
    END IF;
    INSERT INTO budget_reservations (project_id, bead_id, run_id, owner, model, amount_usd)
    VALUES (r.project_id, r.bead_id, r.id, owner, coalesce(model, ''), amount)
    RETURNING id INTO resid;
    RETURN jsonb_build_object('verdict', 'granted', 'reservation_id', resid, 'amount_usd', amount,
                              'priced', price IS NOT NULL);
END $$;

-- One chat completion, accounted (as in 005_work.sql), and now reconciled: the cost counts
-- against the project's budgets (all time, this month) and the reservation c.reservation_id
-- made for it is released, in the same transaction; the 80 % / 100 % alerts follow.
CREATE OR REPLACE FUNCTION loom_llm_call_record(c jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    cost numeric;
    src text := 'none';
    ptok integer := coalesce((c ->> 'prompt_tokens')::integer, 0);
    ctok integer := coalesce((c ->> 'completion_tokens')::integer, 0);
    cached integer := coalesce((c ->> 'cached_tokens')::integer, 0);
    cid bigint;
    paid numeric;
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
        paid := greatest(coalesce(cost, 0), 0);
        PERFORM loom_budget_lock(r.project_id);
        UPDATE budgets SET spent_usd = spent_usd + paid, month_spent_usd = month_spent_usd + paid,
                           updated_at = now()
        WHERE project_id = r.project_id;
        DELETE FROM budget_reservations
        WHERE id = (c ->> 'reservation_id')::bigint AND run_id = r.id;
        IF paid > 0 THEN
            PERFORM loom_budget_alerts(r.project_id, r.bead_id, 'loom-executor');
        END IF;
    END IF;
    RETURN cid;
END $$;

-- A call made outside a run (pair programming, the chat proxy: people, not the action loop)
-- learns its project after its record; it counts against the project's budgets then.  It was
-- not reserved: nothing holds it back, but what it cost is spent.
CREATE FUNCTION loom_llm_calls_budget() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    paid numeric := greatest(NEW.cost_usd, 0);
BEGIN
    IF paid > 0 AND EXISTS (SELECT 1 FROM projects WHERE id = NEW.project_id) THEN
        PERFORM loom_budget_lock(NEW.project_id);
        UPDATE budgets SET spent_usd = spent_usd + paid, month_spent_usd = month_spent_usd + paid,
                           updated_at = now()
        WHERE project_id = NEW.project_id;
        PERFORM loom_budget_alerts(NEW.project_id, NULL, 'loom-api');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER llm_calls_budget AFTER UPDATE OF project_id ON llm_calls
    FOR EACH ROW WHEN (OLD.project_id IS NULL AND NEW.project_id IS NOT NULL
                       AND NEW.run_id IS NULL)
    EXECUTE FUNCTION loom_llm_calls_budget();

-- loom-ralph: reservations whose run no longer runs under the executor that made them (it
-- ended, was canceled or re-queued, or its lease ran out) hold nothing any more.
CREATE FUNCTION loom_budget_release_stale() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM budget_reservations x
    WHERE NOT EXISTS (SELECT 1 FROM runs r
                      WHERE r.id = x.run_id AND r.state = 'running' AND r.lease_owner = x.owner
                        AND r.lease_expires_at >= now());
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The end of a run (as in 007_dispatch_wakeup.sql) with two more terminal reasons that block
-- the bead until a person acts: 'budget' (the bead's ralph_blocked_reason says so, and Ralph
-- never lifts it) and 'awaiting_approval' (a gate).  The run's reservations are released in
-- the same transaction, and an approved merge is used up by whatever run comes next.
CREATE OR REPLACE FUNCTION loom_run_finish(rid bigint, owner text, reason text, err text,
                                           iters integer, ptok bigint, ctok bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r runs;
    b beads;
    ok boolean := reason IN ('completed', 'escalated', 'awaiting_approval');
    held boolean := reason IN ('escalated', 'awaiting_approval', 'budget');
    failed boolean := reason NOT IN ('completed', 'escalated', 'awaiting_approval', 'budget',
                                     'canceled');
    ctx jsonb;
    why text;
BEGIN
    UPDATE runs SET state = CASE WHEN ok THEN 'succeeded'
                                 WHEN reason = 'canceled' THEN 'canceled' ELSE 'failed' END,
                    terminal_reason = reason,
                    error = CASE WHEN reason IN ('completed', 'escalated') THEN NULL
                                 ELSE left(err, 4000) END,
                    iterations = greatest(iterations, iters), finished_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL
    WHERE id = rid AND lease_owner = owner AND state = 'running'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM budget_reservations WHERE run_id = rid;
    SELECT * INTO b FROM beads WHERE id = r.bead_id FOR UPDATE;
    ctx := jsonb_build_object('terminal_reason', reason,
                              'last_run_error', CASE WHEN reason IN ('completed', 'escalated')
                                                     THEN NULL ELSE err END,
                              'last_failed_at', CASE WHEN failed OR reason = 'canceled'
                                                     THEN now()::text END,
                              'merge_approved', NULL);
    IF reason = 'completed' AND err IS NOT NULL THEN
        ctx := ctx || jsonb_build_object('close_reason', left(err, 2000));
    END IF;
    IF failed THEN
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
            IF reason = 'budget' THEN
                ctx := ctx || jsonb_build_object(
                    'ralph_blocked_reason', 'budget: ' || coalesce(err, 'the budget is used up'),
                    'ralph_blocked_at', now());
            END IF;
            PERFORM loom_bead_apply(r.bead_id,
                CASE WHEN reason = 'completed' THEN jsonb_build_object('status', 'closed')
                     WHEN held THEN jsonb_build_object('status', 'blocked')
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

-- A decision bead for a gate (kind 'budget', 'merge' or 'spend'), and bid blocked on it.  A
-- used-up project budget (detail.scope 'total' or 'monthly') has one open question however
-- many beads wait on it; each later bead joins it.  The decision's context carries the gate
-- and its figures; the bead's carries escalated_to_ceo_* (as escalate_ceo) and, for the
-- approval gates, awaiting_approval.  Returns the decision's id.
CREATE FUNCTION loom_gate_raise(bid text, kind text, question text, detail jsonb, actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    did text;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid;
    IF kind = 'budget' AND detail ->> 'scope' IN ('total', 'monthly') THEN
        SELECT d.id INTO did FROM beads d
        WHERE d.project_id = b.project_id AND d.type = 'decision' AND d.status <> 'closed'
          AND d.context ->> 'gate' = 'budget'
          AND d.context ->> 'budget_scope' = detail ->> 'scope'
          AND coalesce(d.context ->> 'budget_period', '') = coalesce(detail ->> 'period', '')
        ORDER BY d.created_at, d.id LIMIT 1;
    END IF;
    IF did IS NULL THEN
        did := loom_bead_create(jsonb_build_object(
            'project_id', b.project_id, 'type', 'decision', 'priority', least(b.priority, 1),
            'title', left(CASE kind
                WHEN 'merge' THEN format('Approve merge of bead/%s into %s?', b.id,
                                         coalesce(detail ->> 'branch', 'the default branch'))
                WHEN 'spend' THEN format('Approve more spending on %s (%s)?', b.id, b.title)
                WHEN 'budget' THEN CASE detail ->> 'scope'
                    WHEN 'bead' THEN format('Raise the budget of bead %s (%s)?', b.id, b.title)
                    WHEN 'monthly' THEN format('Raise the %s budget of project %s?',
                                               detail ->> 'period', b.project_id)
                    ELSE format('Raise the budget of project %s?', b.project_id) END
                END, 500),
            'description', format(E'%s asks for a decision on %s (%s).\n\n%s', actor, b.id,
                                  b.title, question),
            'tags', jsonb_build_array('decision', 'approval', kind),
            'context', jsonb_build_object(
                'requires_human', 'true', 'escalated_from', b.id,
                'escalation_reason', left(question, 4000), 'gate', kind,
                'budget_scope', detail ->> 'scope', 'budget_period', detail ->> 'period',
                'limit_usd', detail ->> 'limit_usd', 'spent_usd', detail ->> 'spent_usd',
                'needed_usd', detail ->> 'needed_usd',
                'allowance_usd', detail ->> 'allowance_usd',
                'merge_branch', detail ->> 'branch', 'bead_branch', detail ->> 'bead_branch')),
            actor) ->> 'id';
        PERFORM loom_event('decision.created', b.project_id, did, actor,
                           jsonb_build_object('decision_id', did, 'bead_id', bid, 'gate', kind,
                                              'reason', left(question, 1000)));
    END IF;
    PERFORM loom_bead_apply(bid, jsonb_build_object(
        'blocked_by', CASE WHEN did = ANY (b.blocked_by) THEN to_jsonb(b.blocked_by)
                           ELSE to_jsonb(b.blocked_by) || jsonb_build_array(did) END,
        'context', jsonb_build_object(
            'escalated_to_ceo_decision_id', did, 'escalated_to_ceo_at', now(),
            'escalated_to_ceo_reason', left(question, 4000),
            'awaiting_approval', CASE WHEN kind = 'budget' THEN NULL ELSE kind END)), actor);
    RETURN did;
END $$;

-- A run that stops for a person, in one transaction: the run ends (terminal reason 'budget'
-- for kind 'budget', else 'awaiting_approval'), its executor and agent are free, the bead is
-- blocked on a decision (loom_gate_raise).  Returns the decision's id; NULL when the run was
-- no longer ours, or a person had already moved the bead.
CREATE FUNCTION loom_run_gate(rid bigint, owner text, kind text, question text, iters integer,
                              detail jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bid text;
    was text;
BEGIN
    IF kind IS NULL OR kind NOT IN ('budget', 'merge', 'spend') THEN
        PERFORM loom_raise('LM400', format('gate: %s is not budget, merge or spend', kind));
    END IF;
    -- the bead's links change (loom_bead_set_links): that lock comes before any row lock
    PERFORM pg_advisory_xact_lock(7606203, 1);
    SELECT b.id, b.status INTO bid, was FROM runs r JOIN beads b ON b.id = r.bead_id
    WHERE r.id = rid;
    IF NOT loom_run_finish(rid, owner, CASE kind WHEN 'budget' THEN 'budget'
                                                 ELSE 'awaiting_approval' END,
                           question, iters, 0, 0) THEN
        RETURN NULL;
    END IF;
    IF was NOT IN ('open', 'in_progress') THEN
        RETURN NULL;
    END IF;
    RETURN loom_gate_raise(bid, kind, coalesce(question, kind), coalesce(detail, '{}'), owner);
END $$;

-- Decision beads of gates are applied by loom_gate_decide; closing one does not reopen the
-- beads waiting on it (that is a verdict's business).  Otherwise as in 005_work.sql.
CREATE OR REPLACE FUNCTION loom_decision_closed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bid text;
BEGIN
    IF NEW.context ? 'gate' THEN
        RETURN NULL;
    END IF;
    FOR bid IN SELECT id FROM beads
               WHERE status = 'blocked' AND context ->> 'escalated_to_ceo_decision_id' = NEW.id
    LOOP
        PERFORM loom_bead_apply(bid, jsonb_build_object('status', 'open', 'context',
            jsonb_build_object('decision_resolved_at', now())), 'loom');
    END LOOP;
    RETURN NULL;
END $$;

-- A gate's verdict on every bead blocked on decision d:
--   budget  approve: open again (the budget was raised; if it is still used up, the next call
--           blocks it again);  deny / needs_more_info: stays blocked
--   merge   approve: open with merge_approved, so the next run only pushes and merges;
--           deny / needs_more_info: open and unassigned, no merge, the rationale a comment
--   spend   approve: open, its allowance raised by approval_cost_usd (at least to what the
--           refused call needed);  deny / needs_more_info: stays blocked, reason budget
-- Each bead gets the verdict in its context (ceo_*) and a comment.
CREATE FUNCTION loom_gate_decide(d beads, verdict text, why text, decider text, actor text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    kind text := d.context ->> 'gate';
    note text := coalesce(nullif(why, ''), '(no rationale given)');
    step numeric := loom_usd((SELECT context ->> 'approval_cost_usd' FROM projects
                              WHERE id = d.project_id));
    w beads;
    ctx jsonb;
    allowance numeric;
    said text;
BEGIN
    PERFORM loom_bead_apply(d.id, jsonb_build_object('status', 'closed', 'context',
        jsonb_build_object('decision', verdict, 'rationale', why, 'decider_id', decider,
                           'decided_at', now())), actor);
    FOR w IN SELECT * FROM beads x
             WHERE x.project_id = d.project_id AND x.status = 'blocked'
               AND x.context ->> 'escalated_to_ceo_decision_id' = d.id
             ORDER BY x.id FOR UPDATE LOOP
        ctx := jsonb_build_object('ceo_decision', verdict, 'ceo_rationale', why,
                                  'ceo_decided_at', now(), 'ceo_decision_id', d.id,
                                  'awaiting_approval', NULL);
        said := format('%s (decision %s) by %s: %s', CASE
            WHEN verdict = 'approve' AND kind = 'merge' THEN 'Merge approved'
            WHEN verdict = 'approve' AND kind = 'spend' THEN 'More spending approved'
            WHEN verdict = 'approve' THEN 'Budget approved'
            WHEN verdict = 'deny' THEN 'Denied'
            ELSE 'More information needed' END, d.id, decider, note);
        IF verdict = 'approve' THEN
            IF kind = 'merge' THEN
                ctx := ctx || jsonb_build_object('merge_approved', 'true',
                                                 'merge_approved_by', decider,
                                                 'merge_approved_at', now());
            ELSIF kind = 'spend' THEN
                allowance := greatest(
                    coalesce(loom_usd(w.context ->> 'spend_allowance_usd'), step, 0)
                        + coalesce(step, 0),
                    loom_bead_spent(w.id) + coalesce(loom_usd(d.context ->> 'needed_usd'), 0));
                ctx := ctx || jsonb_build_object('spend_allowance_usd',
                                                 trim_scale(allowance)::text);
                said := said || format(' (this bead may now spend up to %s)',
                                       loom_usd_text(allowance));
            ELSE
                ctx := ctx || jsonb_build_object('ralph_blocked_reason', NULL,
                                                 'ralph_blocked_at', NULL);
            END IF;
            PERFORM loom_bead_apply(w.id, jsonb_build_object('status', 'open', 'context', ctx),
                                    actor);
        ELSIF kind = 'merge' THEN
            PERFORM loom_bead_apply(w.id, jsonb_build_object('status', 'open',
                                                             'assigned_to', NULL, 'context', ctx),
                                    actor);
        ELSE
            ctx := ctx || jsonb_build_object(
                'ralph_blocked_reason', format('budget: %s refused by %s (decision %s)',
                    CASE kind WHEN 'spend' THEN 'more spending' ELSE 'more budget' END,
                    decider, d.id),
                'ralph_blocked_at', now());
            PERFORM loom_bead_apply(w.id, jsonb_build_object('context', ctx), actor);
        END IF;
        PERFORM loom_comment_create(w.id, jsonb_build_object('author_id', decider,
                                                             'content', said), actor);
    END LOOP;
END $$;

-- POST /decisions/{id}/decide, as in 006_decisions.sql, with the gates' verdicts
-- (loom_gate_decide) for decisions raised by loom_run_gate.
CREATE OR REPLACE FUNCTION loom_decision_decide(did text, verdict text, why text, decider text,
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
    IF d.context ? 'gate' THEN
        PERFORM loom_gate_decide(d, verdict, why, decider, actor);
    ELSE
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
    END IF;
    PERFORM loom_event('decision.decided', d.project_id, did, actor,
                       jsonb_build_object('decision_id', did, 'decision', verdict,
                                          'rationale', why, 'bead_id', waiting,
                                          'gate', d.context ->> 'gate'));
    RETURN (SELECT loom_decision_json(x) FROM beads x WHERE x.id = did);
END $$;

-- A decision as in 006_decisions.sql, plus the gate that raised it (NULL: a plain question).
CREATE OR REPLACE FUNCTION loom_decision_json(b beads) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', b.id, 'project_id', b.project_id, 'title', b.title, 'description', b.description,
        'status', b.status, 'priority', b.priority,
        'question', coalesce(b.context ->> 'escalation_reason', b.description),
        'escalated_from', b.context ->> 'escalated_from', 'gate', b.context ->> 'gate',
        'decision', b.context ->> 'decision', 'rationale', b.context ->> 'rationale',
        'decider_id', b.context ->> 'decider_id', 'decided_at', b.context ->> 'decided_at',
        'created_at', b.created_at, 'updated_at', b.updated_at)
$$;

-- ---- the API ------------------------------------------------------------------------------

-- GET /projects/{id}/budget: limits, what was spent (all time, this month), what calls in
-- flight hold, what is left, the alerts raised, the beads a used-up budget blocks.  NULL when
-- the project does not exist (or is not the caller's).
CREATE FUNCTION loom_budget_json(pid text) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    p projects;
    g budgets;
    cur date := loom_budget_month();
    spent numeric;
    mspent numeric;
    held numeric;
    n integer;
    lim numeric;
    mlim numeric;
BEGIN
    SELECT * INTO p FROM projects WHERE id = pid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO g FROM budgets WHERE project_id = pid;
    spent := coalesce(g.spent_usd, 0);
    mspent := CASE WHEN g.month = cur THEN g.month_spent_usd ELSE 0 END;
    SELECT coalesce(sum(amount_usd), 0), count(*) INTO held, n
    FROM budget_reservations WHERE project_id = pid;
    lim := loom_usd(p.context ->> 'budget_usd');
    mlim := loom_usd(p.context ->> 'budget_monthly_usd');
    RETURN json_build_object(
        'project_id', pid, 'limit_usd', lim, 'monthly_limit_usd', mlim,
        'approval_cost_usd', loom_usd(p.context ->> 'approval_cost_usd'),
        'require_approval_merge',
            coalesce(p.context ->> 'require_approval_merge' IN ('true', '1', 'yes'), false),
        'spent_usd', spent, 'month', to_char(cur, 'YYYY-MM'), 'month_spent_usd', mspent,
        'reserved_usd', held, 'reservations', n,
        'remaining_usd', greatest(lim - spent - held, 0),
        'monthly_remaining_usd', greatest(mlim - mspent - held, 0),
        'percent_used', CASE WHEN lim > 0 THEN round(spent * 100 / lim, 1) END,
        'monthly_percent_used', CASE WHEN mlim > 0 THEN round(mspent * 100 / mlim, 1) END,
        'alerts', (SELECT coalesce(json_agg(json_build_object(
                       'scope', a.scope, 'level', a.level, 'limit_usd', a.limit_usd,
                       'spent_usd', a.spent_usd, 'raised_at', a.raised_at)
                       ORDER BY a.raised_at, a.scope, a.level), '[]')
                   FROM budget_alerts a WHERE a.project_id = pid),
        'blocked_beads', (SELECT coalesce(json_agg(b.id ORDER BY b.id), '[]') FROM beads b
                          WHERE b.project_id = pid AND b.status = 'blocked'
                            AND b.context ->> 'ralph_blocked_reason' LIKE 'budget:%'),
        'decisions', (SELECT coalesce(json_agg(d.id ORDER BY d.id), '[]') FROM beads d
                      WHERE d.project_id = pid AND d.type = 'decision' AND d.status <> 'closed'
                        AND d.context ? 'gate'),
        'updated_at', g.updated_at);
END $$;

-- GET /beads/{id}/budget: the bead's limit, what its runs spent, what it holds, its spend
-- allowance and whether a gate holds it.  NULL when the bead does not exist.
CREATE FUNCTION loom_bead_budget_json(bid text) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    b beads;
    pctx jsonb;
    spent numeric;
    held numeric;
    lim numeric;
    step numeric;
BEGIN
    SELECT * INTO b FROM beads WHERE id = bid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT context INTO pctx FROM projects WHERE id = b.project_id;
    spent := loom_bead_spent(bid);
    SELECT coalesce(sum(amount_usd), 0) INTO held FROM budget_reservations
    WHERE project_id = b.project_id AND bead_id = bid;
    lim := loom_usd(b.context ->> 'budget_usd');
    step := loom_usd(pctx ->> 'approval_cost_usd');
    RETURN json_build_object(
        'bead_id', bid, 'project_id', b.project_id, 'limit_usd', lim, 'spent_usd', spent,
        'reserved_usd', held, 'remaining_usd', greatest(lim - spent - held, 0),
        'percent_used', CASE WHEN lim > 0 THEN round(spent * 100 / lim, 1) END,
        'approval_cost_usd', step,
        'spend_allowance_usd', CASE WHEN step IS NOT NULL
            THEN coalesce(loom_usd(b.context ->> 'spend_allowance_usd'), step) END,
        'awaiting_approval', b.context ->> 'awaiting_approval',
        'merge_approved', coalesce(b.context ->> 'merge_approved' = 'true', false),
        'blocked_reason', CASE WHEN b.status = 'blocked'
                               THEN b.context ->> 'ralph_blocked_reason' END,
        'decision_id', CASE WHEN b.status = 'blocked'
                            THEN b.context ->> 'escalated_to_ceo_decision_id' END);
END $$;

-- A JSON amount (checked by the API) as the context keeps it: a decimal string; null stays
-- null (which removes the key).
CREATE FUNCTION loom_usd_setting(v jsonb, field text) RETURNS jsonb LANGUAGE plpgsql
IMMUTABLE AS $$
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN 'null';
    END IF;
    IF loom_usd(v #>> '{}') IS NULL THEN
        PERFORM loom_raise('LM400', format('%s: must be a non-negative amount in USD', field));
    END IF;
    RETURN to_jsonb(trim_scale(loom_usd(v #>> '{}'))::text);
END $$;

-- PUT /projects/{id}/budget {limit_usd, monthly_limit_usd, approval_cost_usd,
-- require_approval_merge}: the fields given are set (null removes one), in the project's
-- context; the alerts are re-armed for the new limits.
CREATE FUNCTION loom_budget_set(pid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := '{}';
BEGIN
    IF p ? 'limit_usd' THEN
        ctx := ctx || jsonb_build_object('budget_usd', loom_usd_setting(p -> 'limit_usd',
                                                                        'limit_usd'));
    END IF;
    IF p ? 'monthly_limit_usd' THEN
        ctx := ctx || jsonb_build_object('budget_monthly_usd',
            loom_usd_setting(p -> 'monthly_limit_usd', 'monthly_limit_usd'));
    END IF;
    IF p ? 'approval_cost_usd' THEN
        ctx := ctx || jsonb_build_object('approval_cost_usd',
            loom_usd_setting(p -> 'approval_cost_usd', 'approval_cost_usd'));
    END IF;
    IF p ? 'require_approval_merge' THEN
        ctx := ctx || jsonb_build_object('require_approval_merge',
            CASE jsonb_typeof(p -> 'require_approval_merge')
                WHEN 'null' THEN 'null'::jsonb
                ELSE to_jsonb((p ->> 'require_approval_merge')::boolean::text) END);
    END IF;
    PERFORM loom_project_update(pid, jsonb_build_object('context', ctx), actor);
    PERFORM loom_budget_lock(pid);
    PERFORM loom_budget_alerts(pid, NULL, actor);
    PERFORM loom_event('budget.updated', pid, NULL, actor,
                       jsonb_build_object('fields', (SELECT jsonb_agg(k ORDER BY k)
                                                     FROM jsonb_object_keys(p) k),
                                          'message', format('budget of project %s changed by %s',
                                                            pid, actor)));
    RETURN loom_budget_json(pid);
END $$;

-- PUT /beads/{id}/budget {limit_usd, spend_allowance_usd}: as loom_budget_set, for a bead.
CREATE FUNCTION loom_bead_budget_set(bid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := '{}';
    pid text;
BEGIN
    IF p ? 'limit_usd' THEN
        ctx := ctx || jsonb_build_object('budget_usd', loom_usd_setting(p -> 'limit_usd',
                                                                        'limit_usd'));
    END IF;
    IF p ? 'spend_allowance_usd' THEN
        ctx := ctx || jsonb_build_object('spend_allowance_usd',
            loom_usd_setting(p -> 'spend_allowance_usd', 'spend_allowance_usd'));
    END IF;
    pid := loom_bead_apply(bid, jsonb_build_object('context', ctx), actor) ->> 'project_id';
    PERFORM loom_budget_lock(pid);
    PERFORM loom_budget_alerts(pid, bid, actor);
    RETURN loom_bead_budget_json(bid);
END $$;

-- The log level of an event, as in 006_decisions.sql, with the budget alerts: a used-up budget
-- stops work (error), 80 % of one is a warning.
CREATE OR REPLACE FUNCTION loom_event_level(e events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e.type LIKE 'log.%' THEN substr(e.type, 5)
        WHEN e.type IN ('run.iteration', 'run.started') THEN 'debug'
        WHEN e.type IN ('bead.loop_detected', 'budget.exceeded') THEN 'error'
        WHEN e.type = 'provider.updated' AND e.payload #>> '{provider,status}' = 'failed' THEN 'error'
        WHEN e.type = 'run.finished' AND e.payload #>> '{run,terminal_reason}'
             IN ('provider_error', 'error', 'lease_expired', 'parse_failures',
                 'validation_failures') THEN 'error'
        WHEN e.type = 'run.finished' AND e.payload #>> '{run,state}' <> 'succeeded' THEN 'warn'
        WHEN e.type IN ('run.requeued', 'run.released', 'agent.reset', 'bead.recovered',
                        'decision.created', 'budget.warning') THEN 'warn'
        WHEN e.type = 'bead.status_change' AND e.payload ->> 'to' = 'blocked' THEN 'warn'
        ELSE 'info' END
$$;
