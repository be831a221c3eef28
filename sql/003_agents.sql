-- 003_agents: personas (loaded from deploy/personas/*/SKILL.md, editable through the API) and
-- agents (a persona at work in one project).

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

CREATE SEQUENCE agents_id_seq;

-- status: paused (no provider yet, or paused by a person), idle, working, deciding, blocked
CREATE TABLE agents (
    id           text PRIMARY KEY DEFAULT 'agent-' || nextval('agents_id_seq'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL DEFAULT '',
    persona_name text NOT NULL REFERENCES personas (name) ON UPDATE CASCADE,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider_id  text,
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

CREATE FUNCTION loom_agent_create(p jsonb, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    a agents;
    persona personas;
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
    INSERT INTO agents (name, role, persona_name, project_id, provider_id, status)
    VALUES (coalesce(p ->> 'name', persona.name), coalesce(p ->> 'role', persona.role),
            persona.name, p ->> 'project_id', p ->> 'provider_id',
            CASE WHEN p ->> 'provider_id' IS NULL THEN 'paused' ELSE 'idle' END)
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
