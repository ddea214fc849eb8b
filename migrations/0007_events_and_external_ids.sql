-- The company's own systems (SPEC §12): its ids on our objects, and the events outbox.

-- The company addresses customers, contacts and invoices by its own ids (1–64 printable ASCII).
-- Rows made before §12 (seed data, SQL) have none until the company upserts them.
ALTER TABLE customers ADD COLUMN external_id text UNIQUE
    CHECK (external_id ~ '^[\x21-\x7e]{1,64}$');
ALTER TABLE contacts ADD COLUMN external_id text
    CHECK (external_id ~ '^[\x21-\x7e]{1,64}$');
-- A contact's external id is the company's within one customer.
CREATE UNIQUE INDEX contacts_external_id ON contacts (customer_id, external_id) WHERE external_id IS NOT NULL;
ALTER TABLE invoices ADD COLUMN external_id text UNIQUE
    CHECK (external_id ~ '^[\x21-\x7e]{1,64}$');

-- One row per business fact, written in the same transaction as the change it reports (the
-- outbox pattern): nothing reported that did not happen, nothing that happened left unreported.
-- `seq` orders the rows for paging; `id` (evt_…) is what the API and webhooks show.
-- `dispatched_at`: when the webhook relay started this event's deliveries (NULL: not yet).
CREATE TABLE events (
    seq            bigserial PRIMARY KEY,
    id             text NOT NULL UNIQUE CHECK (id ~ '^evt_[0-9a-z]{24}$'),
    type           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    data           jsonb NOT NULL,
    dispatched_at  timestamptz
);
CREATE INDEX events_type_seq ON events (type, seq);
CREATE INDEX events_undispatched ON events (seq) WHERE dispatched_at IS NULL;
