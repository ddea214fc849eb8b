"""What every request passes before any route (SPEC §11): sane bytes, a bounded body, a true client.

`RequestGuard` answers `400` for a path or query that is not clean UTF-8 or holds a control
character (a NUL would otherwise reach PostgreSQL, which refuses it with an error the app would
turn into a 500), and `413` for a body over the limit: at once when `Content-Length` says so,
otherwise as soon as the chunks received pass it, so an 8 MiB body is never read whole. A JSON body
must be UTF-8 (RFC 8259 §8.1): Python's parser would otherwise detect UTF-16 or UTF-32 and accept
it, so a filter in front that reads UTF-8 would see something else than the app; a raw NUL byte,
which no UTF-8 JSON text holds, is how those encodings show, and answers `400` before the app runs.

`ForwardedClient` believes `X-Forwarded-For`/`X-Forwarded-Proto` only from a peer listed in
`TRUSTED_PROXIES`: the ACH authorization records the customer's address, never the proxy's, and
nobody else can choose the address that is recorded.
"""

import json
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.input_rules import has_control_characters

Network = IPv4Network | IPv6Network


class _BodyTooLarge(Exception):
    pass


class _BodyNotUtf8Json(Exception):
    pass


def _is_json(scope: Scope) -> bool:
    kinds = [v for k, v in scope.get("headers", []) if k.lower() == b"content-type"]
    return any(b"json" in kind.lower() for kind in kinds)


def _error_body(status: int, error: str, message: str) -> list[Message]:
    body = json.dumps({"error": error, "message": message, "detail": message}).encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        },
        {"type": "http.response.body", "body": body},
    ]


async def _answer(send: Send, status: int, error: str, message: str) -> None:
    for message_part in _error_body(status, error, message):
        await send(message_part)


def _decoded(raw: bytes, *, plus_is_space: bool) -> str | None:
    """The percent-decoded text, or None when it is not valid UTF-8."""
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _content_length(scope: Scope) -> int | str | None:
    """The declared length, None if absent, or "bad" when it is not a plain decimal number."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isdigit():
        return "bad"
    return int(values[0])


class RequestGuard:
    """Refuses malformed paths and queries (400) and bodies over `max_bytes` (413) while reading.

    `limits` gives a path prefix its own limit (the codec endpoint takes payload batches).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limits: Sequence[tuple[str, int]] = ()) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._limits = tuple(limits)

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self._limits:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self._max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
        raw_path = raw_path.split(b"?", 1)[0]  # some servers include the query in raw_path
        path = _decoded(raw_path, plus_is_space=False)
        if path is None or has_control_characters(path) or has_control_characters(scope.get("path", "")):
            await _answer(send, 400, "MalformedPath", "The address holds characters that are not allowed.")
            return
        query = _decoded(scope.get("query_string", b""), plus_is_space=True)
        if query is None:
            await _answer(send, 400, "MalformedQuery", "The query is not valid UTF-8.")
            return
        if has_control_characters(query):
            # A field value like any other, refused as input (a NUL would reach PostgreSQL).
            await _answer(send, 400, "MalformedQuery", "A query parameter holds a control character.")
            return

        limit = self._limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared == "bad":
            await _answer(send, 400, "MalformedRequest", "Content-Length is not a number.")
            return
        if isinstance(declared, int) and declared > limit:
            await _answer(send, 413, "RequestTooLarge", f"The request body is over {limit} bytes.")
            return

        received = 0
        json_body = _is_json(scope)
        refusal: tuple[int, str, str] | None = None
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, refusal
            if refusal is not None:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    refusal = (413, "RequestTooLarge", f"The request body is over {limit} bytes.")
                    raise _BodyTooLarge
                if json_body and b"\x00" in chunk:
                    refusal = (400, "MalformedBody", "A JSON body must be UTF-8.")
                    raise _BodyNotUtf8Json
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if refusal is not None:
                # Whatever the app makes of the cut-off body, the answer is our refusal, once.
                if not answered:
                    answered = True
                    await _answer(send, *refusal)
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self._app(scope, limited_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not answered:
            answered = True
            await _answer(send, *refusal)


def parse_header_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class ForwardedClient:
    """Client address and scheme from `X-Forwarded-*`, believed only from a trusted proxy."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self._app = app
        self._trusted = tuple(trusted)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self._trusted:
            client = scope.get("client")
            if client and self._is_trusted(client[0]):
                self._apply(scope, client)
        await self._app(scope, receive, send)

    def _apply(self, scope: Scope, client: tuple[str, int]) -> None:
        headers: dict[bytes, str] = {}
        for key, value in scope.get("headers", []):
            name = key.lower()
            # Several headers of one name are one comma-separated list (RFC 9110 §5.3).
            previous = headers.get(name)
            text = value.decode("latin-1")
            headers[name] = f"{previous},{text}" if previous else text
        forwarded_for = parse_header_list(headers.get(b"x-forwarded-for", ""))
        if forwarded_for:
            # Walk from the nearest hop back: the first address not itself a trusted proxy is the
            # client. Entries further left were written by the client and prove nothing.
            chosen = None
            for hop in reversed(forwarded_for):
                try:
                    ip_address(hop)
                except ValueError:
                    break  # garbage from an untrusted hop: keep the peer we know
                chosen = hop
                if not self._is_trusted(hop):
                    break
            if chosen is not None:
                scope["client"] = (chosen, 0)
        proto = parse_header_list(headers.get(b"x-forwarded-proto", ""))
        if proto and proto[-1].lower() in ("http", "https"):
            scope["scheme"] = proto[-1].lower()
