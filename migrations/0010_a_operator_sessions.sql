-- Operator sign-in on the codec server and the Temporal UI proxy (issue 21): real sessions, one
-- per sign-in, instead of one cookie value derived from the operator token and shared by all.
--
-- The cookie holds a random token; this table only its SHA-256, so reading it signs nobody in.
-- A session ends at its expiry, after the idle timeout, or at sign-out (the row's ended_at).
CREATE TABLE operator_sessions (
    token_hash   bytea PRIMARY KEY,
    operator     text NOT NULL,              -- who signed in, as they named themselves
    ip           text,
    user_agent   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    CHECK (length(operator) BETWEEN 1 AND 200)
);
CREATE INDEX operator_sessions_live ON operator_sessions (expires_at) WHERE ended_at IS NULL;

-- Every sign-in, refused sign-in, throttled sign-in and sign-out: the operators' audit trail, and
-- the counts the sign-in throttle reads (per address and overall), shared by every portal process.
CREATE TABLE operator_sign_in_log (
    id          bigserial PRIMARY KEY,
    event       text NOT NULL CHECK (event IN ('signed_in', 'refused', 'throttled', 'signed_out')),
    operator    text,
    ip          text NOT NULL,
    user_agent  text,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_sign_in_log_refused_ip ON operator_sign_in_log (ip, occurred_at) WHERE event = 'refused';
CREATE INDEX operator_sign_in_log_refused ON operator_sign_in_log (occurred_at) WHERE event = 'refused';

-- The log is append-only for the app (0006's default privileges would allow UPDATE).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'portalpay_app') THEN
        REVOKE UPDATE ON operator_sign_in_log FROM portalpay_app;
    END IF;
END
$$;
