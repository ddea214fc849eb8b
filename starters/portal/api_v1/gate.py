"""Every /api/v1 request passes here first: the key, the rate limit, and `Idempotency-Key`.

One ASGI middleware rather than code in each route, so every POST and PUT under /api/v1 (the
webhook routes included) is idempotent without a line of its own (SPEC §12):
- the same key and the same request within 24 h → the first answer again, byte for byte, with
  `Idempotent-Replayed: true`;
- the same key and another request → `422 IdempotencyKeyReused`;
- the same key while the first request still runs → `409 IdempotencyKeyInUse`.
"The same request" is the method, path, query and body (a JSON body compared by content, so key
order and spacing do not matter). Records live in PostgreSQL, shared by every portal process. A
5xx answer is not kept, so a retry after an outage really runs.
"""

import hashlib
import hmac
import json
import logging
import os
from datetime import UTC, datetime

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.stores import idempotency_keys as store
from starters.portal.api_v1.auth import STATE_KEY, ApiV1State, authenticate
from starters.portal.api_v1.errors import API_V1_PREFIX, ApiError, api_error_response

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"POST", "PUT"})
# A PostgreSQL restart surfaces as any of these, depending on where the connection broke.
DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    OSError,
)
_UNAVAILABLE = ApiError(
    503, "Unavailable", "PortalPay is briefly unavailable. Please try again.", retry_after=1
)
REPLAYED_HEADER = "idempotent-replayed"
_MAX_KEY_LENGTH = 255


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _canonical_body(body: bytes) -> bytes:
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        return body


def request_fingerprint(scope: Scope, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope.get("path", "").encode(), scope.get("query_string", b"")):
        digest.update(part + b"\x00")
    digest.update(_canonical_body(body))
    return digest.digest()


class ApiV1Gate:
    def __init__(self, app: ASGIApp, state: ApiV1State) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == API_V1_PREFIX or path.startswith(API_V1_PREFIX + "/")):
            await self._app(scope, receive, send)
            return
        try:
            principal = await authenticate(self._state, _header(scope, b"authorization"))
            wait = self._state.limiter.retry_after(principal.id)
            if wait is not None:
                raise ApiError(429, "RateLimited", "Too many requests on this API key.", retry_after=wait)
        except DATABASE_DOWN:
            # Outside the app's exception handlers here: a dependency down is still a 503, not a 500.
            await api_error_response(_UNAVAILABLE)(scope, receive, send)
            return
        except ApiError as exc:
            await api_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = principal

        key = _header(scope, b"idempotency-key")
        if scope["method"] not in IDEMPOTENT_METHODS or key is None:
            await self._app(scope, receive, send)
            return
        if not key or len(key) > _MAX_KEY_LENGTH or not all(0x20 < ord(c) < 0x7F for c in key):
            refusal = ApiError(
                422,
                "InvalidInput",
                "Idempotency-Key must be 1-255 printable ASCII characters.",
                param="Idempotency-Key",
            )
            await api_error_response(refusal)(scope, receive, send)
            return
        await self._idempotent(scope, receive, send, principal.id, key)

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, key_id: str, key: str) -> None:
        body, disconnected = await _read_body(receive)
        if disconnected:
            return
        fingerprint = request_fingerprint(scope, body)
        pool = self._state.pool
        try:
            claim = await store.claim(
                pool, api_key_id=key_id, key=key, fingerprint=fingerprint, now=datetime.now(UTC)
            )
        except DATABASE_DOWN:
            await api_error_response(_UNAVAILABLE)(scope, receive, send)
            return
        if claim.outcome is store.ClaimOutcome.REUSED:
            refusal = ApiError(
                422,
                "IdempotencyKeyReused",
                "This Idempotency-Key was used with a different request in the last 24 hours.",
                param="Idempotency-Key",
            )
            await api_error_response(refusal)(scope, receive, send)
            return
        if claim.outcome is store.ClaimOutcome.IN_USE:
            refusal = ApiError(
                409,
                "IdempotencyKeyInUse",
                "A request with this Idempotency-Key is still running; retry once it has answered.",
                param="Idempotency-Key",
                retry_after=1,
            )
            await api_error_response(refusal)(scope, receive, send)
            return
        if claim.outcome is store.ClaimOutcome.REPLAY:
            assert claim.answer is not None
            body = open_answer(self._state.pepper, key_id, key, claim.answer.body)
            await _replay(send, store.StoredAnswer(claim.answer.status_code, claim.answer.headers, body))
            return

        replayed_body = False

        async def body_once() -> Message:
            nonlocal replayed_body
            if not replayed_body:
                replayed_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers.extend(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self._app(scope, body_once, capture)
        except BaseException:
            await store.release(pool, api_key_id=key_id, key=key)
            raise
        if status == 0 or status >= 500:
            await store.release(pool, api_key_id=key_id, key=key)
            return
        # Answers can carry a secret shown once (a webhook endpoint's `whsec_`): kept sealed.
        sealed = seal_answer(self._state.pepper, key_id, key, b"".join(chunks))
        answer = store.StoredAnswer(status, headers, sealed)
        await store.store_answer(pool, api_key_id=key_id, key=key, answer=answer, now=datetime.now(UTC))


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body (RequestGuard in front has bounded its size), and whether the client left."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), False


async def _replay(send: Send, answer: store.StoredAnswer) -> None:
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    raw_headers.append((REPLAYED_HEADER.encode(), b"true"))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": raw_headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


def _answer_key(pepper: bytes) -> AESGCM:
    return AESGCM(hmac.new(pepper, b"portalpay idempotent answers v1", hashlib.sha256).digest())


def seal_answer(pepper: bytes, key_id: str, key: str, body: bytes) -> bytes:
    """AES-GCM under a key derived from API_KEY_PEPPER, bound to the API key and Idempotency-Key:
    a stored answer is no plaintext copy of what it showed once."""
    nonce = os.urandom(12)
    return nonce + _answer_key(pepper).encrypt(nonce, body, f"{key_id}\x1f{key}".encode())


def open_answer(pepper: bytes, key_id: str, key: str, sealed: bytes) -> bytes:
    return _answer_key(pepper).decrypt(sealed[:12], sealed[12:], f"{key_id}\x1f{key}".encode())
