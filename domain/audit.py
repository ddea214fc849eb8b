"""Audit event types and the per-invoice hash chain that makes tampering visible.

Each row's hash (an HMAC under the server's chain key) covers its own fields and the previous row's hash for the same invoice, so an
edited, removed or reordered row breaks every hash after it.
"""

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64


class AuditEventType(StrEnum):
    ATTEMPT_STARTED = "ATTEMPT_STARTED"
    PAYER_RESOLVED = "PAYER_RESOLVED"
    OTP_NOT_REQUIRED = "OTP_NOT_REQUIRED"
    OTP_SENT = "OTP_SENT"
    OTP_DELIVERY_FAILED = "OTP_DELIVERY_FAILED"
    OTP_DELIVERY_STATUS = "OTP_DELIVERY_STATUS"
    OTP_VERIFY_FAILED = "OTP_VERIFY_FAILED"
    OTP_VERIFIED = "OTP_VERIFIED"
    OTP_LOCKED = "OTP_LOCKED"
    PAYMENT_SUBMITTED = "PAYMENT_SUBMITTED"
    PAYMENT_ACCEPTED = "PAYMENT_ACCEPTED"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_EVENT = "PAYMENT_EVENT"
    NO_CONTACT_METHOD = "NO_CONTACT_METHOD"
    ATTEMPT_EXPIRED = "ATTEMPT_EXPIRED"
    ATTEMPT_CANCELLED = "ATTEMPT_CANCELLED"
    PORTAL_PAYER_DESIGNATED = "PORTAL_PAYER_DESIGNATED"
    PAYMENT_REQUEST_SENT = "PAYMENT_REQUEST_SENT"
    # SPEC §9-§11
    PAYMENT_SETTLED = "PAYMENT_SETTLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_RETURNED = "PAYMENT_RETURNED"
    BANK_ACCOUNT_BLOCKED = "BANK_ACCOUNT_BLOCKED"
    ACCOUNT_VALIDATED = "ACCOUNT_VALIDATED"
    ACCOUNT_VALIDATION_FAILED = "ACCOUNT_VALIDATION_FAILED"
    CONTACT_CHANGED = "CONTACT_CHANGED"
    OTP_SEND_REFUSED = "OTP_SEND_REFUSED"
    PAY_LINK_REVOKED = "PAY_LINK_REVOKED"
    PROOF_EXPORTED = "PROOF_EXPORTED"
    # SPEC §13 (bank-direct ACH)
    NACHA_FILE_SENT = "NACHA_FILE_SENT"
    NOTICE_OF_CHANGE = "NOTICE_OF_CHANGE"
    PRENOTE_SENT = "PRENOTE_SENT"
    PAYMENT_CANCELED = "PAYMENT_CANCELED"
    PROCESSOR_EVENT_LATE = "PROCESSOR_EVENT_LATE"
    # SPEC §9, "whatever fails": a notice nobody could receive; a payment with no news long after its date.
    PAYMENT_NOTICE_FAILED = "PAYMENT_NOTICE_FAILED"
    PAYMENT_SETTLEMENT_OVERDUE = "PAYMENT_SETTLEMENT_OVERDUE"
    STAFF_SIGNED_IN = "STAFF_SIGNED_IN"
    STAFF_SIGN_IN_FAILED = "STAFF_SIGN_IN_FAILED"
    # SPEC §12 (the API keys, invoices and import half)
    API_KEY_CREATED = "API_KEY_CREATED"
    API_KEY_REVOKED = "API_KEY_REVOKED"
    CUSTOMER_CHANGED = "CUSTOMER_CHANGED"
    INVOICE_CREATED = "INVOICE_CREATED"
    INVOICE_UPDATED = "INVOICE_UPDATED"
    INVOICE_VOIDED = "INVOICE_VOIDED"
    IMPORT_COMMITTED = "IMPORT_COMMITTED"
    # SPEC §12 (the webhooks half)
    WEBHOOK_ENDPOINT_CHANGED = "WEBHOOK_ENDPOINT_CHANGED"


# The fields the hash covers, in a fixed order: changing this list breaks every stored chain.
HASHED_FIELDS = (
    "event_key",
    "event_type",
    "invoice_id",
    "customer_id",
    "payer_contact_id",
    "workflow_id",
    "run_id",
    "channel",
    "destination",
    "actor",
    "ip",
    "user_agent",
    "details",
    "occurred_at",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def compute_event_hash(prev_hash: str, event: Mapping[str, Any], *, key: bytes) -> str:
    """HMAC-SHA256 under AUDIT_CHAIN_KEY: whoever can insert rows cannot forge a chain (SPEC §11)."""
    body = {name: _canonical(event.get(name)) for name in HASHED_FIELDS}
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hmac.new(key, f"{prev_hash}|{encoded}".encode(), hashlib.sha256).hexdigest()


def verify_chain(rows: Iterable[Mapping[str, Any]], *, key: bytes) -> bool:
    """Rows of one chain, oldest first, each with `prev_hash` and `hash`."""
    expected_prev = GENESIS_HASH
    for row in rows:
        if row["prev_hash"] != expected_prev:
            return False
        if not hmac.compare_digest(compute_event_hash(row["prev_hash"], row, key=key), row["hash"]):
            return False
        expected_prev = row["hash"]
    return True
