"""Recorded delivery histories replay against the current workflow code (see docs/versioning.md):
a change to WebhookDeliveryWorkflow that alters the commands of a running delivery is caught here.
Recorded with the test codec key: the payloads in them are ciphertext, and hold ids only."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from infra.converter import build_data_converter
from tests.support import test_settings
from workflows.webhook_delivery import WebhookDeliveryWorkflow

HISTORIES = sorted(Path(__file__).with_name("histories").glob("*.json"))


def test_histories_are_there() -> None:
    assert {p.stem for p in HISTORIES} >= {"delivered_after_retries", "endpoint_gone_410"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_delivery_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[WebhookDeliveryWorkflow],
        data_converter=build_data_converter(test_settings().codec_key_ring()),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
