-- 019_finish_cost: the same results for less work on the hot path of a finished run.
--
-- A trivial run's claim + finish spent about 2 ms of server time, most of it in what its five
-- events and its status change set off (make bench-dispatch; per function with
-- track_functions = all).  None of the changes below changes a row that gets written.
--
--   histograms   An observation built two arrays with set-returning SQL (the bucket as a
--                one-hot array, then the sum of two arrays), about 180 us each; a run's finish
--                makes two (its duration, its bead's duration).  Now the bucket is found by a
--                loop over the bounds and the row's element is incremented in place.
--   inlining     loom_activity_key and loom_activity_metadata were marked IMMUTABLE but call
--                stable functions (concat_ws, jsonb_build_object, to_jsonb), so PostgreSQL
--                never inlined them and ran each as a separate SQL function, twice per
--                activity.  STABLE is what they are, and lets them inline.
--   filters      The activity trigger ran for every bead.updated, even the ones it drops at
--                once (only status, assignee or context changed: a finish makes one); its WHEN
--                now leaves those out before the function is called.  Notifications are
--                only looked for after the event types that have a rule (013's header).

-- ---- histograms ----------------------------------------------------------------------------

-- The bucket of v: the first bound it does not exceed (Prometheus' "le"), or the +Inf one.
CREATE FUNCTION loom_hist_bucket(bounds double precision[], v double precision) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := coalesce(cardinality(bounds), 0);
BEGIN
    FOR i IN 1..n LOOP
        IF v <= bounds[i] THEN
            RETURN i;
        END IF;
    END LOOP;
    RETURN n + 1;
END $$;

-- As in 011: a histogram of the one value v.
CREATE OR REPLACE FUNCTION loom_hist_one(bounds double precision[], v double precision)
RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    h bigint[] := array_fill(0::bigint, ARRAY[coalesce(cardinality(bounds), 0) + 1]);
BEGIN
    h[loom_hist_bucket(bounds, v)] := 1;
    RETURN h;
END $$;

-- As in 011: one observation of v into this backend's shard of series (n, l).  A row whose
-- bounds differ (the family's bounds changed) is left alone, as before.
CREATE OR REPLACE FUNCTION loom_metric_observe(n text, l jsonb, bounds double precision[],
                                               v double precision) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k integer := loom_hist_bucket(bounds, v);
    one bigint[] := array_fill(0::bigint, ARRAY[coalesce(cardinality(bounds), 0) + 1]);
BEGIN
    one[k] := 1; -- loom_hist_one(bounds, v), without finding k twice
    INSERT INTO metric_histograms AS h (name, labels, process, bounds, buckets, sum, count)
    VALUES (n, l, loom_metric_shard(), bounds, one, v, 1)
    ON CONFLICT (name, labels, process) DO UPDATE
        SET buckets[k] = h.buckets[k] + 1, sum = h.sum + EXCLUDED.sum, count = h.count + 1
        WHERE h.bounds = EXCLUDED.bounds;
END $$;

-- ---- inlining ------------------------------------------------------------------------------

ALTER FUNCTION loom_activity_key(events, text) STABLE;
ALTER FUNCTION loom_activity_metadata(events) STABLE;

-- ---- filters -------------------------------------------------------------------------------

DROP TRIGGER events_activity ON events;
CREATE TRIGGER events_activity AFTER INSERT ON events FOR EACH ROW
    WHEN ((split_part(NEW.type, '.', 1) IN ('bead', 'agent', 'project', 'provider', 'decision',
                                            'motivation', 'workflow')
           OR NEW.type = 'comment.created')
          -- loom_activity_record drops these: fields only among status, assignee, context
          AND NOT (NEW.type = 'bead.updated'
                   AND coalesce(NEW.payload -> 'fields', '[]')
                       <@ '["status", "assigned_to", "context"]'))
    EXECUTE FUNCTION loom_events_activity();

-- As in 013, asking for notifications only after the events some rule is about.
CREATE OR REPLACE FUNCTION loom_events_activity() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    aid bigint := loom_activity_record(NEW);
BEGIN
    IF aid IS NOT NULL AND NEW.type IN ('bead.assigned', 'bead.created', 'bead.status_change',
                                        'decision.created', 'comment.created') THEN
        PERFORM loom_notifications_for(NEW, aid);
    END IF;
    RETURN NULL;
END $$;
