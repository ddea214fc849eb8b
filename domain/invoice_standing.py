"""May this invoice start a payment attempt? The one rule, for the portal, the staff pages and the worker.

An invoice with nothing left to pay (status `paid`, or a zero balance) never starts another
attempt; one locked after too many wrong codes refuses until its lockout ends. These live in
PostgreSQL rather than in Temporal's id-reuse policy, which only sees closed runs within
retention and counts a run that ended LOCKED as completed.
"""

from dataclasses import dataclass
from datetime import datetime

from domain.errors import ErrorType

INVOICE_VOID_STATUS = "void"
# What the pay link and the portal answer for a voided invoice (SPEC §12).
INVOICE_VOID_REASON = "invoice_void"
INVOICE_VOID_MESSAGE = "This invoice was cancelled by the company, so there is nothing to pay."


@dataclass(frozen=True)
class InvoiceStanding:
    invoice_id: str
    number: str
    customer_id: str
    kind: str
    amount_cents: int
    balance_cents: int
    currency: str
    status: str
    locked_until: datetime | None

    @property
    def settled(self) -> bool:
        return self.status == "paid" or self.balance_cents == 0


@dataclass(frozen=True)
class OpeningRefusal:
    type: ErrorType
    message: str
    retry_after: int | None = None
    locked_until: datetime | None = None


def opening_refusal(
    standing: InvoiceStanding | None, invoice_id: str, now: datetime
) -> OpeningRefusal | None:
    """Why an attempt may not start now, or None when it may."""
    if standing is None:
        return OpeningRefusal(ErrorType.INVOICE_NOT_FOUND, f"invoice {invoice_id} does not exist")
    if standing.status == INVOICE_VOID_STATUS:
        # SPEC §12: voided by the company; nothing is owed, and its links answer 410.
        return OpeningRefusal(ErrorType.INVOICE_VOID, f"invoice {standing.number} was voided")
    if standing.status == "pending":
        # SPEC §9: a debit is processing; a new attempt may start only if it fails or is returned.
        return OpeningRefusal(
            ErrorType.INVOICE_ALREADY_PAID,
            f"invoice {standing.number} is already paid: the payment is processing",
        )
    if standing.settled:
        return OpeningRefusal(ErrorType.INVOICE_ALREADY_PAID, f"invoice {standing.number} is already paid")
    if standing.locked_until is not None and standing.locked_until > now:
        return OpeningRefusal(
            ErrorType.INVOICE_LOCKED,
            f"invoice {standing.number} is locked after too many wrong codes",
            retry_after=int((standing.locked_until - now).total_seconds()) + 1,
            locked_until=standing.locked_until,
        )
    return None
