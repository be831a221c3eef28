-- 017_fencing: a run's iterations count per attempt.
--
-- An executor that shuts down hands its run back at the same attempt (loom_run_release), and
-- the next executor goes on from the iteration it reached: iterations stay, so the run keeps
-- its iteration limit across the handover and an (attempt, iteration) pair names one turn of
-- the loop only once.  A run re-queued because its lease ran out starts a new attempt, and a
-- new attempt starts from iteration 0.
CREATE FUNCTION loom_runs_attempt_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.iterations := 0;
    RETURN NEW;
END $$;

CREATE TRIGGER runs_attempt_reset BEFORE UPDATE OF attempt ON runs
    FOR EACH ROW WHEN (NEW.attempt > OLD.attempt) EXECUTE FUNCTION loom_runs_attempt_reset();
