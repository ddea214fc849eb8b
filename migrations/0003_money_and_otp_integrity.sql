-- Money and OTP integrity (SPEC §11).

-- The payment row is written (status `submitting`, its own idempotency key, the authorization
-- record) and committed before the processor is called; the key belongs to the row, so a reset
-- or re-run of the workflow finds the same row and the processor the same debit.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('submitting', 'accepted', 'declined'));
ALTER TABLE payments ADD COLUMN submitted_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE payments ADD COLUMN answered_at timestamptz;
-- One open debit per invoice, whatever the number of attempts, runs or workers.
DROP INDEX payments_one_accepted_per_invoice;
CREATE UNIQUE INDEX payments_one_open_debit_per_invoice ON payments (invoice_id)
    WHERE status IN ('submitting', 'accepted');

-- Send caps across attempts (per invoice, per destination per day), kept here so every worker
-- shares them and cancel-and-reopen buys nothing. The destination is known by a keyed digest.
ALTER TABLE otp_challenges ADD COLUMN destination_digest bytea;
CREATE INDEX otp_challenges_invoice_recent ON otp_challenges (invoice_id, created_at);
CREATE INDEX otp_challenges_destination_recent ON otp_challenges (destination_digest, created_at);

-- A contact's version moves with every change that matters to a code on its way: the send
-- activity refuses when the payer it was resolved to changed since.
CREATE FUNCTION contacts_touch_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.email IS DISTINCT FROM OLD.email OR NEW.phone IS DISTINCT FROM OLD.phone
       OR NEW.portal_payer IS DISTINCT FROM OLD.portal_payer OR NEW.is_primary IS DISTINCT FROM OLD.is_primary THEN
        NEW.updated_at := clock_timestamp();
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER contacts_version BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION contacts_touch_version();
