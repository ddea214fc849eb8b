"""Why an attempt ended, in the words the customer, the operator and the audit trail all read."""

from datetime import datetime

NO_CONTACT_REASON = "The payer contact has neither a phone nor an email on file; update the contact profile."


def locked_reason(locked_until: datetime | None) -> str:
    until = locked_until.isoformat(timespec="seconds") if locked_until is not None else "a while"
    return f"Too many wrong codes. Try again after {until}."
