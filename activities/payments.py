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
debit. The key is reused only for the same request (SPEC §9: a keyed digest of amount, currency,
routing, account and account type on the row); an open row for another request whose run is gone is
first resolved at the processor by its key (`activities/debit_answers.py`), and a 409 or "key in
use" answer is looked up the same way, never recorded as a decline. A database error after the
processor answered leaves the row `submitting`, and the next try completes it. One open debit per
invoice is a unique index.

Rolling deploys (docs/versioning.md): the folded submission runs under its own activity name,
`submit_screened_debit`, so a worker built before the fold (which knows only `submit_debit` and
would drop `screen_seq`) can never run it. `submit_debit` stays registered for histories that
scheduled it, folded or not.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.bank_accounts import AccountScreen
from activities.debit_answers import PAYMENT_COLUMNS, DebitAnswer, look_up, record_answer, resolve_unanswered
from activities.metrics_port import NO_METRICS, PaymentMetrics
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
SUBMIT_SCREENED_DEBIT = "submit_screened_debit"

# A debit the processor accepted, whatever became of it since (SPEC §9 statuses). A debit found
# canceled when its outcome was looked up took no money: its receipt says so on every try.
_ACCEPTED = frozenset({"accepted", "processing", "settled", "failed", "returned"})
# Debits that hold the invoice: one at most (a unique index).
_OPEN = ("submitting", "accepted", "processing", "settled")
_ROW = f"SELECT {PAYMENT_COLUMNS} FROM payments"


class _InvoiceAlreadyPaid(Exception):
    """Another payment of this invoice was accepted: nothing to debit."""


class _UnansweredDebit(Exception):
    """The invoice's open `submitting` row belongs to another run and another request."""

    def __init__(self, row: asyncpg.Record) -> None:
        super().__init__(row["id"])
        self.row = row


class PaymentActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        processor: ProcessorClient,
        screen: AccountScreen,
        *,
        audit_key: bytes,
        metrics: PaymentMetrics = NO_METRICS,
    ) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._processor = processor
        self._screen = screen
        self._metrics = metrics

    @activity.defn(name="submit_debit")
    async def submit_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        """The name histories recorded before `debit-under-own-name` scheduled, folded or not."""
        return await self._submit(request)

    @activity.defn(name=SUBMIT_SCREENED_DEBIT)
    async def submit_screened_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        """The folded submission under a name no worker built before the fold knows."""
        if request.screen_seq is None:
            raise ApplicationError(
                "submit_screened_debit needs screen_seq",
                type=ErrorType.INVALID_INPUT.value,
                non_retryable=True,
            )
        return await self._submit(request)

    async def _submit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        fingerprint, validated = None, False
        if request.screen_seq is not None and not await self._has_row(request):
            fingerprint, validated = await self._screened(request)
        try:
            row = await self._payment_row(request, fingerprint)
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
        answer = await self._ask_processor(request, row["idempotency_key"], row["id"])
        await self._record_outcome(request, row, answer)
        if answer.accepted:
            await follow_payment(row["id"])
        return _receipt(
            request, row["id"], answer.accepted, answer.decline_reason, answer.reference, validated
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

    def _digest(self, request: ProcessorDebitRequest) -> str:
        details = request.details
        return self._screen.request_digest(
            amount_cents=request.amount_cents,
            currency=request.currency,
            routing_number=details.routing_number,
            account_number=details.account_number,
            account_type=details.account_type,
        )

    async def _payment_row(self, request: ProcessorDebitRequest, fingerprint: str | None) -> asyncpg.Record:
        """The payment this submission debits. An open row of another run for another request is
        first resolved at the processor by its key (finding 2): never reused, never guessed."""
        digest = self._digest(request)
        try:
            return await self._open_payment(request, fingerprint, digest)
        except _UnansweredDebit as unanswered:
            answer = await resolve_unanswered(
                self._pool, self._processor, unanswered.row, audit_key=self._audit_key, follow=follow_payment
            )
            if answer is None or answer.accepted:
                # Still possibly in flight, or found accepted and now processing: either way another
                # debit of this invoice awaits the bank; this request sends nothing (SPEC §9: the
                # invoice is pending). The attempt stays AWAITING_PAYMENT with a 409.
                raise _in_flight(unanswered.row["id"]) from None
        return await self._open_payment(request, fingerprint, digest)

    async def _open_payment(
        self, request: ProcessorDebitRequest, fingerprint: str | None, digest: str
    ) -> asyncpg.Record:
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
                if open_debit["status"] in _ACCEPTED:
                    raise _InvoiceAlreadyPaid
                if open_debit["request_digest"] == digest:
                    # A reset or re-run of the attempt that wrote it, for the same request: finish
                    # that debit under its key, never a second.
                    return open_debit
                raise _UnansweredDebit(open_debit)
            payment_id = "PAY-" + uuid.uuid4().hex[:16].upper()
            row = await conn.fetchrow(
                "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id,"
                " workflow_id, run_id, method, amount_cents, currency, account_holder, account_type,"
                " routing_number, account_last4, status, authorization_text, authorized_at, ip, user_agent,"
                " otp_audit_event_id, retain_until, bank_fingerprint, request_digest)"
                " VALUES ($1,$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,'submitting',$14,$15,$16,$17,$18,$19,$20,$21)"
                f" RETURNING {PAYMENT_COLUMNS}",
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
                digest,
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

    async def _ask_processor(self, request: ProcessorDebitRequest, key: str, payment_id: str) -> DebitAnswer:
        details = request.details
        try:
            # ProcessorUnavailable (5xx, timeouts) propagates: the activity retries with the same key.
            debit = await self._processor.debit(
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
            if exc.is_key_conflict:
                # SPEC §9: "key already used / in use" says nothing of the debit sent under it.
                found = await look_up(self._processor, key)
                if found is None:
                    raise ProcessorUnavailable(f"key in use, no debit under it yet ({exc.status})") from None
                return found
            # The processor refused the request itself: no debit exists and none ever will.
            return DebitAnswer("declined", f"processor_rejected: {exc}", None)
        return DebitAnswer.of(debit)

    async def _record_outcome(
        self, request: ProcessorDebitRequest, row: asyncpg.Record, answer: DebitAnswer
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await record_answer(
                conn, row, answer, audit_key=self._audit_key, client=request.client
            )
        if recorded:
            self._metrics.payments("paid" if answer.accepted else "declined")


def _in_flight(payment_id: str) -> ApplicationError:
    return ApplicationError(
        "another debit of this invoice awaits the processor",
        {"payment_id": payment_id},
        type=ErrorType.DEBIT_IN_FLIGHT.value,
        non_retryable=True,
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
