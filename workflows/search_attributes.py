"""Typed search attributes operators filter on in the Temporal UI (ids, status, amount: never PII)."""

from temporalio.common import SearchAttributeKey

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
