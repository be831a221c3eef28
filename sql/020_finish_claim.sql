-- 020_finish_claim: an executor ends its run and claims the next one in one transaction.
--
-- Every transaction that sends a notification holds PostgreSQL's notify-queue lock from just
-- before its commit until the commit is on disk, so such commits are written one at a time,
-- never grouped (src/backend/commands/async.c, PreCommit_Notify).  A run's claim (run.started)
-- and its end (run.finished and the bead's events) both ring: two serialised disk flushes per
-- run, which capped the queue at about 800 runs/s on the bench machine however many executors
-- worked it.  An executor that finishes a run and wants another now does both in one call, one
-- flush; the first claim, and every claim after an idle spell, is still loom_run_claim.

-- loom_run_finish(rid, owner, reason, err, iters, ptok, ctok), then loom_run_claim(owner,
-- lease_s).  finished is what loom_run_finish returned; claimed the run claimed, or a row of
-- NULLs when nothing is queued.  The claim happens even when the run was no longer ours: the
-- executor is free either way.
CREATE FUNCTION loom_run_finish_claim(rid bigint, owner text, reason text, err text,
                                      iters integer, ptok bigint, ctok bigint, lease_s integer,
                                      OUT finished boolean, OUT claimed runs)
LANGUAGE plpgsql AS $$
BEGIN
    finished := loom_run_finish(rid, owner, reason, err, iters, ptok, ctok);
    claimed := loom_run_claim(owner, lease_s);
END $$;
