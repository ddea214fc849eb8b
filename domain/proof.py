"""Proof of authorization (SPEC §9): one document per payment for a bank's dispute desk.

Built from what was recorded, never from what is believed now: the payment row's authorization
record, the `OTP_VERIFIED` (or `OTP_NOT_REQUIRED`) audit row, the payer's designation in the
customer's chain, the payment's status history and the invoice's hash chain verified at export time.
Destinations stay masked as the audit trail holds them; the account is shown by its last 4 only.
This module is the document's shape; `domain/proof_story.py` reads the story into it.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, computed_field

from domain.audit import GENESIS_HASH, compute_event_hash

PRIMARY_NO_DESIGNATION = "primary contact, no designation"


class PayerEvidence(BaseModel):
    contact_id: str
    name: str
    destinations: list[str]  # masked
    designation: str
    designated_by: str | None = None
    designated_at: datetime | None = None
    designation_audit_event_id: int | None = None


class OtpEvidence(BaseModel):
    required: bool
    audit_event_id: int | None = None
    verified_at: datetime | None = None
    channel: str | None = None
    destination: str | None = None  # masked
    send_seq: int | None = None
    check_seq: int | None = None
    code_sent_at: datetime | None = None
    failed_checks_before: int = 0
    not_required_reason: str | None = None


class StatusEntry(BaseModel):
    status: str
    at: datetime | None
    return_code: str | None = None
    detail: str | None = None


class AuditRowEvidence(BaseModel):
    id: int
    event_type: str
    occurred_at: datetime
    actor: str
    channel: str | None
    destination: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class TimelineEntry(BaseModel):
    at: datetime | None
    what: str


class ProofOfAuthorization(BaseModel):
    payment_id: str
    invoice_id: str
    invoice_number: str
    invoice_kind: str
    customer_id: str
    customer_name: str
    amount_cents: int
    currency: str
    amount: str
    method: str
    account_type: str
    account_holder: str
    account_last4: str
    processor_reference: str | None
    status: str  # the payments row's
    latest_status: str  # the newest in the status history
    decline_reason: str | None
    return_code: str | None
    payer: PayerEvidence
    authorization_text: str
    authorized_at: datetime
    ip: str | None
    user_agent: str | None
    otp: OtpEvidence
    status_history_source: str
    status_history: list[StatusEntry]
    timeline: list[TimelineEntry]
    audit_rows: list[AuditRowEvidence]
    chain_ok: bool
    chain_broken_at_event_id: int | None
    chain_checked_at: datetime
    exported_by: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def chain_statement(self) -> str:
        if self.chain_ok:
            return f"Chain verified: all {len(self.audit_rows)} audit rows of this invoice hash correctly."
        at = f" at audit row #{self.chain_broken_at_event_id}" if self.chain_broken_at_event_id else ""
        return f"Chain broken{at}: the audit trail of this invoice was altered; do not rely on it as is."


def first_broken_row(rows: Sequence[Mapping[str, Any]], *, key: bytes) -> int | None:
    """The id of the first row whose link or hash does not check, or None if the chain holds."""
    expected_prev = GENESIS_HASH
    for row in rows:
        if (
            row["prev_hash"] != expected_prev
            or compute_event_hash(row["prev_hash"], row, key=key) != row["hash"]
        ):
            return int(row["id"])
        expected_prev = row["hash"]
    return None


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "(time not recorded)"
