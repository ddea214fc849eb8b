"""The fault campaign, shortened: the same promises as `make chaos`, with small numbers.

20 customers while the worker is SIGKILLed twice and PostgreSQL crashes once, providers faulting
at 30% with SMS broken for good, an attacker guessing codes, and 300 schemathesis calls. No
timing is asserted: only that nothing was lost, doubled, stuck or leaked.
"""

from pathlib import Path

import pytest
from rich.console import Console

from tools.chaos.campaign import CampaignConfig, run_campaign


@pytest.mark.timeout(600)
async def test_short_campaign_keeps_every_promise(tmp_path: Path) -> None:
    config = CampaignConfig(
        attempts=20,
        concurrency=20,
        worker_kills=2,
        pg_restarts=1,
        schemathesis_calls=300,
        brute_force_invoices=3,
        fault_gap=(1.0, 3.0),
        work_dir=tmp_path / "campaign",
    )
    console = Console(width=140)
    report = await run_campaign(config, console)
    console.print(report.table())
    names = {p.name for p in report.promises}
    for expected in (
        "every attempt terminal or resumable",
        "0 payments doubled",
        "ledger agrees with payments row for row",
        "0 audit rows lost or doubled (vs workflow history)",
        "every audit chain verifies",
        "every code request ends delivered or moved to the other channel",
        "no customer gets two codes for one request",
        "schemathesis: 0 responses 5xx, 0 schema violations",
    ):
        assert expected in names
    assert any(name.startswith("brute force") for name in names)
    assert len(report.faults) == 3, report.faults
    broken = [f"{p.name}: {p.measured} {p.detail}" for p in report.promises if not p.held]
    assert not broken, "\n".join(broken)
