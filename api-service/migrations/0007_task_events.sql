-- Live task progress (GET /api/v1/tasks/{id}/events): a change of a task's status, progress or
-- phase bumps its event_seq (the stream's event id) and, at commit, notifies channel
-- task_events with '<task id>:<event_seq>'. Every API worker LISTENs on one connection and
-- reads the row itself (a NOTIFY payload is limited to 8000 bytes, a task view is not).
-- Triggers, not Python, so that every path that moves a task (status events, the reaper, the
-- outbox relay parking a job, the dead-letter consumer) is covered by construction.
-- Grants: the API's role snapshot_api already may UPDATE tasks (0004); pg_notify and LISTEN
-- need no privilege; the trigger functions run as the invoker and touch only NEW.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS event_seq bigint NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION task_event_seq_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.event_seq := OLD.event_seq + 1;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION task_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_events', NEW.id::text || ':' || NEW.event_seq::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tasks_event_seq ON tasks;
CREATE TRIGGER tasks_event_seq BEFORE UPDATE ON tasks FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.progress IS DISTINCT FROM NEW.progress
          OR OLD.phase IS DISTINCT FROM NEW.phase)
    EXECUTE FUNCTION task_event_seq_bump();

DROP TRIGGER IF EXISTS tasks_event_notify ON tasks;
CREATE TRIGGER tasks_event_notify AFTER UPDATE ON tasks FOR EACH ROW
    WHEN (OLD.event_seq IS DISTINCT FROM NEW.event_seq)
    EXECUTE FUNCTION task_event_notify();
