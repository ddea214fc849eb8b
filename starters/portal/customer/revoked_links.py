"""SPEC §11: a pay link issued before the customer's payer (or the payer's email/phone) changed.

Such a link answers 401 with `"reason": "link_revoked"` on the API and a clear page at `/pay/…`;
each revoked link is audited once (`PAY_LINK_REVOKED`, keyed by its nonce) however often it is used.
"""

from datetime import UTC, datetime

import asyncpg

from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from infra.pay_links import PayLinkClaims
from infra.stores.audit_trail import append_event
from infra.stores.pay_link_revocations import links_revoked_before

LINK_REVOKED_REASON = "link_revoked"
LINK_REVOKED_MESSAGE = (
    "This payment link was replaced because the invoice's payer contact changed. Ask for a new payment link."
)


async def link_is_revoked(
    pool: asyncpg.Pool,
    claims: PayLinkClaims,
    client: ClientContext,
    *,
    link_ttl_seconds: int,
    audit_key: bytes,
) -> bool:
    revoked_before = await links_revoked_before(pool, claims.invoice_id)
    if revoked_before is None:
        return False
    issued_at = claims.issued_at_or_estimate(link_ttl_seconds)
    if issued_at >= revoked_before:
        return False
    async with pool.acquire() as conn:
        customer_id = await conn.fetchval("SELECT customer_id FROM invoices WHERE id = $1", claims.invoice_id)
        await append_event(
            conn,
            key=audit_key,
            event=AuditEventInput(
                event_key=f"link-revoked:{claims.invoice_id}:{claims.nonce}",
                event_type=AuditEventType.PAY_LINK_REVOKED,
                invoice_id=claims.invoice_id,
                customer_id=customer_id,
                payer_contact_id=None,
                client=client,
                details={
                    "link_nonce": claims.nonce,
                    "link_issued_at": issued_at.isoformat(),
                    "links_revoked_before": revoked_before.isoformat(),
                },
                occurred_at=datetime.now(UTC),
            ),
        )
    return True
