"""SPEC §11: "The old and the new address are told of the change."

A new payer: the old payer's and the new payer's email and phone are told. A changed email or
phone on the payer: the old and the new value of each changed field are told. Each address once;
a provider failure is reported to staff, never raised, because the change itself has committed.
"""

from collections.abc import Mapping

from domain.channels import Channel, mask_destination
from infra.providers.delivery.base import CodeSender, DeliveryError
from infra.providers.delivery.messages import (
    compose_contact_change_notice,
    new_address_line,
    no_longer_payer_line,
    now_payer_line,
    old_address_line,
)
from infra.stores.contact_records import ContactRecord
from starters.staff_changes.contact_change import ContactChangeOutcome


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
                notices.append((channel, address, no_longer_payer_line(customer_name)))
        if payer_after is not None:
            for channel, address in _addresses(payer_after):
                notices.append((channel, address, now_payer_line(customer_name)))
    else:
        assert payer_after is not None
        for name, channel in (("email", Channel.EMAIL), ("phone", Channel.SMS)):
            if name not in outcome.changed_fields:
                continue
            old = getattr(contact_before, name)
            new = getattr(payer_after, name)
            if old:
                notices.append((channel, old, old_address_line(name, customer_name)))
            if new:
                notices.append((channel, new, new_address_line(name, customer_name)))
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
        message = compose_contact_change_notice(
            channel,
            address,
            first_line=first,
            company=company,
            customer_name=customer_name,
            key=f"notice:{change_id}:{index}",
        )
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
