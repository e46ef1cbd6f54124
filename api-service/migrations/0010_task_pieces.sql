-- Piece progress: a render in pieces reports how many of the snapshot's pieces are ready, of
-- how many (StatusEvent.pieces_done / pieces_total); the task keeps the latest counts (NULL
-- while unknown: queued, a whole-document render, a cache hit, an older renderer).
ALTER TABLE tasks
    ADD COLUMN pieces_done  integer CHECK (pieces_done >= 0),
    ADD COLUMN pieces_total integer CHECK (pieces_total >= 0);

-- A change of the counts is a change a client sees: it bumps the task's event_seq, so the
-- NOTIFY of migration 0007 wakes its event streams. Same trigger, two more columns.
DROP TRIGGER IF EXISTS tasks_event_seq ON tasks;
CREATE TRIGGER tasks_event_seq BEFORE UPDATE ON tasks FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.progress IS DISTINCT FROM NEW.progress
          OR OLD.phase IS DISTINCT FROM NEW.phase
          OR OLD.pieces_done IS DISTINCT FROM NEW.pieces_done
          OR OLD.pieces_total IS DISTINCT FROM NEW.pieces_total)
    EXECUTE FUNCTION task_event_seq_bump();

-- Grants: no new table; the API's role (0004) may already UPDATE tasks.
