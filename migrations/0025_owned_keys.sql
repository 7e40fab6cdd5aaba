-- Issue 18: dedupe and concurrency keys are their owner's own (domain/ownership.scoped_key):
-- read models hold them prefixed with the run's owner, unless shared ('shared:...').
UPDATE runs SET
    dedupe_key = CASE WHEN dedupe_key IS NULL OR starts_with(dedupe_key, 'shared:')
                      THEN dedupe_key ELSE owner || '/' || dedupe_key END,
    concurrency_key = CASE WHEN concurrency_key IS NULL OR starts_with(concurrency_key, 'shared:')
                           THEN concurrency_key ELSE owner || '/' || concurrency_key END
WHERE dedupe_key IS NOT NULL OR concurrency_key IS NOT NULL;

UPDATE due_work d SET
    dedupe_key = CASE WHEN d.dedupe_key IS NULL THEN NULL ELSE r.dedupe_key END,
    concurrency_key = CASE WHEN d.concurrency_key IS NULL THEN NULL ELSE r.concurrency_key END
FROM runs r
WHERE r.run_id = d.run_id AND (d.dedupe_key IS NOT NULL OR d.concurrency_key IS NOT NULL);
