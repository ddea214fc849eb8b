"""The effects of each processor outcome (SPEC §9), in one place, each idempotent under retry.

`apply_payment_outcome` moves the payment forward in one transaction: its status and history, the
invoice (`pending → paid`, or back to `open` with the balance restored), the audit rows tied to
the payer contact with the return code and its meaning, and the bank account blocked for the codes
that call for it. A retry finds the payment already moved and does nothing. `notify_payment_outcome`
tells staff and the payer, with idempotency keys so a retry sends nothing twice.
"""

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from domain.ach_payment import (
    AchLifecycleFacts,
    AchPaymentInput,
    AchStatus,
    ApplyOutcomeRequest,
    ApplyOutcomeResult,
    DebitStatusAnswer,
    DebitStatusRequest,
    LateEventRequest,
    OverdueAlertRequest,
    ProcessorEvent,
    ach_workflow_id,
    confirms,
    moves_forward,
)
from domain.ach_returns import return_code
from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.bank_account import BeginLifecycleRequest
from domain.channels import Channel
from domain.events import EventType
from domain.masking import mask_email, mask_phone
from infra.providers.delivery.base import CodeSender, OutboundMessage, PermanentDeliveryError
from infra.providers.delivery.messages import (
    compose_payment_failed_payer_notice,
    compose_payment_failed_staff_notice,
    compose_settlement_overdue_staff_notice,
)
from infra.providers.processor.client import Debit, ProcessorClient, ProcessorRejected
from infra.stores.audit_trail import append_event
from infra.stores.events import record_event, record_payment_event
from infra.stores.processor_events import base_event_id, mark_applied

log = logging.getLogger(__name__)

_AUDIT_TYPE = {
    AchStatus.SETTLED: AuditEventType.PAYMENT_SETTLED,
    AchStatus.FAILED: AuditEventType.PAYMENT_FAILED,
    AchStatus.RETURNED: AuditEventType.PAYMENT_RETURNED,
    AchStatus.CANCELED: AuditEventType.PAYMENT_CANCELED,
}
# Rows written by the attempt before this lifecycle existed, or just before it starts.
_LEGACY_PROCESSING = {"accepted", "submitting", "processing"}


@dataclass
class LifecycleConfig:
    """The worker's settings for the lifecycle; reach the workflow through `load_ach_payment`."""

    return_window_days: int = 60
    status_check_seconds: int = 3600
    overdue_margin_seconds: int = 3 * 86400
    history_bound: int = 0  # 0: the follower's own bound (tests set a small one)
    staff_notify_email: str | None = None
    # invoice id → a fresh Pay Your Invoice URL; None leaves the link out.
    pay_link: Callable[[str], str] | None = None


async def follow_payment(payment_id: str) -> None:
    """Start the accepted debit's `AchPaymentWorkflow` from inside an activity, at most once.

    Already started by a webhook's signal-with-start, or by an earlier try: that one stands (a
    closed one too: the id is never reused)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await activity.client().start_workflow(
            "AchPaymentWorkflow",
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=activity.info().task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )


def stored_status(value: str) -> AchStatus:
    """The follower's view of a stored payment status; never raises for a status it meets.

    `declined` (the debit never ran) and anything unknown read as `failed`: a final status the
    follower never moves, so an event for such a row is recorded for staff and changes nothing."""
    if value in _LEGACY_PROCESSING:
        return AchStatus.PROCESSING
    try:
        return AchStatus(value)
    except ValueError:
        if value != "declined":
            log.warning("payment status %r is not one the follower knows; treated as final", value)
        return AchStatus.FAILED


@dataclass(frozen=True)
class _Refusal:
    reason: str


async def _invoice_object(conn: asyncpg.Connection, invoice_id: str) -> dict[str, Any]:
    """The invoice as SPEC §12's `invoice.paid` / `invoice.reopened` report it."""
    row = await conn.fetchrow(
        "SELECT i.id, i.external_id, i.number, i.status, i.balance_cents, i.amount_cents, i.currency,"
        " c.id AS customer_id, c.external_id AS customer_external_id"
        " FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = $1",
        invoice_id,
    )
    return {
        "object": "invoice",
        "id": row["id"],
        "external_id": row["external_id"],
        "number": row["number"],
        "status": row["status"],
        "balance_cents": row["balance_cents"],
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "customer": {"id": row["customer_id"], "external_id": row["customer_external_id"]},
    }


def _dollars(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


class SettlementActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        processor: ProcessorClient,
        senders: Mapping[Channel, CodeSender],
        config: LifecycleConfig,
        *,
        audit_key: bytes,
    ) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._processor = processor
        self._senders = senders
        self._config = config

    async def _payment(
        self, conn: asyncpg.Connection | asyncpg.Pool, payment_id: str, *, lock: bool = False
    ) -> Any:
        row = await conn.fetchrow(
            "SELECT * FROM payments WHERE id = $1" + (" FOR UPDATE" if lock else ""), payment_id
        )
        if row is None:
            raise ApplicationError(f"no payment {payment_id}", type="PaymentNotFound", non_retryable=True)
        return row

    @activity.defn(name="load_ach_payment")
    async def load_ach_payment(self, input: AchPaymentInput) -> AchLifecycleFacts:
        pay = await self._payment(self._pool, input.payment_id)
        history = await self._pool.fetch(
            "SELECT status, event_id, occurred_at FROM payment_status_history WHERE payment_id = $1",
            input.payment_id,
        )
        applied = await self._pool.fetch(
            "SELECT id FROM processor_events WHERE payment_id = $1 AND applied IS NOT NULL", input.payment_id
        )
        settled_at = next((h["occurred_at"] for h in history if h["status"] == "settled"), None)
        return AchLifecycleFacts(
            payment_id=pay["id"],
            invoice_id=pay["invoice_id"],
            debit_id=pay["processor_reference"],
            status=stored_status(pay["status"]),
            amount_cents=pay["amount_cents"],
            expected_settlement_at=pay["expected_settlement_at"],
            settled_at=settled_at,
            return_window_days=self._config.return_window_days,
            status_check_interval_seconds=self._config.status_check_seconds,
            overdue_margin_seconds=self._config.overdue_margin_seconds,
            history_bound=self._config.history_bound,
            applied_event_ids=sorted(
                {h["event_id"] for h in history if h["event_id"]} | {a["id"] for a in applied}
            ),
        )

    @activity.defn(name="begin_payment_lifecycle")
    async def begin_payment_lifecycle(self, request: BeginLifecycleRequest) -> None:
        """The processor accepted the debit: payment `processing`, invoice `pending`, workflow started.

        Attempts recorded before the fold schedule this after the debit; newer ones have
        `submit_debit` record the same effects with the answer and start the workflow itself."""
        async with self._pool.acquire() as conn, conn.transaction():
            pay = await self._payment(conn, request.payment_id, lock=True)
            if request.bank_fingerprint:
                await conn.execute(
                    "UPDATE payments SET bank_fingerprint = $2 WHERE id = $1 AND bank_fingerprint IS NULL",
                    pay["id"],
                    request.bank_fingerprint,
                )
            if pay["status"] in ("accepted", "submitting"):
                await conn.execute(
                    "UPDATE payments SET status = 'processing', status_changed_at = now() WHERE id = $1",
                    pay["id"],
                )
            first = await conn.fetchval(
                "INSERT INTO payment_status_history (payment_id, status, occurred_at) VALUES ($1, 'processing', now())"
                " ON CONFLICT DO NOTHING RETURNING 1",
                pay["id"],
            )
            if first and stored_status(pay["status"]) is AchStatus.PROCESSING:
                # Once, whatever the retries: the debit holds the balance until it settles or fails.
                await conn.execute(
                    "UPDATE invoices SET status = 'pending', balance_cents = GREATEST(balance_cents - $2, 0)"
                    " WHERE id = $1 AND status = 'open'",
                    pay["invoice_id"],
                    pay["amount_cents"],
                )
        await follow_payment(request.payment_id)

    @activity.defn(name="apply_payment_outcome")
    async def apply_payment_outcome(self, request: ApplyOutcomeRequest) -> ApplyOutcomeResult:
        """Moves the payment once, and only when the processor bears the event out for its debit.

        The processor is asked first (outside the transaction; an outage is retried without a cap);
        an event it does not confirm changes nothing, is kept in `refused_processor_events` for
        the next reconcile report, and counts as handled. The status change, the invoice, the audit
        rows, the blocklist, the SPEC §12 events and the event's `applied` mark share one transaction."""
        target = request.status
        pay = await self._payment(self._pool, request.payment_id)
        if not moves_forward(stored_status(pay["status"]), target):
            await mark_applied(self._pool, request.event_id, "no_change")
            return ApplyOutcomeResult(status=stored_status(pay["status"]), changed=False)
        verdict = await self._confirm(pay, request)
        if isinstance(verdict, _Refusal):
            await self._refuse(pay, request, verdict.reason)
            return ApplyOutcomeResult(
                status=stored_status(pay["status"]), changed=False, refused=verdict.reason
            )
        if target in (AchStatus.FAILED, AchStatus.RETURNED):
            # The processor's own return code, not the event's claim.
            request = request.model_copy(update={"return_code": verdict.return_code or request.return_code})
        async with self._pool.acquire() as conn, conn.transaction():
            pay = await self._payment(conn, request.payment_id, lock=True)
            current = stored_status(pay["status"])
            if not moves_forward(current, target):
                await mark_applied(conn, request.event_id, "no_change")
                return ApplyOutcomeResult(status=current, changed=False)
            await conn.execute(
                "UPDATE payments SET status = $2, return_code = COALESCE($3, return_code), status_changed_at = $4"
                " WHERE id = $1",
                pay["id"],
                target.value,
                request.return_code,
                request.occurred_at,
            )
            await conn.execute(
                "INSERT INTO payment_status_history (payment_id, status, return_code, event_id, occurred_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                pay["id"],
                target.value,
                request.return_code,
                request.event_id,
                request.occurred_at,
            )
            await record_payment_event(conn, pay["id"], target.value)
            if target is AchStatus.SETTLED:
                paid = await conn.fetchval(
                    "UPDATE invoices SET status = 'paid', balance_cents = 0 WHERE id = $1 AND status <> 'paid'"
                    " RETURNING 1",
                    pay["invoice_id"],
                )
                if paid:
                    await record_event(
                        conn, EventType.INVOICE_PAID, await _invoice_object(conn, pay["invoice_id"])
                    )
            elif target.reopens_invoice:
                await conn.execute(
                    "UPDATE invoices SET status = 'open', balance_cents = LEAST(amount_cents, balance_cents + $2)"
                    " WHERE id = $1",
                    pay["invoice_id"],
                    pay["amount_cents"],
                )
                await record_event(
                    conn, EventType.INVOICE_REOPENED, await _invoice_object(conn, pay["invoice_id"])
                )
            await mark_applied(conn, request.event_id, target.value)
            await self._audit_outcome(conn, pay, request)
        return ApplyOutcomeResult(status=target, changed=True, return_code=request.return_code)

    async def _confirm(self, pay: Any, request: ApplyOutcomeRequest) -> _Refusal | Debit:
        """Looks the payment's debit up by id at the processor; a refusal says why it is not borne out."""
        debit_id = pay["processor_reference"]
        if debit_id is None:
            if pay["status"] in _LEGACY_PROCESSING:
                # The webhook outran the debit's answer: the attempt records it in a moment.
                raise ApplicationError("the payment's debit is not recorded yet", type="DebitNotRecorded")
            return _Refusal(f"payment {pay['status']} has no debit")
        if request.debit_id is not None and request.debit_id != debit_id:
            return _Refusal(f"the event names debit {request.debit_id}, not the payment's debit")
        try:
            debit = await self._processor.get_debit(debit_id)
        except ProcessorRejected as exc:
            if exc.status != 404:
                raise ApplicationError(
                    f"processor refused the look-up: {exc}", type="ProcessorLookup"
                ) from None
            return _Refusal("the processor does not know the payment's debit")
        if debit.id != debit_id or debit.amount_cents != pay["amount_cents"]:
            return _Refusal("the processor's debit does not match the payment")
        if not confirms(debit.status, request.status):
            return _Refusal(f"the processor says the debit is {debit.status}")
        return debit

    async def _refuse(self, pay: Any, request: ApplyOutcomeRequest, reason: str) -> None:
        event_id = base_event_id(request.event_id)
        log.warning("processor event %s for payment %s refused: %s", event_id, pay["id"], reason)
        async with self._pool.acquire() as conn, conn.transaction():
            source = await conn.fetchval("SELECT source FROM processor_events WHERE id = $1", event_id)
            await conn.execute(
                "INSERT INTO refused_processor_events (event_id, payment_id, debit_id, event_type, source, reason)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
                event_id,
                pay["id"],
                request.debit_id,
                f"debit.{request.status.value}",
                source or "signal",
                reason,
            )
            await mark_applied(conn, event_id, "refused")

    async def _audit_outcome(self, conn: asyncpg.Connection, pay: Any, request: ApplyOutcomeRequest) -> None:
        workflow_id = ach_workflow_id(pay["id"])
        details: dict[str, Any] = {
            "payment_id": pay["id"],
            "processor_reference": pay["processor_reference"],
            "amount_cents": pay["amount_cents"],
            "account_last4": pay["account_last4"],
            "processor_event_id": request.event_id,
        }
        blocks = False
        if request.status in (AchStatus.FAILED, AchStatus.RETURNED):
            code = return_code(request.return_code)
            blocks = code.blocks_account
            details |= {
                "return_code": code.code,
                "return_meaning": code.meaning,
                "account_blocked": blocks,
                "flagged_for_staff": code.unauthorized,
                "fresh_pay_link": not code.unauthorized,
            }

        def event(kind: AuditEventType, suffix: str, extra: dict[str, Any]) -> AuditEventInput:
            return _payment_audit(
                pay, f"{workflow_id}/{suffix}", kind, "processor", extra, request.occurred_at
            )

        await append_event(
            conn, event(_AUDIT_TYPE[request.status], request.status.value, details), key=self._audit_key
        )
        if blocks and pay["bank_fingerprint"]:
            inserted = await conn.fetchval(
                "INSERT INTO blocked_bank_accounts (fingerprint, account_last4, return_code, payment_id)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (fingerprint) DO NOTHING RETURNING 1",
                pay["bank_fingerprint"],
                pay["account_last4"],
                details["return_code"],
                pay["id"],
            )
            if inserted:
                await record_event(
                    conn,
                    EventType.BANK_ACCOUNT_BLOCKED,
                    {
                        "object": "bank_account",
                        "account_last4": pay["account_last4"],
                        "routing_number": pay["routing_number"],
                        "return_code": details["return_code"],
                        "payment_id": pay["id"],
                        "customer": {"id": pay["customer_id"]},
                    },
                )
                await append_event(
                    conn,
                    event(
                        AuditEventType.BANK_ACCOUNT_BLOCKED,
                        "blocked",
                        {
                            "payment_id": pay["id"],
                            "account_last4": pay["account_last4"],
                            "return_code": details["return_code"],
                            "return_meaning": details["return_meaning"],
                        },
                    ),
                    key=self._audit_key,
                )

    @activity.defn(name="notify_payment_outcome")
    async def notify_payment_outcome(self, request: ApplyOutcomeRequest) -> None:
        """Tells staff and the payer. A notice nobody can receive (a bounced address, a dead phone)
        is audited `PAYMENT_NOTICE_FAILED` and the others still go: this never fails the follower."""
        row = await self._notice_row(request.payment_id)
        code = return_code(request.return_code)
        amount = _dollars(row["amount_cents"], row["currency"])
        key = f"{ach_workflow_id(row['id'])}/{request.status.value}"
        if self._config.staff_notify_email:
            staff = compose_payment_failed_staff_notice(
                self._config.staff_notify_email,
                payment_id=row["id"],
                amount=amount,
                invoice_number=row["number"],
                account_last4=row["account_last4"],
                failed=request.status is AchStatus.FAILED,
                return_code=code.code,
                meaning=code.meaning,
                unauthorized=code.unauthorized,
                key=key + "/staff",
            )
            await self._notice(row, "staff", staff, key)
        pay_again = None
        if not code.unauthorized and self._config.pay_link is not None:
            pay_again = self._config.pay_link(row["invoice_id"])
        if row["email"] or row["phone"]:
            channel, to = (Channel.EMAIL, row["email"]) if row["email"] else (Channel.SMS, row["phone"])
            payer = compose_payment_failed_payer_notice(
                channel,
                to,
                payer_name=row["name"],
                amount=amount,
                invoice_number=row["number"],
                meaning=code.meaning,
                pay_again_url=pay_again,
                key=key + "/payer",
            )
            await self._notice(row, "payer", payer, key)
        else:
            await self._notice_failed(row, "payer", None, None, "the payer has no email or phone", key)

    @activity.defn(name="alert_payment_overdue")
    async def alert_payment_overdue(self, request: OverdueAlertRequest) -> None:
        """No outcome long after the expected settlement date: staff are told once, and it is audited."""
        row = await self._notice_row(request.payment_id)
        workflow_id = ach_workflow_id(row["id"])
        expected = (
            request.expected_settlement_at.strftime("%d %b %Y") if request.expected_settlement_at else "?"
        )
        async with self._pool.acquire() as conn:
            details = {
                "payment_id": row["id"],
                "expected_settlement_at": expected,
                "processor_checks": request.polls,
            }
            await append_event(
                conn,
                _payment_audit(
                    row,
                    f"{workflow_id}/overdue",
                    AuditEventType.PAYMENT_SETTLEMENT_OVERDUE,
                    "system",
                    details,
                    datetime.now(UTC),
                ),
                key=self._audit_key,
            )
        if self._config.staff_notify_email:
            alert = compose_settlement_overdue_staff_notice(
                self._config.staff_notify_email,
                payment_id=row["id"],
                invoice_number=row["number"],
                expected=expected,
                polls=request.polls,
                key=f"{workflow_id}/overdue/staff",
            )
            await self._notice(row, "staff", alert, f"{workflow_id}/overdue")

    async def _notice_row(self, payment_id: str) -> Any:
        row = await self._pool.fetchrow(
            "SELECT p.id, p.amount_cents, p.currency, p.account_last4, p.invoice_id, p.customer_id,"
            " p.payer_contact_id, i.number, c.name, c.email, c.phone FROM payments p"
            " JOIN invoices i ON i.id = p.invoice_id JOIN contacts c ON c.id = p.payer_contact_id WHERE p.id = $1",
            payment_id,
        )
        if row is None:
            raise ApplicationError(f"no payment {payment_id}", type="PaymentNotFound", non_retryable=True)
        return row

    async def _notice(self, row: Any, recipient: str, message: OutboundMessage, key: str) -> None:
        """Sends one notice; one nobody can receive is audited PAYMENT_NOTICE_FAILED, never raised."""
        sender = self._senders.get(message.channel)
        if sender is None:
            return
        try:
            await sender.send(message)
        except PermanentDeliveryError as exc:
            await self._notice_failed(row, recipient, message.channel, message.to, str(exc), key)

    async def _notice_failed(
        self, row: Any, recipient: str, channel: Channel | None, to: str | None, reason: str, key: str
    ) -> None:
        destination = None
        if to is not None:
            destination = mask_email(to) if channel is Channel.EMAIL else mask_phone(to)
        log.warning(
            "payment %s: %s notice not delivered to %s: %s", row["id"], recipient, destination, reason
        )
        async with self._pool.acquire() as conn:
            await append_event(
                conn,
                _payment_audit(
                    row,
                    f"{key}/{recipient}/notice-failed",
                    AuditEventType.PAYMENT_NOTICE_FAILED,
                    "system",
                    {"payment_id": row["id"], "recipient": recipient, "reason": reason[:300]},
                    datetime.now(UTC),
                    channel=channel,
                    destination=destination,
                ),
                key=self._audit_key,
            )

    @activity.defn(name="record_late_processor_event")
    async def record_late_processor_event(self, request: LateEventRequest) -> None:
        pay = await self._payment(self._pool, request.payment_id)
        workflow_id = ach_workflow_id(pay["id"])
        async with self._pool.acquire() as conn, conn.transaction():
            await append_event(
                conn,
                _payment_audit(
                    pay,
                    f"{workflow_id}/late/{request.event_id}",
                    AuditEventType.PROCESSOR_EVENT_LATE,
                    "processor",
                    {
                        "payment_id": pay["id"],
                        "processor_event_id": request.event_id,
                        "event_type": request.event_type,
                        "return_code": request.return_code,
                        "payment_status": pay["status"],
                        "reason": request.reason,
                        "changed": False,
                    },
                    request.occurred_at,
                ),
                key=self._audit_key,
            )
            await mark_applied(conn, request.event_id, "late")

    @activity.defn(name="check_debit_status")
    async def check_debit_status(self, request: DebitStatusRequest) -> DebitStatusAnswer:
        try:
            debit = await self._processor.get_debit(request.debit_id)
        except ProcessorRejected as exc:
            log.warning("processor does not know debit %s: %s", request.debit_id, exc)
            return DebitStatusAnswer()
        if debit.status in ("processing", "declined"):
            return DebitStatusAnswer()
        return DebitStatusAnswer(
            event=ProcessorEvent(
                id=f"poll:{debit.id}:{debit.status}",
                type=f"debit.{debit.status}",
                debit_id=debit.id,
                payment_id=request.payment_id,
                status=debit.status,
                return_code=debit.return_code,
                occurred_at=datetime.now(UTC),
            )
        )


def _payment_audit(
    pay: Any,
    event_key: str,
    event_type: AuditEventType,
    actor: str,
    details: dict[str, Any],
    occurred_at: datetime,
    *,
    channel: Channel | None = None,
    destination: str | None = None,
) -> AuditEventInput:
    """An audit row of one payment's life: tied to its invoice, customer and payer contact, and to
    its follower's workflow id (the key is the caller's, stable under retry)."""
    return AuditEventInput(
        event_key=event_key,
        event_type=event_type,
        invoice_id=pay["invoice_id"],
        customer_id=pay["customer_id"],
        payer_contact_id=pay["payer_contact_id"],
        workflow_id=ach_workflow_id(pay["id"]),
        channel=channel,
        destination=destination,
        client=ClientContext(actor=actor),
        details=details,
        occurred_at=occurred_at,
    )
