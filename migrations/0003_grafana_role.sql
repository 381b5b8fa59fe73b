-- The read-only role Grafana connects as (grafana/provisioning/datasources/insights.yaml).
--
-- Roles belong to the whole PostgreSQL cluster while the grants below belong to this
-- database, so every statement is idempotent: a second database on the same server (a
-- test, a staging copy) migrates cleanly and gets its own grants.
--
-- The role is created without a password. The engine sets it at start from
-- GRAFANA_DB_PASSWORD (default "grafana"), see src/sinks/GrafanaRole.ts. Creating the role
-- needs CREATEROLE (or a superuser) for the engine's DATABASE_URL user; a DBA may instead
-- create `grafana` beforehand, and then this migration only grants.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana') THEN
    BEGIN
      CREATE ROLE grafana LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object THEN
      NULL; -- another database on this server created it a moment ago
    END;
  END IF;
  -- Belt and braces on top of the grants: every session of the role is read-only, sees
  -- `shop` first, and cannot hold the engine's tables with a runaway dashboard query.
  -- Only changed when needed, and a role someone else manages is left as it is.
  BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana' AND rolcanlogin) THEN
      ALTER ROLE grafana LOGIN;
    END IF;
    IF NOT EXISTS (
      SELECT FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
      WHERE r.rolname = 'grafana' AND s.setdatabase = 0
        AND s.setconfig @> ARRAY['default_transaction_read_only=on', 'search_path=shop, public', 'statement_timeout=30s']
    ) THEN
      ALTER ROLE grafana SET default_transaction_read_only = on;
      ALTER ROLE grafana SET search_path = shop, public;
      ALTER ROLE grafana SET statement_timeout = '30s';
    END IF;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'role grafana is managed by another role: its LOGIN and session settings were not changed';
  END;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO grafana', current_database());
END
$$;

GRANT USAGE ON SCHEMA shop TO grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA shop TO grafana;

-- Tables created later in `shop` (the hourly rollups, recommendations) by the role that
-- runs the migrations are readable too, without another grant.
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO grafana;
