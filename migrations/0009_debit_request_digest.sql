-- Issue 20 finding 2: a payment row's idempotency key is reused only for the same request (SPEC §9).
-- The row keeps a keyed digest (HMAC under BANK_FINGERPRINT_KEY) of amount, currency, routing,
-- full account number and account type; never the number itself. Rows written before this have
-- none: an open one is resolved at the processor by its key instead of being reused.
ALTER TABLE payments ADD COLUMN request_digest text;

-- Orphaned `submitting` rows are found by age (the next attempt, reconciliation).
CREATE INDEX payments_submitting_since ON payments (submitted_at) WHERE status = 'submitting';
