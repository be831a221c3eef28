-- 010_export: a project as one JSON document, and back.
--
-- GET /api/v1/projects/{id}/export is loom_project_export(id):
--   {format "loom-export", version 1, exported_at, project, beads, dependencies, comments,
--    decisions}
-- Beads carry no link arrays (blocked_by, blocks, parent, children, related_to): those are a
-- read cache of bead_deps (sql/001_core.sql), and every edge is in "dependencies" once.
-- Decisions are the decision beads again, as GET /api/v1/decisions shows them.
--
-- POST /api/v1/projects/import is loom_project_import(doc, actor), ONE transaction: the
-- project (owned by the importing user: projects.owner_id defaults to loom.uid), its beads
-- under the new prefix (same numbers, or 1..N with "renumber"), their edges, their comments
-- (new ids, threads kept), one project.created and one project.imported event.
-- fcgi/api_import.c has already checked the document on its own (shape, enums, lengths, caps,
-- duplicate ids, dangling references, dependency cycles); loom_import_check() adds what needs
-- the database (a free id and prefix, the parent project, dates PostgreSQL reads) and is also
-- the whole of a dry run, which writes nothing.

-- The number of a bead id "<prefix>-<n>".
CREATE FUNCTION loom_bead_number(bid text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT substring(bid FROM '-([0-9]+)$')::bigint
$$;

-- "import" would be shadowed by POST /api/v1/projects/import: GET /projects/import could never
-- reach the project.
CREATE FUNCTION loom_projects_reserved_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 'import' THEN
        PERFORM loom_raise('LM400', 'id: "import" is reserved (POST /api/v1/projects/import '
                                    'imports a project); choose another id');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER projects_reserved_id BEFORE INSERT OR UPDATE OF id ON projects
    FOR EACH ROW EXECUTE FUNCTION loom_projects_reserved_id();

CREATE FUNCTION loom_project_export(pid text) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    p projects;
BEGIN
    SELECT * INTO p FROM projects WHERE id = pid;
    IF NOT FOUND THEN
        PERFORM loom_raise('LM404', format('project %s not found', pid));
    END IF;
    RETURN json_build_object(
        'format', 'loom-export', 'version', 1, 'exported_at', now(),
        'project', loom_project_json(p),
        'beads', (SELECT coalesce(json_agg(loom_bead_json(b)::jsonb
                                           - ARRAY['blocked_by', 'blocks', 'parent', 'children',
                                                   'related_to']
                                           ORDER BY loom_bead_number(b.id), b.id), '[]')
                  FROM beads b WHERE b.project_id = pid),
        'dependencies', (SELECT coalesce(json_agg(json_build_object(
                                    'bead_id', d.bead_id, 'depends_on_id', d.depends_on_id,
                                    'kind', d.kind)
                                  ORDER BY loom_bead_number(d.bead_id), d.kind,
                                           loom_bead_number(d.depends_on_id)), '[]')
                         FROM bead_deps d
                         JOIN beads x ON x.id = d.bead_id AND x.project_id = pid
                         JOIN beads y ON y.id = d.depends_on_id AND y.project_id = pid),
        'comments', (SELECT coalesce(json_agg(loom_comment_json(c) ORDER BY c.id), '[]')
                     FROM bead_comments c JOIN beads b ON b.id = c.bead_id
                     WHERE b.project_id = pid),
        'decisions', (SELECT coalesce(json_agg(loom_decision_json(b)
                                               ORDER BY loom_bead_number(b.id)), '[]')
                      FROM beads b WHERE b.project_id = pid AND b.type = 'decision'));
END $$;

-- Old bead id → new bead id, as one object: the same numbers under prefix, or 1..N in the
-- order of the old numbers when the document says "renumber": true.
CREATE FUNCTION loom_import_map(doc jsonb, prefix text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(s.old, prefix || '-' || s.n), '{}')
    FROM (SELECT x ->> 'id' AS old,
                 CASE WHEN coalesce((doc ->> 'renumber')::boolean, false)
                      THEN row_number() OVER (ORDER BY loom_bead_number(x ->> 'id'))
                      ELSE loom_bead_number(x ->> 'id') END AS n
          FROM jsonb_array_elements(doc -> 'beads') x) s
$$;

-- A bead's context with the bead ids it names (decision links) moved through the map.
CREATE FUNCTION loom_import_context(ctx jsonb, m jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(e.k, CASE
               WHEN e.k IN ('escalated_from', 'escalated_to_ceo_decision_id', 'ceo_decision_id',
                            'source_bead_id')
                    AND jsonb_typeof(e.v) = 'string' AND m ? (e.v #>> '{}')
               THEN m -> (e.v #>> '{}') ELSE e.v END), '{}')
    FROM jsonb_each(coalesce(ctx, '{}')) AS e(k, v)
    WHERE e.v <> 'null'::jsonb
$$;

-- A date-time of the document, or LM400 naming where it is.
CREATE FUNCTION loom_import_ts(v text, label text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN v::timestamptz;
EXCEPTION WHEN data_exception THEN
    PERFORM loom_raise('LM400', format('%s: %s is not a date-time PostgreSQL reads (%s)',
                                       label, v, SQLERRM));
    RETURN NULL;
END $$;

-- Everything an import checks in the database, and what it would create; writes nothing.
CREATE FUNCTION loom_import_check(doc jsonb) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    src jsonb := doc -> 'project';
    pid text := coalesce(doc #>> '{rename,id}', src ->> 'id');
    prefix text := coalesce(doc #>> '{rename,bead_prefix}', src ->> 'bead_prefix');
    parent text := src ->> 'parent_id';
    warnings jsonb := '[]';
    busy int;
BEGIN
    IF pid = 'import' THEN
        PERFORM loom_raise('LM400', 'id: "import" is reserved; import under another id with '
                                    '"rename": {"id": ...}');
    END IF;
    IF EXISTS (SELECT 1 FROM projects WHERE id = pid) THEN
        PERFORM loom_raise('LM409', format('project %s already exists; import it under another '
                                           'id with "rename": {"id": ..., "bead_prefix": ...}',
                                           pid));
    END IF;
    IF EXISTS (SELECT 1 FROM projects WHERE bead_prefix = prefix) THEN
        PERFORM loom_raise('LM409', format('bead_prefix %s is already used by project %s; give '
                                           '"rename": {"bead_prefix": ...}', prefix,
                                           (SELECT id FROM projects WHERE bead_prefix = prefix)));
    END IF;
    IF parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM projects WHERE id = parent) THEN
        warnings := warnings || to_jsonb(format('parent project %s does not exist here: the '
                                                'project is imported without a parent', parent));
        parent := NULL;
    END IF;
    PERFORM loom_import_ts(src ->> k, 'project.' || k)
    FROM unnest(ARRAY['created_at', 'updated_at', 'closed_at']) k WHERE src ->> k IS NOT NULL;
    PERFORM loom_import_ts(x ->> k, format('beads[%s].%s', i - 1, k))
    FROM jsonb_array_elements(doc -> 'beads') WITH ORDINALITY AS t(x, i),
         unnest(ARRAY['created_at', 'updated_at', 'closed_at', 'due_date']) k
    WHERE x ->> k IS NOT NULL;
    PERFORM loom_import_ts(x ->> k, format('comments[%s].%s', i - 1, k))
    FROM jsonb_array_elements(coalesce(doc -> 'comments', '[]')) WITH ORDINALITY AS t(x, i),
         unnest(ARRAY['created_at', 'updated_at']) k
    WHERE x ->> k IS NOT NULL;
    SELECT count(*) INTO busy FROM jsonb_array_elements(doc -> 'beads') x
    WHERE x ->> 'status' = 'in_progress';
    IF busy > 0 THEN
        warnings := warnings || to_jsonb(format('%s in_progress beads are imported as open and '
                                                'unassigned: no run works on them here', busy));
    END IF;
    RETURN json_build_object(
        'valid', true, 'dry_run', true, 'validate_only', false,
        'project', json_build_object('id', pid, 'name', coalesce(doc #>> '{rename,name}',
                                                                 src ->> 'name'),
                                     'bead_prefix', prefix, 'parent_id', parent,
                                     'source_id', src ->> 'id'),
        'counts', json_build_object(
            'beads', jsonb_array_length(doc -> 'beads'),
            'dependencies', jsonb_array_length(coalesce(doc -> 'dependencies', '[]')),
            'comments', jsonb_array_length(coalesce(doc -> 'comments', '[]')),
            'decisions', jsonb_array_length(coalesce(doc -> 'decisions', '[]'))),
        'id_map', loom_import_map(doc, prefix),
        'warnings', warnings);
END $$;

CREATE FUNCTION loom_import_project_row(src jsonb, plan jsonb) RETURNS projects
LANGUAGE plpgsql AS $$
DECLARE
    r projects;
BEGIN
    INSERT INTO projects (id, name, description, git_repo, branch, beads_path, bead_prefix,
                          parent_id, status, is_perpetual, is_sticky, git_strategy,
                          git_auth_method, use_worktrees, use_container, github_repo,
                          default_branch, context, closed_at)
    VALUES (plan #>> '{project,id}', plan #>> '{project,name}',
            coalesce(src ->> 'description', ''), coalesce(src ->> 'git_repo', ''),
            coalesce(src ->> 'branch', 'main'), coalesce(src ->> 'beads_path', '.beads'),
            plan #>> '{project,bead_prefix}', plan #>> '{project,parent_id}',
            coalesce(src ->> 'status', 'open'), coalesce((src ->> 'is_perpetual')::boolean, false),
            coalesce((src ->> 'is_sticky')::boolean, false),
            coalesce(src ->> 'git_strategy', 'direct'),
            coalesce(src ->> 'git_auth_method', 'none'),
            coalesce((src ->> 'use_worktrees')::boolean, true),
            coalesce((src ->> 'use_container')::boolean, false),
            coalesce(src ->> 'github_repo', ''),
            coalesce(src ->> 'default_branch', src ->> 'branch', 'main'),
            coalesce(jsonb_strip_nulls(src -> 'context'), '{}'),
            CASE WHEN src ->> 'status' = 'closed'
                 THEN coalesce((src ->> 'closed_at')::timestamptz, now()) END)
    RETURNING * INTO r;
    RETURN r;
EXCEPTION WHEN unique_violation THEN
    -- a project this user cannot see holds the id or the prefix
    PERFORM loom_raise('LM409', format('project id %s or bead_prefix %s is already taken; give '
                                       '"rename": {"id": ..., "bead_prefix": ...}',
                                       plan #>> '{project,id}', plan #>> '{project,bead_prefix}'));
    RETURN NULL;
END $$;

CREATE FUNCTION loom_project_import(doc jsonb, actor text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb := loom_import_check(doc)::jsonb;
    m jsonb := plan -> 'id_map';
    r projects;
    top bigint;
BEGIN
    r := loom_import_project_row(doc -> 'project', plan);
    EXECUTE format('CREATE SEQUENCE %I', loom_bead_seq(r.id));
    INSERT INTO beads (id, project_id, type, title, description, status, priority, assigned_to,
                       tags, context, due_date, milestone_id, estimated_time, created_at,
                       updated_at, closed_at)
    SELECT m ->> (x ->> 'id'), r.id, coalesce(x ->> 'type', 'task'), x ->> 'title',
           coalesce(x ->> 'description', ''),
           CASE WHEN x ->> 'status' = 'in_progress' THEN 'open'
                ELSE coalesce(x ->> 'status', 'open') END,
           coalesce((x ->> 'priority')::smallint, 2),
           CASE WHEN x ->> 'status' = 'in_progress' THEN NULL
                ELSE nullif(x ->> 'assigned_to', '') END,
           coalesce(loom_json_text_array(x -> 'tags'), '{}'),
           loom_import_context(x -> 'context', m),
           (x ->> 'due_date')::timestamptz, x ->> 'milestone_id',
           (x ->> 'estimated_time')::integer,
           coalesce((x ->> 'created_at')::timestamptz, now()),
           coalesce((x ->> 'updated_at')::timestamptz, now()),
           CASE WHEN x ->> 'status' = 'closed'
                THEN coalesce((x ->> 'closed_at')::timestamptz, now()) END
    FROM jsonb_array_elements(doc -> 'beads') x;
    SELECT max(loom_bead_number(v)) INTO top FROM jsonb_each_text(m) AS e(k, v);
    IF top IS NOT NULL THEN
        PERFORM setval(loom_bead_seq(r.id)::regclass, top);
    END IF;
    -- related edges are stored once, smaller id first: the mapped ids may sort the other way
    INSERT INTO bead_deps (bead_id, depends_on_id, kind)
    SELECT CASE WHEN d ->> 'kind' = 'related' THEN least(a, b) ELSE a END,
           CASE WHEN d ->> 'kind' = 'related' THEN greatest(a, b) ELSE b END, d ->> 'kind'
    FROM jsonb_array_elements(coalesce(doc -> 'dependencies', '[]')) d,
         LATERAL (SELECT m ->> (d ->> 'bead_id') AS a, m ->> (d ->> 'depends_on_id') AS b) e;
    WITH src AS (
        SELECT x, (x ->> 'id')::bigint AS old_id
        FROM jsonb_array_elements(coalesce(doc -> 'comments', '[]')) x
    ), ids AS MATERIALIZED (
        SELECT old_id, nextval(pg_get_serial_sequence('bead_comments', 'id')) AS new_id
        FROM (SELECT old_id FROM src ORDER BY old_id) o
    )
    INSERT INTO bead_comments (id, bead_id, parent_id, author_id, author_username, content,
                               edited, deleted, created_at, updated_at)
    SELECT i.new_id, m ->> (s.x ->> 'bead_id'), p.new_id, s.x ->> 'author_id',
           coalesce(s.x ->> 'author_username', ''), coalesce(s.x ->> 'content', ''),
           coalesce((s.x ->> 'edited')::boolean, false),
           coalesce((s.x ->> 'deleted')::boolean, false),
           coalesce((s.x ->> 'created_at')::timestamptz, now()),
           coalesce((s.x ->> 'updated_at')::timestamptz, now())
    FROM src s JOIN ids i ON i.old_id = s.old_id
    LEFT JOIN ids p ON p.old_id = (s.x ->> 'parent_id')::bigint;
    plan := plan || jsonb_build_object('dry_run', false, 'project',
                                       loom_project_json(r)::jsonb
                                       || jsonb_build_object('source_id', doc #>> '{project,id}'));
    PERFORM loom_event('project.created', r.id, NULL, actor,
                       jsonb_build_object('project', plan -> 'project',
                                          'imported_from', doc #>> '{project,id}'));
    PERFORM loom_event('project.imported', r.id, NULL, actor,
                       jsonb_build_object('source_id', doc #>> '{project,id}',
                                          'counts', plan -> 'counts',
                                          'message', format('project %s imported from %s: %s beads',
                                                            r.id, doc #>> '{project,id}',
                                                            plan #>> '{counts,beads}')));
    RETURN plan;
END $$;
