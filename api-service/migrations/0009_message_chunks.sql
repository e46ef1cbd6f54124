-- A room's timeline as an append-only log cut into chunks (snapshot_shared.chunking; README:
-- Message ordinals and chunks). messages.ordinal is the message's position in its room's
-- timeline (0-based, dense, unique per room); messages.chunk is the chunk it belongs to. The
-- room keeps its open chunk (rooms.chunk_*) and the next ordinal, so that an append assigns
-- both under the room row's lock, in the insert's transaction (db/messages.py).
ALTER TABLE messages
    ADD COLUMN ordinal integer CHECK (ordinal >= 0),
    ADD COLUMN chunk   integer CHECK (chunk >= 0);

ALTER TABLE rooms
    ADD COLUMN next_ordinal   integer NOT NULL DEFAULT 0 CHECK (next_ordinal >= 0),
    ADD COLUMN chunk_index    integer NOT NULL DEFAULT 0 CHECK (chunk_index >= 0),
    ADD COLUMN chunk_messages integer NOT NULL DEFAULT 0 CHECK (chunk_messages >= 0),
    ADD COLUMN chunk_weight   integer NOT NULL DEFAULT 0 CHECK (chunk_weight >= 0);

-- Existing rooms, in the order their payloads used until now (seq), with the rule of
-- snapshot_shared.chunking and the bounds of its DEFAULT_POLICY: a chunk closes at 50
-- messages, or before a message whose weight (messages.weight, migration 0002, equal to
-- limits.message_weight) would take it over 48,000; a heavier message is a chunk by itself.
-- One pass over the messages in order; one UPDATE of each table at the end.
DO $$
DECLARE
    m        record;
    room     uuid;
    pos      integer;
    idx      integer;
    held     integer;
    weighs   integer;
    seqs     bigint[]  := '{}';
    ordinals integer[] := '{}';
    chunks   integer[] := '{}';
    rooms_   uuid[]    := '{}';
    nexts    integer[] := '{}';
    indexes  integer[] := '{}';
    helds    integer[] := '{}';
    weights  integer[] := '{}';
BEGIN
    FOR m IN SELECT seq, room_id, weight FROM messages ORDER BY room_id, seq LOOP
        IF room IS DISTINCT FROM m.room_id THEN
            IF room IS NOT NULL THEN
                rooms_ := rooms_ || room;
                nexts := nexts || pos;
                indexes := indexes || idx;
                helds := helds || held;
                weights := weights || weighs;
            END IF;
            room := m.room_id;
            pos := 0;
            idx := 0;
            held := 0;
            weighs := 0;
        ELSIF held >= 50 OR weighs + m.weight > 48000 THEN
            idx := idx + 1;
            held := 0;
            weighs := 0;
        END IF;
        seqs := seqs || m.seq;
        ordinals := ordinals || pos;
        chunks := chunks || idx;
        pos := pos + 1;
        held := held + 1;
        weighs := weighs + m.weight;
    END LOOP;
    IF room IS NOT NULL THEN
        rooms_ := rooms_ || room;
        nexts := nexts || pos;
        indexes := indexes || idx;
        helds := helds || held;
        weights := weights || weighs;
    END IF;

    UPDATE messages SET ordinal = c.ordinal, chunk = c.chunk
    FROM unnest(seqs, ordinals, chunks) AS c(seq, ordinal, chunk)
    WHERE messages.seq = c.seq;

    UPDATE rooms SET next_ordinal = s.next_ordinal, chunk_index = s.chunk_index,
                     chunk_messages = s.chunk_messages, chunk_weight = s.chunk_weight
    FROM unnest(rooms_, nexts, indexes, helds, weights)
         AS s(id, next_ordinal, chunk_index, chunk_messages, chunk_weight)
    WHERE rooms.id = s.id;
END $$;

ALTER TABLE messages
    ALTER COLUMN ordinal SET NOT NULL,
    ALTER COLUMN chunk SET NOT NULL;
-- Snapshots read a room's messages in this order; appends make it unique.
CREATE UNIQUE INDEX messages_room_ordinal ON messages (room_id, ordinal);

-- Grants: no new table. The API's role (0004) may already SELECT/INSERT/UPDATE messages and
-- UPDATE rooms, which is what an append now does.
