"""SPEC §7: activities carry summaries, so the Temporal UI says what each step did.

A whole paid attempt on the dev server, then its history read as the UI reads it: every scheduled
activity has a summary in words (decoded through the data converter, codec included), naming the
step, and none shows a full destination, account number or code. The same for the payment's
follower (`ach-payment-<payment_id>`).
"""

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from domain.channels import Channel
from domain.status import PaymentStatus
from tests.support import GOOD_ACCOUNT, Harness
from tests.workflow.steps import Attempt, eventually, new_invoice


async def summaries(client: Client, workflow_id: str, run_id: str | None = None) -> list[tuple[str, str]]:
    """(activity type, summary) for every activity the run scheduled, in order."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    found: list[tuple[str, str]] = []
    async for event in handle.fetch_history_events():
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        found.append(
            (event.activity_task_scheduled_event_attributes.activity_type.name, await _summary(client, event))
        )
    return found


async def _summary(client: Client, event: HistoryEvent) -> str:
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return ""
    [text] = await client.data_converter.decode([event.user_metadata.summary], [str])
    return str(text)


async def test_every_activity_of_a_paid_attempt_has_a_summary_in_words(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    _, code = await attempt.send_and_read(Channel.SMS)
    assert (await attempt.verify(code)).verified
    paid = await attempt.pay()
    assert paid.status is PaymentStatus.PAID
    await attempt.outcome()

    found = await summaries(harness.client, attempt.state.workflow_id, attempt.run_id)
    types = [t for t, _ in found]
    assert {"resolve_payer", "send_code", "check_code", "submit_screened_debit"} <= set(types), types
    missing = [t for t, text in found if not text.strip()]
    assert not missing, f"activities without a summary: {missing}"
    by_type = dict(found)
    assert by_type["send_code"].startswith("send code #1 by sms to ")
    assert by_type["check_code"] == "check code entry #1 against code #1"
    assert by_type["submit_screened_debit"] == f"debit 125000 USD for {inv.invoice_id}"
    assert by_type["resolve_payer"] == f"resolve the Customer Portal Payer of {inv.invoice_id}"
    # The payment's follower (SPEC §9), started when the debit was accepted, says what it does too.
    assert paid.payment is not None
    follower = await eventually(
        lambda: summaries(harness.client, f"ach-payment-{paid.payment.payment_id}"),
        lambda acts: any(t == "load_ach_payment" for t, _ in acts),
        timeout=60,
    )
    assert not [t for t, text in follower if not text.strip()], follower
    assert dict(follower)["load_ach_payment"] == f"load payment {paid.payment.payment_id}"
    found += follower
    shown = " ".join(text for _, text in found)
    for secret in (inv.phone or "", (inv.phone or "")[-10:], inv.email or "", GOOD_ACCOUNT, code):
        assert secret and secret not in shown, "a summary shows a full destination, account or code"
