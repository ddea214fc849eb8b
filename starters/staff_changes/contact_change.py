"""What one staff change of a contact did: the record the API answers with and the notices read."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class ContactChangeOutcome:
    customer_id: str
    contact_id: str
    previous_designated_contact_id: str | None
    previous_payer_contact_id: str | None
    payer_contact_id: str | None
    changed_fields: list[str] = field(default_factory=list)
    designation_event_id: int | None = None
    contact_event_id: int | None = None
    links_revoked_before: datetime | None = None
    cancelled_invoice_ids: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)  # masked destinations
    problems: list[str] = field(default_factory=list)

    @property
    def payer_changed(self) -> bool:
        return self.previous_payer_contact_id != self.payer_contact_id
