"""The attack phase's three inline verdicts, each run for real: held by the product, broken once the
product is broken the way the promise guards against (issue 18).

Each test runs the campaign's own attack (tools/chaos/attacks.py) against the portal fixtures: the
real app in-process, a worker on a fresh task queue, the Temporal dev server and PostgreSQL. First on
the product as it is (the promise holds), then, on the same stack, with one product module
monkeypatched (the promise breaks, and says what broke). The campaign's provider stand-ins are not
here: the codes the worker sends reach the console outbox as in every portal test, and
`InboxSender` also writes each into the `AcceptedMessages` the attacks read.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.common.v1 import Payload

import starters.portal.auth as portal_auth
import starters.portal.edge as portal_edge
from domain.channels import Channel
from infra.codec import ENCODING, AesGcmPayloadCodec
from infra.providers.delivery.base import DeliveryReceipt, OutboundMessage
from infra.providers.delivery.console import ConsoleSender
from infra.settings import Settings
from tests.portal.conftest import CLIENT_IP, USER_AGENT, PortalFactory
from tools.chaos.arena import Arena
from tools.chaos.attacks import payer_change_mid_attempt, plaintext_starts, poison_bank_details
from tools.chaos.log_secrets import RunSecrets
from tools.standins.faulty_providers import AcceptedMessages

# Long enough for any answer but the one the portal gives a customer whose attempt id an insider's
# refused run holds (429 AttemptBusy, after Temporal's update timeout): the promise allows no answer.
CUSTOMER_WAIT = 3.0


class InboxSender:
    """The test stack's console sender; each message it accepted is also kept as a provider would."""

    name = "console"

    def __init__(self, console: ConsoleSender, inbox: AcceptedMessages) -> None:
        self._console, self._inbox = console, inbox

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        receipt = await self._console.send(message)
        # A retried send updates its outbox row in place; a provider would answer a new message id.
        message_id = f"{receipt.message_id}-{uuid.uuid4().hex[:8]}"
        self._inbox.accepted(
            f"console-{message.channel.value}", message_id, message.to, message.text, message.idempotency_key
        )
        return receipt

    async def aclose(self) -> None:
        await self._console.aclose()


class PatientASGITransport(httpx.ASGITransport):
    """In-process, but a request gives up after its read timeout as one over a socket would."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        patience = request.extensions.get("timeout", {}).get("read")
        try:
            async with asyncio.timeout(patience):
                return await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer in {patience} s", request=request) from None


@contextlib.asynccontextmanager
async def attack_arena(
    portal_factory: PortalFactory, app_pool: asyncpg.Pool
) -> AsyncIterator[tuple[Arena, Settings]]:
    """An `Arena` on a fresh portal stack, and the settings that stack runs with."""
    inbox = AcceptedMessages()
    sender = InboxSender(ConsoleSender(app_pool), inbox)
    async with portal_factory(senders={Channel.EMAIL: sender, Channel.SMS: sender}) as portal:
        transport = PatientASGITransport(app=portal.app, client=(CLIENT_IP, 50123))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://portal.test", headers={"User-Agent": USER_AGENT}
        ) as http:
            h = portal.harness
            arena = Arena(
                http=http,
                pool=h.pool,
                client=h.client,
                signer=portal.signer,
                inbox=inbox,
                task_queue=h.task_queue,
                staff_token=h.settings.secret("staff_api_token"),
                # Both channels deliver here; the attacks ask for codes on the working one only.
                broken_channel="sms",
                working_channel="email",
                run_secrets=RunSecrets(),
            )
            yield arena, h.settings


async def test_poison_bank_details_breaks_when_a_utf16_body_passes_the_edge(
    portal_factory: PortalFactory, app_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with attack_arena(portal_factory, app_pool) as (arena, settings):
        held, _ = await poison_bank_details(arena, settings)
        assert held.held, held
        assert held.measured.startswith("42/42 hostile bodies answered 4xx (2 x 413)"), held

        # The edge's rule that a JSON body is UTF-8 (its NUL-byte test) gone: Python's parser reads
        # UTF-16 JSON, so the hostile body is a valid payment and the account is debited.
        monkeypatch.setattr(portal_edge, "_is_json", lambda scope: False)
        broken, ids = await poison_bank_details(arena, settings)
    assert not broken.held, broken
    assert broken.measured.startswith("40/42 hostile bodies answered 4xx"), broken
    assert "then 0 real payments PAID" in broken.measured, broken
    for invoice_id in ids:
        assert f"{invoice_id} UTF-16 JSON: 200" in broken.detail, broken


async def test_plaintext_starts_break_when_the_codec_lets_plaintext_through(
    portal_factory: PortalFactory, app_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with attack_arena(portal_factory, app_pool) as (arena, _):
        held, _ = await plaintext_starts(arena, customer_wait=CUSTOMER_WAIT)
        assert held.held, held
        assert held.measured.startswith("2/2 runs refused by the worker before any activity"), held

        # The codec decoding an unencrypted payload as it is (what `decode_for_display` does for the
        # operator), instead of refusing it: the worker runs the insider's input.
        strict = AesGcmPayloadCodec.decode_one

        def lenient(codec: AesGcmPayloadCodec, payload: Payload) -> Payload:
            return strict(codec, payload) if payload.metadata.get("encoding") == ENCODING else payload

        monkeypatch.setattr(AesGcmPayloadCodec, "decode_one", lenient)
        broken, _ = await plaintext_starts(arena, customer_wait=CUSTOMER_WAIT)
    assert not broken.held, broken
    assert broken.measured.startswith("0/2 runs refused by the worker before any activity"), broken


async def test_payer_change_breaks_when_old_links_are_not_revoked(
    portal_factory: PortalFactory, app_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with attack_arena(portal_factory, app_pool) as (arena, _):
        held, _ = await payer_change_mid_attempt(arena)
        assert held.held, held
        assert held.measured.startswith("2 attempts (code sent; verified): 0 problems, 0 codes"), held

        async def never_revoked(*args: Any, **kwargs: Any) -> bool:
            return False

        # The portal no longer reads the revocation a payer change wrote: the old link still works.
        monkeypatch.setattr(portal_auth, "link_is_revoked", never_revoked)
        broken, ids = await payer_change_mid_attempt(arena)
    assert not broken.held, broken
    assert ": 0 problems" not in broken.measured, broken
    # The detail names the first six problems: those of the first attempt lead.
    assert f"{ids[0]} old link POST sessions: 200" in broken.detail, broken
