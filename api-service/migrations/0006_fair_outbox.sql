-- Fair rendering: the outbox relay keeps at most SNAPSHOT_API_RENDER_JOBS_PER_USER render jobs
-- of one user published and unfinished; that user's later rows wait in the outbox meanwhile.
--
-- outbox.requested_by: the user a row counts against; NULL for rows that are not limited (the
-- content already has a completed snapshot, so it is most likely a cache hit, and rows written
-- before this migration). tasks.published_at: when the relay's publish was confirmed; a task
-- published and not finished is one of its user's outstanding jobs.
ALTER TABLE outbox ADD COLUMN requested_by text;
ALTER TABLE tasks ADD COLUMN published_at timestamptz;

-- The relay's look-ups, each over small sets: the users with waiting rows and the oldest rows
-- of each (a skip scan), the unlimited rows, and the tasks outstanding now.
CREATE INDEX outbox_pending_user ON outbox (requested_by, id)
    WHERE published_at IS NULL AND parked_at IS NULL AND requested_by IS NOT NULL;
CREATE INDEX outbox_pending_unlimited ON outbox (id)
    WHERE published_at IS NULL AND parked_at IS NULL AND requested_by IS NULL;
CREATE INDEX tasks_outstanding ON tasks (snapshot_id)
    WHERE published_at IS NOT NULL AND status IN ('queued', 'rendering');
-- "Was this content rendered before?" when a snapshot is created.
CREATE INDEX snapshots_completed_hash ON snapshots (content_hash) WHERE status = 'completed';
