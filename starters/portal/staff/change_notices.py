"""SPEC §11: "The old and the new address are told of the change."

A new payer: the old payer's and the new payer's email and phone are told. A changed email or
phone on the payer: the old and the new value of each changed field are told. Each address once;
a provider failure is reported to staff, never raised, because the change itself has committed.
"""

from collections.abc import Mapping

from domain.channels import Channel, mask_destination
from infra.providers.delivery.base import CodeSender, DeliveryError, OtpMessage
from infra.stores.contact_records import ContactRecord
from starters.portal.staff.contact_change import ContactChangeOutcome


async def tell_old_and_new_addresses(
    company: str,
    senders: Mapping[Channel, CodeSender],
    outcome: ContactChangeOutcome,
    customer_name: str,
    change_id: str,
    *,
    contact_before: ContactRecord,
    payer_before: ContactRecord | None,
    payer_after: ContactRecord | None,
) -> None:
    """Send each notice once per address; what could not be sent goes to `outcome.problems`."""
    notices: list[tuple[Channel, str, str]] = []  # channel, address, first sentence
    if outcome.payer_changed:
        if payer_before is not None:
            for channel, address in _addresses(payer_before):
                notices.append(
                    (channel, address, f"You are no longer the Customer Portal Payer for {customer_name}.")
                )
        if payer_after is not None:
            for channel, address in _addresses(payer_after):
                notices.append(
                    (
                        channel,
                        address,
                        f"You are now the Customer Portal Payer for {customer_name}: payment links and "
                        "verification codes will come to you.",
                    )
                )
    else:
        assert payer_after is not None
        for name, channel in (("email", Channel.EMAIL), ("phone", Channel.SMS)):
            if name not in outcome.changed_fields:
                continue
            old = getattr(contact_before, name)
            new = getattr(payer_after, name)
            if old:
                notices.append(
                    (
                        channel,
                        old,
                        f"This {'address' if name == 'email' else 'number'} is no longer used to verify "
                        f"payments for {customer_name}.",
                    )
                )
            if new:
                notices.append(
                    (
                        channel,
                        new,
                        f"This {'address' if name == 'email' else 'number'} will now receive verification "
                        f"codes for {customer_name}'s payments.",
                    )
                )
    tail = (
        f"The change was made by {company} staff. Payment links sent earlier no longer work; ask for a "
        f"new one if you need to pay. If you did not expect this, contact {company}."
    )
    seen: set[tuple[Channel, str]] = set()
    for index, (channel, address, first) in enumerate(notices):
        if (channel, address) in seen:
            continue
        seen.add((channel, address))
        sender = senders.get(channel)
        masked = mask_destination(channel, address)
        if sender is None:
            outcome.problems.append(f"no {channel.value} sender for {masked}")
            continue
        text = f"{company}: {first} {tail}"
        subject = "" if channel is Channel.SMS else f"Payment contact changed for {customer_name}"
        message = OtpMessage(channel, address, subject, text, None, f"notice:{change_id}:{index}", {})
        try:
            await sender.send(message)
        except DeliveryError as exc:
            outcome.problems.append(f"telling {masked} failed: {exc}")
            continue
        outcome.notified.append(masked)


def _addresses(contact: ContactRecord) -> list[tuple[Channel, str]]:
    found: list[tuple[Channel, str]] = []
    if contact.email:
        found.append((Channel.EMAIL, contact.email))
    if contact.phone:
        found.append((Channel.SMS, contact.phone))
    return found
