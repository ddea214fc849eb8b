"""Resolving who pays, and handing the attempt the worker's OTP policy and timers.

The policy and timers travel in this activity's result so they are recorded in history and
replay the same; they are the worker's settings, never the starter's (SPEC §8, §11).
"""

from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.activity_io import ResolvePayerRequest
from domain.attempt import InvoiceSummary, OfferedChannel, PayerResolution
from domain.channels import channels_on_file, mask_destination
from domain.errors import ErrorType
from domain.invoice_standing import opening_refusal
from domain.policy import AttemptTimers, InvoiceKind, OtpPolicy
from infra.stores.invoices import fetch_standing
from infra.stores.payers import fetch_payer, recent_failed_checks


class PayerActivities:
    def __init__(self, pool: asyncpg.Pool, *, policy: OtpPolicy, timers: AttemptTimers) -> None:
        self._pool = pool
        self._policy = policy
        self._timers = timers

    @activity.defn(name="resolve_payer")
    async def resolve_payer(self, request: ResolvePayerRequest) -> PayerResolution:
        async with self._pool.acquire() as conn:
            invoice = await fetch_standing(conn, request.invoice_id)
            refusal = opening_refusal(invoice, request.invoice_id, datetime.now(UTC))
            if refusal is not None:
                details = {}
                if refusal.retry_after is not None and refusal.locked_until is not None:
                    details = {
                        "retry_after": refusal.retry_after,
                        "locked_until": refusal.locked_until.isoformat(),
                    }
                raise ApplicationError(refusal.message, details, type=refusal.type.value, non_retryable=True)
            assert invoice is not None
            payer = await fetch_payer(conn, invoice.customer_id)
            if payer is None:
                raise ApplicationError(
                    f"customer {invoice.customer_id} has no payer or primary contact",
                    type=ErrorType.INVOICE_NOT_FOUND.value,
                    non_retryable=True,
                )
            prior_failed = await recent_failed_checks(conn, request.invoice_id, self._timers.lockout_seconds)
        destinations = {"email": payer.email, "sms": payer.phone}
        offered = [
            OfferedChannel(channel=ch, destination=mask_destination(ch, destinations[ch.value] or ""))
            for ch in channels_on_file(payer.email, payer.phone)
        ]
        return PayerResolution(
            invoice=InvoiceSummary(
                invoice_id=invoice.invoice_id,
                number=invoice.number,
                amount_cents=invoice.balance_cents,
                currency=invoice.currency,
                kind=InvoiceKind(invoice.kind),
            ),
            customer_id=invoice.customer_id,
            payer_contact_id=payer.contact_id,
            payer_name=payer.name,
            designated=payer.designated,
            channels=offered,
            prior_failed_checks=prior_failed,
            policy=self._policy,
            timers=self._timers,
            contact_version=payer.version,
        )
