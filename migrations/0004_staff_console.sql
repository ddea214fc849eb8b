-- The staff console (SPEC §10) and pay-link revocation (SPEC §11).

-- Pay links issued before this moment no longer open anything for the customer's invoices: set
-- when the Customer Portal Payer changes or the payer's email/phone changes. A link's issue time
-- is its expiry minus LINK_TTL_SECONDS (see infra/stores/pay_link_revocations.py).
ALTER TABLE customers ADD COLUMN pay_links_revoked_before timestamptz;

CREATE TABLE staff_users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,              -- Argon2id (argon2-cffi), never the password
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (email = lower(email) AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$')
);
CREATE UNIQUE INDEX staff_users_email ON staff_users (email);

-- Server-side sessions: the cookie holds a random token, the table only its SHA-256, so a read of
-- this table cannot sign anyone in. Ending a row ends the session at once (sign-out, disable).
CREATE TABLE staff_sessions (
    token_hash    bytea PRIMARY KEY,
    staff_user_id bigint NOT NULL REFERENCES staff_users(id),
    csrf_token    text NOT NULL,
    ip            text,
    user_agent    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    flash         text                        -- a one-line notice for the next page (after a redirect)
);
CREATE INDEX staff_sessions_user ON staff_sessions (staff_user_id) WHERE ended_at IS NULL;

-- Failed sign-ins, counted per account and per client address over a sliding window; shared by
-- every portal process because it lives here.
CREATE TABLE staff_sign_in_failures (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL,
    ip          text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_sign_in_failures_email ON staff_sign_in_failures (email, occurred_at);
CREATE INDEX staff_sign_in_failures_ip ON staff_sign_in_failures (ip, occurred_at);
