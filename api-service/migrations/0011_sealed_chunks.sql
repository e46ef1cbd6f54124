-- Sealed chunks and snapshot manifests (issue 12; README: Sealed chunks and manifests).
--
-- chunks: a closed chunk of a room's timeline, sealed in the append that closed it: its
-- canonical fragment (snapshot_shared.hashing.fragment: the canonical JSON of its messages,
-- comma-joined) gzip-compressed once, content-addressed by the fragment's SHA-256, with the
-- facts a snapshot needs without reading a message: counts, weight, bytes, ordinals, times,
-- the hash chain from the room's chunk 0 (hashing.fold) and running totals from chunk 0.
-- Closed chunks never change, so every snapshot variant of the room shares these bytes.
CREATE TABLE chunks (
    digest         bytea PRIMARY KEY CHECK (length(digest) = 32),
    room_id        uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    chunk          integer NOT NULL CHECK (chunk >= 0),
    body_gzip      bytea NOT NULL,
    bytes          integer NOT NULL CHECK (bytes > 0),
    messages       integer NOT NULL CHECK (messages > 0),
    weight         bigint NOT NULL CHECK (weight > 0),
    first_ordinal  integer NOT NULL,
    last_ordinal   integer NOT NULL,
    min_at         timestamptz NOT NULL,
    max_at         timestamptz NOT NULL,
    last_at        timestamptz NOT NULL,  -- created_at of its last message (a snapshot's as-of)
    chain          bytea NOT NULL CHECK (length(chain) = 32),
    total_messages bigint NOT NULL,
    total_weight   bigint NOT NULL,
    total_bytes    bigint NOT NULL,
    UNIQUE (room_id, chunk)
);

-- The messages of a chunk a snapshot holds only in part (an edge of its scope) or of a room's
-- open chunk, frozen by the snapshot that needed them; content-addressed like chunks, so
-- snapshots of the same content (another title, another page size) share them.
CREATE TABLE fragments (
    digest     bytea PRIMARY KEY CHECK (length(digest) = 32),
    body_gzip  bytea NOT NULL,
    bytes      integer NOT NULL CHECK (bytes > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A snapshot's payload as a manifest, once per content hash (version 2): the canonical bytes
-- before and after its messages (room, members, sections, as-of), then its fragments in
-- order: the digests in ``lead`` (chunks or fragments), the room's sealed chunks
-- run_from..run_to, the digests in ``trail``.
CREATE TABLE manifests (
    content_hash text PRIMARY KEY,
    room_id      uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    before       bytea NOT NULL,
    after        bytea NOT NULL,
    lead         bytea[] NOT NULL,
    run_from     integer,
    run_to       integer,
    trail        bytea[] NOT NULL,
    bytes        bigint NOT NULL,  -- the canonical payload's length
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((run_from IS NULL) = (run_to IS NULL) AND (run_from IS NULL OR run_from <= run_to))
);

-- Snapshots of version 2 have a manifest instead of a payload row; older ones keep theirs.
ALTER TABLE snapshots DROP CONSTRAINT IF EXISTS snapshots_content_hash_fkey;

-- An outbox row that names a manifest holds only the job's envelope (its payload empty): the
-- relay splices the stored gzip members in when it publishes (messaging/job_bodies.py).
ALTER TABLE outbox ADD COLUMN manifest text;

-- Every room's closed chunks are sealed by a Python step the migration tool runs right after
-- this file, in the same transaction (db/migrate.py, db/chunks.py seal_existing): gzip and
-- the canonical JSON of the renderer's hash are Python's, not PostgreSQL's.
