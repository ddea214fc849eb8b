"""SPEC §3: no OTP code, secret or brute-forceable digest in history, logs or the audit table, and
no contact or bank details readable without the codec."""

import base64
import hashlib
import json
import logging
from collections.abc import Iterator

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from activities.otp import code_digest
from domain.channels import Channel
from domain.status import PaymentStatus
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, TEST_CODEC_KEYS, Harness
from tests.workflow.steps import Attempt, audit_rows, bank_details, new_invoice, wrong_code_for
from workflows.pay_invoice import DEBIT_SCREENS_AND_FOLLOWS, DEBIT_UNDER_OWN_NAME


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload in a history event (inputs, results, failures, headers, user metadata) but
    search attributes, which are plaintext by design and hold only ids, status and amount."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or kind is SearchAttributes.DESCRIPTOR:
            continue
        if kind.GetOptions().map_entry:
            items = list(value.values()) if kind.fields_by_name["value"].message_type else []
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            else:
                yield from payloads_in(item)


def _forms(raw: bytes) -> list[bytes]:
    """A digest as bytes, hex and base64, however a careless payload might carry it."""
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


async def test_completed_attempt_history_holds_no_secret(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.request_code(Channel.EMAIL)
    _, code = await attempt.send_and_read(Channel.SMS)
    assert not (await attempt.verify(wrong_code_for(code))).verified
    assert (await attempt.verify(code)).verified
    assert (await attempt.pay(bank_details())).status is PaymentStatus.PAID
    await attempt.outcome()

    sent = await harness.pool.fetch(
        "SELECT body, idempotency_key FROM dev_outbox WHERE idempotency_key LIKE $1 ORDER BY id",
        f"%/{attempt.run_id}/code/%",
    )
    codes = {row["idempotency_key"].rsplit("/", 1)[1]: row["body"][:6] for row in sent}
    assert len(codes) == 2 and all(c.isdigit() for c in codes.values())
    key = harness.settings.secret("otp_hmac_key").encode()
    digests = [code_digest(key, attempt.run_id, int(seq), c) for seq, c in codes.items()]
    plain_hashes = [hashlib.sha256(c.encode()).digest() for c in codes.values()]
    assert inv.email and inv.phone
    contact_and_bank = [
        inv.email,
        inv.phone,
        inv.phone.lstrip("+"),
        GOOD_ACCOUNT,
        GOOD_ROUTING,
        "Charles Babbage",
    ]
    secrets = [*codes.values(), wrong_code_for(code), key.decode(), TEST_CODEC_KEYS.split(":", 1)[1]]

    # What the server stores, fetched by a client without the codec (the default converter).
    target = harness.client.service_client.config.target_host
    plain = await Client.connect(target, namespace=harness.client.namespace)
    history: WorkflowHistory = await plain.get_workflow_handle(
        attempt.state.workflow_id, run_id=attempt.run_id
    ).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    text = history.to_json()
    assert len(history.events) > 20
    for needle in [*secrets, *contact_and_bank]:
        assert needle.encode() not in raw, needle
        assert needle not in text, needle
    for digest in [*digests, *plain_hashes]:
        for form in _forms(digest):
            assert form not in raw

    # What an operator with the codec key sees: payloads decoded, still no digest of a code,
    # and no plaintext destination (workflow payloads carry masked destinations only).
    # A patch marker's details are written by the SDK's core, past the codec: they may hold the
    # patch id in plaintext and nothing else (docs/versioning.md).
    markers = [
        p
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        for p in payloads_in(event)
        if p.metadata.get("encoding") != b"binary/encrypted"
    ]
    patches = [
        {"id": patch_id, "deprecated": False}
        for patch_id in (DEBIT_SCREENS_AND_FOLLOWS, DEBIT_UNDER_OWN_NAME)
    ]
    assert markers and all(json.loads(p.data) in patches for p in markers), markers
    payloads = [p for event in history.events for p in payloads_in(event) if p not in markers]
    assert len(payloads) > 20
    assert all(p.metadata.get("encoding") == b"binary/encrypted" for p in payloads)
    codec = harness.client.data_converter.payload_codec
    assert codec is not None
    decoded = b"\x00".join(p.SerializeToString() for p in await codec.decode(payloads))
    assert b"Charles Babbage" in decoded  # the account holder typed on the bank form: decoding worked
    for digest in [*digests, *plain_hashes]:
        for form in _forms(digest):
            assert form not in decoded
    for needle in (inv.email, inv.phone, key.decode()):
        assert needle.encode() not in decoded, needle

    # The audit table and the logs hold no code either; the challenge table only a keyed digest.
    trail = repr(await audit_rows(harness.pool, inv.invoice_id))
    assert not [c for c in codes.values() if c in trail]
    assert inv.email not in trail and inv.phone not in trail
    stored = await harness.pool.fetch(
        "SELECT code_digest FROM otp_challenges WHERE run_id = $1", attempt.run_id
    )
    assert {bytes(r["code_digest"]) for r in stored} == set(digests)
    assert not {bytes(r["code_digest"]) for r in stored} & set(plain_hashes)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for needle in [*codes.values(), inv.email, inv.phone, GOOD_ACCOUNT]:
        assert needle not in logged, needle
