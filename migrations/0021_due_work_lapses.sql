-- How many times in a row a run's lease lapsed (its worker died, hung or lost the database)
-- within one attempt: past a limit the attempt fails, so no run is re-leased forever without
-- its attempt count moving. Reset when the attempt ends or the run is rescheduled.
ALTER TABLE due_work ADD COLUMN lapses INTEGER NOT NULL DEFAULT 0;
