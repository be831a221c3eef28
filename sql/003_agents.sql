-- 003_agents: personas (loaded from deploy/personas/*/SKILL.md, editable through the API),
-- providers (OpenAI-compatible LLM endpoints: TokenHub, OpenAI, vLLM, Ollama, the test stub) and
-- agents (a persona at work in one project, on a provider).
--
-- A provider's API key is write-only: no function here returns it, the API never shows it (only
-- has_api_key), and events never carry it.  loom-ralph probes every provider on registration and
-- every 60 s (GET {endpoint}/models) and records status, latency and the last error.

CREATE TABLE personas (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    instructions   text NOT NULL DEFAULT '' CHECK (length(instructions) <= 200000),
    license        text NOT NULL DEFAULT '',
    compatibility  text NOT NULL DEFAULT '',
    role           text NOT NULL DEFAULT '',
    specialties    text[] NOT NULL DEFAULT '{}',
    author         text NOT NULL DEFAULT '',
    version        text NOT NULL DEFAULT '',
    autonomy_level text NOT NULL DEFAULT 'semi'
                   CHECK (autonomy_level IN ('full', 'semi', 'supervised')),
    -- 'file': as loaded from SKILL.md, refreshed by loom-migrate; 'api': edited by a person,
    -- which a later load never overwrites
    source         text NOT NULL DEFAULT 'file' CHECK (source IN ('file', 'api')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE providers (
    id                        text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name                      text NOT NULL,
    type                      text NOT NULL DEFAULT 'openai' CHECK (type IN ('openai')),
    endpoint                  text NOT NULL CHECK (endpoint ~ '^https?://[^/\s]+'),
    model                     text NOT NULL DEFAULT '',
    description               text NOT NULL DEFAULT '',
    api_key                   text,
    status                    text NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'healthy', 'failed', 'inactive')),
    context_window            integer CHECK (context_window > 0),
    tags                      text[] NOT NULL DEFAULT '{}',
    last_heartbeat_at         timestamptz,
    last_heartbeat_latency_ms integer,
    last_heartbeat_error      text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- "http://host:8000" and "http://host:8000/" mean "http://host:8000/v1"; a path is kept as given.
CREATE FUNCTION loom_endpoint_normalize(e text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN rtrim(e, '/') ~ '^https?://[^/]+$' THEN rtrim(e, '/') || '/v1'
                ELSE rtrim(e, '/') END
$$;

CREATE FUNCTION loom_provider_json(p providers) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id, 'name', p.name, 'type', p.type, 'endpoint', p.endpoint, 'model', p.model,
        'configured_model', p.model, 'description', p.description,
        'has_api_key', p.api_key IS NOT NULL, 'status', p.status,
        'context_window', p.context_window, 'tags', p.tags,
        'last_heartbeat_at', p.last_heartbeat_at,
        'last_heartbeat_latency_ms', p.last_heartbeat_latency_ms,
        'last_heartbeat_error', p.last_heartbeat_error,
        'created_at', p.created_at, 'updated_at', p.updated_at)
$$;

-- Wakes the prober (loom-ralph LISTENs on loom_providers) besides the durable event.
CREATE FUNCTION loom_provider_changed(etype text, p providers, actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loom_event(etype, NULL, NULL, actor,
                       jsonb_build_object('provider', loom_provider_json(p)::jsonb));
    PERFORM pg_notify('loom_providers', p.id);
END $$;

CREATE FUNCTION loom_provider_create(p jsonb, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    r providers;
BEGIN
    IF EXISTS (SELECT 1 FROM providers WHERE id = p ->> 'id') THEN
        PERFORM loom_raise('LM409', format('provider %s already exists', p ->> 'id'));
    END IF;
    INSERT INTO providers (id, name, type, endpoint, model, description, api_key, context_window,
                           tags)
    VALUES (p ->> 'id', coalesce(p ->> 'name', p ->> 'id'), coalesce(p ->> 'type', 'openai'),
            loom_endpoint_normalize(p ->> 'endpoint'), coalesce(p ->> 'model', ''),
            coalesce(p ->> 'description', ''), nullif(p ->> 'api_key', ''),
            (p ->> 'context_window')::integer,
            coalesce(loom_json_text_array(p -> 'tags'), '{}'))
    RETURNING * INTO r;
    PERFORM loom_provider_changed('provider.registered', r, actor);
    RETURN loom_provider_json(r);
END $$;

-- Partial update; a new endpoint, key or model sends the provider back to 'pending' so it is
-- probed again at once.  "api_key": null removes the key.
CREATE FUNCTION loom_provider_update(pid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    r providers;
    reprobe boolean := p ?| ARRAY['endpoint', 'api_key', 'model'];
BEGIN
    UPDATE providers SET
        name = coalesce(p ->> 'name', name),
        endpoint = coalesce(loom_endpoint_normalize(p ->> 'endpoint'), endpoint),
        model = coalesce(p ->> 'model', model),
        description = coalesce(p ->> 'description', description),
        api_key = CASE WHEN p ? 'api_key' THEN nullif(p ->> 'api_key', '') ELSE api_key END,
        context_window = CASE WHEN p ? 'context_window' THEN (p ->> 'context_window')::integer
                              ELSE context_window END,
        tags = coalesce(loom_json_text_array(p -> 'tags'), tags),
        status = CASE WHEN p ->> 'status' = 'inactive' THEN 'inactive'
                      WHEN reprobe OR p ->> 'status' = 'pending' THEN 'pending'
                      ELSE status END,
        updated_at = now()
    WHERE id = pid RETURNING * INTO r;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('provider %s not found', pid));
    END IF;
    PERFORM loom_provider_changed('provider.updated', r, actor);
    RETURN loom_provider_json(r);
END $$;

CREATE FUNCTION loom_provider_delete(pid text, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    r providers;
BEGIN
    DELETE FROM providers WHERE id = pid RETURNING * INTO r;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('provider %s not found', pid));
    END IF;
    PERFORM loom_event('provider.deleted', NULL, NULL, actor, jsonb_build_object('id', pid));
    RETURN json_build_object('id', pid, 'deleted', true);
END $$;

-- The prober's result.  An agent that was paused only for want of a provider gets this one when
-- it turns healthy.
CREATE FUNCTION loom_provider_probed(pid text, ok boolean, latency_ms integer, err text)
RETURNS void LANGUAGE plpgsql AS $$
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
        UPDATE agents SET provider_id = pid, status = 'idle', updated_at = now()
        WHERE provider_id IS NULL AND status = 'paused';
    END IF;
END $$;

CREATE SEQUENCE agents_id_seq;

-- status: paused (no provider yet, or paused by a person), idle, working, deciding, blocked
CREATE TABLE agents (
    id           text PRIMARY KEY DEFAULT 'agent-' || nextval('agents_id_seq'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL DEFAULT '',
    persona_name text NOT NULL REFERENCES personas (name) ON UPDATE CASCADE,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider_id  text REFERENCES providers (id) ON DELETE SET NULL,
    status       text NOT NULL DEFAULT 'paused'
                 CHECK (status IN ('idle', 'working', 'paused', 'blocked', 'deciding')),
    current_bead text REFERENCES beads (id) ON DELETE SET NULL,
    started_at   timestamptz,
    last_active  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'working' OR current_bead IS NOT NULL)
);
CREATE INDEX agents_project_idx ON agents (project_id, status);
CREATE INDEX agents_persona_idx ON agents (persona_name);

CREATE FUNCTION loom_persona_json(p personas, with_instructions boolean) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'name', p.name, 'description', p.description, 'license', p.license,
        'compatibility', p.compatibility,
        'metadata', json_build_object('role', p.role, 'specialties', p.specialties,
                                      'author', p.author, 'version', p.version,
                                      'autonomy_level', p.autonomy_level),
        'instructions', CASE WHEN with_instructions THEN p.instructions END,
        'source', p.source, 'created_at', p.created_at, 'updated_at', p.updated_at)
$$;

CREATE FUNCTION loom_agent_json(a agents) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', a.id, 'name', a.name, 'role', a.role, 'persona_name', a.persona_name,
        'project_id', a.project_id, 'provider_id', a.provider_id, 'status', a.status,
        'current_bead', a.current_bead, 'started_at', a.started_at,
        'last_active', a.last_active, 'created_at', a.created_at, 'updated_at', a.updated_at)
$$;

-- Upsert from a SKILL.md file (loom-migrate --personas); rows a person edited stay as they are.
CREATE FUNCTION loom_persona_load(p jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r personas;
BEGIN
    INSERT INTO personas (name, description, instructions, license, compatibility, role,
                          specialties, author, version, autonomy_level)
    VALUES (p ->> 'name', coalesce(p ->> 'description', ''), coalesce(p ->> 'instructions', ''),
            coalesce(p ->> 'license', ''), coalesce(p ->> 'compatibility', ''),
            coalesce(p ->> 'role', ''), coalesce(loom_json_text_array(p -> 'specialties'), '{}'),
            coalesce(p ->> 'author', ''), coalesce(p ->> 'version', ''),
            coalesce(p ->> 'autonomy_level', 'semi'))
    ON CONFLICT (name) DO UPDATE SET
        description = EXCLUDED.description, instructions = EXCLUDED.instructions,
        license = EXCLUDED.license, compatibility = EXCLUDED.compatibility,
        role = EXCLUDED.role, specialties = EXCLUDED.specialties, author = EXCLUDED.author,
        version = EXCLUDED.version, autonomy_level = EXCLUDED.autonomy_level, updated_at = now()
    WHERE personas.source = 'file'
      AND (personas.description, personas.instructions, personas.license,
           personas.compatibility, personas.role, personas.specialties, personas.author,
           personas.version, personas.autonomy_level)
          IS DISTINCT FROM
          (EXCLUDED.description, EXCLUDED.instructions, EXCLUDED.license,
           EXCLUDED.compatibility, EXCLUDED.role, EXCLUDED.specialties, EXCLUDED.author,
           EXCLUDED.version, EXCLUDED.autonomy_level)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN 'unchanged';
    END IF;
    PERFORM loom_event('persona.updated', NULL, NULL, 'loom-migrate',
                       jsonb_build_object('name', r.name, 'source', 'file'));
    RETURN 'loaded';
END $$;

-- PUT /api/v1/personas/{name}: partial update, or create when absent (then description and
-- instructions are required).  The row becomes source 'api'.
CREATE FUNCTION loom_persona_put(pname text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    r personas;
    m jsonb := coalesce(p -> 'metadata', '{}');
BEGIN
    UPDATE personas SET
        description = coalesce(p ->> 'description', description),
        instructions = coalesce(p ->> 'instructions', instructions),
        license = coalesce(p ->> 'license', license),
        compatibility = coalesce(p ->> 'compatibility', compatibility),
        role = coalesce(m ->> 'role', role),
        specialties = coalesce(loom_json_text_array(m -> 'specialties'), specialties),
        author = coalesce(m ->> 'author', author),
        version = coalesce(m ->> 'version', version),
        autonomy_level = coalesce(m ->> 'autonomy_level', autonomy_level),
        source = 'api', updated_at = now()
    WHERE name = pname RETURNING * INTO r;
    IF NOT FOUND THEN
        IF NOT (p ? 'description' AND p ? 'instructions') THEN
            PERFORM loom_raise('LM404', format('persona %s not found (to create it, give '
                                               'description and instructions)', pname));
        END IF;
        INSERT INTO personas (name, description, instructions, license, compatibility, role,
                              specialties, author, version, autonomy_level, source)
        VALUES (pname, p ->> 'description', p ->> 'instructions',
                coalesce(p ->> 'license', ''), coalesce(p ->> 'compatibility', ''),
                coalesce(m ->> 'role', ''),
                coalesce(loom_json_text_array(m -> 'specialties'), '{}'),
                coalesce(m ->> 'author', actor), coalesce(m ->> 'version', '1.0'),
                coalesce(m ->> 'autonomy_level', 'semi'), 'api')
        RETURNING * INTO r;
    END IF;
    PERFORM loom_event('persona.updated', NULL, NULL, actor,
                       jsonb_build_object('name', r.name, 'source', 'api'));
    RETURN loom_persona_json(r, true);
END $$;

-- A new agent gets the provider it names or the first healthy one, and is idle; without any it
-- starts paused.
CREATE FUNCTION loom_agent_create(p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    a agents;
    persona personas;
    prov text := p ->> 'provider_id';
BEGIN
    SELECT * INTO persona FROM personas WHERE name = p ->> 'persona_name';
    IF NOT FOUND THEN
        PERFORM loom_raise('LM400', format('persona_name: persona %s does not exist',
                                           p ->> 'persona_name'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM projects WHERE id = p ->> 'project_id') THEN
        PERFORM loom_raise('LM400', format('project_id: project %s does not exist',
                                           p ->> 'project_id'));
    END IF;
    IF prov IS NOT NULL AND NOT EXISTS (SELECT 1 FROM providers WHERE id = prov) THEN
        PERFORM loom_raise('LM400', format('provider_id: provider %s does not exist', prov));
    END IF;
    IF prov IS NULL THEN
        SELECT id INTO prov FROM providers WHERE status = 'healthy' ORDER BY id LIMIT 1;
    END IF;
    INSERT INTO agents (name, role, persona_name, project_id, provider_id, status)
    VALUES (coalesce(p ->> 'name', persona.name), coalesce(p ->> 'role', persona.role),
            persona.name, p ->> 'project_id', prov,
            CASE WHEN prov IS NULL THEN 'paused' ELSE 'idle' END)
    RETURNING * INTO a;
    PERFORM loom_event('agent.spawned', a.project_id, NULL, actor,
                       jsonb_build_object('agent', loom_agent_json(a)::jsonb));
    RETURN loom_agent_json(a);
END $$;

-- Partial update by a person: name, role, status (pause / resume), persona_name.
CREATE FUNCTION loom_agent_update(aid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    old agents;
    a agents;
BEGIN
    SELECT * INTO old FROM agents WHERE id = aid FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('agent %s not found', aid));
    END IF;
    IF p ? 'persona_name' AND NOT EXISTS (SELECT 1 FROM personas WHERE name = p ->> 'persona_name')
    THEN
        PERFORM loom_raise('LM400', format('persona_name: persona %s does not exist',
                                           p ->> 'persona_name'));
    END IF;
    IF p ->> 'status' = 'working' THEN
        PERFORM loom_raise('LM400', 'status: an agent becomes working by claiming a bead');
    END IF;
    IF p ? 'status' AND old.status = 'working' AND p ->> 'status' <> 'paused' THEN
        PERFORM loom_raise('LM409', format('agent %s is working on %s; pause it first', aid,
                                           old.current_bead));
    END IF;
    UPDATE agents SET
        name = coalesce(p ->> 'name', name), role = coalesce(p ->> 'role', role),
        persona_name = coalesce(p ->> 'persona_name', persona_name),
        status = coalesce(p ->> 'status', status),
        current_bead = CASE WHEN p ? 'status' THEN NULL ELSE current_bead END,
        updated_at = now()
    WHERE id = aid RETURNING * INTO a;
    PERFORM loom_event(CASE WHEN a.status <> old.status THEN 'agent.status_change'
                            ELSE 'agent.updated' END,
                       a.project_id, NULL, actor,
                       jsonb_build_object('agent', loom_agent_json(a)::jsonb, 'from', old.status));
    RETURN loom_agent_json(a);
END $$;

CREATE FUNCTION loom_agent_delete(aid text, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    a agents;
BEGIN
    DELETE FROM agents WHERE id = aid RETURNING * INTO a;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('agent %s not found', aid));
    END IF;
    PERFORM loom_event('agent.deleted', a.project_id, NULL, actor, jsonb_build_object('id', aid));
    RETURN json_build_object('id', aid, 'deleted', true);
END $$;

-- The agents every new project starts with, for the default personas that are loaded.
CREATE FUNCTION loom_project_default_agents(pid text, actor text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
    pname text;
BEGIN
    FOREACH pname IN ARRAY ARRAY['ceo', 'engineering-manager', 'qa-engineer', 'devops-engineer',
                                 'code-reviewer'] LOOP
        IF EXISTS (SELECT 1 FROM personas WHERE name = pname) THEN
            PERFORM loom_agent_create(jsonb_build_object('persona_name', pname, 'project_id', pid),
                                      actor);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- New projects get their default agents in the same transaction as the project.
CREATE FUNCTION loom_projects_default_agents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loom_project_default_agents(NEW.id, 'system');
    RETURN NULL;
END $$;

CREATE TRIGGER projects_default_agents AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION loom_projects_default_agents();
