"""Issue 10 finding 2, tried again: an insider with only the Temporal frontend starts `pay-invoice-X`.

Their client has no codec key, so the input is plaintext JSON whose policy asks for no OTP. The
worker refuses the payload (SPEC §11): the workflow task fails before any workflow code runs, so
no activity is scheduled, nothing is audited, no payment row exists and no debit is sent.
"""

import asyncio
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.attempt import workflow_id_for
from infra.codec import UnencryptedPayloadError
from starters.attempt_reads import FOREIGN_RUN, StuckAttempt, find_stuck
from tests.conftest import HarnessFactory
from tests.hostile.helpers import money_rows
from tests.support import create_invoice

NO_OTP_POLICY = {"required_methods": [], "exempt_kinds": ["invoice", "deposit"]}


async def _wait_for_event(
    client: Client, workflow_id: str, event_type: int, timeout: float = 30
) -> WorkflowHistory:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        if any(event.event_type == event_type for event in history.events):
            return history
        assert asyncio.get_running_loop().time() < deadline, [e.event_type for e in history.events]
        await asyncio.sleep(0.1)


async def _wait_listed(client: Client, workflow_id: str, timeout: float = 30) -> StuckAttempt:
    """Visibility is eventually consistent: wait until `ops stuck` lists the run."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await find_stuck(client, older_than=timedelta(0))
        mine = [a for a in found if a.workflow_id == workflow_id]
        if mine:
            return mine[0]
        assert asyncio.get_running_loop().time() < deadline, [a.workflow_id for a in found]
        await asyncio.sleep(0.2)


async def test_a_plaintext_start_never_runs_workflow_code(harness_factory: HarnessFactory) -> None:
    async with harness_factory() as h:
        inv = await create_invoice(h.pool)
        insider = Client(
            h.client.service_client, namespace=h.client.namespace, data_converter=pydantic_data_converter
        )
        workflow_id = workflow_id_for(inv.invoice_id)
        ledger_before = (await money_rows(h.pool, inv.invoice_id))[1]
        handle = await insider.start_workflow(
            "PayInvoiceWorkflow",
            {"invoice_id": inv.invoice_id, "policy": NO_OTP_POLICY},
            id=workflow_id,
            task_queue=h.task_queue,
        )
        try:
            history = await _wait_for_event(h.client, workflow_id, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
            failed = next(
                e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ).workflow_task_failed_event_attributes
            # The failure itself is encoded by our worker: only a key holder reads why.
            reason = await h.client.data_converter.decode_failure(failed.failure)
            assert UnencryptedPayloadError.__name__ in repr(reason) or "not encrypted" in str(reason), reason

            types = {e.event_type for e in (await handle.fetch_history()).events}
            assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in types
            assert EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED not in types
            assert EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES not in types
            audit_rows = await h.pool.fetchval(
                "SELECT count(*) FROM audit_events WHERE invoice_id = $1", inv.invoice_id
            )
            assert audit_rows == 0
            assert await money_rows(h.pool, inv.invoice_id) == (0, ledger_before)

            # The run holds the invoice's attempt id: `ops stuck` shows it to operators, with
            # what to do, although it never set a PaymentStatus.
            listed = await _wait_listed(h.client, workflow_id)
            assert listed.run_id == handle.result_run_id
            assert listed.waiting_for == FOREIGN_RUN
        finally:
            await h.client.get_workflow_handle(workflow_id).terminate("hostile start refused")


async def test_the_codec_endpoint_still_shows_an_insiders_plaintext_to_the_operator() -> None:
    """Workers refuse it; the operator investigating the hostile run still reads what was sent."""
    import httpx
    from google.protobuf import json_format

    from infra.codec import AesGcmPayloadCodec
    from starters.portal.codec_api import create_codec_app
    from tests.support import test_settings

    settings = test_settings()
    [plain] = await pydantic_data_converter.encode([{"invoice_id": "INV-1", "policy": NO_OTP_POLICY}])
    [sealed] = await AesGcmPayloadCodec(settings.codec_key_ring()).encode([plain])
    body = {"payloads": [json_format.MessageToDict(p) for p in (plain, sealed)]}
    auth = {"Authorization": f"Bearer {settings.secret('operator_api_token')}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_codec_app(settings)), base_url="http://codec.test"
    ) as http:
        r = await http.post("/codec/decode", json=body, headers=auth)
    assert r.status_code == 200, r.text
    shown = [json_format.ParseDict(p, type(plain)()) for p in r.json()["payloads"]]
    assert shown == [plain, plain]
