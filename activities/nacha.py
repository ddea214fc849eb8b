"""The NACHA jobs' side effects (SPEC §13): originate one file, read the bank's files back.

The rules live in infra/nacha (origination, inbound); this class gives them the worker's pool,
settings, staff mailbox and Temporal client.
"""

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.client import Client

from domain.ach_files import InboundInput, InboundReport, OriginationInput, OriginationReport
from domain.channels import Channel
from infra.nacha.entries import deliver, settle_due_entries
from infra.nacha.inbound import Inbound
from infra.nacha.origination import Origination
from infra.nacha.sealing import Sealer
from infra.nacha_config import NachaConfig
from infra.providers.delivery.base import CodeSender, OutboundMessage

log = logging.getLogger(__name__)


class NachaActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: NachaConfig,
        sealer: Sealer,
        senders: Mapping[Channel, CodeSender],
        *,
        audit_key: bytes,
        staff_notify_email: str | None,
    ) -> None:
        self._pool = pool
        self._config = config
        self._sealer = sealer
        self._senders = senders
        self._audit_key = audit_key
        self._staff = staff_notify_email

    async def _tell_staff(self, subject: str, text: str) -> None:
        sender = self._senders.get(Channel.EMAIL)
        if sender is None or not self._staff:
            log.warning("%s (no STAFF_NOTIFY_EMAIL to tell)", subject)
            return
        day = datetime.now(UTC).strftime("%Y%m%d")
        await sender.send(
            OutboundMessage(
                channel=Channel.EMAIL,
                to=self._staff,
                subject=subject,
                text=text,
                html=None,
                idempotency_key=f"nacha-staff/{subject}/{day}",
            )
        )

    def origination(self) -> Origination:
        config = self._config

        async def upload(name: str, body: bytes) -> None:
            from infra.nacha import sftp  # asyncssh loads only where files are sent

            await sftp.upload(config.sftp, name, body)

        return Origination(self._pool, config, self._sealer, self._audit_key, upload, self._tell_staff)

    def inbound(self, client: Client | None, task_queue: str) -> Inbound:
        return Inbound(self._pool, self._config, self._sealer, self._audit_key, client, task_queue)

    @activity.defn(name="originate_nacha_file")
    async def originate_nacha_file(self, input: OriginationInput) -> OriginationReport:
        return await self.origination().run()

    @activity.defn(name="ingest_nacha_inbound")
    async def ingest_nacha_inbound(self, input: InboundInput) -> InboundReport:
        client, task_queue = activity.client(), activity.info().task_queue
        report = InboundReport()
        settled = await settle_due_entries(self._pool, self._config)
        report.settled = len(settled)
        await deliver(self._pool, client, task_queue, settled)
        from infra.nacha import sftp

        try:
            files = await sftp.list_returns(self._config.sftp)
        except sftp.SftpFailed as exc:
            report.error = f"returns folder not read: {exc}"
            return report
        inbound = self.inbound(client, task_queue)
        known = {
            r["sha256"]
            for r in await self._pool.fetch(
                "SELECT sha256 FROM ach_inbound_files ORDER BY id DESC LIMIT 5000"
            )
        }
        for remote in files:
            if hashlib.sha256(remote.body).hexdigest() in known:
                continue
            report.files.append(await inbound.ingest(remote.name, remote.body, source="sftp"))
            activity.heartbeat(remote.name)
        return report
