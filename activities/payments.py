"""Submitting the debit and recording the payment with its web-debit authorization.

The processor is called with the attempt's idempotency key, then the payment row is written with
the same key (unique), so a retried or re-delivered submission never debits or records twice.
"""

import hashlib
from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.activity_io import ProcessorDebitRequest
from domain.attempt import PaymentReceipt
from domain.masking import last4
from infra.providers.processor.sandbox import ProcessorRejected, SandboxProcessor

# NACHA: keep the authorization (and the authentication behind it) two years.
AUTHORIZATION_RETENTION = timedelta(days=2 * 365)


def payment_id_for(idempotency_key: str) -> str:
    return "PAY-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16].upper()


class PaymentActivities:
    def __init__(
        self, pool: asyncpg.Pool, processor: SandboxProcessor, *, metrics: object | None = None
    ) -> None:
        self._pool = pool
        self._processor = processor
        self._metrics = metrics

    @activity.defn(name="submit_debit")
    async def submit_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        details = request.details
        ref = request.attempt
        payment_id = payment_id_for(request.idempotency_key)
        account_last4 = last4(details.account_number)
        paid_elsewhere = await self._pool.fetchval(
            "SELECT 1 FROM payments WHERE invoice_id = $1 AND status = 'accepted' AND idempotency_key <> $2",
            ref.invoice_id,
            request.idempotency_key,
        )
        if paid_elsewhere:
            # Never debit an invoice another payment already settled.
            return PaymentReceipt(
                payment_id=payment_id,
                amount_cents=request.amount_cents,
                currency=request.currency,
                account_last4=account_last4,
                method=details.method,
                accepted=False,
                decline_reason="invoice_already_paid",
            )
        try:
            answer = await self._processor.debit(
                idempotency_key=request.idempotency_key,
                amount_cents=request.amount_cents,
                currency=request.currency,
                routing_number=details.routing_number,
                account_number=details.account_number,
            )
        except ProcessorRejected as exc:
            raise ApplicationError(str(exc), type="ProcessorRejected", non_retryable=True) from None
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id,"
                " workflow_id, run_id, method, amount_cents, currency, account_holder, account_type,"
                " routing_number, account_last4, status, decline_reason, processor_reference,"
                " authorization_text, authorized_at, ip, user_agent, otp_audit_event_id, retain_until)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)"
                " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                payment_id,
                request.idempotency_key,
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
                account_last4,
                "accepted" if answer.accepted else "declined",
                answer.decline_reason,
                answer.reference,
                request.authorization_text,
                request.authorized_at,
                request.client.ip,
                request.client.user_agent,
                request.otp_audit_event_id,
                request.authorized_at + AUTHORIZATION_RETENTION,
            )
            if answer.accepted:
                await conn.execute(
                    "UPDATE invoices SET status = 'paid', balance_cents = 0 WHERE id = $1", ref.invoice_id
                )
        if inserted is not None:
            hook = getattr(self._metrics, "payments", None)
            if callable(hook):
                hook("paid" if answer.accepted else "declined")
        return PaymentReceipt(
            payment_id=payment_id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            account_last4=account_last4,
            method=details.method,
            accepted=answer.accepted,
            decline_reason=answer.decline_reason,
            processor_reference=answer.reference,
        )
