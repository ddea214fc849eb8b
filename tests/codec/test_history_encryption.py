"""On a real Temporal server: history is ciphertext, the operator decodes it, and keys rotate.

Uses a minimal workflow so these properties are checked independently of PayInvoiceWorkflow.
"""

import uuid

import httpx
from fastapi import FastAPI
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker

from infra.codec import AesGcmPayloadCodec
from infra.converter import build_data_converter
from starters.portal.codec_api import codec_router
from tests.codec.echo_workflow import ContactInput, EchoContactWorkflow
from tests.codec.keys import KEY_A, KEY_B, OPERATOR_TOKEN

CONTACT = ContactInput(email=f"ada-{uuid.uuid4().hex[:6]}@example.com", phone="+15555550101")


async def _run_under_key_a(temporal_client: Client) -> tuple[str, WorkflowHistory]:
    client_a = Client(
        temporal_client.service_client,
        namespace=temporal_client.namespace,
        data_converter=build_data_converter([KEY_A]),
    )
    task_queue = f"codec-{uuid.uuid4().hex[:12]}"
    workflow_id = f"codec-echo-{uuid.uuid4().hex[:12]}"
    async with Worker(client_a, task_queue=task_queue, workflows=[EchoContactWorkflow]):
        await client_a.execute_workflow(
            EchoContactWorkflow.run, CONTACT, id=workflow_id, task_queue=task_queue
        )
    # Fetched without any codec: what the server stores and an operator without keys sees.
    raw = Client(temporal_client.service_client, namespace=temporal_client.namespace)
    return workflow_id, await raw.get_workflow_handle(workflow_id).fetch_history()


def _input_payloads(history: WorkflowHistory) -> list[Payload]:
    started = history.events[0].workflow_execution_started_event_attributes
    return list(started.input.payloads)


async def test_raw_history_holds_no_contact_details(temporal_client: Client) -> None:
    _, history = await _run_under_key_a(temporal_client)
    for event in history.events:
        raw = event.SerializeToString()
        assert CONTACT.email.encode() not in raw
        assert CONTACT.phone.encode() not in raw
    [payload] = _input_payloads(history)
    assert payload.metadata["encryption-key-id"] == b"key-a"


async def test_rotated_ring_replays_and_decodes_history_written_under_a(temporal_client: Client) -> None:
    workflow_id, history = await _run_under_key_a(temporal_client)

    replayer = Replayer(workflows=[EchoContactWorkflow], data_converter=build_data_converter([KEY_B, KEY_A]))
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None

    rotated = Client(
        temporal_client.service_client,
        namespace=temporal_client.namespace,
        data_converter=build_data_converter([KEY_B, KEY_A]),
    )
    assert CONTACT.email in await rotated.get_workflow_handle(workflow_id).result()

    app = FastAPI()
    app.include_router(codec_router(AesGcmPayloadCodec([KEY_B, KEY_A]), OPERATOR_TOKEN))
    body = {"payloads": [json_format.MessageToDict(p) for p in _input_payloads(history)]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://portal") as http:
        refused = await http.post("/codec/decode", json=body)
        answer = await http.post(
            "/codec/decode", json=body, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
    assert refused.status_code == 401
    assert answer.status_code == 200
    decoded = json_format.ParseDict(answer.json()["payloads"][0], Payload())
    assert CONTACT.email.encode() in decoded.data
    assert CONTACT.phone.encode() in decoded.data
