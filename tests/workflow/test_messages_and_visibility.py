"""Validators keep refused input out of history; search attributes and current details stay current."""

from collections.abc import Awaitable
from datetime import datetime

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus

from domain.attempt import DeliveryStatusEvent, PaymentEvent
from domain.channels import Channel, mask_destination
from domain.errors import RefusalType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.support import Harness
from tests.workflow.steps import (
    Attempt,
    accepted_update_ids,
    audit_rows,
    code_in_outbox,
    eventually,
    new_invoice,
    wrong_code_for,
)
from workflows import search_attributes as sa
from workflows.pay_invoice import PayInvoiceWorkflow


async def test_refused_updates_write_nothing_to_history(harness_factory: HarnessFactory) -> None:
    async with harness_factory(otp_resend_cooldown_seconds=30) as h:
        inv = await new_invoice(h.pool, phone=False)
        attempt = await Attempt.open(h, inv)

        refusals: dict[str, RefusalType] = {}

        async def refused(request_id: str, expected: RefusalType, call: Awaitable[object]) -> None:
            with pytest.raises(AttemptRefused) as err:
                await call
            assert err.value.type is expected
            refusals[request_id] = expected

        before = len((await attempt.handle.fetch_history()).events)
        await refused(
            "verify-too-early", RefusalType.INVALID_STATE, attempt.verify("123456", "verify-too-early")
        )
        await refused(
            "sms-not-on-file",
            RefusalType.CHANNEL_UNAVAILABLE,
            attempt.request_code(Channel.SMS, "sms-not-on-file"),
        )
        assert len((await attempt.handle.fetch_history()).events) == before

        await attempt.request_code(Channel.EMAIL, "send-1")
        code = await code_in_outbox(h.pool, inv.email or "", attempt.run_id)
        before = len((await attempt.handle.fetch_history()).events)
        await refused("five-digits", RefusalType.INVALID_INPUT, attempt.verify("12345", "five-digits"))
        await refused("not-digits", RefusalType.INVALID_INPUT, attempt.verify("12a456", "not-digits"))
        await refused("seven-digits", RefusalType.INVALID_INPUT, attempt.verify("1234567", "seven-digits"))
        await refused("pay-too-early", RefusalType.INVALID_STATE, attempt.pay(request_id="pay-too-early"))
        await refused(
            "resend-too-soon",
            RefusalType.RESEND_TOO_SOON,
            attempt.request_code(Channel.EMAIL, "resend-too-soon"),
        )
        assert len((await attempt.handle.fetch_history()).events) == before

        # Refused input costs the customer no attempt.
        state = await attempt.current()
        assert (state.status, state.attempts_remaining, state.sends_remaining) == (
            PaymentStatus.AWAITING_CODE,
            5,
            4,
        )

        await attempt.verify(wrong_code_for(code), "verify-1")
        ids = accepted_update_ids(await attempt.handle.fetch_history())
        assert "send-1" in ids and "verify-1" in ids
        assert not set(refusals) & set(ids)
        assert len(refusals) == 7


async def test_search_attributes_and_current_details_follow_the_attempt(harness: Harness) -> None:
    inv = await new_invoice(harness.pool, amount_cents=48000)
    attempt = await Attempt.open(harness, inv)

    entered: list[datetime] = []

    async def search_attributes() -> dict[str, object]:
        attrs = (await attempt.handle.describe()).typed_search_attributes
        since = attrs.get(sa.STATUS_SINCE)
        assert isinstance(since, datetime)
        entered.append(since)  # when the status began: moves with each change
        # PaymentId belongs to the payment's own workflow (SPEC §9), not to the attempt.
        return {
            key.name: attrs.get(key) for key in sa.ALL_KEYS if key not in (sa.STATUS_SINCE, sa.PAYMENT_ID)
        }

    async def details() -> str:
        metadata: WorkflowMetadata = await attempt.handle.query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        return str(metadata.current_details)

    expected = {
        "InvoiceId": inv.invoice_id,
        "CustomerId": inv.customer_id,
        "PayerContactId": inv.payer_contact_id,
        "AmountCents": 48000,
    }
    assert await search_attributes() == expected | {"PaymentStatus": "CHOOSING_CHANNEL"}
    assert "choose where the code goes" in await details()

    sent, code = await attempt.send_and_read(Channel.SMS)
    assert await search_attributes() == expected | {"PaymentStatus": "AWAITING_CODE"}
    text = await details()
    assert f"code sent by SMS to {sent.destination}" in text and "5 attempts left" in text
    assert (
        inv.phone and inv.phone not in text and sent.destination == mask_destination(Channel.SMS, inv.phone)
    )

    await attempt.verify(wrong_code_for(code))
    assert "4 attempts left" in await details()

    assert (await attempt.verify(code)).verified
    assert await search_attributes() == expected | {"PaymentStatus": "AWAITING_PAYMENT"}
    assert "bank details by" in await details()

    # Visibility is eventually consistent; operators filter on these attributes in the UI.
    query = f'InvoiceId = "{inv.invoice_id}" AND PaymentStatus = "AWAITING_PAYMENT" AND AmountCents = 48000'

    async def listed() -> list[str]:
        return [w.id async for w in harness.client.list_workflows(query)]

    assert await eventually(listed, lambda ids: ids == [attempt.state.workflow_id])

    await attempt.pay()
    await attempt.outcome()
    description = await attempt.handle.describe()
    assert description.status is WorkflowExecutionStatus.COMPLETED
    assert await search_attributes() == expected | {"PaymentStatus": "PAID"}
    assert entered == sorted(entered) and len(set(entered)) == 4  # one moment per status entered
    assert (await details()).startswith("Finished: PAID")
    assert await description.static_summary() == f"Pay Your Invoice {inv.invoice_id}: 480.00 USD"


async def test_failed_delivery_report_marks_the_channel_and_offers_the_other(
    harness_factory: HarnessFactory,
) -> None:
    async with harness_factory(otp_resend_cooldown_seconds=30) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.request_code(Channel.SMS)

        report = DeliveryStatusEvent(
            send_seq=1, channel=Channel.SMS, status="undelivered", provider_code="30003"
        )
        await attempt.handle.signal(PayInvoiceWorkflow.delivery_status, report)
        state = await eventually(attempt.current, lambda s: s.failed_channels == [Channel.SMS])
        assert state.code is None and state.status is PaymentStatus.AWAITING_CODE

        with pytest.raises(AttemptRefused) as refused:
            await attempt.request_code(Channel.SMS)
        assert refused.value.type is RefusalType.CHANNEL_UNAVAILABLE
        # The customer never got that code, so the resend cooldown does not apply.
        _, code = await attempt.send_and_read(Channel.EMAIL)
        assert (await attempt.verify(code)).verified

        failed = next(
            r for r in await audit_rows(h.pool, inv.invoice_id) if r["event_type"] == "OTP_DELIVERY_FAILED"
        )
        assert (failed["actor"], failed["channel"]) == ("provider", "sms")
        assert failed["details"]["provider_code"] == "30003"


async def test_processor_event_is_audited(harness: Harness) -> None:
    inv = await new_invoice(harness.pool, kind="deposit", amount_cents=20000)
    attempt = await Attempt.open(harness, inv)
    event = PaymentEvent(kind="settlement_pending", processor_reference="SBX-TEST")
    await attempt.handle.signal(PayInvoiceWorkflow.payment_event, event)

    async def processor_rows() -> list[dict[str, object]]:
        return [
            r for r in await audit_rows(harness.pool, inv.invoice_id) if r["event_type"] == "PAYMENT_EVENT"
        ]

    [row] = await eventually(processor_rows, bool)
    assert row["actor"] == "processor"
    assert row["details"] == event.model_dump()
    assert row["payer_contact_id"] == inv.payer_contact_id
