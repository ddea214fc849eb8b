"""Who pays and where the code may go (SPEC §1, §2): opening, joining, refusing an attempt."""

import asyncio

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from domain.attempt import PayInvoiceInput, workflow_id_for
from domain.channels import Channel, mask_destination
from domain.errors import RefusalType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.support import Harness
from tests.workflow.steps import (
    BROWSER,
    Attempt,
    audit_rows,
    audit_types,
    code_in_outbox,
    new_invoice,
    outbox_count,
)
from workflows.pay_invoice import PayInvoiceWorkflow


@pytest.mark.parametrize(
    ("email", "phone", "offered"),
    [
        (True, True, [Channel.EMAIL, Channel.SMS]),
        (True, False, [Channel.EMAIL]),
        (False, True, [Channel.SMS]),
    ],
    ids=["email-and-sms", "email-only", "sms-only"],
)
async def test_only_channels_on_file_are_offered(
    harness: Harness, email: bool, phone: bool, offered: list[Channel]
) -> None:
    inv = await new_invoice(harness.pool, email=email, phone=phone)
    attempt = await Attempt.open(harness, inv)

    assert attempt.state.status is PaymentStatus.CHOOSING_CHANNEL
    assert attempt.state.code is None
    assert [c.channel for c in attempt.state.channels] == offered
    for c in attempt.state.channels:
        stored = inv.email if c.channel is Channel.EMAIL else inv.phone
        assert stored and c.destination == mask_destination(c.channel, stored)
        assert stored not in c.destination

    missing = {Channel.EMAIL, Channel.SMS} - set(offered)
    for channel in missing:
        with pytest.raises(AttemptRefused) as refused:
            await attempt.request_code(channel)
        assert refused.value.type is RefusalType.CHANNEL_UNAVAILABLE
    assert (await attempt.current()).status is PaymentStatus.CHOOSING_CHANNEL
    assert await outbox_count(harness.pool, attempt.run_id) == 0

    payer_resolved = (await audit_rows(harness.pool, inv.invoice_id))[1]
    assert payer_resolved["event_type"] == "PAYER_RESOLVED"
    assert payer_resolved["details"]["channels"] == [c.value for c in offered]


async def test_designated_payer_wins_over_primary_contact(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    primary = await harness.pool.fetchrow("SELECT * FROM contacts WHERE id = $1", inv.primary_contact_id)
    attempt = await Attempt.open(harness, inv)

    assert attempt.state.payer_contact_id == inv.payer_contact_id != inv.primary_contact_id
    assert attempt.state.payer_name == "Designated Payer"
    _, code = await attempt.send_and_read(Channel.EMAIL)
    assert code
    assert (
        await harness.pool.fetchval(
            "SELECT count(*) FROM dev_outbox WHERE to_address = ANY($1::text[])",
            [primary["email"], primary["phone"]],
        )
        == 0
    )

    rows = await audit_rows(harness.pool, inv.invoice_id)
    assert rows[1]["details"]["designated_portal_payer"] is True
    assert {r["payer_contact_id"] for r in rows} == {inv.payer_contact_id}


async def test_primary_contact_pays_when_no_payer_is_designated(harness: Harness) -> None:
    inv = await new_invoice(harness.pool, designate_payer=False)
    attempt = await Attempt.open(harness, inv)

    assert attempt.state.payer_contact_id == inv.primary_contact_id
    assert attempt.state.payer_name == "Primary Person"
    assert [c.channel for c in attempt.state.channels] == [Channel.EMAIL, Channel.SMS]
    await attempt.verified(Channel.SMS)
    assert (await attempt.pay()).status is PaymentStatus.PAID

    rows = await audit_rows(harness.pool, inv.invoice_id)
    assert rows[1]["details"]["designated_portal_payer"] is False
    assert {r["payer_contact_id"] for r in rows} == {inv.primary_contact_id}


async def test_code_goes_to_the_stored_destination_as_staff_last_fixed_it(harness: Harness) -> None:
    """ "Customer did not get the code": staff fix the stored email, the customer asks again.

    The running attempt was resolved to the old address, so its next send refuses and the attempt
    ends cancelled (SPEC §11); the customer's next open resolves the fixed address.
    """
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    first = await attempt.request_code(Channel.EMAIL)
    assert first.destination == mask_destination(Channel.EMAIL, inv.email or "")

    fixed = "fixed-" + (inv.email or "")
    await harness.pool.execute("UPDATE contacts SET email = $2 WHERE id = $1", inv.payer_contact_id, fixed)
    with pytest.raises(AttemptRefused) as refused:
        await attempt.request_code(Channel.EMAIL)
    assert refused.value.type is RefusalType.CONTACT_CHANGED
    assert (await attempt.current()).status is PaymentStatus.CANCELLED
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM dev_outbox WHERE to_address = $1", inv.email) == 1
    )

    again = await Attempt.open(harness, inv)
    assert again.run_id != attempt.run_id
    second = await again.request_code(Channel.EMAIL)
    assert second.destination == mask_destination(Channel.EMAIL, fixed)
    code = await code_in_outbox(harness.pool, fixed, again.run_id)
    assert (await again.verify(code)).verified


async def test_no_contact_method_is_terminal_and_audited(harness: Harness) -> None:
    inv = await new_invoice(harness.pool, email=False, phone=False)
    attempt = await Attempt.open(harness, inv)

    assert attempt.state.status is PaymentStatus.NO_CONTACT_METHOD
    outcome = await attempt.outcome()
    assert outcome.status is PaymentStatus.NO_CONTACT_METHOD
    assert outcome.reason and "profile" in outcome.reason
    assert await audit_types(harness.pool, inv.invoice_id) == [
        "ATTEMPT_STARTED",
        "PAYER_RESOLVED",
        "NO_CONTACT_METHOD",
    ]


async def test_deposit_needs_no_code(harness: Harness) -> None:
    inv = await new_invoice(harness.pool, kind="deposit", amount_cents=20000)
    attempt = await Attempt.open(harness, inv)

    assert attempt.state.status is PaymentStatus.AWAITING_PAYMENT
    assert attempt.state.otp_required is False
    with pytest.raises(AttemptRefused) as refused:
        await attempt.request_code(Channel.EMAIL)
    assert refused.value.type is RefusalType.INVALID_STATE
    assert (await attempt.pay()).status is PaymentStatus.PAID
    types = await audit_types(harness.pool, inv.invoice_id)
    assert "OTP_NOT_REQUIRED" in types and "OTP_SENT" not in types


async def test_concurrent_opens_join_one_run(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    states = await asyncio.gather(*(harness.gateway.open(inv.invoice_id, BROWSER) for _ in range(4)))

    assert len({s.run_id for s in states}) == 1
    assert {s.status for s in states} == {PaymentStatus.CHOOSING_CHANNEL}
    again = await harness.gateway.open(inv.invoice_id, BROWSER)
    assert again.run_id == states[0].run_id
    assert (await audit_types(harness.pool, inv.invoice_id)).count("ATTEMPT_STARTED") == 1


async def test_unknown_invoice_is_refused(harness: Harness) -> None:
    with pytest.raises(AttemptRefused) as refused:
        await harness.gateway.open("INV-DOES-NOT-EXIST", BROWSER)
    assert refused.value.type is RefusalType.INVOICE_NOT_FOUND
    assert "does not exist" in refused.value.message


async def test_already_paid_invoice_is_refused(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.verified(Channel.EMAIL)
    assert (await attempt.pay()).status is PaymentStatus.PAID
    await attempt.outcome()

    with pytest.raises(AttemptRefused) as refused:
        await harness.gateway.open(inv.invoice_id, BROWSER)
    assert refused.value.type is RefusalType.INVOICE_ALREADY_PAID
    assert refused.value.status is PaymentStatus.PAID
    assert "already paid" in refused.value.message


@pytest.mark.parametrize("paid", [False, True], ids=["unknown", "already-paid"])
async def test_workflow_itself_refuses_what_the_gateway_would(harness: Harness, paid: bool) -> None:
    """Defence in depth: a start that skips the PostgreSQL pre-check is refused by payer resolution."""
    if paid:
        inv = await new_invoice(harness.pool)
        await harness.pool.execute(
            "UPDATE invoices SET status = 'paid', balance_cents = 0 WHERE id = $1", inv.invoice_id
        )
        invoice_id, expected = inv.invoice_id, RefusalType.INVOICE_ALREADY_PAID
    else:
        invoice_id, expected = f"INV-NONE-{harness.task_queue}", RefusalType.INVOICE_NOT_FOUND
    start = WithStartWorkflowOperation(
        PayInvoiceWorkflow.run,
        PayInvoiceInput(invoice_id=invoice_id),
        id=workflow_id_for(invoice_id),
        task_queue=harness.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    with pytest.raises(WorkflowUpdateFailedError) as update_failed:
        await harness.client.execute_update_with_start_workflow(
            PayInvoiceWorkflow.open_session, BROWSER, start_workflow_operation=start
        )
    cause = update_failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == expected.value

    with pytest.raises(WorkflowFailureError) as failed:
        await (await start.workflow_handle()).result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == expected.value
