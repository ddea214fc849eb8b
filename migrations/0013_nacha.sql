-- Bank-direct ACH (SPEC §13): entries waiting for the next NACHA file, the files PortalPay wrote
-- and uploaded, the files the bank sent back, notices of change and each bank account's prenote.
--
-- A full account number exists in one place only: `ach_entries.account_number_sealed`, encrypted
-- under NACHA_ACCOUNT_KEY, until the file holding the entry is uploaded; then it is set NULL.

-- Trace numbers are NACHA_ODFI_ID + this 7-digit sequence: never reused (NO CYCLE).
CREATE SEQUENCE ach_trace_seq MINVALUE 1 MAXVALUE 9999999 NO CYCLE;

CREATE TABLE ach_files (
    id                  text PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    file_date           date NOT NULL,
    file_id_modifier    text NOT NULL CHECK (file_id_modifier ~ '^[A-Z0-9]$'),
    sha256              text NOT NULL,
    entry_count         integer NOT NULL,
    prenote_count       integer NOT NULL,
    batch_count         integer NOT NULL,
    debit_total_cents   bigint NOT NULL,
    -- The file as written (full account numbers), AES-GCM under NACHA_ACCOUNT_KEY; once uploaded,
    -- replaced by the same file with each account number cut to its last four.
    body_sealed         bytea NOT NULL,
    status              text NOT NULL CHECK (status IN ('written', 'uploaded', 'failed')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    uploaded_at         timestamptz,
    upload_attempts     integer NOT NULL DEFAULT 0,
    last_attempt_at     timestamptz,
    last_error          text,
    staff_notified_at   timestamptz,
    UNIQUE (file_date, file_id_modifier)
);
-- At most one file waits for its upload: a re-run uploads that one, never a second with its entries.
CREATE UNIQUE INDEX ach_files_one_unsent ON ach_files ((true)) WHERE status <> 'uploaded';

CREATE TABLE ach_entries (
    id                     text PRIMARY KEY,             -- the processor reference of a debit
    kind                   text NOT NULL CHECK (kind IN ('debit', 'prenote')),
    idempotency_key        text UNIQUE,                  -- debits only
    request_digest         text,
    payment_id             text,
    invoice_id             text,
    transaction_code       text NOT NULL CHECK (transaction_code IN ('27', '37', '28', '38')),
    routing_number         text NOT NULL CHECK (routing_number ~ '^[0-9]{9}$'),
    account_number_sealed  bytea,
    account_last4          text NOT NULL,
    bank_fingerprint       text NOT NULL,
    amount_cents           bigint NOT NULL CHECK (amount_cents >= 0),
    individual_id          text NOT NULL UNIQUE,
    individual_name        text NOT NULL,
    trace_number           text NOT NULL UNIQUE CHECK (trace_number ~ '^[0-9]{15}$'),
    effective_date         date,
    status                 text NOT NULL CHECK (status IN (
                               'waiting', 'sent', 'settled', 'failed', 'returned', 'canceled')),
    return_code            text,
    returned_at            timestamptz,
    file_id                text REFERENCES ach_files(id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    sent_at                timestamptz,
    settled_at             timestamptz,
    CHECK (kind = 'prenote' OR idempotency_key IS NOT NULL),
    -- Once sent, the number is gone (SPEC §9/§13).
    CHECK (status IN ('waiting', 'canceled', 'failed') OR account_number_sealed IS NULL)
);
CREATE INDEX ach_entries_due ON ach_entries (status) WHERE status = 'waiting';
CREATE INDEX ach_entries_fingerprint ON ach_entries (bank_fingerprint);
CREATE INDEX ach_entries_payment ON ach_entries (payment_id);

-- Each bank account's prenote (by keyed fingerprint): its debits wait for it to clear.
CREATE TABLE ach_prenotes (
    bank_fingerprint  text PRIMARY KEY,
    entry_id          text NOT NULL REFERENCES ach_entries(id),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Events the nacha processor publishes (returns, settlements), read by reconciliation in `seq` order.
CREATE TABLE ach_events (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    entry_id    text NOT NULL REFERENCES ach_entries(id),
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Files the bank sent back: each ingested once, by its content.
CREATE TABLE ach_inbound_files (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    sha256       text NOT NULL UNIQUE,
    size_bytes   integer,  -- with the name: a file already read is not downloaded again
    returns      integer NOT NULL DEFAULT 0,
    notices      integer NOT NULL DEFAULT 0,
    unknown      integer NOT NULL DEFAULT 0,
    problems     jsonb NOT NULL DEFAULT '[]'::jsonb,
    source       text NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now()
);

-- Notices of change (addenda 98). Corrected data that holds an account number is kept masked, and
-- sealed under NACHA_ACCOUNT_KEY for staff who must act on it.
CREATE TABLE ach_notices (
    id                     bigserial PRIMARY KEY,
    inbound_file_id        bigint NOT NULL REFERENCES ach_inbound_files(id),
    trace_number           text NOT NULL,
    change_code            text NOT NULL,
    corrected_data_masked  text NOT NULL,
    corrected_data_sealed  bytea,
    entry_id               text REFERENCES ach_entries(id),
    payment_id             text,
    bank_fingerprint       text,
    account_last4          text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    resolved_at            timestamptz,
    UNIQUE (inbound_file_id, trace_number)
);
CREATE INDEX ach_notices_open ON ach_notices (bank_fingerprint) WHERE resolved_at IS NULL;

-- Returns and notices naming a trace number nobody knows: for staff (/staff/attention).
CREATE TABLE ach_unknown_traces (
    id               bigserial PRIMARY KEY,
    inbound_file_id  bigint NOT NULL REFERENCES ach_inbound_files(id),
    trace_number     text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('return', 'notice')),
    code             text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (inbound_file_id, trace_number, kind)
);
