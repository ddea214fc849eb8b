"""The portal app on the real harness (dev server, PostgreSQL, a worker on a fresh task queue).

`portal_factory(**settings_overrides)` yields a `Portal`: the ASGI app, an httpx client talking to
it in-process (as a browser at 203.0.113.9 with a known user agent), and token helpers.
"""

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from infra.pay_links import PayLinkSigner, signer_from_settings
from infra.stores.demo import CONTACTS, CUSTOMERS, INVOICES
from starters.portal.app import create_app
from tests.support import Harness

CLIENT_IP = "203.0.113.9"
USER_AGENT = "pytest-portal/1.0"


@dataclass
class Portal:
    harness: Harness
    app: FastAPI
    http: httpx.AsyncClient
    signer: PayLinkSigner

    @property
    def pool(self) -> asyncpg.Pool:
        return self.harness.pool

    def token(self, invoice_id: str, **kwargs: Any) -> str:
        return self.signer.issue(invoice_id, **kwargs)

    def auth(self, invoice_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(invoice_id)}"}

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.harness.settings.secret('staff_api_token')}"}

    async def open(self, invoice_id: str) -> dict[str, Any]:
        r = await self.http.post("/api/portal/sessions", headers=self.auth(invoice_id))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def expired_token(self, invoice_id: str) -> str:
        return self.signer.issue(invoice_id, ttl_seconds=60, now=time.time() - 3600)


PortalFactory = Callable[..., contextlib.AbstractAsyncContextManager[Portal]]


@pytest.fixture
def portal_factory(harness_factory: Any) -> PortalFactory:
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Portal]:
        async with harness_factory(**overrides) as h:
            app = create_app(h.settings, h.gateway, h.app_pool or h.pool)
            transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50123))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://portal.test", headers={"User-Agent": USER_AGENT}
            ) as http:
                yield Portal(h, app, http, signer_from_settings(h.settings))

    return start


@pytest.fixture
async def portal(portal_factory: PortalFactory) -> AsyncIterator[Portal]:
    async with portal_factory() as p:
        yield p


@dataclass
class DemoClone:
    """A copy of one SPEC §8 demo customer under fresh ids (same names, emails and phones)."""

    customer_id: str
    invoices: dict[str, str]  # demo invoice id -> this clone's id
    contacts: dict[str, str]  # demo contact id -> this clone's id


async def clone_demo_customer(pool: asyncpg.Pool, demo_customer_id: str) -> DemoClone:
    """Audit rows can never be deleted, so each test pays its own copy of the demo invoice."""
    tag = uuid.uuid4().hex[:6].upper()
    customer_id = f"{demo_customer_id}-{tag}"
    name = dict(CUSTOMERS)[demo_customer_id]
    contacts = {c[0]: f"{c[0]}-{tag}" for c in CONTACTS if c[1] == demo_customer_id}
    invoices = {i[0]: f"{i[0]}-{tag}" for i in INVOICES if i[1] == demo_customer_id}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO customers (id, name) VALUES ($1, $2)", customer_id, name)
        for cid, _, cname, email, phone, primary, payer in (c for c in CONTACTS if c[1] == demo_customer_id):
            await conn.execute(
                "INSERT INTO contacts (id, customer_id, name, email, phone, is_primary, portal_payer)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                contacts[cid],
                customer_id,
                cname,
                email,
                phone,
                primary,
                payer,
            )
        for iid, _, kind, amount in (i for i in INVOICES if i[1] == demo_customer_id):
            await conn.execute(
                "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents)"
                " VALUES ($1, $1, $2, $3, $4, $4)",
                invoices[iid],
                customer_id,
                kind,
                amount,
            )
    return DemoClone(customer_id, invoices, contacts)
