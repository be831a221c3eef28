-- 014_motivations: motivations that really fire.  A motivation is a standing reason for work:
-- a schedule (calendar), something that happened (event), a number past a limit (threshold),
-- nothing happening (idle), or a call from outside (external, POST /motivations/{id}/trigger).
-- When it fires it files a bead from its template in its project, with requires_persona =
-- agent_role so the dispatcher hands it to that persona, and/or wakes an agent of that role.
--
--   motivations          the definitions (Loom's fields) plus the engine's bookkeeping
--   motivation_triggers  every firing and every refusal worth remembering (the history)
--
-- Who evaluates: loom-ralph (workers/motivation.c), the leader, every tick.  Each motivation is
-- evaluated by one call of loom_motivation_evaluate(), one transaction that takes the row FOR
-- UPDATE SKIP LOCKED, so two evaluators (or an evaluator and a person pressing Trigger) never
-- fire the same motivation twice.  The C side computes cron times (shared/cron.c) and the
-- event horizon: the newest event id below which no transaction can still add an event, so an
-- event motivation reads each event exactly once, in id order, through its own cursor.
--
-- Firing rules (DESIGN.md rule 5: scheduled work never stacks):
--   * while the bead of the previous firing is open (active_bead), the motivation does not fire
--     again: result 'skipped';
--   * within cooldown_period seconds of the last firing: result 'cooldown';
--   * a skipped or cooldown result the engine finds is recorded once per firing (so at most
--     once per cooldown window), not on every tick; a person's Trigger is always recorded;
--   * threshold and idle motivations fire when their condition becomes true and re-arm only
--     after it has been false again (a refusal leaves them armed, so they fire once the way
--     is clear); calendar ones fire at next_trigger_at (a missed slot is recorded and the
--     schedule moves on); event ones once per matching event.
-- Status: active (evaluated), disabled, fired (its bead is open), cooldown (fired less than
-- cooldown_period ago).  The engine moves fired/cooldown back to active.

CREATE TABLE motivations (
    id                     bigserial PRIMARY KEY,
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description            text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    type                   text NOT NULL
                           CHECK (type IN ('calendar', 'event', 'external', 'threshold', 'idle')),
    condition              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(condition) = 'object'),
    status                 text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'disabled', 'cooldown', 'fired')),
    agent_role             text NOT NULL DEFAULT '',
    agent_id               text REFERENCES agents (id) ON DELETE SET NULL,
    project_id             text REFERENCES projects (id) ON DELETE CASCADE, -- NULL: global
    parameters             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    cooldown_period        integer NOT NULL DEFAULT 300 CHECK (cooldown_period >= 0), -- seconds
    last_triggered_at      timestamptz,
    next_trigger_at        timestamptz,
    trigger_count          integer NOT NULL DEFAULT 0,
    priority               smallint NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),
    create_bead_on_trigger boolean NOT NULL DEFAULT true,
    bead_template          jsonb NOT NULL DEFAULT '{}'
                           CHECK (jsonb_typeof(bead_template) = 'object'),
    wake_agent             boolean NOT NULL DEFAULT false,
    is_built_in            boolean NOT NULL DEFAULT false,
    -- the engine's bookkeeping
    active_bead            text,        -- the open bead of the last firing: no stacking
    event_cursor           bigint,      -- event type: the last events.id considered
    condition_held         boolean NOT NULL DEFAULT false, -- threshold/idle: fired, not re-armed
    evaluated_at           timestamptz, -- round robin over the motivations
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    disabled_at            timestamptz,
    CHECK ((status = 'disabled') = (disabled_at IS NOT NULL))
);
CREATE UNIQUE INDEX motivations_name_idx ON motivations (coalesce(project_id, ''), lower(name));
CREATE INDEX motivations_project_idx ON motivations (project_id);
CREATE INDEX motivations_eval_idx ON motivations (evaluated_at NULLS FIRST, id)
    WHERE status <> 'disabled';

CREATE TABLE motivation_triggers (
    id            bigserial PRIMARY KEY,
    motivation_id bigint NOT NULL REFERENCES motivations (id) ON DELETE CASCADE,
    project_id    text, -- where it acted (the motivation's project, or its event's); NULL: none
    triggered_at  timestamptz NOT NULL DEFAULT now(),
    trigger_data  jsonb NOT NULL DEFAULT '{}',
    result        text NOT NULL
                  CHECK (result IN ('success', 'skipped', 'cooldown', 'no_target', 'error')),
    error         text,
    bead_created  text,  -- the bead it filed
    agent_woken   text,  -- the agent it woke
    finished_at   timestamptz -- NULL while bead_created is open: the firing is still running
);
CREATE INDEX motivation_triggers_motivation_idx ON motivation_triggers (motivation_id, id);

-- threshold motivations read runs finished in a window
CREATE INDEX runs_finished_idx ON runs (finished_at) WHERE finished_at IS NOT NULL;

-- Project isolation as for every project-owned table: global motivations (and history rows
-- that acted in no project) are visible to all, the rest to the project's members.  Enabled,
-- not forced, as 016_rls_roles has it: the policies bind the role loom_api that loom-api takes
-- for a non-admin's request; the owner (workers, admins) is not subject to them.  The grants
-- are 016's too, given here as well for a database where 016 ran before this file.
ALTER TABLE motivations ENABLE ROW LEVEL SECURITY;
CREATE POLICY motivations_scope ON motivations
    USING (project_id IS NULL OR loom_sees(project_id));
ALTER TABLE motivation_triggers ENABLE ROW LEVEL SECURITY;
CREATE POLICY motivation_triggers_scope ON motivation_triggers
    USING (project_id IS NULL OR loom_sees(project_id));

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'loom_api') THEN
        GRANT ALL ON motivations, motivation_triggers TO loom_api;
        GRANT ALL ON SEQUENCE motivations_id_seq, motivation_triggers_id_seq TO loom_api;
    END IF;
END $$;

-- ---- JSON ----------------------------------------------------------------------------------

CREATE FUNCTION loom_motivation_json(m motivations) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', m.id, 'name', m.name, 'description', m.description, 'type', m.type,
        'condition', m.condition, 'status', m.status, 'agent_role', m.agent_role,
        'agent_id', m.agent_id, 'project_id', m.project_id, 'parameters', m.parameters,
        'cooldown_period', m.cooldown_period, 'last_triggered_at', m.last_triggered_at,
        'next_trigger_at', m.next_trigger_at, 'trigger_count', m.trigger_count,
        'priority', m.priority, 'create_bead_on_trigger', m.create_bead_on_trigger,
        'bead_template', m.bead_template, 'wake_agent', m.wake_agent,
        'is_built_in', m.is_built_in, 'active_bead', m.active_bead,
        'created_at', m.created_at, 'updated_at', m.updated_at, 'disabled_at', m.disabled_at)
$$;

CREATE FUNCTION loom_motivation_trigger_json(t motivation_triggers, mname text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'motivation_id', t.motivation_id, 'motivation_name', mname,
        'project_id', t.project_id, 'triggered_at', t.triggered_at,
        'trigger_data', t.trigger_data, 'result', t.result, 'error', t.error,
        'bead_created', t.bead_created, 'agent_woken', t.agent_woken,
        'finished_at', t.finished_at)
$$;

-- ---- definitions: create, update, enable/disable, delete -----------------------------------

-- True for a non-admin request (loom_auth set a member scope); workers are unscoped.
CREATE FUNCTION loom_scoped() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('loom.scope', true), '') <> ''
$$;

-- Global motivations (project_id NULL) act on every project: only admins change them.
CREATE FUNCTION loom_motivation_guard_global(pid text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pid IS NULL AND loom_scoped() THEN
        PERFORM loom_raise('LM403', 'only an admin creates or changes a global motivation '
                                    '(one without project_id)');
    END IF;
END $$;

-- What the C layer cannot see: the row as a whole against the other tables.  The shapes
-- (condition per type, template fields, cron syntax) were checked before.
CREATE FUNCTION loom_motivation_check(m motivations) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    agent_project text;
    persona text := nullif(m.bead_template ->> 'requires_persona', '');
BEGIN
    IF m.project_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM projects WHERE id = m.project_id)
    THEN
        PERFORM loom_raise('LM400', format('project_id: project %s does not exist', m.project_id));
    END IF;
    IF m.agent_role <> '' AND NOT EXISTS (SELECT 1 FROM personas WHERE name = m.agent_role) THEN
        PERFORM loom_raise('LM400', format('agent_role: persona %s does not exist', m.agent_role));
    END IF;
    IF persona IS NOT NULL AND NOT EXISTS (SELECT 1 FROM personas WHERE name = persona) THEN
        PERFORM loom_raise('LM400', format('bead_template.requires_persona: persona %s does not '
                                           'exist', persona));
    END IF;
    IF m.agent_id IS NOT NULL THEN
        SELECT project_id INTO agent_project FROM agents WHERE id = m.agent_id;
        IF NOT FOUND THEN
            PERFORM loom_raise('LM400', format('agent_id: agent %s does not exist', m.agent_id));
        END IF;
        IF m.project_id IS NOT NULL AND agent_project <> m.project_id THEN
            PERFORM loom_raise('LM400', format('agent_id: agent %s belongs to project %s, not %s',
                                               m.agent_id, agent_project, m.project_id));
        END IF;
    END IF;
    IF NOT m.create_bead_on_trigger AND NOT m.wake_agent THEN
        PERFORM loom_raise('LM400', 'a motivation must file a bead (create_bead_on_trigger) or '
                                    'wake an agent (wake_agent)');
    END IF;
    IF m.wake_agent AND m.agent_role = '' AND m.agent_id IS NULL THEN
        PERFORM loom_raise('LM400', 'wake_agent: needs agent_role or agent_id (whom to wake)');
    END IF;
    IF m.type = 'idle' AND m.condition ->> 'scope' = 'project' AND m.project_id IS NULL THEN
        PERFORM loom_raise('LM400', 'condition.scope: project idleness needs a project_id');
    END IF;
    IF m.type = 'idle' AND m.condition ->> 'scope' = 'agent' AND m.agent_id IS NULL THEN
        PERFORM loom_raise('LM400', 'condition.scope: agent idleness needs an agent_id');
    END IF;
END $$;

-- Names are unique within a project (and among the global motivations), ignoring case.
CREATE FUNCTION loom_motivation_name_free(pid text, mname text, mid bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM motivations x
               WHERE coalesce(x.project_id, '') = coalesce(pid, '')
                 AND lower(x.name) = lower(mname) AND x.id IS DISTINCT FROM mid) THEN
        PERFORM loom_raise('LM409', format('a motivation named %s already exists in %s', mname,
                                           coalesce('project ' || pid, 'the global set')));
    END IF;
END $$;

-- Where the engine starts when a motivation is (re)armed: the next calendar slot (an interval
-- from now; a cron time computed in C, NULL for the engine to fill in), the newest event.
CREATE FUNCTION loom_motivation_arm(mid bigint, cron_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE motivations SET
        next_trigger_at = CASE WHEN type <> 'calendar' THEN NULL
                               WHEN condition ? 'interval_seconds'
                               THEN now() + make_interval(secs => (condition ->> 'interval_seconds')::int)
                               ELSE cron_at END,
        event_cursor = CASE WHEN type = 'event'
                            THEN (SELECT coalesce(max(id), 0) FROM events) END,
        condition_held = false
    WHERE id = mid;
END $$;

CREATE FUNCTION loom_motivation_changed(etype text, m motivations, actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loom_event(etype, m.project_id, NULL, actor,
                       jsonb_build_object('motivation', loom_motivation_json(m)::jsonb));
END $$;

-- A definition with the fields of p applied (a partial update; status active/disabled
-- enables or disables), not written: the checks see the whole row before anything changes.
CREATE FUNCTION loom_motivation_apply(m motivations, p jsonb) RETURNS motivations
LANGUAGE plpgsql AS $$
BEGIN
    m.name := coalesce(p ->> 'name', m.name);
    m.description := coalesce(p ->> 'description', m.description);
    m.type := coalesce(p ->> 'type', m.type);
    m.condition := coalesce(p -> 'condition', m.condition);
    m.agent_role := coalesce(p ->> 'agent_role', m.agent_role);
    m.agent_id := CASE WHEN p ? 'agent_id' THEN p ->> 'agent_id' ELSE m.agent_id END;
    m.project_id := CASE WHEN p ? 'project_id' THEN p ->> 'project_id' ELSE m.project_id END;
    m.parameters := coalesce(p -> 'parameters', m.parameters);
    m.cooldown_period := coalesce((p ->> 'cooldown_period')::int, m.cooldown_period);
    m.priority := coalesce((p ->> 'priority')::smallint, m.priority);
    m.create_bead_on_trigger := coalesce((p ->> 'create_bead_on_trigger')::boolean,
                                         m.create_bead_on_trigger);
    m.bead_template := coalesce(p -> 'bead_template', m.bead_template);
    m.wake_agent := coalesce((p ->> 'wake_agent')::boolean, m.wake_agent);
    IF p ->> 'status' = 'disabled' THEN
        m.status := 'disabled';
        m.disabled_at := coalesce(m.disabled_at, now());
    ELSIF p ->> 'status' = 'active' AND m.status = 'disabled' THEN
        m.status := 'active';
        m.disabled_at := NULL;
    END IF;
    RETURN m;
END $$;

-- POST /api/v1/motivations.  cron_at: the first time of a cron schedule (NULL otherwise).
CREATE FUNCTION loom_motivation_create(p jsonb, cron_at timestamptz, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
BEGIN
    m.status := 'active';
    m.description := '';
    m.condition := '{}';
    m.agent_role := '';
    m.parameters := '{}';
    m.cooldown_period := 300;
    m.priority := 50;
    m.create_bead_on_trigger := true;
    m.bead_template := '{}';
    m.wake_agent := false;
    m := loom_motivation_apply(m, p);
    PERFORM loom_motivation_guard_global(m.project_id);
    PERFORM loom_motivation_check(m);
    PERFORM loom_motivation_name_free(m.project_id, m.name, NULL);
    INSERT INTO motivations (name, description, type, condition, status, agent_role, agent_id,
                             project_id, parameters, cooldown_period, priority,
                             create_bead_on_trigger, bead_template, wake_agent, disabled_at)
    VALUES (m.name, m.description, m.type, m.condition, m.status, m.agent_role, m.agent_id,
            m.project_id, m.parameters, m.cooldown_period, m.priority, m.create_bead_on_trigger,
            m.bead_template, m.wake_agent, m.disabled_at)
    RETURNING * INTO m;
    PERFORM loom_motivation_arm(m.id, cron_at);
    SELECT * INTO m FROM motivations WHERE id = m.id;
    PERFORM loom_motivation_changed('motivation.created', m, actor);
    RETURN loom_motivation_json(m);
END $$;

-- PUT/PATCH /api/v1/motivations/{id}: a partial update.  A new type or condition re-arms the
-- motivation (new schedule, events from now on), as does enabling it.
CREATE FUNCTION loom_motivation_update(mid bigint, p jsonb, cron_at timestamptz, actor text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    old motivations;
    m motivations;
BEGIN
    SELECT * INTO old FROM motivations WHERE id = mid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('motivation %s not found', mid));
    END IF;
    PERFORM loom_motivation_guard_global(old.project_id);
    IF p ? 'project_id' AND p ->> 'project_id' IS DISTINCT FROM old.project_id THEN
        PERFORM loom_raise('LM400', 'project_id: a motivation cannot move to another project; '
                                    'create a new one');
    END IF;
    m := loom_motivation_apply(old, p);
    PERFORM loom_motivation_check(m);
    PERFORM loom_motivation_name_free(m.project_id, m.name, mid);
    UPDATE motivations SET
        name = m.name, description = m.description, type = m.type, condition = m.condition,
        agent_role = m.agent_role, agent_id = m.agent_id, parameters = m.parameters,
        cooldown_period = m.cooldown_period, priority = m.priority,
        create_bead_on_trigger = m.create_bead_on_trigger, bead_template = m.bead_template,
        wake_agent = m.wake_agent, status = m.status, disabled_at = m.disabled_at,
        updated_at = now()
    WHERE id = mid;
    IF m.type <> old.type OR m.condition <> old.condition
       OR (old.status = 'disabled' AND m.status <> 'disabled') THEN
        PERFORM loom_motivation_arm(mid, cron_at);
    END IF;
    IF old.status = 'disabled' AND m.status <> 'disabled' THEN
        PERFORM loom_motivation_settle(mid, actor);
    END IF;
    SELECT * INTO m FROM motivations WHERE id = mid;
    PERFORM loom_motivation_changed(
        CASE WHEN m.status = 'disabled' AND old.status <> 'disabled' THEN 'motivation.disabled'
             WHEN m.status <> 'disabled' AND old.status = 'disabled' THEN 'motivation.enabled'
             ELSE 'motivation.updated' END, m, actor);
    RETURN loom_motivation_json(m);
END $$;

-- POST /motivations/{id}/enable and /disable.  Enabling again is a no-op; enabling starts the
-- schedule and the event cursor afresh (what happened while disabled does not fire).
CREATE FUNCTION loom_motivation_set_enabled(mid bigint, enable boolean, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
BEGIN
    SELECT * INTO m FROM motivations WHERE id = mid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('motivation %s not found', mid));
    END IF;
    PERFORM loom_motivation_guard_global(m.project_id);
    IF enable = (m.status <> 'disabled') THEN
        RETURN loom_motivation_json(m);
    END IF;
    UPDATE motivations SET status = CASE WHEN enable THEN 'active' ELSE 'disabled' END,
                           disabled_at = CASE WHEN enable THEN NULL ELSE now() END,
                           updated_at = now()
    WHERE id = mid;
    IF enable THEN
        PERFORM loom_motivation_arm(mid, NULL);
        PERFORM loom_motivation_settle(mid, actor);
    END IF;
    SELECT * INTO m FROM motivations WHERE id = mid;
    PERFORM loom_motivation_changed(CASE WHEN enable THEN 'motivation.enabled'
                                         ELSE 'motivation.disabled' END, m, actor);
    RETURN loom_motivation_json(m);
END $$;

CREATE FUNCTION loom_motivation_delete(mid bigint, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
BEGIN
    SELECT * INTO m FROM motivations WHERE id = mid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('motivation %s not found', mid));
    END IF;
    PERFORM loom_motivation_guard_global(m.project_id);
    DELETE FROM motivations WHERE id = mid;
    PERFORM loom_event('motivation.deleted', m.project_id, NULL, actor,
                       jsonb_build_object('id', mid, 'name', m.name));
    RETURN json_build_object('id', mid, 'deleted', true);
END $$;

-- ---- firing --------------------------------------------------------------------------------

-- The firing of mid whose bead is closed (or gone) has finished; the status follows.  Returns
-- the status.  The caller holds the row lock.
CREATE FUNCTION loom_motivation_settle(mid bigint, actor text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
    st text;
    finished boolean := false;
BEGIN
    SELECT * INTO m FROM motivations WHERE id = mid;
    IF m.active_bead IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM beads WHERE id = m.active_bead AND status <> 'closed') THEN
        UPDATE motivation_triggers
        SET finished_at = coalesce((SELECT closed_at FROM beads WHERE id = m.active_bead), now())
        WHERE motivation_id = mid AND finished_at IS NULL;
        m.active_bead := NULL;
        finished := true;
    END IF;
    st := CASE WHEN m.status = 'disabled' THEN 'disabled'
               WHEN m.active_bead IS NOT NULL THEN 'fired'
               WHEN m.last_triggered_at + make_interval(secs => m.cooldown_period) > now()
               THEN 'cooldown'
               ELSE 'active' END;
    IF finished OR st <> m.status THEN
        UPDATE motivations SET status = st, active_bead = m.active_bead WHERE id = mid
        RETURNING * INTO m;
        IF st <> 'disabled' THEN
            PERFORM loom_motivation_changed('motivation.status_change', m, actor);
        END IF;
    END IF;
    RETURN st;
END $$;

-- {motivation}, {project_id}, {bead_id}, {event_type} and {value} in a template text.
CREATE FUNCTION loom_motivation_fill(s text, m motivations, target text, data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(replace(replace(replace(replace(s,
        '{motivation}', m.name), '{project_id}', coalesce(target, '')),
        '{bead_id}', coalesce(data ->> 'bead_id', '')),
        '{event_type}', coalesce(data ->> 'event_type', '')),
        '{value}', coalesce(data ->> 'value', ''))
$$;

-- Files the bead of a firing in project target; returns its id.  requires_persona (the
-- template's, else agent_role, else the persona of agent_id) routes it in the dispatcher.
CREATE FUNCTION loom_motivation_bead(m motivations, target text, data jsonb, tid bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tpl jsonb := m.bead_template;
    persona text := coalesce(nullif(tpl ->> 'requires_persona', ''), nullif(m.agent_role, ''),
                             (SELECT persona_name FROM agents WHERE id = m.agent_id));
    body text;
BEGIN
    body := loom_motivation_fill(coalesce(tpl ->> 'description', m.description), m, target, data)
            || format(E'\n\nFiled by motivation %s (%s, id %s).', m.name, m.type, m.id);
    RETURN loom_bead_create(jsonb_build_object(
        'project_id', target,
        'title', left(loom_motivation_fill(coalesce(tpl ->> 'title', m.name), m, target, data), 500),
        'description', ltrim(body, E' \n'),
        'priority', coalesce(tpl -> 'priority', '2'),
        'type', coalesce(tpl ->> 'type', 'task'),
        'tags', (SELECT jsonb_agg(DISTINCT x ORDER BY x) FROM jsonb_array_elements_text(
                     coalesce(tpl -> 'tags', '[]') || '["motivation"]') x),
        'context', jsonb_build_object('requires_persona', persona, 'motivation_id', m.id::text,
                                      'motivation', m.name, 'motivation_trigger_id', tid::text,
                                      'motivation_subject', data ->> 'bead_id')),
        'motivation:' || m.id) ->> 'id';
END $$;

-- Wakes the agent of a firing: agent_id, else the agent of persona agent_role in project
-- target that is idle (preferred) or paused with a provider.  A paused one becomes idle; an
-- idle one goes to the front of the dispatcher's queue for its persona (last_active cleared).
-- Busy agents are left alone.  Returns the agent's id, or NULL when there was none to wake.
CREATE FUNCTION loom_motivation_wake(m motivations, target text, actor text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a agents;
    woke agents;
BEGIN
    SELECT * INTO a FROM agents ag
    WHERE (CASE WHEN m.agent_id IS NOT NULL THEN ag.id = m.agent_id
                ELSE ag.project_id = target AND ag.persona_name = m.agent_role END)
      AND (ag.status = 'idle' OR (ag.status = 'paused' AND ag.provider_id IS NOT NULL))
    ORDER BY (ag.status = 'idle') DESC, ag.last_active NULLS FIRST, ag.id
    LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE agents SET status = 'idle', last_active = NULL, updated_at = now()
    WHERE id = a.id RETURNING * INTO woke;
    PERFORM loom_event(CASE WHEN a.status <> 'idle' THEN 'agent.status_change'
                            ELSE 'agent.updated' END, woke.project_id, NULL, actor,
                       jsonb_build_object('agent', loom_agent_json(woke)::jsonb, 'from', a.status,
                                          'reason', format('woken by motivation %s', m.name)));
    RETURN woke.id;
END $$;

-- One attempt to fire mid (the caller holds its row lock): the gates (no stacking, cooldown),
-- then the actions, recorded in motivation_triggers with a motivation.fired (success) or
-- motivation.skipped (anything else) event.  event_project: the project of the event that
-- fired it (where a global motivation files its bead).  manual: a person's Trigger, always
-- recorded; the engine's refusals are recorded once per firing.  Returns the row written, or
-- NULL when a refusal was not recorded again.
CREATE FUNCTION loom_motivation_fire(mid bigint, data jsonb, event_project text, manual boolean,
                                     actor text) RETURNS motivation_triggers
LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
    t motivation_triggers;
    res text;
    why text;
    target text;
    bead text;
    woke text;
    notes text[] := '{}';
BEGIN
    SELECT * INTO m FROM motivations WHERE id = mid;
    target := coalesce(m.project_id, event_project);
    IF m.active_bead IS NOT NULL THEN
        res := 'skipped';
        why := format('the bead of the previous firing (%s) is still open', m.active_bead);
    ELSIF m.last_triggered_at + make_interval(secs => m.cooldown_period) > now() THEN
        res := 'cooldown';
        why := format('cooling down until %s', to_char((m.last_triggered_at
                   + make_interval(secs => m.cooldown_period)) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END IF;
    IF res IS NOT NULL THEN
        IF NOT manual AND EXISTS (SELECT 1 FROM motivation_triggers x
                                  WHERE x.motivation_id = mid AND x.result = res
                                    AND x.triggered_at >= m.last_triggered_at) THEN
            RETURN NULL;
        END IF;
        INSERT INTO motivation_triggers (motivation_id, project_id, trigger_data, result, error,
                                         finished_at)
        VALUES (mid, target, data, res, why, now()) RETURNING * INTO t;
        PERFORM loom_event('motivation.skipped', target, NULL, actor,
                           jsonb_build_object('motivation_id', mid, 'name', m.name,
                                              'trigger', loom_motivation_trigger_json(t, m.name)));
        RETURN t;
    END IF;
    t.id := nextval('motivation_triggers_id_seq');
    BEGIN
        IF m.create_bead_on_trigger AND target IS NULL THEN
            notes := notes || 'no project to file the bead in (a global motivation files it in '
                              'the project of its event or of the trigger request)'::text;
        ELSIF m.create_bead_on_trigger
              AND EXISTS (SELECT 1 FROM projects WHERE id = target AND status = 'closed') THEN
            notes := notes || format('project %s is closed', target);
        ELSIF m.create_bead_on_trigger THEN
            bead := loom_motivation_bead(m, target, data, t.id);
        END IF;
        IF m.wake_agent THEN
            woke := loom_motivation_wake(m, target, actor);
            IF woke IS NULL THEN
                notes := notes || format('no idle or paused agent %s to wake',
                                         coalesce(m.agent_id, m.agent_role || ' in '
                                                  || coalesce(target, 'no project')));
            END IF;
        END IF;
        res := CASE WHEN bead IS NOT NULL OR woke IS NOT NULL THEN 'success' ELSE 'no_target' END;
        why := nullif(array_to_string(notes, '; '), '');
    EXCEPTION WHEN OTHERS THEN
        res := 'error';
        why := SQLERRM;
        bead := NULL;
        woke := NULL;
    END;
    INSERT INTO motivation_triggers (id, motivation_id, project_id, trigger_data, result, error,
                                     bead_created, agent_woken, finished_at)
    VALUES (t.id, mid, target, data, res, why, bead, woke, CASE WHEN bead IS NULL THEN now() END)
    RETURNING * INTO t;
    UPDATE motivations SET
        last_triggered_at = now(),
        trigger_count = trigger_count + CASE WHEN res = 'success' THEN 1 ELSE 0 END,
        active_bead = bead,
        status = CASE WHEN status = 'disabled' THEN 'disabled' WHEN bead IS NOT NULL THEN 'fired'
                      WHEN cooldown_period > 0 THEN 'cooldown' ELSE 'active' END
    WHERE id = mid RETURNING * INTO m;
    PERFORM loom_event(CASE WHEN res = 'success' THEN 'motivation.fired'
                            ELSE 'motivation.skipped' END, target, bead, actor,
                       jsonb_build_object('motivation_id', mid, 'name', m.name,
                                          'motivation', loom_motivation_json(m)::jsonb,
                                          'trigger', loom_motivation_trigger_json(t, m.name)));
    RETURN t;
END $$;

-- POST /motivations/{id}/trigger: a person (or a webhook) fires it now, any type.  data lands
-- in trigger_data; pid names the project a global motivation files its bead in.
CREATE FUNCTION loom_motivation_trigger(mid bigint, data jsonb, pid text, actor text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
    t motivation_triggers;
BEGIN
    SELECT * INTO m FROM motivations WHERE id = mid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('motivation %s not found', mid));
    END IF;
    PERFORM loom_motivation_guard_global(m.project_id);
    IF m.status = 'disabled' THEN
        PERFORM loom_raise('LM409', format('motivation %s (%s) is disabled; enable it first',
                                           mid, m.name));
    END IF;
    IF pid IS NOT NULL AND m.project_id IS NOT NULL AND pid <> m.project_id THEN
        PERFORM loom_raise('LM400', format('project_id: motivation %s belongs to project %s',
                                           mid, m.project_id));
    END IF;
    IF pid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM projects WHERE id = pid) THEN
        PERFORM loom_raise('LM400', format('project_id: project %s does not exist', pid));
    END IF;
    PERFORM loom_motivation_settle(mid, actor);
    t := loom_motivation_fire(mid, jsonb_build_object('source', 'manual', 'by', actor)
                                   || coalesce(data, '{}'), pid, true, actor);
    RETURN loom_motivation_trigger_json(t, m.name);
END $$;

-- ---- evaluation (loom-ralph) ---------------------------------------------------------------

-- Event types an event condition listens to.
CREATE FUNCTION loom_motivation_event_types(ev text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE ev WHEN 'bead_created' THEN ARRAY['bead.created']
                   WHEN 'bead_completed' THEN ARRAY['bead.completed']
                   WHEN 'bead_status_changed' THEN ARRAY['bead.status_change']
                   WHEN 'decision_pending' THEN ARRAY['bead.created']
                   WHEN 'decision_resolved' THEN ARRAY['decision.decided']
                   ELSE ARRAY[]::text[] END
$$;

CREATE FUNCTION loom_motivation_eval_calendar(m motivations, cron_at timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t motivation_triggers;
BEGIN
    IF m.next_trigger_at IS NULL THEN
        PERFORM loom_motivation_arm(m.id, cron_at);
        RETURN 0;
    END IF;
    IF m.next_trigger_at > now() THEN
        RETURN 0;
    END IF;
    t := loom_motivation_fire(m.id, jsonb_build_object('source', 'calendar', 'scheduled_for',
                                                       m.next_trigger_at), NULL, false,
                              'loom-ralph');
    PERFORM loom_motivation_arm(m.id, cron_at);
    RETURN CASE WHEN t.result = 'success' THEN 1 ELSE 0 END;
END $$;

-- Each matching event after the cursor and up to the horizon (safe), in id order, at most 100
-- per call; the motivation's own beads and its own events never count.
CREATE FUNCTION loom_motivation_eval_event(m motivations, safe bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    e events;
    t motivation_triggers;
    types text[] := loom_motivation_event_types(m.condition ->> 'event');
    cursor_to bigint := m.event_cursor;
    seen integer := 0;
    fired integer := 0;
BEGIN
    FOR e IN SELECT * FROM events x
             WHERE x.id > m.event_cursor AND x.id <= safe AND x.type = ANY (types)
               AND (m.project_id IS NULL OR x.project_id = m.project_id)
               AND x.actor <> 'motivation:' || m.id
             ORDER BY x.id LIMIT 100 LOOP
        seen := seen + 1;
        cursor_to := e.id;
        CONTINUE WHEN m.condition ->> 'event' = 'decision_pending'
                      AND e.payload #>> '{bead,type}' IS DISTINCT FROM 'decision';
        CONTINUE WHEN EXISTS (SELECT 1 FROM beads b WHERE b.id = e.bead_id
                              AND b.context ->> 'motivation_id' = m.id::text);
        t := loom_motivation_fire(m.id, jsonb_build_object(
                 'source', 'event', 'event_id', e.id, 'event_type', e.type,
                 'bead_id', e.bead_id, 'project_id', e.project_id), e.project_id, false,
                 'loom-ralph');
        fired := fired + CASE WHEN t.result = 'success' THEN 1 ELSE 0 END;
    END LOOP;
    UPDATE motivations SET event_cursor = CASE WHEN seen = 100 THEN cursor_to
                                               ELSE greatest(event_cursor, safe) END
    WHERE id = m.id;
    RETURN fired;
END $$;

-- A threshold condition's measurement as trigger data when it is past its limit, else NULL.
--   cost          USD of LLM calls in the window (the motivation's project, or all)
--   failure_rate  failed / finished runs in the window, once at least min_runs finished
CREATE FUNCTION loom_motivation_threshold(m motivations) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    c jsonb := m.condition;
    since timestamptz := now() - make_interval(secs => coalesce((c ->> 'window_seconds')::int,
                                                                3600));
    limit_v numeric := (c ->> 'threshold')::numeric;
    v numeric;
    failed bigint;
    total bigint;
BEGIN
    IF c ->> 'metric' = 'cost' THEN
        SELECT coalesce(sum(cost_usd), 0) INTO v FROM llm_calls
        WHERE created_at > since AND (m.project_id IS NULL OR project_id = m.project_id);
        total := NULL;
    ELSE
        SELECT count(*) FILTER (WHERE state = 'failed'), count(*) INTO failed, total FROM runs
        WHERE finished_at > since AND state IN ('succeeded', 'failed')
          AND (m.project_id IS NULL OR project_id = m.project_id);
        IF total < coalesce((c ->> 'min_runs')::int, 3) THEN
            RETURN NULL;
        END IF;
        v := round(failed::numeric / total, 4);
    END IF;
    IF v IS NULL OR v < limit_v OR (c ->> 'metric' = 'cost' AND v = limit_v) THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object('source', 'threshold', 'metric', c ->> 'metric', 'value', v,
                              'threshold', limit_v, 'window_seconds',
                              coalesce((c ->> 'window_seconds')::int, 3600))
           || CASE WHEN total IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('failed_runs', failed, 'finished_runs', total) END;
END $$;

-- An idle condition as trigger data when it holds, else NULL.  Activity is any event but the
-- motivations' own; idle means no queued or running run and no activity for idle_minutes:
--   system   anywhere;  project  in the motivation's project;
--   agent    agent_id not working, its last activity (or last change) that long ago.
CREATE FUNCTION loom_motivation_idle(m motivations) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    scope text := m.condition ->> 'scope';
    quiet interval := make_interval(mins => (m.condition ->> 'idle_minutes')::int);
    last timestamptz;
BEGIN
    IF scope = 'agent' THEN
        SELECT greatest(coalesce(a.last_active, '-infinity'), a.updated_at) INTO last
        FROM agents a WHERE a.id = m.agent_id AND a.status <> 'working'
          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.agent_id = a.id
                          AND r.state IN ('queued', 'running'));
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    ELSIF scope = 'project' THEN
        IF EXISTS (SELECT 1 FROM runs WHERE project_id = m.project_id
                   AND state IN ('queued', 'running')) THEN
            RETURN NULL;
        END IF;
        SELECT e.created_at INTO last FROM events e
        WHERE e.project_id = m.project_id AND e.type NOT LIKE 'motivation.%'
        ORDER BY e.id DESC LIMIT 1;
    ELSE
        IF EXISTS (SELECT 1 FROM runs WHERE state IN ('queued', 'running')) THEN
            RETURN NULL;
        END IF;
        SELECT e.created_at INTO last FROM events e WHERE e.type NOT LIKE 'motivation.%'
        ORDER BY e.id DESC LIMIT 1;
    END IF;
    IF coalesce(last, '-infinity') > now() - quiet THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object('source', 'idle', 'scope', scope,
                              'idle_minutes', (m.condition ->> 'idle_minutes')::int,
                              'last_activity_at', last, 'project_id', m.project_id,
                              'agent_id', m.agent_id);
END $$;

-- Threshold and idle: fire when the condition becomes true; re-arm once it is false again.
CREATE FUNCTION loom_motivation_eval_level(m motivations) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    data jsonb := CASE WHEN m.type = 'threshold' THEN loom_motivation_threshold(m)
                       ELSE loom_motivation_idle(m) END;
    t motivation_triggers;
BEGIN
    IF data IS NULL THEN
        IF m.condition_held THEN
            UPDATE motivations SET condition_held = false WHERE id = m.id;
        END IF;
        RETURN 0;
    END IF;
    IF m.condition_held THEN
        RETURN 0;
    END IF;
    t := loom_motivation_fire(m.id, data, NULL, false, 'loom-ralph');
    IF t.id IS NULL OR t.result IN ('skipped', 'cooldown') THEN
        RETURN 0; -- still armed: fires once the way is clear
    END IF;
    UPDATE motivations SET condition_held = true WHERE id = m.id;
    RETURN CASE WHEN t.result = 'success' THEN 1 ELSE 0 END;
END $$;

-- One evaluation of one motivation, one transaction: the row is locked (SKIP LOCKED: another
-- evaluator has it, so this one passes), its last firing settled, its condition checked.
-- safe: the event horizon; cron_at: the next cron time after now (for cron schedules).
-- Returns the number of successful firings (0 when locked, disabled or not due).
CREATE FUNCTION loom_motivation_evaluate(mid bigint, safe bigint, cron_at timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m motivations;
BEGIN
    SELECT * INTO m FROM motivations WHERE id = mid AND status <> 'disabled'
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM loom_motivation_settle(mid, 'loom-ralph');
    UPDATE motivations SET evaluated_at = now() WHERE id = mid RETURNING * INTO m;
    RETURN CASE m.type WHEN 'calendar' THEN loom_motivation_eval_calendar(m, cron_at)
                       WHEN 'event' THEN loom_motivation_eval_event(m, safe)
                       WHEN 'threshold' THEN loom_motivation_eval_level(m)
                       WHEN 'idle' THEN loom_motivation_eval_level(m)
                       ELSE 0 END;
END $$;

-- ---- built-ins -----------------------------------------------------------------------------

-- The motivations every project starts with, for the default personas that are loaded:
-- disabled, unless the project's context says "motivations_enabled": "true" (then, and when
-- that setting changes later, they follow it).  Cron schedules get their first time from the
-- engine.  No events: they are part of the project's creation.
CREATE FUNCTION loom_project_builtin_motivations(pid text, enabled boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    b jsonb;
    n integer := 0;
    mid bigint;
BEGIN
    FOR b IN SELECT * FROM jsonb_array_elements($j$[
        {"name": "CEO weekly review", "type": "calendar", "agent_role": "ceo",
         "condition": {"cron": "0 9 * * 1"}, "cooldown_period": 3600, "priority": 60,
         "description": "Every Monday at 09:00 UTC the CEO reviews the project: progress, risks and the priorities of the week.",
         "bead_template": {"title": "Weekly review of {project_id}", "type": "task", "priority": 2, "tags": ["review", "weekly"],
                           "description": "Review the last week of {project_id}: what was closed, what is blocked or failing, what matters next. File beads for what needs doing."}},
        {"name": "QA: review completed work", "type": "event", "agent_role": "qa-engineer",
         "condition": {"event": "bead_completed"}, "cooldown_period": 600, "priority": 50,
         "description": "When a bead is completed, QA checks the result.",
         "bead_template": {"title": "QA review of {bead_id}", "type": "task", "priority": 2, "tags": ["qa"],
                           "description": "Bead {bead_id} was completed. Check its result: build, run the tests, read the change; file bugs for what is wrong."}},
        {"name": "DevOps: run failure rate", "type": "threshold", "agent_role": "devops-engineer",
         "condition": {"metric": "failure_rate", "threshold": 0.5, "window_seconds": 3600, "min_runs": 5},
         "cooldown_period": 1800, "priority": 70,
         "description": "Half or more of the runs of the last hour failed (at least 5 runs).",
         "bead_template": {"title": "Investigate failing runs in {project_id}", "type": "bug", "priority": 1, "tags": ["devops"],
                           "description": "The share of failed runs in the last hour reached {value}. Find the common cause (provider, build, environment) and fix it."}},
        {"name": "Engineering manager: project idle", "type": "idle", "agent_role": "engineering-manager",
         "condition": {"scope": "project", "idle_minutes": 30}, "cooldown_period": 14400, "priority": 40,
         "description": "Nothing ran and nothing happened in the project for 30 minutes.",
         "bead_template": {"title": "{project_id} is idle: plan the next work", "type": "task", "priority": 2, "tags": ["planning"],
                           "description": "The project has been idle for 30 minutes. Review the open beads and the goals, and file the next pieces of work."}},
        {"name": "CEO: LLM cost over budget", "type": "threshold", "agent_role": "ceo",
         "condition": {"metric": "cost", "threshold": 10, "window_seconds": 86400},
         "cooldown_period": 3600, "priority": 80,
         "description": "The project spent more than $10 on LLM calls in 24 hours.",
         "bead_template": {"title": "LLM spending of {project_id} is over budget", "type": "task", "priority": 1, "tags": ["budget"],
                           "description": "LLM calls cost ${value} in the last 24 hours. Decide whether to continue, pause dispatch or change models."}}
    ]$j$::jsonb) LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM personas WHERE name = b ->> 'agent_role');
        INSERT INTO motivations (name, description, type, condition, status, agent_role,
                                 project_id, cooldown_period, priority, bead_template,
                                 is_built_in, disabled_at)
        VALUES (b ->> 'name', b ->> 'description', b ->> 'type', b -> 'condition',
                CASE WHEN enabled THEN 'active' ELSE 'disabled' END, b ->> 'agent_role', pid,
                (b ->> 'cooldown_period')::int, (b ->> 'priority')::smallint,
                b -> 'bead_template', true, CASE WHEN enabled THEN NULL ELSE now() END)
        ON CONFLICT DO NOTHING
        RETURNING id INTO mid;
        IF mid IS NOT NULL THEN
            PERFORM loom_motivation_arm(mid, NULL);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- Fires after projects_a_owned (the owner may see the project) and projects_default_agents.
CREATE FUNCTION loom_projects_motivations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loom_project_builtin_motivations(
        NEW.id, coalesce(NEW.context ->> 'motivations_enabled', 'false') = 'true');
    RETURN NULL;
END $$;

CREATE TRIGGER projects_motivations AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION loom_projects_motivations();

-- "motivations_enabled" changed in a project's context: its built-ins follow.
CREATE FUNCTION loom_projects_motivations_toggle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mid bigint;
BEGIN
    FOR mid IN SELECT id FROM motivations WHERE project_id = NEW.id AND is_built_in ORDER BY id
    LOOP
        PERFORM loom_motivation_set_enabled(
            mid, coalesce(NEW.context ->> 'motivations_enabled', 'false') = 'true', 'system');
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER projects_motivations_toggle AFTER UPDATE OF context ON projects
    FOR EACH ROW
    WHEN (OLD.context ->> 'motivations_enabled' IS DISTINCT FROM
          NEW.context ->> 'motivations_enabled')
    EXECUTE FUNCTION loom_projects_motivations_toggle();

-- Projects made before this migration get their built-ins too.
SELECT loom_project_builtin_motivations(
           id, coalesce(context ->> 'motivations_enabled', 'false') = 'true')
FROM projects ORDER BY id;
