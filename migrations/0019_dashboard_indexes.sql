-- Indexes the dashboard's pages need to answer in well under 200 ms with 100,000 runs
-- (`ordinaut bench ui`). Checked with EXPLAIN ANALYZE on that seeded data:
-- * an agent's runs, newest first, and the overview's "runs in the last 24 hours by status":
--   without an index on owner the count is a sequential scan of every run (~230 ms on a busy
--   2-core machine); this one answers it as an index-only scan (~40-60 ms) and gives an agent's
--   run list its order without filtering out other agents' runs.
CREATE INDEX runs_owner_queued ON runs (owner, queued_at DESC, run_id DESC) INCLUDE (status);
-- * an agent's runs in one status (the dead ones to retry, the ones awaiting approval), newest
--   first, and how many there are, without visiting every agent's runs in that status.
CREATE INDEX runs_owner_status ON runs (owner, status, queued_at DESC, run_id DESC);
