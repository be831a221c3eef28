-- 013_activity: the activity feed (persisted, aggregated) and notifications per user.
--
-- Activity.  A trigger on events turns every event worth showing a person into a row of
-- `activities` in the event's own transaction: bead.*, agent.*, project.*, provider.*,
-- decision.*, motivation.*, workflow.* and comment.created (not run.*, log.*, persona.*, and not
-- a bead.updated that only changed status, assignee or context: bead.status_change and
-- bead.assigned say those better, and context is the engine's bookkeeping).  The actor is
-- classified (a user name, an agent id, else the system) and the resource named (type, id,
-- title).  Repeats of one aggregation_key within five minutes of that row's first occurrence
-- bump its aggregation_count instead of adding a row (Loom groups bead.created and
-- agent.spawned by project and actor; here also bead.updated by bead and actor, agent changes
-- by agent and actor, provider.updated by provider).  A row's event_id is the newest event
-- folded into it: loom-sse looks the activity up by that id and sends it on
-- /api/v1/activity-feed/stream as SSE event "activity", under the event's id, so a resume
-- works as on every other stream.
--
-- Notifications.  The same trigger decides who should hear about the event.  Only these rules
-- make notifications, never for the person who acted, and only for people who can see the
-- project (admins, or members):
--   bead.assigned      a bead assigned to your user name (by bead.assigned, or created so);
--                      priority high, or the bead's if higher
--   bead.status_change a bead that is yours (assigned_to or context.requested_by is your user
--                      name) changed state; the bead's priority (P0 critical, P1 high, P2
--                      normal, P3 low)
--   decision.created   a decision in a project you are a member of, when your role may decide
--                      (admin or user); high, or the decision bead's priority if higher
--   bead.created       a P0 bead (not a decision) in a project you are a member of; critical
--   comment.mention    @your-user-name in a new comment (recorded in comment_mentions); normal,
--                      or the bead's priority if higher
-- Each person hears of one event once (a P0 bead created already assigned to you is one
-- notification).  Preferences (notification_preferences; defaults when there is no row): no
-- in-app notifications at all, subscribed kinds (empty: all), a minimum priority (default
-- normal, as Loom), projects (empty: all), and quiet hours in a time zone.  During quiet hours a
-- notification is still stored (unread, metadata.quiet_hours = true) but not pushed live: the
-- person finds it in the list and the unread count at the next look.  digest_mode is
-- "realtime" only.
--
-- Delivery: a notification also writes an event of type "notification" (and marking read one
-- of type "notification.read") with project_id NULL and events.recipient set to the user name.
-- loom-sse sends events with a recipient only on that user's /api/v1/notifications/stream; the
-- API never shows them (a restrictive policy for the role loom_api, an explicit filter in the
-- admin's reads of events).
--
-- Row-level security as 016_rls_roles has it: policies for the role loom_api (the non-admin
-- requests), none for the owner (workers, loom-sse, admins), so no FORCE.  Notifications and
-- preferences are the user's own; every API statement on them names the user besides, which is
-- what holds for an admin.  The trigger is SECURITY DEFINER: it works as the owner, the system,
-- because it must read every member and preference and write other people's notifications,
-- whoever wrote the event.

-- ---- tables --------------------------------------------------------------------------------

CREATE TABLE activities (
    id                bigserial PRIMARY KEY,
    event_type        text NOT NULL,
    event_id          bigint NOT NULL, -- the newest event folded into this row (no FK: pruned)
    created_at        timestamptz NOT NULL DEFAULT now(), -- first occurrence (Loom's timestamp)
    updated_at        timestamptz NOT NULL DEFAULT now(), -- latest occurrence
    source            text NOT NULL,
    actor_id          text NOT NULL,
    actor_type        text NOT NULL CHECK (actor_type IN ('user', 'agent', 'system')),
    project_id        text,
    agent_id          text,
    bead_id           text,
    provider_id       text,
    action            text NOT NULL,
    resource_type     text NOT NULL,
    resource_id       text NOT NULL DEFAULT '',
    resource_title    text NOT NULL DEFAULT '',
    metadata          jsonb NOT NULL DEFAULT '{}',
    aggregation_key   text,
    aggregation_count integer NOT NULL DEFAULT 1 CHECK (aggregation_count >= 1),
    visibility        text NOT NULL DEFAULT 'project' CHECK (visibility IN ('project', 'global'))
);
CREATE UNIQUE INDEX activities_event_idx ON activities (event_id);
CREATE INDEX activities_time_idx ON activities (updated_at DESC, id DESC);
CREATE INDEX activities_project_idx ON activities (project_id, updated_at DESC, id DESC);
CREATE INDEX activities_bead_idx ON activities (bead_id, updated_at DESC) WHERE bead_id IS NOT NULL;
CREATE INDEX activities_agent_idx ON activities (agent_id, updated_at DESC)
    WHERE agent_id IS NOT NULL;
CREATE INDEX activities_key_idx ON activities (aggregation_key, created_at DESC)
    WHERE aggregation_key IS NOT NULL;

CREATE TABLE notification_preferences (
    user_id           bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    enable_in_app     boolean NOT NULL DEFAULT true,
    subscribed_events text[] NOT NULL DEFAULT '{}', -- empty: every kind
    min_priority      text NOT NULL DEFAULT 'normal'
                      CHECK (min_priority IN ('low', 'normal', 'high', 'critical')),
    quiet_hours_start time,
    quiet_hours_end   time,
    timezone          text NOT NULL DEFAULT 'UTC',
    project_filters   text[] NOT NULL DEFAULT '{}', -- empty: every project
    digest_mode       text NOT NULL DEFAULT 'realtime' CHECK (digest_mode = 'realtime'),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL))
);

CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    activity_id bigint REFERENCES activities (id) ON DELETE SET NULL,
    event_type  text NOT NULL,
    title       text NOT NULL,
    message     text NOT NULL DEFAULT '',
    link        text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'unread' CHECK (status IN ('unread', 'read', 'archived')),
    priority    text NOT NULL DEFAULT 'normal'
                CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    project_id  text,
    bead_id     text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz,
    archived_at timestamptz,
    CHECK ((status = 'unread') = (read_at IS NULL))
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE status = 'unread';
CREATE INDEX notifications_activity_idx ON notifications (activity_id) WHERE activity_id IS NOT NULL;

CREATE TABLE comment_mentions (
    comment_id         bigint NOT NULL REFERENCES bead_comments (id) ON DELETE CASCADE,
    mentioned_user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mentioned_username text NOT NULL,
    notified_at        timestamptz, -- NULL: the person's preferences filtered it out
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, mentioned_user_id)
);
CREATE INDEX comment_mentions_user_idx ON comment_mentions (mentioned_user_id);

-- Who an event is for: a user name, for the events that carry one person's notification.
ALTER TABLE events ADD COLUMN recipient text;
CREATE INDEX events_recipient_idx ON events (recipient, id) WHERE recipient IS NOT NULL;

-- ---- row-level security --------------------------------------------------------------------

ALTER TABLE activities ENABLE ROW LEVEL SECURITY;
CREATE POLICY activities_scope ON activities
    USING (project_id IS NULL OR loom_sees(project_id));

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY notifications_own ON notifications USING (user_id = loom_uid());

ALTER TABLE notification_preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY notification_preferences_own ON notification_preferences
    USING (user_id = loom_uid());

ALTER TABLE comment_mentions ENABLE ROW LEVEL SECURITY;
CREATE POLICY comment_mentions_scope ON comment_mentions
    USING (EXISTS (SELECT 1 FROM bead_comments c WHERE c.id = comment_id));

-- One person's notification events reach them through loom-sse only (with events_scope from
-- 008, both policies hold).
CREATE POLICY events_recipient ON events AS RESTRICTIVE FOR SELECT USING (recipient IS NULL);

-- ---- JSON views ----------------------------------------------------------------------------

CREATE FUNCTION loom_activity_json(a activities) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', a.id, 'event_type', a.event_type, 'event_id', a.event_id,
        'timestamp', a.created_at, 'updated_at', a.updated_at, 'source', a.source,
        'actor_id', a.actor_id, 'actor_type', a.actor_type, 'project_id', a.project_id,
        'agent_id', a.agent_id, 'bead_id', a.bead_id, 'provider_id', a.provider_id,
        'action', a.action, 'resource_type', a.resource_type, 'resource_id', a.resource_id,
        'resource_title', a.resource_title, 'metadata', a.metadata,
        'aggregation_key', a.aggregation_key, 'aggregation_count', a.aggregation_count,
        'is_aggregated', a.aggregation_count > 1, 'visibility', a.visibility)
$$;

CREATE FUNCTION loom_notification_json(n notifications) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', n.id, 'user_id', n.user_id, 'activity_id', n.activity_id,
        'event_type', n.event_type, 'title', n.title, 'message', n.message, 'link', n.link,
        'status', n.status, 'priority', n.priority, 'project_id', n.project_id,
        'bead_id', n.bead_id, 'metadata', n.metadata, 'created_at', n.created_at,
        'read_at', n.read_at, 'archived_at', n.archived_at)
$$;

CREATE FUNCTION loom_notification_prefs_json(p notification_preferences) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'enable_in_app', p.enable_in_app, 'subscribed_events', p.subscribed_events,
        'min_priority', p.min_priority,
        'quiet_hours_start', to_char(p.quiet_hours_start, 'HH24:MI'),
        'quiet_hours_end', to_char(p.quiet_hours_end, 'HH24:MI'), 'timezone', p.timezone,
        'project_filters', p.project_filters, 'digest_mode', p.digest_mode)
$$;

-- ---- priorities ----------------------------------------------------------------------------

CREATE FUNCTION loom_priority_rank(p text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p WHEN 'low' THEN 0 WHEN 'normal' THEN 1 WHEN 'high' THEN 2
                  WHEN 'critical' THEN 3 END
$$;

-- Loom's mapping of a bead priority: P0 critical, P1 high, P2 normal, else low.
CREATE FUNCTION loom_bead_urgency(prio smallint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE prio WHEN 0 THEN 'critical' WHEN 1 THEN 'high' WHEN 2 THEN 'normal'
                     ELSE 'low' END
$$;

CREATE FUNCTION loom_priority_max(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN b IS NULL OR loom_priority_rank(a) >= loom_priority_rank(b) THEN a
                ELSE b END
$$;

-- ---- activity ------------------------------------------------------------------------------

-- The resource an event is about: (type, id, title).
CREATE FUNCTION loom_activity_resource(e events, OUT rtype text, OUT rid text, OUT rtitle text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p jsonb := e.payload;
BEGIN
    rtype := split_part(e.type, '.', 1);
    CASE rtype
    WHEN 'bead' THEN
        rid := e.bead_id;
        rtitle := coalesce(p #>> '{bead,title}', p ->> 'title',
                           (SELECT title FROM beads WHERE id = e.bead_id));
    WHEN 'comment' THEN
        rid := coalesce(p #>> '{comment,id}', p ->> 'comment_id');
        rtitle := (SELECT title FROM beads WHERE id = e.bead_id);
    WHEN 'agent' THEN
        rid := coalesce(p #>> '{agent,id}', p ->> 'id');
        rtitle := coalesce(p #>> '{agent,name}', (SELECT name FROM agents WHERE id = rid));
    WHEN 'project' THEN
        rid := coalesce(p #>> '{project,id}', e.project_id);
        rtitle := coalesce(p #>> '{project,name}', (SELECT name FROM projects WHERE id = rid));
    WHEN 'provider' THEN
        rid := coalesce(p #>> '{provider,id}', p ->> 'id');
        rtitle := coalesce(p #>> '{provider,name}', rid);
    WHEN 'decision' THEN
        rid := coalesce(p ->> 'decision_id', e.bead_id);
        rtitle := (SELECT title FROM beads WHERE id = rid);
    ELSE
        rid := coalesce(p ->> 'id', e.bead_id);
        rtitle := coalesce(p ->> 'name', p ->> 'title');
    END CASE;
    rid := coalesce(rid, '');
    rtitle := left(coalesce(rtitle, ''), 500);
END $$;

-- Events that repeat within five minutes fold into one row per key; NULL: never folded.
CREATE FUNCTION loom_activity_key(e events, rid text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e.type IN ('bead.created', 'agent.spawned')
            THEN concat_ws('|', e.type, e.project_id, e.actor)
        WHEN e.type = 'bead.updated' THEN concat_ws('|', e.type, e.bead_id, e.actor)
        WHEN e.type IN ('agent.status_change', 'agent.updated')
            THEN concat_ws('|', e.type, rid, e.actor)
        WHEN e.type = 'provider.updated' THEN concat_ws('|', e.type, rid)
    END
$$;

-- What a person wants to know about an event, beyond the resource.
CREATE FUNCTION loom_activity_metadata(e events) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'from', e.payload -> 'from', 'to', e.payload -> 'to',
        'assigned_to', e.payload -> 'assigned_to', 'reason', e.payload -> 'reason',
        'decision', e.payload -> 'decision', 'rationale', e.payload -> 'rationale',
        'fields', e.payload -> 'fields',
        'priority', coalesce(e.payload #> '{bead,priority}', e.payload #> '{run,priority}'),
        'bead_type', e.payload #> '{bead,type}',
        'status', coalesce(e.payload #> '{bead,status}', e.payload #> '{agent,status}',
                           e.payload #> '{provider,status}'),
        'excerpt', to_jsonb(left(e.payload #>> '{comment,content}', 200))))
$$;

-- Records event e as an activity (a new row, or folded into its key's row); its id, or NULL
-- when the event is not one to show.
CREATE FUNCTION loom_activity_record(e events) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r record;
    atype text;
    akey text;
    agent text;
    aid bigint;
BEGIN
    IF e.type = 'bead.updated' AND NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(e.payload -> 'fields') = 'array' THEN e.payload -> 'fields'
                 ELSE '[]' END) f
        WHERE f NOT IN ('status', 'assigned_to', 'context')) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO r FROM loom_activity_resource(e);
    akey := loom_activity_key(e, r.rid);
    IF akey IS NOT NULL THEN
        UPDATE activities SET
            aggregation_count = aggregation_count + 1, event_id = e.id, updated_at = e.created_at,
            resource_id = r.rid, resource_title = r.rtitle,
            metadata = loom_activity_metadata(e) || jsonb_build_object('resource_ids',
                CASE WHEN metadata -> 'resource_ids' @> to_jsonb(r.rid)
                          OR jsonb_array_length(metadata -> 'resource_ids') >= 50
                     THEN metadata -> 'resource_ids'
                     ELSE metadata -> 'resource_ids' || to_jsonb(r.rid) END)
        WHERE id = (SELECT id FROM activities
                    WHERE aggregation_key = akey
                      AND created_at > e.created_at - interval '5 minutes'
                    ORDER BY created_at DESC LIMIT 1)
        RETURNING id INTO aid;
        IF aid IS NOT NULL THEN
            RETURN aid;
        END IF;
    END IF;
    atype := CASE WHEN EXISTS (SELECT 1 FROM users WHERE username = e.actor) THEN 'user'
                  WHEN EXISTS (SELECT 1 FROM agents WHERE id = e.actor) THEN 'agent'
                  ELSE 'system' END;
    agent := coalesce(CASE WHEN r.rtype = 'agent' THEN nullif(r.rid, '') END,
                      e.payload ->> 'agent_id', e.payload #>> '{run,agent_id}',
                      CASE WHEN atype = 'agent' THEN e.actor END,
                      (SELECT a.id FROM agents a WHERE a.id = e.payload ->> 'assigned_to'));
    INSERT INTO activities (event_type, event_id, created_at, updated_at, source, actor_id,
                            actor_type, project_id, agent_id, bead_id, provider_id, action,
                            resource_type, resource_id, resource_title, metadata,
                            aggregation_key, visibility)
    VALUES (e.type, e.id, e.created_at, e.created_at, e.actor, e.actor, atype, e.project_id,
            agent, e.bead_id, CASE WHEN r.rtype = 'provider' THEN r.rid END,
            substr(e.type, length(r.rtype) + 2), r.rtype, r.rid, r.rtitle,
            loom_activity_metadata(e) || CASE WHEN akey IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('resource_ids', jsonb_build_array(r.rid)) END,
            akey, CASE WHEN e.project_id IS NULL THEN 'global' ELSE 'project' END)
    RETURNING id INTO aid;
    RETURN aid;
END $$;

-- ---- notifications -------------------------------------------------------------------------

-- A user's preferences, or the defaults when they never saved any.
CREATE FUNCTION loom_notification_prefs(uid bigint) RETURNS notification_preferences
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p notification_preferences;
BEGIN
    SELECT * INTO p FROM notification_preferences WHERE user_id = uid;
    IF NOT FOUND THEN
        p.user_id := uid;
        p.enable_in_app := true;
        p.subscribed_events := '{}';
        p.min_priority := 'normal';
        p.timezone := 'UTC';
        p.project_filters := '{}';
        p.digest_mode := 'realtime';
        p.updated_at := now();
    END IF;
    RETURN p;
END $$;

-- True when the clock in p's time zone is inside p's quiet hours (start = end: never).
CREATE FUNCTION loom_quiet_now(p notification_preferences) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t time;
BEGIN
    IF p.quiet_hours_start IS NULL OR p.quiet_hours_start = p.quiet_hours_end THEN
        RETURN false;
    END IF;
    t := (now() AT TIME ZONE p.timezone)::time;
    IF p.quiet_hours_start < p.quiet_hours_end THEN
        RETURN t >= p.quiet_hours_start AND t < p.quiet_hours_end;
    END IF;
    RETURN t >= p.quiet_hours_start OR t < p.quiet_hours_end; -- over midnight
END $$;

-- An event only user uname receives (project_id NULL, recipient set), with their unread count.
CREATE FUNCTION loom_notification_event(etype text, uid bigint, actor text, payload jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, actor, recipient, payload)
    SELECT etype, coalesce(actor, 'system'), u.username,
           payload || jsonb_build_object('unread_count',
               (SELECT count(*) FROM notifications n WHERE n.user_id = uid AND n.status = 'unread'))
    FROM users u WHERE u.id = uid;
END $$;

-- Stores a notification of kind for user uid when their preferences let it through, and
-- pushes it unless they are in quiet hours.  Returns whether it was stored.
CREATE FUNCTION loom_notify(uid bigint, kind text, prio text, aid bigint, e events, title text,
                            message text, link text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    p notification_preferences := loom_notification_prefs(uid);
    quiet boolean := loom_quiet_now(p);
    n notifications;
BEGIN
    IF NOT p.enable_in_app
       OR (cardinality(p.subscribed_events) > 0 AND NOT kind = ANY (p.subscribed_events))
       OR loom_priority_rank(prio) < loom_priority_rank(p.min_priority)
       OR (cardinality(p.project_filters) > 0
           AND (e.project_id IS NULL OR NOT e.project_id = ANY (p.project_filters))) THEN
        RETURN false;
    END IF;
    INSERT INTO notifications (user_id, activity_id, event_type, title, message, link, priority,
                               project_id, bead_id, metadata)
    VALUES (uid, aid, kind, left(title, 500), left(coalesce(message, ''), 1000),
            coalesce(link, ''), prio, e.project_id, e.bead_id,
            jsonb_strip_nulls(jsonb_build_object('event_id', e.id, 'actor', e.actor,
                                                 'quiet_hours', CASE WHEN quiet THEN true END)))
    RETURNING * INTO n;
    IF NOT quiet THEN
        PERFORM loom_notification_event('notification', uid, e.actor,
                                        jsonb_build_object('notification',
                                                           loom_notification_json(n)::jsonb));
    END IF;
    RETURN true;
END $$;

-- The people who may hear about project pid: admins, and its members.
CREATE FUNCTION loom_user_sees(u users, pid text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT u.role = 'admin' OR pid IS NULL
        OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = pid AND m.user_id = u.id)
$$;

-- @mentions of user names in the comment of event e: recorded, and notified.
CREATE FUNCTION loom_notify_mentions(e events, aid bigint, b beads) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    body text := coalesce(e.payload #>> '{comment,content}', '');
    cid bigint := (e.payload #>> '{comment,id}')::bigint;
    u users;
    sent boolean;
BEGIN
    IF position('@' IN body) = 0 OR cid IS NULL THEN
        RETURN;
    END IF;
    FOR u IN
        SELECT DISTINCT x.* FROM users x
        JOIN (SELECT lower(m[1]) AS name
              FROM regexp_matches(body, '(?:^|[^A-Za-z0-9._-])@([A-Za-z0-9][A-Za-z0-9._-]{1,62})',
                                  'g') m) w
          ON x.username IN (w.name, rtrim(w.name, '._-'))
        WHERE NOT x.disabled AND x.username <> e.actor AND loom_user_sees(x, e.project_id)
    LOOP
        sent := loom_notify(u.id, 'comment.mention',
                            loom_priority_max('normal', loom_bead_urgency(b.priority)), aid, e,
                            format('%s mentioned you on %s', e.actor, e.bead_id),
                            left(body, 300), format('#/%s/kanban/%s', e.project_id, e.bead_id));
        INSERT INTO comment_mentions (comment_id, mentioned_user_id, mentioned_username,
                                      notified_at)
        VALUES (cid, u.id, u.username, CASE WHEN sent THEN now() END)
        ON CONFLICT DO NOTHING;
    END LOOP;
END $$;

-- The notifications event e (recorded as activity aid) makes; see the rules at the top.
CREATE FUNCTION loom_notifications_for(e events, aid bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b beads;
    u users;
    done bigint[] := '{}';
    who text;
    link text;
BEGIN
    IF e.bead_id IS NOT NULL THEN
        SELECT * INTO b FROM beads WHERE id = e.bead_id;
        link := format('#/%s/kanban/%s', e.project_id, e.bead_id);
    END IF;
    IF e.type = 'comment.created' THEN
        PERFORM loom_notify_mentions(e, aid, b);
        RETURN;
    END IF;
    who := CASE e.type WHEN 'bead.assigned' THEN e.payload ->> 'assigned_to'
                       WHEN 'bead.created' THEN b.assigned_to END;
    FOR u IN SELECT * FROM users x WHERE x.username = who AND NOT x.disabled
               AND x.username <> e.actor AND loom_user_sees(x, e.project_id) LOOP
        PERFORM loom_notify(u.id, 'bead.assigned',
                            loom_priority_max('high', loom_bead_urgency(b.priority)), aid, e,
                            format('%s assigned to you: %s', e.bead_id, b.title),
                            format('by %s', e.actor), link);
        done := done || u.id;
    END LOOP;
    IF e.type = 'bead.status_change' THEN
        FOR u IN SELECT * FROM users x
                 WHERE x.username IN (b.assigned_to, b.context ->> 'requested_by')
                   AND NOT x.disabled AND x.username <> e.actor
                   AND loom_user_sees(x, e.project_id) LOOP
            PERFORM loom_notify(u.id, 'bead.status_change', loom_bead_urgency(b.priority), aid,
                                e, format('%s is now %s: %s', e.bead_id,
                                          replace(e.payload ->> 'to', '_', ' '), b.title),
                                format('%s → %s by %s', e.payload ->> 'from', e.payload ->> 'to',
                                       e.actor), link);
        END LOOP;
    ELSIF e.type = 'decision.created' THEN
        SELECT * INTO b FROM beads WHERE id = coalesce(e.payload ->> 'decision_id', e.bead_id);
        FOR u IN SELECT x.* FROM users x JOIN project_members m ON m.user_id = x.id
                 WHERE m.project_id = e.project_id AND x.role IN ('admin', 'user')
                   AND NOT x.disabled AND x.username <> e.actor LOOP
            PERFORM loom_notify(u.id, 'decision.created',
                                loom_priority_max('high', loom_bead_urgency(b.priority)), aid, e,
                                coalesce(b.title, 'Decision needed'),
                                coalesce(e.payload ->> 'reason', ''),
                                format('#/%s/decisions', e.project_id));
        END LOOP;
    ELSIF e.type = 'bead.created' AND b.priority = 0 AND b.type <> 'decision' THEN
        FOR u IN SELECT x.* FROM users x JOIN project_members m ON m.user_id = x.id
                 WHERE m.project_id = e.project_id AND NOT x.disabled
                   AND x.username <> e.actor AND NOT x.id = ANY (done) LOOP
            PERFORM loom_notify(u.id, 'bead.created', 'critical', aid, e,
                                format('P0 bead %s: %s', e.bead_id, b.title),
                                format('created by %s', e.actor), link);
        END LOOP;
    END IF;
END $$;

-- The trigger: activity, then notifications, working as the owner (see the top).
CREATE FUNCTION loom_events_activity() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    aid bigint := loom_activity_record(NEW);
BEGIN
    IF aid IS NOT NULL THEN
        PERFORM loom_notifications_for(NEW, aid);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER events_activity AFTER INSERT ON events FOR EACH ROW
    WHEN (split_part(NEW.type, '.', 1) IN ('bead', 'agent', 'project', 'provider', 'decision',
                                           'motivation', 'workflow')
          OR NEW.type = 'comment.created')
    EXECUTE FUNCTION loom_events_activity();

-- ---- the API's writes ----------------------------------------------------------------------

-- Marks notification nid of user uid read; its JSON, or NULL when uid has no such notification.
-- Reading one already read changes nothing (and sends no event).
CREATE FUNCTION loom_notification_read(nid bigint, uid bigint, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
BEGIN
    UPDATE notifications SET status = 'read', read_at = now()
    WHERE id = nid AND user_id = uid AND status = 'unread' RETURNING * INTO n;
    IF FOUND THEN
        PERFORM loom_notification_event('notification.read', uid, actor,
                                        jsonb_build_object('ids', jsonb_build_array(nid)));
        RETURN loom_notification_json(n);
    END IF;
    RETURN (SELECT loom_notification_json(x) FROM notifications x
            WHERE x.id = nid AND x.user_id = uid);
END $$;

CREATE FUNCTION loom_notifications_read_all(uid bigint, actor text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    WITH r AS (UPDATE notifications SET status = 'read', read_at = now()
               WHERE user_id = uid AND status = 'unread' RETURNING id)
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO ids FROM r;
    IF cardinality(ids) > 0 THEN
        PERFORM loom_notification_event('notification.read', uid, actor,
                                        jsonb_build_object('ids', to_jsonb(ids)));
    END IF;
    RETURN json_build_object('marked', cardinality(ids), 'unread_count', 0);
END $$;

-- Sets the preferences fields present in p (already checked by the API, except the time zone
-- and that quiet hours have both ends or neither).
CREATE FUNCTION loom_notification_prefs_set(uid bigint, p jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    n notification_preferences := loom_notification_prefs(uid);
BEGIN
    IF p ? 'timezone' AND NOT EXISTS (SELECT 1 FROM pg_timezone_names
                                      WHERE name = p ->> 'timezone') THEN
        PERFORM loom_raise('LM400', format('timezone: %s is not a known time zone '
                                           '(e.g. UTC, Europe/Paris)', p ->> 'timezone'));
    END IF;
    IF p ? 'enable_in_app' THEN
        n.enable_in_app := (p ->> 'enable_in_app')::boolean;
    END IF;
    IF p ? 'subscribed_events' THEN
        n.subscribed_events := loom_json_text_array(p -> 'subscribed_events');
    END IF;
    IF p ? 'quiet_hours_start' THEN
        n.quiet_hours_start := (p ->> 'quiet_hours_start')::time;
    END IF;
    IF p ? 'quiet_hours_end' THEN
        n.quiet_hours_end := (p ->> 'quiet_hours_end')::time;
    END IF;
    IF (n.quiet_hours_start IS NULL) <> (n.quiet_hours_end IS NULL) THEN
        PERFORM loom_raise('LM400', 'quiet_hours_start, quiet_hours_end: give both (HH:MM), '
                                    'or clear both with null');
    END IF;
    IF p ? 'project_filters' THEN
        n.project_filters := loom_json_text_array(p -> 'project_filters');
    END IF;
    n.min_priority := coalesce(p ->> 'min_priority', n.min_priority);
    n.timezone := coalesce(p ->> 'timezone', n.timezone);
    n.digest_mode := coalesce(p ->> 'digest_mode', n.digest_mode);
    n.updated_at := now();
    INSERT INTO notification_preferences VALUES (n.*)
    ON CONFLICT (user_id) DO UPDATE SET
        enable_in_app = EXCLUDED.enable_in_app, subscribed_events = EXCLUDED.subscribed_events,
        min_priority = EXCLUDED.min_priority, quiet_hours_start = EXCLUDED.quiet_hours_start,
        quiet_hours_end = EXCLUDED.quiet_hours_end, timezone = EXCLUDED.timezone,
        project_filters = EXCLUDED.project_filters, digest_mode = EXCLUDED.digest_mode,
        updated_at = EXCLUDED.updated_at;
    RETURN loom_notification_prefs_json(n);
END $$;

-- A since= filter: a timestamp, or LM400 naming the parameter.
CREATE FUNCTION loom_since(t text) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN t::timestamptz;
EXCEPTION WHEN data_exception THEN
    PERFORM loom_raise('LM400', format('since: %s is not a date-time (e.g. 2026-01-31T12:00:00Z)',
                                       t));
    RETURN NULL;
END $$;

-- For loom-ralph, with the events' retention: activities whose latest occurrence is older, and
-- notifications read that long ago (unread ones stay until read).  Looks at the oldest 10,000
-- rows of each per call, so one tick's work is bounded.  Returns the rows deleted.
CREATE FUNCTION loom_activity_prune(days integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := now() - make_interval(days => days);
    a bigint;
    n bigint;
BEGIN
    DELETE FROM notifications WHERE id IN (
        SELECT s.id FROM (SELECT id, status, read_at FROM notifications ORDER BY id LIMIT 10000) s
        WHERE s.status <> 'unread' AND s.read_at < cutoff);
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM activities WHERE id IN (
        SELECT s.id FROM (SELECT id, updated_at FROM activities ORDER BY id LIMIT 10000) s
        WHERE s.updated_at < cutoff);
    GET DIAGNOSTICS a = ROW_COUNT;
    RETURN a + n;
END $$;
