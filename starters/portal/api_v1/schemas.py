"""Request bodies of /api/v1 (SPEC §12). An unknown field is refused (SPEC §11), as elsewhere."""

from datetime import date
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from domain.company_records import EXTERNAL_ID_PATTERN, NAME_MAX, NUMBER_MAX

ExternalId = Annotated[
    str,
    Path(pattern=EXTERNAL_ID_PATTERN, description="The company's own id: 1-64 printable ASCII characters"),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerBody(_Body):
    name: str = Field(min_length=1, max_length=NAME_MAX)


class ContactBody(_Body):
    """`email` and `phone` left out stay as they are; `null` clears one."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    primary: StrictBool | None = None
    portal_payer: StrictBool | None = Field(
        default=None, description="true makes this contact the customer's one Customer Portal Payer"
    )


class InvoiceBody(_Body):
    customer_external_id: str = Field(pattern=EXTERNAL_ID_PATTERN)
    number: str = Field(min_length=1, max_length=NUMBER_MAX)
    kind: Literal["invoice", "deposit"]
    amount_cents: StrictInt = Field(description="1 to MAX_INVOICE_CENTS")
    currency: Literal["USD"]
    due_date: date | None = None


class PaymentRequestBody(_Body):
    channels: list[Literal["email", "sms"]] = Field(default=["email", "sms"], min_length=1, max_length=2)
