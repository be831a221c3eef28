-- 009_secrets: provider API keys are stored sealed, never in plaintext.
--
-- Sealing happens in C (shared/secret.c: libsodium secretbox under the 32-byte key from
-- LOOM_SECRET_KEY or <var>/secret.key), so the database only ever sees "v1:" + base64(nonce ||
-- box).  loom-api seals a key before it reaches loom_provider_create/update; loom-ralph seals
-- LOOM_PROVIDER_API_KEY the same way; the executor and the prober open it just before a call.
--
-- providers.api_key, the plaintext column of 003, is kept only for the rows written before this
-- migration: loom-migrate seals each of them into api_key_sealed and sets api_key to NULL right
-- after applying the migrations (the first program that has the key).  Nothing writes it now,
-- and the functions below refuse a plaintext "api_key" so a caller that forgot to seal fails
-- loudly instead of storing it.
--
-- The three functions are 003's with only the key lines changed; a later migration that
-- replaces one of them must keep api_key_sealed.

ALTER TABLE providers
    ADD COLUMN api_key_sealed text CHECK (api_key_sealed ~ '^v1:[A-Za-z0-9+/]+={0,2}$');

COMMENT ON COLUMN providers.api_key IS
    'plaintext key of rows written before 009; loom-migrate seals it into api_key_sealed and '
    'sets this to NULL';
COMMENT ON COLUMN providers.api_key_sealed IS
    'the API key sealed by shared/secret.c: v1:base64(nonce || secretbox); never returned';

CREATE OR REPLACE FUNCTION loom_provider_json(p providers) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id, 'name', p.name, 'type', p.type, 'endpoint', p.endpoint, 'model', p.model,
        'configured_model', p.model, 'description', p.description,
        'has_api_key', p.api_key_sealed IS NOT NULL OR p.api_key IS NOT NULL, 'status', p.status,
        'context_window', p.context_window, 'tags', p.tags,
        'last_heartbeat_at', p.last_heartbeat_at,
        'last_heartbeat_latency_ms', p.last_heartbeat_latency_ms,
        'last_heartbeat_error', p.last_heartbeat_error,
        'created_at', p.created_at, 'updated_at', p.updated_at)
$$;

-- A plaintext "api_key" in p is a caller's bug: the key must arrive as "api_key_sealed".
CREATE FUNCTION loom_provider_refuse_plaintext(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p ? 'api_key' THEN
        PERFORM loom_raise('LM400', 'api_key must be sealed before it is stored (api_key_sealed)');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION loom_provider_create(p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    r providers;
BEGIN
    PERFORM loom_provider_refuse_plaintext(p);
    IF EXISTS (SELECT 1 FROM providers WHERE id = p ->> 'id') THEN
        PERFORM loom_raise('LM409', format('provider %s already exists', p ->> 'id'));
    END IF;
    INSERT INTO providers (id, name, type, endpoint, model, description, api_key_sealed,
                           context_window, tags)
    VALUES (p ->> 'id', coalesce(p ->> 'name', p ->> 'id'), coalesce(p ->> 'type', 'openai'),
            loom_endpoint_normalize(p ->> 'endpoint'), coalesce(p ->> 'model', ''),
            coalesce(p ->> 'description', ''), nullif(p ->> 'api_key_sealed', ''),
            (p ->> 'context_window')::integer,
            coalesce(loom_json_text_array(p -> 'tags'), '{}'))
    RETURNING * INTO r;
    PERFORM loom_provider_changed('provider.registered', r, actor);
    RETURN loom_provider_json(r);
END $$;

-- Partial update; a new endpoint, key or model sends the provider back to 'pending' so it is
-- probed again at once.  "api_key_sealed": null removes the key (a plaintext leftover too).
CREATE OR REPLACE FUNCTION loom_provider_update(pid text, p jsonb, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    r providers;
    reprobe boolean := p ?| ARRAY['endpoint', 'api_key_sealed', 'model'];
BEGIN
    PERFORM loom_provider_refuse_plaintext(p);
    UPDATE providers SET
        name = coalesce(p ->> 'name', name),
        endpoint = coalesce(loom_endpoint_normalize(p ->> 'endpoint'), endpoint),
        model = coalesce(p ->> 'model', model),
        description = coalesce(p ->> 'description', description),
        api_key_sealed = CASE WHEN p ? 'api_key_sealed' THEN nullif(p ->> 'api_key_sealed', '')
                              ELSE api_key_sealed END,
        api_key = CASE WHEN p ? 'api_key_sealed' THEN NULL ELSE api_key END,
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
