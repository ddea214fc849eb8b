"""Submitting the debit: the payment row first, then the processor, then the answer (SPEC §11).

1. In one transaction: the payment row (status `submitting`, the idempotency key it owns, the
   web-debit authorization record) and its `PAYMENT_SUBMITTED` audit row are committed.
2. The processor is called with the row's key.
3. In one transaction: the row takes the answer (an accepted debit is `processing`, SPEC §9), the
   invoice is `pending` with its balance held, and the outcome's audit row is written.
4. An accepted debit's `AchPaymentWorkflow` is started (at most once, on every path that finds
   the debit accepted, so a crash between 3 and 4 is finished by the retry).

Before step 1, when the workflow asks (`screen_seq` set), the bank account is screened (SPEC §9:
blocklist, validation of an unseen account) in the same activity: a submission is one activity
task, not three (issue 13). A refusal is a non-retryable error naming the refusal; nothing is
written but the validation's own audit row. Screening is skipped when this run already has its
payment row: the account was screened before that row was written.

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

from activities.bank_accounts import AccountScreen
from activities.settlement import follow_payment
from domain.activity_io import AuditEventInput, ProcessorDebitRequest
from domain.attempt import PaymentReceipt
from domain.audit import AuditEventType
from domain.bank_account import ScreenAccountRequest
from domain.errors import ErrorType
from domain.masking import last4
from infra.providers.processor.client import ProcessorClient, ProcessorRejected, ProcessorUnavailable
from infra.stores.audit_trail import append_event

# NACHA: keep the authorization (and the authentication behind it) two years. Two calendar years
# are 731 days when a 29 February lies between: 730 fell a day short (tests/workflow/test_retention.py).
AUTHORIZATION_RETENTION = timedelta(days=731)

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
        screen: AccountScreen,
        *,
        audit_key: bytes,
        metrics: object | None = None,
    ) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._processor = processor
        self._screen = screen
        self._metrics = metrics

    @activity.defn(name="submit_debit")
    async def submit_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        fingerprint, validated = None, False
        if request.screen_seq is not None and not await self._has_row(request):
            fingerprint, validated = await self._screened(request)
        try:
            row = await self._open_payment(request, fingerprint)
        except _InvoiceAlreadyPaid:
            # Never debit an invoice another payment already paid; no row, nothing sent.
            return _receipt(request, "", False, "invoice_already_paid", None, validated)
        if row["status"] != "submitting":
            accepted = row["status"] in _ACCEPTED
            if accepted:
                await follow_payment(row["id"])
            return _receipt(
                request, row["id"], accepted, row["decline_reason"], row["processor_reference"], validated
            )
        outcome = await self._ask_processor(request, row["idempotency_key"], row["id"])
        await self._record_outcome(request, row["id"], outcome)
        if outcome.accepted:
            await follow_payment(row["id"])
        return _receipt(
            request, row["id"], outcome.accepted, outcome.decline_reason, outcome.reference, validated
        )

    async def _has_row(self, request: ProcessorDebitRequest) -> bool:
        ref = request.attempt
        found = await self._pool.fetchval(
            "SELECT 1 FROM payments WHERE run_id = $1 AND invoice_id = $2", ref.run_id, ref.invoice_id
        )
        return found is not None

    async def _screened(self, request: ProcessorDebitRequest) -> tuple[str, bool]:
        """The account's keyed fingerprint (and whether it was validated just now) once screening
        allows it; else a non-retryable refusal whose details say whether a validation was audited."""
        assert request.screen_seq is not None
        details = request.details
        try:
            screen = await self._screen.screen(
                ScreenAccountRequest(
                    attempt=request.attempt,
                    routing_number=details.routing_number,
                    account_number=details.account_number,
                    screen_seq=request.screen_seq,
                    client=request.client,
                )
            )
        except ProcessorUnavailable as exc:
            # Nothing is written yet: the customer is better told "try again" than kept waiting.
            raise ApplicationError(
                f"the bank account could not be checked: {exc}",
                type=ErrorType.ACCOUNT_CHECK_UNAVAILABLE.value,
                non_retryable=True,
            ) from None
        if not screen.allowed:
            refusal = screen.refusal
            raise ApplicationError(
                screen.message or refusal.value,
                {"validated_now": screen.validated_now},
                type=refusal.value,
                non_retryable=True,
            )
        return screen.fingerprint, screen.validated_now

    async def _open_payment(self, request: ProcessorDebitRequest, fingerprint: str | None) -> asyncpg.Record:
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
                " otp_audit_event_id, retain_until, bank_fingerprint)"
                " VALUES ($1,$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,'submitting',$14,$15,$16,$17,$18,$19,$20)"
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
                fingerprint,
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
    return AuditEventInput.for_attempt(
        request.attempt,
        event_key=f"{payment_id}/{event_type.value}",
        event_type=event_type,
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
    account_validated_now: bool = False,
) -> PaymentReceipt:
    return PaymentReceipt(
        account_validated_now=account_validated_now,
        payment_id=payment_id,
        amount_cents=request.amount_cents,
        currency=request.currency,
        account_last4=last4(request.details.account_number),
        method=request.details.method,
        accepted=accepted,
        decline_reason=decline_reason,
        processor_reference=reference,
    )
