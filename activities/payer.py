"""Resolving who pays: the designated Customer Portal Payer, else the customer's primary contact."""

from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.activity_io import ResolvePayerRequest
from domain.attempt import InvoiceSummary, OfferedChannel, PayerResolution
from domain.channels import channels_on_file, mask_destination
from domain.errors import ActivityFailureType
from domain.policy import InvoiceKind


class PayerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="resolve_payer")
    async def resolve_payer(self, request: ResolvePayerRequest) -> PayerResolution:
        async with self._pool.acquire() as conn:
            invoice = await conn.fetchrow(
                "SELECT id, number, customer_id, kind, amount_cents, balance_cents, currency, status, locked_until"
                " FROM invoices WHERE id = $1",
                request.invoice_id,
            )
            if invoice is None:
                raise ApplicationError(
                    f"invoice {request.invoice_id} does not exist",
                    type=ActivityFailureType.INVOICE_NOT_FOUND.value,
                    non_retryable=True,
                )
            if invoice["status"] in ("paid", "pending") or invoice["balance_cents"] == 0:
                raise ApplicationError(
                    f"invoice {invoice['number']} is already paid",
                    type=ActivityFailureType.INVOICE_ALREADY_PAID.value,
                    non_retryable=True,
                )
            now = datetime.now(UTC)
            if invoice["locked_until"] is not None and invoice["locked_until"] > now:
                retry_after = int((invoice["locked_until"] - now).total_seconds()) + 1
                raise ApplicationError(
                    f"invoice {invoice['number']} is locked after too many wrong codes",
                    {"retry_after": retry_after, "locked_until": invoice["locked_until"].isoformat()},
                    type="InvoiceLocked",
                    non_retryable=True,
                )
            # The designated payer wins; the primary contact stands in when none is marked.
            contact = await conn.fetchrow(
                "SELECT id, name, email, phone, portal_payer FROM contacts WHERE customer_id = $1"
                " AND (portal_payer OR is_primary) ORDER BY portal_payer DESC LIMIT 1",
                invoice["customer_id"],
            )
            if contact is None:
                raise ApplicationError(
                    f"customer {invoice['customer_id']} has no payer or primary contact",
                    type=ActivityFailureType.INVOICE_NOT_FOUND.value,
                    non_retryable=True,
                )
            prior_failed = await conn.fetchval(
                "SELECT count(*) FROM otp_checks WHERE invoice_id = $1 AND NOT ok"
                " AND checked_at > now() - make_interval(secs => $2)"
                " AND checked_at > COALESCE((SELECT max(checked_at) FROM otp_checks"
                "   WHERE invoice_id = $1 AND ok), '-infinity')",
                request.invoice_id,
                float(request.lockout_seconds),
            )
        destinations = {"email": contact["email"], "sms": contact["phone"]}
        offered = [
            OfferedChannel(channel=ch, destination=mask_destination(ch, destinations[ch.value]))
            for ch in channels_on_file(contact["email"], contact["phone"])
        ]
        return PayerResolution(
            invoice=InvoiceSummary(
                invoice_id=invoice["id"],
                number=invoice["number"],
                amount_cents=invoice["balance_cents"],
                currency=invoice["currency"],
                kind=InvoiceKind(invoice["kind"]),
            ),
            customer_id=invoice["customer_id"],
            payer_contact_id=contact["id"],
            payer_name=contact["name"],
            designated=bool(contact["portal_payer"]),
            channels=offered,
            prior_failed_checks=int(prior_failed),
        )
