"""Request bodies and probes shared by the hostile tests."""

import uuid
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.attempt import workflow_id_for
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING

FULLWIDTH_ACCOUNT = "０００１２３４５６７８９"  # noqa: RUF001 - the exact input of issue 10 finding 1
ARABIC_INDIC_CODE = "١٢٣٤٥٦"


def unique_phone() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


def unique_email() -> str:
    return f"hostile-{uuid.uuid4().hex[:8]}@example.com"


def bank(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "echeck",
        "account_holder": "Charles Babbage",
        "routing_number": GOOD_ROUTING,
        "account_number": GOOD_ACCOUNT,
        "account_type": "checking",
    }
    body.update(overrides)
    return body


def session_path(session_id: str, suffix: str = "") -> str:
    return f"/api/portal/sessions/{session_id}{suffix}"


async def history_event_types(client: Client, invoice_id: str) -> list[int]:
    handle = client.get_workflow_handle(workflow_id_for(invoice_id))
    return [event.event_type for event in (await handle.fetch_history()).events]


UPDATE_OR_ACTIVITY = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
}


async def money_rows(pool: asyncpg.Pool, invoice_id: str) -> tuple[int, int]:
    """(payments rows of the invoice, debits in the sandbox processor's ledger in total)."""
    payments = await pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", invoice_id)
    ledger = await pool.fetchval("SELECT count(*) FROM sandbox_debits")
    return int(payments), int(ledger)
