-- An Idempotency-Key binds a request to a live snapshot only: once that snapshot is deleted,
-- the same key creates a new one. The look-up ignores deleted rows, so must the uniqueness.
ALTER TABLE snapshots DROP CONSTRAINT snapshots_requested_by_idempotency_key_key;
CREATE UNIQUE INDEX snapshots_live_idempotency_key ON snapshots (requested_by, idempotency_key)
    WHERE deleted_at IS NULL AND idempotency_key IS NOT NULL;

-- A message's layout weight (snapshot_shared.limits.message_weight: 400 + UTF-8 bytes + 100
-- per line break, where \r\n, \n and \r each count once, + 400 per character of
-- limits.EMOJI_CLASS), kept with the row so that the per-snapshot bound is one aggregate over
-- the scope that never reads a body.
ALTER TABLE messages ADD COLUMN weight integer GENERATED ALWAYS AS (
    400 + octet_length(body) + 100 * (
        (length(body) - length(replace(body, E'\n', '')))
        + (length(body) - length(replace(body, E'\r', '')))
        - (length(body) - length(replace(body, E'\r\n', ''))) / 2
    ) + 400 * regexp_count(
        body, '[\U0001F000-\U0001FAFF\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]'
    )
) STORED;
