-- 001_core: projects, beads and their dependency edges, comments, durable events.
--
-- Conventions: ids of user-facing objects are text (project slugs, bead ids "<prefix>-<n>");
-- every state column has a CHECK that mirrors the C enum; timestamps are timestamptz.

CREATE TABLE projects (
    id              text PRIMARY KEY
                    CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 65536),
    git_repo        text NOT NULL DEFAULT '' CHECK (length(git_repo) <= 1000),
    branch          text NOT NULL DEFAULT 'main' CHECK (length(branch) BETWEEN 1 AND 200),
    beads_path      text NOT NULL DEFAULT '.beads' CHECK (length(beads_path) <= 500),
    bead_prefix     text NOT NULL UNIQUE CHECK (bead_prefix ~ '^[A-Za-z][A-Za-z0-9]{0,15}$'),
    parent_id       text REFERENCES projects (id) ON DELETE SET NULL,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'closed', 'reopened')),
    is_perpetual    boolean NOT NULL DEFAULT false,
    is_sticky       boolean NOT NULL DEFAULT false,
    git_strategy    text NOT NULL DEFAULT 'direct'
                    CHECK (git_strategy IN ('direct', 'branch-pr')),
    git_auth_method text NOT NULL DEFAULT 'none'
                    CHECK (git_auth_method IN ('none', 'ssh', 'token', 'basic', 'git-helper')),
    use_worktrees   boolean NOT NULL DEFAULT true,
    use_container   boolean NOT NULL DEFAULT false,
    github_repo     text NOT NULL DEFAULT '' CHECK (length(github_repo) <= 200),
    default_branch  text NOT NULL DEFAULT 'main' CHECK (length(default_branch) BETWEEN 1 AND 200),
    context         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    CHECK (parent_id IS DISTINCT FROM id)
);

-- Bead numbers come from one sequence per project (loom_bead_seq_<md5 of the project id>), made
-- and dropped with the project: concurrent creates in one project never wait on each other.
-- CHECKs on this hot table are the state invariants only (the enums, closed_at).  Lengths and
-- formats are checked by the API before a write (fcgi/input.c): PostgreSQL re-parses every CHECK
-- expression on each insert and update, and those cost 18 % of a bead create.
CREATE TABLE beads (
    id             text PRIMARY KEY, -- <project bead_prefix>-<n>, minted by loom_bead_create
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    type           text NOT NULL DEFAULT 'task'
                   CHECK (type IN ('task', 'bug', 'feature', 'epic', 'chore', 'decision')),
    title          text NOT NULL,
    description    text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'in_progress', 'blocked', 'closed', 'deferred')),
    priority       smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3),
    assigned_to    text,
    tags           text[] NOT NULL DEFAULT '{}',
    -- A read cache of this bead's bead_deps edges, kept exact by the bead_deps_sync trigger in
    -- the transaction that changes an edge: every bead read is then one row, no joins.
    blocked_by     text[] NOT NULL DEFAULT '{}',
    blocks         text[] NOT NULL DEFAULT '{}',
    parent         text,
    children       text[] NOT NULL DEFAULT '{}',
    related_to     text[] NOT NULL DEFAULT '{}',
    context        jsonb NOT NULL DEFAULT '{}',
    due_date       timestamptz,
    milestone_id   text,
    estimated_time integer CHECK (estimated_time >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- Ready work is walked in priority order, across projects (dispatcher) or within one; lists
-- of a project use the second index in the same order.
CREATE INDEX beads_open_idx ON beads (priority, created_at, id) WHERE status = 'open';
CREATE INDEX beads_project_idx ON beads (project_id, priority, created_at, id);
CREATE INDEX beads_assigned_idx ON beads (assigned_to) WHERE assigned_to IS NOT NULL;
-- fastupdate off: no pending list, so no insert ever stalls to flush one (a p99 spike)
CREATE INDEX beads_tags_idx ON beads USING gin (tags) WITH (fastupdate = off);

-- One row per edge, read as "bead_id depends on depends_on_id":
--   blocks : depends_on_id blocks bead_id       (bead_id.blocked_by contains depends_on_id)
--   parent : depends_on_id is bead_id's parent  (at most one per bead)
--   related: an undirected link, stored once with bead_id < depends_on_id
-- For blocks and parent the direction is the same ("waits on / inherits from"), so one acyclic
-- check over both kinds rules out deadlocks, including blockers inherited from a parent.
CREATE TABLE bead_deps (
    bead_id       text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    depends_on_id text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('blocks', 'parent', 'related')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bead_id, kind, depends_on_id),
    CHECK (bead_id <> depends_on_id),
    CHECK (kind <> 'related' OR bead_id < depends_on_id)
);
CREATE INDEX bead_deps_reverse_idx ON bead_deps (depends_on_id, kind);
CREATE UNIQUE INDEX bead_deps_one_parent ON bead_deps (bead_id) WHERE kind = 'parent';

-- Keeps the link arrays of both ends of an edge equal to bead_deps (see beads.blocked_by).
CREATE FUNCTION loom_bead_links_refresh(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE beads b SET
        blocked_by = ARRAY(SELECT d.depends_on_id FROM bead_deps d
                           WHERE d.bead_id = b.id AND d.kind = 'blocks' ORDER BY 1),
        blocks = ARRAY(SELECT d.bead_id FROM bead_deps d
                       WHERE d.depends_on_id = b.id AND d.kind = 'blocks' ORDER BY 1),
        parent = (SELECT d.depends_on_id FROM bead_deps d
                  WHERE d.bead_id = b.id AND d.kind = 'parent'),
        children = ARRAY(SELECT d.bead_id FROM bead_deps d
                         WHERE d.depends_on_id = b.id AND d.kind = 'parent' ORDER BY 1),
        related_to = ARRAY(SELECT x FROM (
                             SELECT d.depends_on_id AS x FROM bead_deps d
                             WHERE d.bead_id = b.id AND d.kind = 'related'
                             UNION ALL
                             SELECT d.bead_id FROM bead_deps d
                             WHERE d.depends_on_id = b.id AND d.kind = 'related') r ORDER BY 1)
    WHERE b.id = ANY (ids);
END $$;

CREATE FUNCTION loom_bead_deps_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM loom_bead_links_refresh(ARRAY[OLD.bead_id, OLD.depends_on_id]);
    ELSE
        PERFORM loom_bead_links_refresh(ARRAY[NEW.bead_id, NEW.depends_on_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER bead_deps_sync AFTER INSERT OR DELETE ON bead_deps
    FOR EACH ROW EXECUTE FUNCTION loom_bead_deps_sync();

CREATE TABLE bead_comments (
    id              bigserial PRIMARY KEY,
    bead_id         text NOT NULL REFERENCES beads (id) ON DELETE CASCADE,
    parent_id       bigint REFERENCES bead_comments (id) ON DELETE CASCADE,
    author_id       text NOT NULL CHECK (length(author_id) BETWEEN 1 AND 200),
    author_username text NOT NULL DEFAULT '' CHECK (length(author_username) <= 200),
    content         text NOT NULL CHECK (length(content) <= 65536),
    edited          boolean NOT NULL DEFAULT false,
    deleted         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bead_comments_bead_idx ON bead_comments (bead_id, created_at, id);

-- Durable events: the source of every live stream.  NOTIFY carries only the id (a doorbell);
-- readers fetch rows by id, so a missed notification loses nothing.  No foreign keys: events
-- outlive the objects they describe.
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL, -- "bead.created", ...
    project_id text,
    bead_id    text,
    actor      text NOT NULL DEFAULT 'system',
    payload    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_project_idx ON events (project_id, id);
CREATE INDEX events_type_idx ON events (type, id);

CREATE FUNCTION loom_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loom_events', NEW.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION loom_events_notify();
