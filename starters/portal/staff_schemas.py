"""Bodies and answers of the staff API's contact changes (SPEC §10, §11)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from starters.portal.schemas import ContactsView, DesignationView


class ContactPatchBody(BaseModel):
    """Only the fields sent change; `null` (or an empty string) clears one. Anything else is refused."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320, description="An address like name@example.com")
    phone: str | None = Field(default=None, max_length=40, description="E.164, like +15555550101")


class ChangeConsequences(BaseModel):
    changed_fields: list[str] = Field(description="Which of email/phone changed")
    links_revoked_before: datetime | None = Field(
        description="Pay links of this customer issued before this moment now answer 401 link_revoked"
    )
    cancelled_invoice_ids: list[str] = Field(description="Invoices whose running attempt was cancelled")
    notified: list[str] = Field(description="Masked addresses told of the change (old and new)")
    problems: list[str] = Field(description="What could not be done (an attempt mid-debit, a failed notice)")


class PayerDesignationView(DesignationView, ChangeConsequences):
    pass


class ContactChangeView(ContactsView, ChangeConsequences):
    contact_id: str
    audit_event_id: int | None = Field(description="The CONTACT_CHANGED row; null when nothing changed")
