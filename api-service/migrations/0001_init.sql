-- Rooms, members, messages, snapshots, tasks, content-addressed payloads, outbox, audit.

CREATE TABLE rooms (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    room_id      uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id      text NOT NULL,
    display_name text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    joined_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE messages (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    author_id   text NOT NULL,
    author_name text NOT NULL,
    body        text NOT NULL,
    kind        text NOT NULL DEFAULT 'message' CHECK (kind IN ('message', 'note', 'decision')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_room_seq ON messages (room_id, seq);

-- The frozen, canonical room data of snapshots, stored once per content hash.
CREATE TABLE payloads (
    content_hash text PRIMARY KEY,
    body_gzip    bytea NOT NULL,
    bytes        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE snapshots (
    id               uuid PRIMARY KEY,
    room_id          uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    requested_by     text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    scope            jsonb NOT NULL,
    options          jsonb NOT NULL,
    template         text NOT NULL,
    content_hash     text NOT NULL REFERENCES payloads (content_hash),
    message_count    integer NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'rendering', 'completed', 'failed')),
    artifact_key     text,
    artifact_bytes   bigint,
    artifact_pages   integer,
    pdf_sha256       text,
    error_code       text,
    error_message    text,
    idempotency_key  text,
    request_hash     text,
    deleted_at       timestamptz,
    UNIQUE (requested_by, idempotency_key)
);
CREATE INDEX snapshots_room_created ON snapshots (room_id, created_at DESC, id DESC);

CREATE TABLE tasks (
    id            uuid PRIMARY KEY,
    snapshot_id   uuid NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'rendering', 'completed', 'failed')),
    progress      smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    phase         text NOT NULL DEFAULT 'queued',
    cache         text CHECK (cache IN ('memory', 'disk', 'miss')),
    attempts      integer NOT NULL DEFAULT 0,
    renderer_id   text,
    render_ms     double precision,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    completed_at  timestamptz,
    deadline      timestamptz NOT NULL,
    error_code    text,
    error_message text
);
CREATE INDEX tasks_snapshot ON tasks (snapshot_id, created_at DESC);
CREATE INDEX tasks_open_deadline ON tasks (deadline) WHERE status IN ('queued', 'rendering');

-- Transactional outbox: written with the snapshot, published by the relay.
CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id          uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    routing_key      text NOT NULL,
    body             bytea NOT NULL,
    content_encoding text,
    request_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text,
    action      text NOT NULL,
    room_id     uuid,
    snapshot_id uuid,
    outcome     text NOT NULL,
    request_id  text,
    client_addr text
);
CREATE INDEX audit_at ON audit (at DESC, id DESC);
