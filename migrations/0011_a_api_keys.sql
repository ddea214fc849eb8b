-- The company's own systems call /api/v1 with API keys (SPEC §12).

-- A key's secret is shown once; only a keyed hash (HMAC-SHA256 under API_KEY_PEPPER) and a display
-- prefix are kept, so a copy of this table lets nobody call the API. A rolled key keeps working
-- until `expires_at`; a revoked one stops at once.
CREATE TABLE api_keys (
    id            text PRIMARY KEY CHECK (id ~ '^key_[0-9a-z]{20}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    prefix        text NOT NULL,
    secret_hash   bytea NOT NULL UNIQUE,
    scopes        text[] NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('live', 'test')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    expires_at    timestamptz,
    -- The key this one replaced (`portalpay apikey roll`).
    rolled_from   text REFERENCES api_keys(id)
);

-- Idempotency-Key (SPEC §12): the first answer to a POST/PUT, replayed byte for byte for 24 h
-- to the same key with the same request. Shared by every portal process, so a retry that lands on
-- another process still gets the first answer. A row without `status_code` is a request still
-- running (`locked_until` bounds how long a crashed process can hold it).
CREATE TABLE idempotency_keys (
    api_key_id      text NOT NULL REFERENCES api_keys(id),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint     bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    status_code     integer,
    response_headers jsonb,
    response_body   bytea,
    completed_at    timestamptz,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- SPEC §12: a voided invoice takes no payment; its links answer 410.
ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check CHECK (status IN ('open', 'pending', 'paid', 'void'));
ALTER TABLE invoices ADD COLUMN due_date date;
ALTER TABLE invoices ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE customers ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Answers older than 24 h are purged by the portal now and then: the one right to DELETE here.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'portalpay_app') THEN
        GRANT DELETE ON idempotency_keys TO portalpay_app;
    END IF;
END
$$;
