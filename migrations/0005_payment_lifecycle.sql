-- The payment after PAID (SPEC §9): settlement, returns, account validation, reconciliation.

-- ---- The sandbox processor's own ledger (the `portalpay processor` service) -----------------
-- Full account numbers never land here: the outcome the number decides is kept as `scenario`.
-- `instance` partitions the ledger like separate sandbox accounts: each service process advances,
-- lists and delivers only its own instance's debits (tests run several side by side).
CREATE TABLE sandbox_debits (
    id               text PRIMARY KEY,
    instance         text NOT NULL DEFAULT 'default',
    idempotency_key  text NOT NULL,
    request_digest   text NOT NULL,
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
    currency         text NOT NULL,
    routing_number   text NOT NULL,
    account_last4    text NOT NULL,
    scenario         text NOT NULL CHECK (scenario IN ('settle', 'fail_r01', 'return_r10', 'declined')),
    status           text NOT NULL CHECK (status IN ('declined', 'processing', 'settled', 'failed', 'returned', 'canceled')),
    decline_reason   text,
    return_code      text,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    settle_at        timestamptz,
    settled_at       timestamptz,
    return_at        timestamptz,
    closed_at        timestamptz,
    UNIQUE (instance, idempotency_key)
);
CREATE INDEX sandbox_debits_due ON sandbox_debits (instance, status, settle_at, return_at);

-- Events in the order they happened; `seq` is the cursor of GET /v1/events?after=.
CREATE TABLE sandbox_events (
    seq          bigserial PRIMARY KEY,
    instance     text NOT NULL DEFAULT 'default',
    id           text NOT NULL UNIQUE,
    debit_id     text NOT NULL REFERENCES sandbox_debits(id),
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_events_instance ON sandbox_events (instance, seq);

-- One webhook delivery per event (two when duplicated on purpose), retried with backoff.
CREATE TABLE sandbox_deliveries (
    id               bigserial PRIMARY KEY,
    event_seq        bigint NOT NULL REFERENCES sandbox_events(seq),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    dropped          boolean NOT NULL DEFAULT false,
    last_error       text
);
CREATE INDEX sandbox_deliveries_due ON sandbox_deliveries (next_attempt_at) WHERE delivered_at IS NULL AND NOT dropped;

CREATE TABLE sandbox_validations (
    id               text PRIMARY KEY,
    routing_number   text NOT NULL,
    account_last4    text NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('valid', 'invalid')),
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- ---- PortalPay's side ---------------------------------------------------------------------
-- Every processor event as received (webhook or reconciliation), once per id.
CREATE TABLE processor_events (
    id            text PRIMARY KEY,
    processor     text NOT NULL,
    type          text NOT NULL,
    debit_id      text,
    payment_id    text,
    payload       jsonb NOT NULL,
    source        text NOT NULL CHECK (source IN ('webhook', 'reconciliation')),
    received_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    applied       text
);
CREATE INDEX processor_events_undelivered ON processor_events (received_at) WHERE delivered_at IS NULL;
CREATE INDEX processor_events_payment ON processor_events (payment_id);

CREATE TABLE processor_cursors (
    processor   text PRIMARY KEY,
    cursor      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconciliation_runs (
    id          bigserial PRIMARY KEY,
    run_key     text NOT NULL UNIQUE,
    report      jsonb NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

-- A payment's life, one row per status it reached (a status is reached once).
CREATE TABLE payment_status_history (
    payment_id   text NOT NULL REFERENCES payments(id),
    status       text NOT NULL,
    return_code  text,
    event_id     text,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, status)
);

-- Bank accounts are known by a keyed fingerprint, HMAC(routing + account) under BANK_FINGERPRINT_KEY.
CREATE TABLE validated_bank_accounts (
    fingerprint    text PRIMARY KEY,
    validation_id  text NOT NULL,
    validated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE blocked_bank_accounts (
    fingerprint    text PRIMARY KEY,
    account_last4  text NOT NULL,
    return_code    text NOT NULL,
    payment_id     text NOT NULL,
    blocked_at     timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE payments ADD COLUMN bank_fingerprint text;
ALTER TABLE payments ADD COLUMN return_code text;
ALTER TABLE payments ADD COLUMN expected_settlement_at timestamptz;
ALTER TABLE payments ADD COLUMN status_changed_at timestamptz;

ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN (
    'submitting', 'accepted', 'declined', 'processing', 'settled', 'failed', 'returned', 'canceled'));

ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check CHECK (status IN ('open', 'pending', 'paid'));

-- One open debit per invoice (0003), now over the lifecycle's statuses: a debit being submitted,
-- processing or settled holds the invoice; a failed, returned or canceled one frees it.
DROP INDEX payments_one_open_debit_per_invoice;
CREATE UNIQUE INDEX payments_one_open_debit_per_invoice ON payments (invoice_id)
    WHERE status IN ('submitting', 'accepted', 'processing', 'settled');
