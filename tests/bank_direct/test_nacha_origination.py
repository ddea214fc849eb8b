"""An entry is in exactly one uploaded file whatever is re-run or restarted (SPEC §13): two runs at
once, and a run that dies after the rename on the bank's server but before recording it."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from domain.ach_files import OriginationReport
from infra.nacha import sftp
from infra.nacha.origination import Origination, OriginationBusy
from infra.nacha.processor import NachaProcessor
from infra.nacha.sealing import Sealer
from infra.nacha.transfer_errors import UploadFailed
from infra.settings import Settings
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer
from tests.support import GOOD_ROUTING, test_settings


@pytest.fixture
async def bank(app_pool: asyncpg.Pool, sshd: SshServer) -> AsyncIterator[tuple[NachaProcessor, Origination]]:
    settings = Settings(_env_file=None, portalpay_env="dev", **{**bank_settings(), **sshd.settings()})
    config = settings.nacha_config()
    sealer = Sealer(bank_settings()["nacha_account_key"])

    async def upload(name: str, body: bytes) -> None:
        await sftp.upload(config.sftp, name, body)

    yield (
        NachaProcessor(app_pool, config, sealer, uuid.uuid4().bytes),
        Origination(app_pool, config, sealer, test_settings().audit_key(), upload),
    )
    await app_pool.execute(
        "UPDATE ach_entries SET status = 'canceled', account_number_sealed = NULL"
        " WHERE payment_id IS NULL AND status = 'waiting' AND file_id IS NULL"
    )


async def _entry(processor: NachaProcessor) -> str:
    debit = await processor.debit(
        idempotency_key=f"key-{uuid.uuid4().hex}",
        amount_cents=2500,
        currency="USD",
        routing_number=GOOD_ROUTING,
        account_number=f"8{uuid.uuid4().int % 10**10:010d}",
        account_type="checking",
        metadata={},
    )
    return debit.id


def _traces_on_server(sshd: SshServer) -> list[str]:
    return [
        line[79:94]
        for path in sorted(sshd.outbound.iterdir())
        if not path.name.startswith(".")
        for line in path.read_text().splitlines()
        if line.startswith("6")
    ]


async def test_two_runs_at_once_send_each_entry_once(
    bank: tuple[NachaProcessor, Origination], app_pool: asyncpg.Pool, sshd: SshServer
) -> None:
    processor, origination = bank
    for _ in range(3):
        await _entry(processor)
    results = await asyncio.gather(origination.run(), origination.run(), return_exceptions=True)
    reports = [r for r in results if isinstance(r, OriginationReport)]
    assert all(isinstance(r, (OriginationReport, OriginationBusy)) for r in results), results
    assert sum(1 for r in reports if r.uploaded) == 1, results
    traces = _traces_on_server(sshd)
    assert len(traces) == len(set(traces)) >= 3


async def test_a_run_that_dies_after_the_rename_is_finished_by_the_next_without_a_second_copy(
    bank: tuple[NachaProcessor, Origination], app_pool: asyncpg.Pool, sshd: SshServer
) -> None:
    processor, origination = bank
    await _entry(processor)
    real_upload = origination.upload

    async def upload_then_lose_the_connection(name: str, body: bytes) -> None:
        await real_upload(name, body)
        raise UploadFailed("connection lost after the rename")

    origination.upload = upload_then_lose_the_connection
    lost = await origination.run()
    assert not lost.uploaded and lost.file_name, lost
    assert await app_pool.fetchval("SELECT status FROM ach_files WHERE name = $1", lost.file_name) == "failed"
    origination.upload = real_upload
    finished = await origination.run()
    assert finished.uploaded and finished.reused_unsent_file and finished.file_name == lost.file_name
    names = sorted(p.name for p in sshd.outbound.iterdir())
    assert names == [lost.file_name]  # the same file, once; no temporary name left behind
    traces = _traces_on_server(sshd)
    assert len(traces) == len(set(traces))
    assert (await origination.run()).nothing_due
