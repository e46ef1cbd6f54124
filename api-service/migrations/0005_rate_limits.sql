-- Per-user rate limits (services/rate_limits.py). One row per (user, action) holds the GCRA
-- "theoretical arrival time": the moment the user's whole quota for that action is back,
-- and the emission interval (microseconds per unit) it was counted in, so that a changed
-- limit carries the units already spent over. A check is one INSERT ... ON CONFLICT DO
-- UPDATE ... RETURNING on this row, so every API worker and replica shares one exact count.
CREATE TABLE IF NOT EXISTS rate_limits (
    user_id text        NOT NULL,
    action  text        NOT NULL CHECK (action IN ('rooms', 'messages', 'members', 'snapshots')),
    tat     timestamptz NOT NULL,
    unit_us bigint      NOT NULL CHECK (unit_us >= 1),
    PRIMARY KEY (user_id, action)
);

-- An administrator's per-user limit, replacing SNAPSHOT_API_RATE_LIMITS for that user and
-- action. quota and window_seconds both NULL: the user is not limited for that action.
CREATE TABLE IF NOT EXISTS rate_limit_overrides (
    user_id        text        NOT NULL,
    action         text        NOT NULL
        CHECK (action IN ('rooms', 'messages', 'members', 'snapshots')),
    quota          integer     CHECK (quota BETWEEN 1 AND 1000000),
    window_seconds integer     CHECK (window_seconds IN (1, 60, 3600)),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text        NOT NULL,
    PRIMARY KEY (user_id, action),
    CHECK ((quota IS NULL) = (window_seconds IS NULL))
);

-- The API role reads and writes both (0004's default privileges cover tables its migrator
-- creates; say it here too, for a migrator whose default privileges differ).
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limits, rate_limit_overrides TO snapshot_api;
