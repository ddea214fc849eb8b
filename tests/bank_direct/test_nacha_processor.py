"""The nacha processor behind the processor interface (SPEC §9, §13), on the app's own database role:
idempotency keys, the prenote for an unseen account, cancel before sending, events after a cursor,
and the bank's files read leniently (every published sample and crasher) without a traceback."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from infra.bank_accounts import needs_new_details
from infra.nacha.inbound import Inbound
from infra.nacha.processor import NachaProcessor
from infra.nacha.sealing import Sealer
from infra.providers.processor.port import Debit, DebitLookupByKey, PaymentProcessor, ProcessorRejected
from infra.settings import Settings
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer
from tests.support import GOOD_ROUTING, test_settings

SEALER = Sealer(bank_settings()["nacha_account_key"])
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "nacha"


@pytest.fixture
async def processor(app_pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[NachaProcessor]:
    server = SshServer(tmp_path / "sshd")  # not started: its settings make a valid configuration
    settings = Settings(_env_file=None, portalpay_env="dev", **{**bank_settings(), **server.settings()})
    yield NachaProcessor(app_pool, settings.nacha_config(), SEALER, uuid.uuid4().bytes)
    # Entries with no payment are this module's: never left waiting for another test's file.
    await app_pool.execute(
        "UPDATE ach_entries SET status = 'canceled', account_number_sealed = NULL"
        " WHERE payment_id IS NULL AND status = 'waiting' AND file_id IS NULL"
    )


async def _debit(
    p: NachaProcessor, key: str, account: str, amount: int = 1500, kind: str = "checking"
) -> Debit:
    return await p.debit(
        idempotency_key=key,
        amount_cents=amount,
        currency="USD",
        routing_number=GOOD_ROUTING,
        account_number=account,
        account_type=kind,
        metadata={},
    )


async def test_it_is_a_payment_processor(processor: NachaProcessor) -> None:
    assert isinstance(processor, DebitLookupByKey)
    as_port: PaymentProcessor = processor  # checked by mypy: the same interface as the sandbox
    assert as_port.name == "nacha"


async def test_same_key_same_debit_other_request_refused(
    processor: NachaProcessor, app_pool: asyncpg.Pool
) -> None:
    key = f"key-{uuid.uuid4().hex}"
    first = await _debit(processor, key, "555000111")
    again = await _debit(processor, key, "555000111")
    assert again.id == first.id and first.status == "processing"
    with pytest.raises(ProcessorRejected) as refused:
        await _debit(processor, key, "555000111", amount=1600)
    assert refused.value.status == 409
    found = await processor.find_debit(key)
    assert found is not None and found.id == first.id
    assert await processor.find_debit("no-such-key") is None
    # One prenote for the account, whatever the number of debits from it.
    await _debit(processor, f"key-{uuid.uuid4().hex}", "555000111")
    rows = await app_pool.fetch(
        "SELECT kind, transaction_code, amount_cents FROM ach_entries WHERE bank_fingerprint ="
        " (SELECT bank_fingerprint FROM ach_entries WHERE id = $1) ORDER BY kind",
        first.id,
    )
    assert [(r["kind"], r["transaction_code"], r["amount_cents"]) for r in rows] == [
        ("debit", "27", 1500),
        ("debit", "27", 1500),
        ("prenote", "28", 0),
    ]


async def test_savings_and_refusals(processor: NachaProcessor) -> None:
    savings = await _debit(processor, f"key-{uuid.uuid4().hex}", "99887766", kind="savings")
    assert savings.status == "processing"
    with pytest.raises(ProcessorRejected):
        await processor.debit(
            idempotency_key="k",
            amount_cents=100,
            currency="EUR",
            routing_number=GOOD_ROUTING,
            account_number="12345678",
            account_type="checking",
            metadata={},
        )
    with pytest.raises(ProcessorRejected):
        await _debit(processor, f"key-{uuid.uuid4().hex}", "12345678", amount=0)  # a debit is ≥ 1 cent


async def test_cancel_before_sending_and_events_after_a_cursor(processor: NachaProcessor) -> None:
    start = (await processor.events_after("0", limit=100_000)).next_cursor
    debit = await _debit(processor, f"key-{uuid.uuid4().hex}", "44332211")
    canceled = await processor.cancel(debit.id)
    assert canceled.status == "canceled"
    assert (await processor.cancel(debit.id)).status == "canceled"  # again: the same answer
    assert (await processor.get_debit(debit.id)).status == "canceled"
    page = await processor.events_after(start)
    assert [(e.debit_id, e.type) for e in page.events if e.debit_id == debit.id] == [
        (debit.id, "debit.canceled")
    ]
    with pytest.raises(ProcessorRejected) as unknown:
        await processor.get_debit("ach_nope")
    assert unknown.value.status == 404


@pytest.mark.parametrize(
    "sample",
    sorted(p for p in FIXTURES.rglob("*") if p.is_file() and not p.name.startswith(("README", "LICENSE"))),
)
async def test_every_published_sample_is_ingested_without_a_crash(
    processor: NachaProcessor, app_pool: asyncpg.Pool, sample: Path
) -> None:
    settings = test_settings()
    inbound = Inbound(app_pool, processor._config, SEALER, settings.audit_key(), None, "unused")
    body = sample.read_bytes() + uuid.uuid4().hex.encode()  # a new sha256 per run: ingested here
    report = await inbound.ingest(sample.name, body, source="test")
    assert not report.already_ingested
    # Nobody here sent those entries: every return and notice is an unknown trace, none applied.
    assert report.returns == 0 and report.notices == 0
    if sample.name in ("return-WEB.ach", "cor-example.ach"):
        assert report.unknown_traces, report  # kept for staff (/staff/attention)
    if sample.parent.name == "crashers":
        assert report.problems, report  # reported by line, never raised
    again = await inbound.ingest(sample.name, body, source="test")
    assert again.already_ingested


async def test_the_follower_hears_settled_once_the_quiet_days_have_passed(
    processor: NachaProcessor, app_pool: asyncpg.Pool
) -> None:
    debit = await _debit(processor, f"key-{uuid.uuid4().hex}", "31415926")
    # As origination leaves it once uploaded, with an effective date two banking days from now.
    await app_pool.execute(
        "UPDATE ach_entries SET status = 'sent', account_number_sealed = NULL,"
        " effective_date = current_date + 7 WHERE id = $1",
        debit.id,
    )
    assert (await processor.get_debit(debit.id)).status == "processing"
    await app_pool.execute(
        "UPDATE ach_entries SET effective_date = current_date - 10 WHERE id = $1", debit.id
    )
    settled = await processor.get_debit(debit.id)
    assert settled.status == "settled"
    assert await app_pool.fetchval("SELECT status FROM ach_entries WHERE id = $1", debit.id) == "settled"
    with pytest.raises(ProcessorRejected) as late:
        await processor.cancel(debit.id)
    assert late.value.status == 409


async def test_only_notices_correcting_the_numbers_hold_the_account(app_pool: asyncpg.Pool) -> None:
    file_id = await app_pool.fetchval(
        "INSERT INTO ach_inbound_files (name, sha256, source) VALUES ('n.ach', $1, 'test') RETURNING id",
        uuid.uuid4().hex,
    )
    held, free = uuid.uuid4().hex, uuid.uuid4().hex
    for fingerprint, code in ((held, "C02"), (free, "C05")):
        await app_pool.execute(
            "INSERT INTO ach_notices (inbound_file_id, trace_number, change_code, corrected_data_masked,"
            " bank_fingerprint) VALUES ($1, $2, $3, 'x', $4)",
            file_id,
            uuid.uuid4().hex[:15],
            code,
            fingerprint,
        )
    assert await needs_new_details(app_pool, held)
    assert not await needs_new_details(app_pool, free)  # a transaction code: nothing the customer types
