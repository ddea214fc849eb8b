-- The app's own database role (SPEC §11): it does not own `audit_events` and may only INSERT
-- and SELECT there, so neither a bug nor an insider with the app's credentials can edit, delete,
-- truncate the audit trail or drop its triggers. Migrations run as the owner.
--
-- Creating a role needs CREATEROLE; where the migrating user lacks it, a DBA creates
-- `portalpay_app` (LOGIN) first and this migration only grants.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'portalpay_app') THEN
        IF (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            CREATE ROLE portalpay_app LOGIN;
        ELSE
            RAISE NOTICE 'role portalpay_app missing and % cannot create roles: create it, then migrate again',
                current_user;
            RETURN;
        END IF;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO portalpay_app', current_database());
    GRANT USAGE ON SCHEMA public TO portalpay_app;
    -- Business tables: read, add and update rows; no DELETE, no TRUNCATE, no DDL.
    GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO portalpay_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portalpay_app;
    -- The audit trail: append and read only.
    REVOKE ALL ON audit_events FROM portalpay_app;
    GRANT SELECT, INSERT ON audit_events TO portalpay_app;
    -- The schema's own bookkeeping is the owner's.
    REVOKE ALL ON schema_migrations FROM portalpay_app;
    GRANT SELECT ON schema_migrations TO portalpay_app;
    -- The one table whose rows the app removes: failed sign-ins, cleared by a good one.
    IF to_regclass('public.staff_sign_in_failures') IS NOT NULL THEN
        GRANT DELETE ON staff_sign_in_failures TO portalpay_app;
    END IF;
    -- Tables later migrations create get the same business-table rights.
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO portalpay_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO portalpay_app;
END
$$;
