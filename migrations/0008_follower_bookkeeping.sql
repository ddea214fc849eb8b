-- The payment follower after PAID (SPEC §9, "A payment is followed to its end, whatever fails").

-- An event is handled when its effect is applied (`applied` set by the follower's effect, in the
-- same transaction), not when it was signalled. `unmatched_at`: reconciliation looked and found no
-- payment of ours for it; it is reported, skipped, and never holds up the others.
ALTER TABLE processor_events ADD COLUMN applied_at timestamptz;
ALTER TABLE processor_events ADD COLUMN unmatched_at timestamptz;
CREATE INDEX processor_events_unapplied ON processor_events (received_at)
    WHERE applied IS NULL AND payment_id IS NOT NULL;
CREATE INDEX processor_events_unresolved ON processor_events (received_at)
    WHERE applied IS NULL AND payment_id IS NULL;
CREATE INDEX processor_events_debit ON processor_events (debit_id);

-- Events the processor did not confirm for the payment's debit (a forged row or signal, an event
-- naming someone else's debit): nothing changed; the next reconcile report names each once.
CREATE TABLE refused_processor_events (
    event_id     text PRIMARY KEY,
    payment_id   text NOT NULL,
    debit_id     text,
    event_type   text NOT NULL,
    source       text NOT NULL,
    reason       text NOT NULL,
    refused_at   timestamptz NOT NULL DEFAULT now(),
    reported_in  text
);
CREATE INDEX refused_processor_events_unreported ON refused_processor_events (refused_at)
    WHERE reported_in IS NULL;
