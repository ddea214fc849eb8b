"""Where a one-time passcode can go."""

from enum import StrEnum

from domain.masking import mask_email, mask_phone


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


def mask_destination(channel: Channel, destination: str) -> str:
    return mask_email(destination) if channel is Channel.EMAIL else mask_phone(destination)


def channels_on_file(email: str | None, phone: str | None) -> list[Channel]:
    """Only what is stored on the payer contact counts: the customer can never add a destination."""
    offered: list[Channel] = []
    if email:
        offered.append(Channel.EMAIL)
    if phone:
        offered.append(Channel.SMS)
    return offered
