"""The business facts PortalPay reports to the company's own systems (SPEC §12).

An event is `{"id": "evt_…", "type", "created_at", "data": {"object": {…}}}`. Payloads carry what
an accounting connector needs (external ids, amounts, status, return code, settled time) and never
a full account number, a full email or phone, a code or a link token.
"""

from enum import StrEnum


class EventType(StrEnum):
    INVOICE_CREATED = "invoice.created"
    INVOICE_UPDATED = "invoice.updated"
    INVOICE_VOIDED = "invoice.voided"
    INVOICE_PAID = "invoice.paid"
    INVOICE_REOPENED = "invoice.reopened"
    CONTACT_UPDATED = "contact.updated"
    PAYER_DESIGNATED = "payer.designated"
    PAYMENT_REQUEST_SENT = "payment_request.sent"
    ATTEMPT_LOCKED = "attempt.locked"
    PAYMENT_PROCESSING = "payment.processing"
    PAYMENT_SETTLED = "payment.settled"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_RETURNED = "payment.returned"
    PAYMENT_CANCELED = "payment.canceled"
    BANK_ACCOUNT_BLOCKED = "bank_account.blocked"
    ACH_NOTICE_OF_CHANGE = "ach.notice_of_change"


# The payment status each payment event reports (SPEC §9 statuses).
PAYMENT_EVENT_FOR_STATUS: dict[str, EventType] = {
    "processing": EventType.PAYMENT_PROCESSING,
    "settled": EventType.PAYMENT_SETTLED,
    "failed": EventType.PAYMENT_FAILED,
    "returned": EventType.PAYMENT_RETURNED,
    "canceled": EventType.PAYMENT_CANCELED,
}
