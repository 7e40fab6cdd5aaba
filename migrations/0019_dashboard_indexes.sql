-- Indexes the dashboard's pages need to stay well under 200 ms with 100,000 runs
-- (`ordinaut bench ui`), checked with EXPLAIN ANALYZE on that benchmark's seeded data.
-- * An agent's runs, newest first, and the overview's "runs in the last 24 hours by status":
--   without an index on owner the count is a parallel sequential scan of every run's row
--   (~400 ms while the 2-core machine was busy; ~55 ms at a quiet moment when one agent owns
--   every run); with this one it is an index-only scan of the agent's entries (~55 ms busy or
--   not), and an agent's run list gets its order without stepping over other agents' runs.
CREATE INDEX runs_owner_queued ON runs (owner, queued_at DESC, run_id DESC) INCLUDE (status);
-- * An agent's runs in one status (the dead ones to retry, those awaiting approval), newest
--   first, and how many there are, without visiting every agent's runs in that status.
CREATE INDEX runs_owner_status ON runs (owner, status, queued_at DESC, run_id DESC);
