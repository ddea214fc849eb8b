"""How a payment's story is read from what was recorded, for the proof of authorization (SPEC §9).

The payer's designation in force when they authorized, the verification behind the debit (or why
none was needed), the payment's status history and a timeline, all from the payment row and the
audit rows; `build_proof` puts them in one `ProofOfAuthorization`.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.money import format_amount
from domain.proof import (
    PRIMARY_NO_DESIGNATION,
    AuditRowEvidence,
    OtpEvidence,
    PayerEvidence,
    ProofOfAuthorization,
    StatusEntry,
    TimelineEntry,
    first_broken_row,
    when,
)

_CHANNEL_WORDS = {"sms": "SMS", "email": "email"}


def _channel(value: Any) -> str:
    return _CHANNEL_WORDS.get(str(value), str(value))


def _designation(
    payment: Mapping[str, Any],
    contact: Mapping[str, Any],
    customer_rows: Sequence[Mapping[str, Any]],
    run_rows: Sequence[Mapping[str, Any]],
) -> PayerEvidence:
    contact_id = str(payment["payer_contact_id"])
    # The designation in force when the payer authorized: the last one naming this contact before then.
    designated = [
        r
        for r in customer_rows
        if r["event_type"] == "PORTAL_PAYER_DESIGNATED"
        and r.get("payer_contact_id") == contact_id
        and r["occurred_at"] <= payment["authorized_at"]
    ]
    destinations = [str(d) for d in contact.get("destinations", [])]
    base = {"contact_id": contact_id, "name": str(contact["name"]), "destinations": destinations}
    if designated:
        row = designated[-1]
        return PayerEvidence(
            **base,
            designation=f"Marked as Customer Portal Payer by {row['actor']} on {when(row['occurred_at'])}",
            designated_by=str(row["actor"]),
            designated_at=row["occurred_at"],
            designation_audit_event_id=int(row["id"]),
        )
    # What the attempt itself recorded about the payer beats the contact's flag today.
    resolved = next((r for r in run_rows if r["event_type"] == "PAYER_RESOLVED"), None)
    marked = (resolved.get("details") or {}).get("designated_portal_payer") if resolved else None
    if marked is None:
        marked = bool(contact.get("portal_payer"))
    if marked:
        return PayerEvidence(
            **base,
            designation="Marked as Customer Portal Payer; the marking predates the audit trail (no designation row)",
        )
    return PayerEvidence(**base, designation=PRIMARY_NO_DESIGNATION)


def _otp(payment: Mapping[str, Any], run_rows: Sequence[Mapping[str, Any]]) -> OtpEvidence:
    event_id = payment.get("otp_audit_event_id")
    verified = next((r for r in run_rows if event_id is not None and r["id"] == event_id), None)
    if verified is not None:
        details = verified.get("details") or {}
        send_seq = details.get("send_seq")
        sent = next(
            (
                r
                for r in run_rows
                if r["event_type"] == "OTP_SENT" and (r.get("details") or {}).get("send_seq") == send_seq
            ),
            None,
        )
        failed = [r for r in run_rows if r["event_type"] == "OTP_VERIFY_FAILED" and r["id"] < verified["id"]]
        return OtpEvidence(
            required=True,
            audit_event_id=int(verified["id"]),
            verified_at=verified["occurred_at"],
            channel=verified.get("channel"),
            destination=verified.get("destination"),
            send_seq=send_seq,
            check_seq=details.get("check_seq"),
            code_sent_at=sent["occurred_at"] if sent is not None else None,
            failed_checks_before=len(failed),
        )
    not_required = next((r for r in run_rows if r["event_type"] == "OTP_NOT_REQUIRED"), None)
    if not_required is not None:
        details = not_required.get("details") or {}
        return OtpEvidence(
            required=False,
            audit_event_id=int(not_required["id"]),
            not_required_reason=str(details.get("reason") or "not recorded"),
        )
    return OtpEvidence(required=True, not_required_reason=None)


_ATTEMPT_STATUSES = frozenset({"submitting", "accepted", "declined"})
_STATUS_EVENTS = {
    "PAYMENT_SUBMITTED": "submitting",
    "PAYMENT_ACCEPTED": "accepted",
    "PAYMENT_DECLINED": "declined",
    "PAYMENT_SETTLED": "settled",
    "PAYMENT_FAILED": "failed",
    "PAYMENT_RETURNED": "returned",
}


def _about_payment(row: Mapping[str, Any], payment_id: str) -> bool:
    return (row.get("details") or {}).get("payment_id") == payment_id


def _history_from_table(rows: Sequence[Mapping[str, Any]]) -> list[StatusEntry]:
    """Rows of a status-history table, whatever its exact column names (the lifecycle owns them)."""
    out = []
    for row in rows:
        status = row.get("status") or row.get("to_status") or row.get("new_status")
        at = (
            row.get("occurred_at") or row.get("changed_at") or row.get("recorded_at") or row.get("created_at")
        )
        out.append(
            StatusEntry(
                status=str(status),
                at=at,
                return_code=row.get("return_code"),
                detail=row.get("reason") or row.get("detail") or row.get("source"),
            )
        )
    return out


def _history_from_audit(rows: Sequence[Mapping[str, Any]], payment: Mapping[str, Any]) -> list[StatusEntry]:
    out = []
    for row in rows:
        status = _STATUS_EVENTS.get(row["event_type"])
        if status is None or not _about_payment(row, str(payment["id"])):
            continue
        details = row.get("details") or {}
        out.append(
            StatusEntry(
                status=status,
                at=row["occurred_at"],
                return_code=details.get("return_code"),
                detail=details.get("decline_reason") or details.get("processor_reference"),
            )
        )
    # The row's status joins the story only if no audit row told it (a lifecycle event may be newer).
    if payment["status"] not in {entry.status for entry in out}:
        out.append(
            StatusEntry(status=str(payment["status"]), at=payment.get("answered_at"), detail="current")
        )
    return out


def _timeline(
    payment: Mapping[str, Any],
    invoice_rows: Sequence[Mapping[str, Any]],
    otp: OtpEvidence,
    history: Sequence[StatusEntry],
) -> list[TimelineEntry]:
    run_id = payment["run_id"]
    entries: list[TimelineEntry] = []
    for row in invoice_rows:
        kind = row["event_type"]
        details = row.get("details") or {}
        at = row["occurred_at"]
        if kind == "PAYMENT_REQUEST_SENT" and at <= payment["authorized_at"]:
            sent = "sent" if details.get("sent", True) else "made but not delivered"
            entries.append(
                TimelineEntry(
                    at=at,
                    what=f"Payment request {sent} by {_channel(row.get('channel'))} to "
                    f"{row.get('destination') or '(no destination)'} (by {row['actor']})",
                )
            )
        if row.get("run_id") != run_id:
            continue
        if kind == "ATTEMPT_STARTED":
            entries.append(TimelineEntry(at=at, what=f"Payment page opened from IP {row.get('ip') or '?'}"))
        elif kind == "OTP_SENT":
            entries.append(
                TimelineEntry(
                    at=at,
                    what=f"Code #{details.get('send_seq')} sent by {_channel(row.get('channel'))} "
                    f"to {row.get('destination')}",
                )
            )
        elif kind == "OTP_VERIFY_FAILED":
            entries.append(
                TimelineEntry(at=at, what=f"Wrong code entered (entry #{details.get('check_seq')})")
            )
        elif kind == "OTP_VERIFIED" and row["id"] == otp.audit_event_id:
            entries.append(
                TimelineEntry(
                    at=at,
                    what=f"Code verified (code #{details.get('send_seq')}, entry #{details.get('check_seq')}) "
                    f"from IP {row.get('ip') or '?'}",
                )
            )
        elif kind == "OTP_NOT_REQUIRED":
            entries.append(
                TimelineEntry(at=at, what=f"Verification code not required: {details.get('reason') or '?'}")
            )
    entries.append(
        TimelineEntry(
            at=payment["authorized_at"],
            what=f"Debit authorized from IP {payment.get('ip') or '(not recorded)'} "
            f"with browser {payment.get('user_agent') or '(not recorded)'}",
        )
    )
    for entry in history:
        words = {
            "submitting": "Debit submitted to the processor",
            "accepted": "Debit accepted by the processor",
            "processing": "Debit processing",
            "declined": "Debit declined",
            "settled": "Debit settled",
            "failed": "Debit failed",
            "returned": "Debit returned",
            "canceled": "Debit canceled",
        }.get(entry.status, f"Payment status {entry.status}")
        extra = [x for x in (entry.return_code, entry.detail if entry.detail != "current" else None) if x]
        entries.append(TimelineEntry(at=entry.at, what=words + (f" ({', '.join(extra)})" if extra else "")))
    return sorted(entries, key=lambda e: (e.at is None, e.at))


def build_proof(
    *,
    payment: Mapping[str, Any],
    invoice: Mapping[str, Any],
    contact: Mapping[str, Any],
    invoice_rows: Sequence[Mapping[str, Any]],
    customer_rows: Sequence[Mapping[str, Any]],
    status_rows: Sequence[Mapping[str, Any]] | None,
    checked_at: datetime,
    exported_by: str,
    chain_key: bytes,
) -> ProofOfAuthorization:
    """`status_rows` is None when no status-history table exists: the audit rows tell the story."""
    run_rows = [r for r in invoice_rows if r.get("run_id") == payment["run_id"]]
    otp = _otp(payment, run_rows)
    # The attempt told submitting/accepted/declined in the audit trail; the payment's lifecycle
    # keeps processing/settled/failed/returned in its own table. The story is both, in time order.
    history = _history_from_audit(invoice_rows, payment)
    source = "audit_trail"
    if status_rows:
        # The attempt's part first (submitting, then accepted or declined), then the lifecycle's
        # table in its order, then what only the audit trail told of the lifecycle.
        attempt_part = [e for e in history if e.status in _ATTEMPT_STATUSES]
        lifecycle = _history_from_table(status_rows)
        told = {e.status for e in attempt_part} | {e.status for e in lifecycle}
        history = attempt_part + lifecycle + [e for e in history if e.status not in told]
        source = "audit_trail+payment_status_history"
    return_code = payment.get("return_code") or next(
        (e.return_code for e in reversed(history) if e.return_code), None
    )
    broken = first_broken_row(invoice_rows, key=chain_key)
    return ProofOfAuthorization(
        payment_id=str(payment["id"]),
        invoice_id=str(invoice["id"]),
        invoice_number=str(invoice["number"]),
        invoice_kind=str(invoice["kind"]),
        customer_id=str(invoice["customer_id"]),
        customer_name=str(invoice["customer_name"]),
        amount_cents=int(payment["amount_cents"]),
        currency=str(payment["currency"]),
        amount=format_amount(int(payment["amount_cents"]), str(payment["currency"])),
        method=str(payment["method"]),
        account_type=str(payment["account_type"]),
        account_holder=str(payment["account_holder"]),
        account_last4=str(payment["account_last4"]),
        processor_reference=payment.get("processor_reference"),
        status=str(payment["status"]),
        latest_status=history[-1].status if history else str(payment["status"]),
        decline_reason=payment.get("decline_reason"),
        return_code=return_code,
        payer=_designation(payment, contact, customer_rows, run_rows),
        authorization_text=str(payment["authorization_text"]),
        authorized_at=payment["authorized_at"],
        ip=payment.get("ip"),
        user_agent=payment.get("user_agent"),
        otp=otp,
        status_history_source=source,
        status_history=history,
        timeline=_timeline(payment, invoice_rows, otp, history),
        audit_rows=[
            AuditRowEvidence(
                id=int(r["id"]),
                event_type=str(r["event_type"]),
                occurred_at=r["occurred_at"],
                actor=str(r["actor"]),
                channel=r.get("channel"),
                destination=r.get("destination"),
                ip=r.get("ip"),
                user_agent=r.get("user_agent"),
                details=dict(r.get("details") or {}),
                prev_hash=str(r["prev_hash"]),
                hash=str(r["hash"]),
            )
            for r in invoice_rows
        ],
        chain_ok=broken is None,
        chain_broken_at_event_id=broken,
        chain_checked_at=checked_at,
        exported_by=exported_by,
    )
