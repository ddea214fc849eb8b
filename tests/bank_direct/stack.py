"""A bank-direct stack on loopback: a worker with PROCESSOR=nacha (dev server), the portal over
HTTP, and a real OpenSSH sshd standing in for the bank's SFTP server."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from temporalio.client import Client

from domain.ach_files import InboundInput, InboundReport
from infra.nacha.processor import NachaProcessor
from starters.portal.app import build_portal_app
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import lifecycle_config
from tests.lifecycle.services import serve
from tests.support import Harness
from workflows.nacha_files import NachaInboundWorkflow

STAFF_EMAIL = "staff-notify@example.com"


@dataclass
class NachaStack:
    harness: Harness
    portal_url: str
    sshd: SshServer
    app: FastAPI

    @property
    def pool(self) -> asyncpg.Pool:
        return self.harness.pool

    @property
    def client(self) -> Client:
        return self.harness.client

    async def inbound_now(self) -> InboundReport:
        report: InboundReport = await self.client.execute_workflow(
            NachaInboundWorkflow.run,
            InboundInput(),
            id=f"nacha-inbound-test-{uuid.uuid4().hex[:10]}",
            task_queue=self.harness.task_queue,
        )
        return report

    def outbound_files(self) -> list[Path]:
        return sorted(p for p in self.sshd.outbound.iterdir() if not p.name.startswith("."))


@contextlib.asynccontextmanager
async def nacha_stack(
    harness_factory: HarnessFactory, sshd: SshServer, **overrides: Any
) -> AsyncIterator[NachaStack]:
    def wire(deps: Any) -> Any:
        deps.lifecycle = lifecycle_config(staff_notify_email=STAFF_EMAIL)
        # The harness salts the fingerprint key per test: the processor must key accounts the same
        # way as the screening, or a notice of change would never meet the next debit.
        assert deps.nacha is not None
        deps.processor = NachaProcessor(
            deps.pool, deps.nacha.config, deps.nacha.sealer, deps.bank_fingerprint_key
        )
        return deps

    async with contextlib.AsyncExitStack() as stack:
        harness = await stack.enter_async_context(
            harness_factory(**{**bank_settings(), **sshd.settings(), **overrides}, wrap_deps=wire)
        )
        app = build_portal_app(harness.settings, harness.client, harness.pool, task_queue=harness.task_queue)
        portal_url = await stack.enter_async_context(serve(app))
        yield NachaStack(harness, portal_url, sshd, app)
