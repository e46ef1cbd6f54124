-- Least privilege: the API's sessions run as the login role snapshot_api (db/pool.py switches
-- to it with SET ROLE when the DSN names the owner or a superuser), which may read and write its
-- tables but only INSERT and SELECT on audit, so no code path can rewrite the trail.
-- Roles are cluster-wide and every database runs this migration: create it once, tolerate a
-- concurrent migrator of another database creating it at the same moment.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'snapshot_api') THEN
        CREATE ROLE snapshot_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

GRANT USAGE ON SCHEMA public TO snapshot_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO snapshot_api;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO snapshot_api;
REVOKE ALL ON audit FROM snapshot_api;
GRANT SELECT, INSERT ON audit TO snapshot_api;
-- schema_migrations is the migrator's: the API only reads it.
REVOKE ALL ON schema_migrations FROM snapshot_api;
GRANT SELECT ON schema_migrations TO snapshot_api;
-- Tables and sequences later migrations create (run by the same owner) get the same grants;
-- a migration that adds an append-only table revokes UPDATE/DELETE on it like audit above.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO snapshot_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO snapshot_api;

-- What an audit entry says beyond who/what/where: the member acted upon (removals, role
-- changes), details (old and new role) and, for aggregated denials, how many attempts the
-- row stands for.
ALTER TABLE audit
    ADD COLUMN IF NOT EXISTS subject text,
    ADD COLUMN IF NOT EXISTS detail  jsonb,
    ADD COLUMN IF NOT EXISTS count   integer NOT NULL DEFAULT 1 CHECK (count >= 1);
