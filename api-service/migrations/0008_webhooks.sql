-- Signed webhooks (README: Webhooks). A snapshot may carry a callback URL; when one of its
-- tasks reaches completed or failed, a trigger on tasks writes the delivery row in the same
-- transaction as the status change, so a delivery is never lost (it commits with the status)
-- and never created twice (one per task: UNIQUE (task_id)). The API's delivery loop sends it.

ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS callback_url text;

-- One signing secret per user: the raw bytes behind "whsec_<base64>". The API must hold the
-- secret itself to compute HMAC-SHA256 signatures, so it is stored as is (like a password it
-- is shown once; unlike a password it cannot be hashed).
CREATE TABLE webhook_secrets (
    user_id    text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (octet_length(secret) BETWEEN 24 AND 64),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the webhook-id header
    user_id          text NOT NULL,
    task_id          uuid NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE CASCADE,
    snapshot_id      uuid NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    event_type       text NOT NULL
                     CHECK (event_type IN ('snapshot.completed', 'snapshot.failed')),
    url              text NOT NULL,
    body             text NOT NULL,  -- sent and signed byte for byte, the same on every attempt
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    finished_at      timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_user ON webhook_deliveries (user_id, created_at DESC, id DESC);

-- One row per attempt, written when the attempt is claimed (so an attempt number is used
-- once) and completed with its outcome; finished_at stays NULL if the sender died mid-send.
CREATE TABLE webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status_code integer,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);

-- The event body is built here, from the task and its snapshot as the status change left
-- them. A task that "completed" without a PDF failed its snapshot (tasks.APPLY_EVENT), so it
-- is announced as snapshot.failed.
CREATE FUNCTION enqueue_webhook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s record;
    kind text;
BEGIN
    SELECT id, room_id, requested_by, content_hash, callback_url, artifact_key,
           artifact_bytes, artifact_pages, pdf_sha256, error_code, error_message
      INTO s FROM snapshots
     WHERE id = NEW.snapshot_id AND callback_url IS NOT NULL AND deleted_at IS NULL;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    kind := CASE WHEN NEW.status = 'completed' AND s.artifact_key IS NOT NULL
                 THEN 'completed' ELSE 'failed' END;
    INSERT INTO webhook_deliveries (user_id, task_id, snapshot_id, event_type, url, body)
    VALUES (s.requested_by, NEW.id, s.id, 'snapshot.' || kind, s.callback_url,
            jsonb_build_object(
                'type', 'snapshot.' || kind,
                'timestamp', to_char(COALESCE(NEW.completed_at, now()) AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'data', jsonb_build_object(
                    'task_id', NEW.id,
                    'snapshot_id', s.id,
                    'room_id', s.room_id,
                    'status', kind,
                    'content_hash', s.content_hash,
                    'download_url', CASE WHEN kind = 'completed'
                                    THEN '/api/v1/snapshots/' || s.id || '/download' END,
                    'pdf_sha256', CASE WHEN kind = 'completed' THEN s.pdf_sha256 END,
                    'bytes', CASE WHEN kind = 'completed' THEN s.artifact_bytes END,
                    'pages', CASE WHEN kind = 'completed' THEN s.artifact_pages END,
                    'error', CASE WHEN kind = 'failed' THEN jsonb_build_object(
                        'code', COALESCE(NEW.error_code, s.error_code),
                        'message', COALESCE(NEW.error_message, s.error_message)) END
                ))::text)
    ON CONFLICT (task_id) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('webhook_deliveries', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_enqueue_webhook
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION enqueue_webhook_delivery();

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_secrets, webhook_deliveries, webhook_attempts
    TO snapshot_api;
