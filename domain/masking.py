"""What a customer, an operator or a log line may see of a destination or an account."""

import re


def mask_email(email: str) -> str:
    """`jane@example.com` -> `j•••@example.com`: enough to recognise, not enough to harvest."""
    local, _, domain = email.partition("@")
    if not domain:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def mask_phone(phone: str) -> str:
    """`+15555550102` -> `•••-•••-0102`."""
    digits = re.sub(r"\D", "", phone)
    return f"•••-•••-{digits[-4:]}" if len(digits) >= 4 else "•••"


def last4(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[-4:]
