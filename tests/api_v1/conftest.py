"""/api/v1 on the real harness: the portal app in-process (as tests/portal does), real PostgreSQL
and Temporal, and API keys made by the same store the `portalpay apikey` command uses."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from infra.stores import api_keys
from tests.portal.conftest import Portal, PortalFactory, portal_factory  # noqa: F401 - fixture


@dataclass
class Api:
    portal: Portal
    secret: str
    key_id: str

    @property
    def http(self) -> httpx.AsyncClient:
        return self.portal.http

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    async def new_key(self, *scopes: str, name: str = "test key") -> tuple[str, str]:
        issued = await api_keys.create_key(
            self.portal.harness.app_pool or self.portal.pool,
            pepper=self.portal.harness.settings.secret("api_key_pepper").encode(),
            name=name,
            scopes=tuple(scopes) or None,
            mode="test",
        )
        return issued.record.id, issued.secret

    def bearer(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture
def api_factory(portal_factory: PortalFactory) -> ApiFactory:  # noqa: F811
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Api]:
        async with portal_factory(**overrides) as portal:
            api = Api(portal, "", "")
            api.key_id, api.secret = await api.new_key()
            yield api

    return start


@pytest.fixture
async def api(api_factory: ApiFactory) -> AsyncIterator[Api]:
    async with api_factory() as a:
        yield a
