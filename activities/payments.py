"""Submitting the debit: the payment row first, then the processor, then the answer (SPEC §11).

1. In one transaction: the payment row (status `submitting`, the idempotency key it owns, the
   web-debit authorization record) and its `PAYMENT_SUBMITTED` audit row are committed.
2. The processor is called with the row's key.
3. In one transaction: the row takes the answer (an accepted debit is `processing`, SPEC §9), the
   invoice is `pending` with its balance held, and the outcome's audit row is written.

A retry, a worker crash, or an operator's reset or re-run finds the same row (by run, else the
invoice's one open debit) and so presents the same key: the processor answers with the same
debit. A database error after the processor answered leaves the row `submitting`, and the next
try completes it. One open debit per invoice is a unique index.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.activity_io import AuditEventInput, ProcessorDebitRequest
from domain.attempt import PaymentReceipt
from domain.audit import AuditEventType
from domain.errors import ErrorType
from domain.masking import last4
from infra.providers.processor.client import ProcessorClient, ProcessorRejected
from infra.stores.audit_trail import append_event

# NACHA: keep the authorization (and the authentication behind it) two years.
AUTHORIZATION_RETENTION = timedelta(days=2 * 365)

_COLUMNS = (
    "id, idempotency_key, status, routing_number, account_last4, amount_cents, method, decline_reason,"
    " processor_reference"
)
# A debit the processor accepted, whatever became of it since (SPEC §9 statuses).
_ACCEPTED = frozenset({"accepted", "processing", "settled", "failed", "returned", "canceled"})
# Debits that hold the invoice: one at most (a unique index).
_OPEN = ("submitting", "accepted", "processing", "settled")
_ROW = f"SELECT {_COLUMNS} FROM payments"


class _InvoiceAlreadyPaid(Exception):
    """Another payment of this invoice was accepted: nothing to debit."""


@dataclass(frozen=True)
class _Outcome:
    accepted: bool
    decline_reason: str | None
    reference: str | None
    expected_settlement_at: datetime | None = None


class PaymentActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        processor: ProcessorClient,
        *,
        audit_key: bytes,
        metrics: object | None = None,
    ) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._processor = processor
        self._metrics = metrics

    @activity.defn(name="submit_debit")
    async def submit_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        try:
            row = await self._open_payment(request)
        except _InvoiceAlreadyPaid:
            # Never debit an invoice another payment already paid; no row, nothing sent.
            return _receipt(request, "", False, "invoice_already_paid", None)
        if row["status"] != "submitting":
            return _receipt(
                request,
                row["id"],
                row["status"] in _ACCEPTED,
                row["decline_reason"],
                row["processor_reference"],
            )
        outcome = await self._ask_processor(request, row["idempotency_key"], row["id"])
        await self._record_outcome(request, row["id"], outcome)
        return _receipt(request, row["id"], outcome.accepted, outcome.decline_reason, outcome.reference)

    async def _open_payment(self, request: ProcessorDebitRequest) -> asyncpg.Record:
        """The payment this submission debits, committed before any money moves."""
        ref = request.attempt
        details = request.details
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('debit:' || $1))", ref.invoice_id)
            mine = await conn.fetchrow(
                f"{_ROW} WHERE run_id = $1 AND invoice_id = $2", ref.run_id, ref.invoice_id
            )
            if mine is not None:
                return mine  # a retry of this submission: the same row, the same key
            open_debit = await conn.fetchrow(
                f"{_ROW} WHERE invoice_id = $1 AND status = ANY($2::text[])", ref.invoice_id, list(_OPEN)
            )
            if open_debit is not None:
                if open_debit["status"] == "submitting" and _same_debit(open_debit, request):
                    # A reset or re-run of the attempt that wrote it: finish that debit, never a second.
                    return open_debit
                if open_debit["status"] in _ACCEPTED:
                    raise _InvoiceAlreadyPaid
                raise ApplicationError(
                    "another debit of this invoice awaits the processor",
                    {"payment_id": open_debit["id"]},
                    type=ErrorType.DEBIT_IN_FLIGHT.value,
                    non_retryable=True,
                )
            payment_id = "PAY-" + uuid.uuid4().hex[:16].upper()
            row = await conn.fetchrow(
                "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id,"
                " workflow_id, run_id, method, amount_cents, currency, account_holder, account_type,"
                " routing_number, account_last4, status, authorization_text, authorized_at, ip, user_agent,"
                " otp_audit_event_id, retain_until)"
                " VALUES ($1,$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,'submitting',$14,$15,$16,$17,$18,$19)"
                f" RETURNING {_COLUMNS}",
                payment_id,
                ref.invoice_id,
                ref.customer_id,
                ref.payer_contact_id,
                ref.workflow_id,
                ref.run_id,
                details.method.value,
                request.amount_cents,
                request.currency,
                details.account_holder,
                details.account_type,
                details.routing_number,
                last4(details.account_number),
                request.authorization_text,
                request.authorized_at,
                request.client.ip,
                request.client.user_agent,
                request.otp_audit_event_id,
                request.authorized_at + AUTHORIZATION_RETENTION,
            )
            await append_event(
                conn,
                key=self._audit_key,
                event=_audit(
                    request,
                    payment_id,
                    AuditEventType.PAYMENT_SUBMITTED,
                    {
                        "payment_id": payment_id,
                        "method": details.method.value,
                        "amount_cents": request.amount_cents,
                        "currency": request.currency,
                        "account_type": details.account_type,
                        "account_last4": last4(details.account_number),
                        "otp_verified_event_id": request.otp_audit_event_id,
                    },
                ),
            )
            return row

    async def _ask_processor(self, request: ProcessorDebitRequest, key: str, payment_id: str) -> _Outcome:
        details = request.details
        try:
            # ProcessorUnavailable (5xx, timeouts) propagates: the activity retries with the same key.
            answer = await self._processor.debit(
                idempotency_key=key,
                amount_cents=request.amount_cents,
                currency=request.currency,
                routing_number=details.routing_number,
                account_number=details.account_number,
                account_type=details.account_type,
                # The processor's events carry it back, so a webhook finds its payment.
                metadata={"payment_id": payment_id, "invoice_id": request.attempt.invoice_id},
            )
        except ProcessorRejected as exc:
            # The processor refused the request itself: no debit exists and none ever will.
            return _Outcome(False, f"processor_rejected: {exc}", None)
        return _Outcome(answer.accepted, answer.decline_reason, answer.id, answer.expected_settlement_at)

    async def _record_outcome(
        self, request: ProcessorDebitRequest, payment_id: str, outcome: _Outcome
    ) -> None:
        ref = request.attempt
        status = "processing" if outcome.accepted else "declined"
        async with self._pool.acquire() as conn, conn.transaction():
            updated = await conn.execute(
                "UPDATE payments SET status = $2, decline_reason = $3, processor_reference = $4, answered_at = now(),"
                " expected_settlement_at = $5, status_changed_at = now() WHERE id = $1 AND status = 'submitting'",
                payment_id,
                status,
                outcome.decline_reason,
                outcome.reference,
                outcome.expected_settlement_at,
            )
            if outcome.accepted and updated.endswith(" 1"):
                # SPEC §9: accepted is not settled. The invoice is pending (no new attempt) with the
                # debit's amount held; it becomes paid on settlement, open again on failure or return.
                await conn.execute(
                    "UPDATE invoices SET status = 'pending', balance_cents = GREATEST(balance_cents - $2, 0)"
                    " WHERE id = $1 AND status = 'open'",
                    ref.invoice_id,
                    request.amount_cents,
                )
                await conn.execute(
                    "INSERT INTO payment_status_history (payment_id, status, occurred_at)"
                    " VALUES ($1, 'processing', now()) ON CONFLICT DO NOTHING",
                    payment_id,
                )
            event = AuditEventType.PAYMENT_ACCEPTED if outcome.accepted else AuditEventType.PAYMENT_DECLINED
            details: dict[str, Any] = {"payment_id": payment_id}
            if outcome.accepted:
                details["processor_reference"] = outcome.reference
            else:
                details["decline_reason"] = outcome.decline_reason
            await append_event(conn, _audit(request, payment_id, event, details), key=self._audit_key)
        if updated.endswith(" 1"):
            hook = getattr(self._metrics, "payments", None)
            if callable(hook):
                hook("paid" if outcome.accepted else "declined")


def _same_debit(row: asyncpg.Record, request: ProcessorDebitRequest) -> bool:
    return bool(
        row["routing_number"] == request.details.routing_number
        and row["account_last4"] == last4(request.details.account_number)
        and row["amount_cents"] == request.amount_cents
    )


def _audit(
    request: ProcessorDebitRequest, payment_id: str, event_type: AuditEventType, details: dict[str, Any]
) -> AuditEventInput:
    ref = request.attempt
    return AuditEventInput(
        event_key=f"{payment_id}/{event_type.value}",
        event_type=event_type,
        invoice_id=ref.invoice_id,
        customer_id=ref.customer_id,
        payer_contact_id=ref.payer_contact_id,
        workflow_id=ref.workflow_id,
        run_id=ref.run_id,
        client=request.client,
        details=details,
        occurred_at=datetime.now(UTC),
    )


def _receipt(
    request: ProcessorDebitRequest,
    payment_id: str,
    accepted: bool,
    decline_reason: str | None,
    reference: str | None,
) -> PaymentReceipt:
    return PaymentReceipt(
        payment_id=payment_id,
        amount_cents=request.amount_cents,
        currency=request.currency,
        account_last4=last4(request.details.account_number),
        method=request.details.method,
        accepted=accepted,
        decline_reason=decline_reason,
        processor_reference=reference,
    )
