"""Typed search attributes operators filter on in the Temporal UI (ids, status, amount: never PII)."""

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain.attempt import PayerResolution
    from domain.status import PaymentStatus

PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
# When the attempt entered its status: `ops stuck` is one visibility query on it.
STATUS_SINCE = SearchAttributeKey.for_datetime("StatusSince")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
PAYER_CONTACT_ID = SearchAttributeKey.for_keyword("PayerContactId")
AMOUNT_CENTS = SearchAttributeKey.for_int("AmountCents")
# SPEC §9: one AchPaymentWorkflow per accepted debit.
PAYMENT_ID = SearchAttributeKey.for_keyword("PaymentId")

ALL_KEYS = (PAYMENT_STATUS, STATUS_SINCE, INVOICE_ID, CUSTOMER_ID, PAYER_CONTACT_ID, AMOUNT_CENTS, PAYMENT_ID)


def status_updates(status: PaymentStatus, payer: PayerResolution | None) -> list[SearchAttributeUpdate[Any]]:
    """One upsert per attempt status change; the payer's ids and the amount ride on the first
    one after resolution (`payer`), so an attempt never costs an upsert more than it changes."""
    updates: list[SearchAttributeUpdate[Any]] = [
        PAYMENT_STATUS.value_set(status.value),
        STATUS_SINCE.value_set(workflow.now()),
    ]
    if payer is not None:
        updates += [
            CUSTOMER_ID.value_set(payer.customer_id),
            PAYER_CONTACT_ID.value_set(payer.payer_contact_id),
            AMOUNT_CENTS.value_set(payer.invoice.amount_cents),
        ]
    return updates
