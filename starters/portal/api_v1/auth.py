"""Who is calling /api/v1: an API key (SPEC §12), found by the keyed hash of its secret.

`ApiV1Gate` authenticates every /api/v1 request once and leaves the principal in the request's
state; `require_scope(scope)` is the dependency each route declares, answering `403` when the key
lacks the scope (and authenticating by itself if a route is reached without the gate). A missing,
unknown, revoked or expired key is `401`. Writes are audited as `api_key:<id>`.
"""

import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.attempt import ClientContext
from infra.stores import api_keys
from starters.portal.api_v1.errors import ApiError

_USER_AGENT_LIMIT = 512
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
STATE_KEY = "api_key"

# Declared so /openapi.json shows the bearer scheme; the secret itself is read by `authenticate`.
api_key_bearer = HTTPBearer(
    scheme_name="ApiKey", description="An API key: `ppk_live_…` or `ppk_test_…`", auto_error=False
)


@dataclass(frozen=True)
class ApiKeyPrincipal:
    id: str
    name: str
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        return f"api_key:{self.id}"


@dataclass
class ApiV1State:
    pool: asyncpg.Pool
    pepper: bytes
    limiter: "RateLimiter"
    audit_key: bytes


class RateLimiter:
    """At most `per_second` requests in any one second per key, in this process (SPEC §12)."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_second = per_second
        self._clock = clock
        self._seen: dict[str, collections.deque[float]] = {}

    def retry_after(self, key_id: str) -> int | None:
        """None when this request may go ahead (and it is counted), else seconds to wait."""
        now = self._clock()
        window = self._seen.setdefault(key_id, collections.deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self._per_second:
            return 1
        window.append(now)
        return None


def bearer_secret(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


async def authenticate(state: ApiV1State, authorization: str | None) -> ApiKeyPrincipal:
    secret = bearer_secret(authorization)
    if secret is None:
        raise ApiError(
            401,
            "ApiKeyMissing",
            "An API key is required (Authorization: Bearer ppk_…).",
            reason="api_key_missing",
            headers=_UNAUTHORIZED,
        )
    if len(secret) > 200 or not secret.isascii():
        record = None
    else:
        record = await api_keys.find_by_secret(state.pool, pepper=state.pepper, secret=secret)
    now = datetime.now(UTC)
    if record is None:
        raise ApiError(
            401,
            "ApiKeyInvalid",
            "This API key is not known.",
            reason="api_key_invalid",
            headers=_UNAUTHORIZED,
        )
    if record.revoked_at is not None and record.revoked_at <= now:
        raise ApiError(
            401, "ApiKeyRevoked", "This API key was revoked.", reason="api_key_revoked", headers=_UNAUTHORIZED
        )
    if record.expires_at is not None and record.expires_at <= now:
        raise ApiError(
            401,
            "ApiKeyExpired",
            "This API key was rolled and has expired.",
            reason="api_key_expired",
            headers=_UNAUTHORIZED,
        )
    await api_keys.mark_used(state.pool, record.id, now)
    return ApiKeyPrincipal(id=record.id, name=record.name, scopes=record.scopes)


def api_v1_state(request: Request) -> ApiV1State:
    state: ApiV1State = request.app.state.api_v1
    return state


def require_scope(scope: str, *alternatives: str) -> Callable[..., Awaitable[ApiKeyPrincipal]]:
    """The dependency a /api/v1 route declares: the calling key, which must hold `scope` (or one
    of `alternatives`: reading an invoice suits a payments reader and an invoice writer alike)."""
    accepted = (scope, *alternatives)

    async def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(api_key_bearer)],
    ) -> ApiKeyPrincipal:
        principal = request.scope.get("state", {}).get(STATE_KEY)
        if not isinstance(principal, ApiKeyPrincipal):
            principal = await authenticate(api_v1_state(request), request.headers.get("authorization"))
        if not set(accepted) & set(principal.scopes):
            needed = " or ".join(accepted)
            raise ApiError(
                403, "ApiKeyScopeMissing", f"This API key lacks the scope {needed}.", reason="scope_missing"
            )
        return principal

    return dependency


def api_client_context(request: Request, principal: ApiKeyPrincipal) -> ClientContext:
    """Who to name in the audit trail for a write made with this key."""
    user_agent = request.headers.get("user-agent")
    return ClientContext(
        actor=principal.actor,
        ip=request.client.host if request.client else None,
        user_agent=user_agent[:_USER_AGENT_LIMIT] if user_agent else None,
    )
