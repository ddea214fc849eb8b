"""Bodies and answers of the staff API's contact changes (SPEC §10, §11)."""

from pydantic import BaseModel, ConfigDict, Field

from starters.portal.schemas import ChangeConsequences, ContactsView


class ContactPatchBody(BaseModel):
    """Only the fields sent change; `null` (or an empty string) clears one. Anything else is refused."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320, description="An address like name@example.com")
    phone: str | None = Field(default=None, max_length=40, description="E.164, like +15555550101")


class ContactChangeView(ContactsView, ChangeConsequences):
    contact_id: str
    audit_event_id: int | None = Field(description="The CONTACT_CHANGED row; null when nothing changed")
