-- PortalPay initial schema.

CREATE TABLE customers (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers(id),
    name         text NOT NULL,
    email        text,
    phone        text,
    is_primary   boolean NOT NULL DEFAULT false,
    portal_payer boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- SPEC §1: one Customer Portal Payer per customer, and one primary contact, enforced here.
CREATE UNIQUE INDEX contacts_one_portal_payer ON contacts (customer_id) WHERE portal_payer;
CREATE UNIQUE INDEX contacts_one_primary ON contacts (customer_id) WHERE is_primary;

CREATE TABLE invoices (
    id            text PRIMARY KEY,
    number        text NOT NULL UNIQUE,
    customer_id   text NOT NULL REFERENCES customers(id),
    kind          text NOT NULL CHECK (kind IN ('invoice', 'deposit')),
    amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
    balance_cents bigint NOT NULL CHECK (balance_cents >= 0),
    currency      text NOT NULL DEFAULT 'USD',
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid')),
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per code sent. Only a keyed digest (HMAC with the server key) of the code is kept.
CREATE TABLE otp_challenges (
    run_id              text NOT NULL,
    send_seq            integer NOT NULL,
    workflow_id         text NOT NULL,
    invoice_id          text NOT NULL REFERENCES invoices(id),
    contact_id          text NOT NULL REFERENCES contacts(id),
    channel             text NOT NULL CHECK (channel IN ('email', 'sms')),
    destination_masked  text NOT NULL,
    code_digest         bytea NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    sent_at             timestamptz,
    voided_at           timestamptz,
    used_at             timestamptz,
    provider            text,
    provider_message_id text,
    delivery_status     text,
    PRIMARY KEY (run_id, send_seq)
);
CREATE INDEX otp_challenges_provider_message ON otp_challenges (provider_message_id);

-- One row per verification, so a retried check answers what the first one decided.
CREATE TABLE otp_checks (
    run_id     text NOT NULL,
    check_seq  integer NOT NULL,
    send_seq   integer NOT NULL,
    invoice_id text NOT NULL REFERENCES invoices(id),
    ok         boolean NOT NULL,
    reason     text,
    checked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, check_seq)
);
CREATE INDEX otp_checks_invoice_failures ON otp_checks (invoice_id, checked_at) WHERE NOT ok;

-- The sandbox processor's own ledger: it honours idempotency keys like a real processor.
CREATE TABLE sandbox_ledger (
    idempotency_key text PRIMARY KEY,
    reference       text NOT NULL UNIQUE,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    routing_number  text NOT NULL,
    account_last4   text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('accepted', 'declined')),
    decline_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments (
    id                   text PRIMARY KEY,
    idempotency_key      text NOT NULL UNIQUE,
    invoice_id           text NOT NULL REFERENCES invoices(id),
    customer_id          text NOT NULL REFERENCES customers(id),
    payer_contact_id     text NOT NULL REFERENCES contacts(id),
    workflow_id          text NOT NULL,
    run_id               text NOT NULL,
    method               text NOT NULL CHECK (method IN ('echeck', 'ach')),
    amount_cents         bigint NOT NULL,
    currency             text NOT NULL,
    account_holder       text NOT NULL,
    account_type         text NOT NULL CHECK (account_type IN ('checking', 'savings')),
    routing_number       text NOT NULL,
    account_last4        text NOT NULL CHECK (account_last4 ~ '^[0-9]{4}$'),
    status               text NOT NULL CHECK (status IN ('accepted', 'declined')),
    decline_reason       text,
    processor_reference  text,
    authorization_text   text NOT NULL,
    authorized_at        timestamptz NOT NULL,
    ip                   text,
    user_agent           text,
    otp_audit_event_id   bigint,
    retain_until         timestamptz NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
-- At most one accepted payment per invoice, whatever the number of attempts.
CREATE UNIQUE INDEX payments_one_accepted_per_invoice ON payments (invoice_id) WHERE status = 'accepted';

CREATE TABLE audit_events (
    id               bigserial PRIMARY KEY,
    event_key        text NOT NULL UNIQUE,
    chain_id         text NOT NULL,
    event_type       text NOT NULL,
    invoice_id       text,
    customer_id      text,
    payer_contact_id text,
    workflow_id      text,
    run_id           text,
    channel          text,
    destination      text,
    actor            text NOT NULL,
    ip               text,
    user_agent       text,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    prev_hash        text NOT NULL,
    hash             text NOT NULL
);
CREATE INDEX audit_events_invoice ON audit_events (invoice_id, id);
CREATE INDEX audit_events_chain ON audit_events (chain_id, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Console provider's messages, read by the developer (terminal, GET /dev/outbox) and by tests.
CREATE TABLE dev_outbox (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL,
    to_address      text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    body            text NOT NULL,
    idempotency_key text UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
