"""The worker's NACHA Schedules (SPEC §13): `nacha-origination` before the cut-off on weekdays in the
bank's time zone, `nacha-inbound` every 15 minutes; created once, idempotently."""

import contextlib
from pathlib import Path

from temporalio.client import Client

from infra.settings import Settings
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer
from workers.schedules import ensure_nacha_schedules
from workflows.nacha_files import INBOUND_SCHEDULE_ID, ORIGINATION_SCHEDULE_ID


async def test_schedules_run_before_the_cutoff_and_every_15_minutes(
    temporal_client: Client, tmp_path: Path
) -> None:
    server = SshServer(tmp_path / "sshd")  # not started: only its settings are needed
    settings = Settings(
        _env_file=None,
        portalpay_env="dev",
        **{**bank_settings(), **server.settings(), "nacha_cutoff": "15:00 America/Chicago"},
    )
    config = settings.nacha_config()
    try:
        await ensure_nacha_schedules(temporal_client, "nacha-schedules-test", config)
        await ensure_nacha_schedules(temporal_client, "nacha-schedules-test", config)  # idempotent
        origination = await temporal_client.get_schedule_handle(ORIGINATION_SCHEDULE_ID).describe()
        spec = origination.schedule.spec
        assert spec.time_zone_name == "America/Chicago"
        calendar = spec.calendars[0]
        assert [(r.start, r.end) for r in calendar.hour] == [(14, 14)]
        assert [(r.start, r.end) for r in calendar.minute] == [(30, 30)]
        assert [(r.start, r.end) for r in calendar.day_of_week] == [(1, 5)]
        inbound = await temporal_client.get_schedule_handle(INBOUND_SCHEDULE_ID).describe()
        assert [i.every.total_seconds() for i in inbound.schedule.spec.intervals] == [900]
    finally:
        for schedule_id in (ORIGINATION_SCHEDULE_ID, INBOUND_SCHEDULE_ID):
            with contextlib.suppress(Exception):
                await temporal_client.get_schedule_handle(schedule_id).delete()
