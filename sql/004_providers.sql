-- 004_providers: OpenAI-compatible LLM endpoints (TokenHub, OpenAI, vLLM, Ollama, the test stub).
--
-- The API key is write-only: no function here returns it, the API never shows it (only
-- has_api_key), and events never carry it.  loom-ralph probes every provider on registration
-- and every 60 s (GET {endpoint}/models) and records status, latency and the last error.

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

ALTER TABLE agents ADD CONSTRAINT agents_provider_fk
    FOREIGN KEY (provider_id) REFERENCES providers (id) ON DELETE SET NULL;

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

-- With providers in place, a new agent gets the one it names or the first healthy one, and is
-- idle; without any it starts paused (replaces the 003 version).
CREATE OR REPLACE FUNCTION loom_agent_create(p jsonb, actor text) RETURNS json
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
