"""Local stand-ins for SendGrid and Twilio on 127.0.0.1, speaking enough of each protocol for the SDKs.

Each stand-in captures every request and answers from a script of behaviours (a reply, a hang past
the client's timeout, a dropped connection); with nothing scripted it answers like the provider
does on success (SendGrid 202 + X-Message-Id, Twilio 201 + a Message resource).

Run `python -m tools.standins.providers` to start both and print the settings that point a worker at
them (then `portalpay try INV-1001` and type the code the stand-in prints).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Captured:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})

    def json_body(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hang:
    """Read the request, then answer nothing for this long (or until the stand-in stops)."""

    seconds: float = 30.0


@dataclass
class Drop:
    """Read the request, then close the connection without a status line."""


Behaviour = Reply | Hang | Drop


class StandIn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[Captured] = []
        self.replies: list[Reply] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                captured = Captured(self.command, parts.path, parts.query, dict(self.headers.items()), body)
                behaviour = owner._take(captured)
                if isinstance(behaviour, Drop):
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(behaviour, Hang):
                    owner._stopping.wait(behaviour.seconds)
                    self.close_connection = True
                    return
                try:
                    self.send_response(behaviour.status)
                    for key, value in behaviour.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(behaviour.body)))
                    self.end_headers()
                    self.wfile.write(behaviour.body)
                except OSError:
                    pass

            do_POST = _handle
            do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"standin-{name}", daemon=True
        )

    # --- scripting -------------------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.replies.clear()

    def _take(self, captured: Captured) -> Behaviour:
        with self._lock:
            self.requests.append(captured)
            behaviour = self._script.popleft() if self._script else self.default_reply(captured)
            if isinstance(behaviour, Reply):
                self.replies.append(behaviour)
            return behaviour

    def default_reply(self, captured: Captured) -> Behaviour:
        return Reply(404)

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class SendGridStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__("sendgrid")

    def default_reply(self, captured: Captured) -> Behaviour:
        if captured.method != "POST" or captured.path != "/v3/mail/send":
            return Reply.json(404, {"errors": [{"message": "not found", "field": None}]})
        if not captured.headers.get("Authorization", "").startswith("Bearer "):
            return Reply.json(401, {"errors": [{"message": "authorization required", "field": None}]})
        return Reply(202, b"", {"X-Message-Id": secrets.token_urlsafe(16)})


class TwilioStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__("twilio")

    def default_reply(self, captured: Captured) -> Behaviour:
        parts = captured.path.split("/")
        # /2010-04-01/Accounts/{AccountSid}/Messages.json
        if captured.method != "POST" or len(parts) != 5 or parts[4] != "Messages.json":
            return Reply.json(
                404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
            )
        if not captured.headers.get("Authorization", "").startswith("Basic "):
            return Reply.json(401, twilio_error(20003, "Authenticate", 401))
        return Reply.json(201, twilio_message(parts[3], captured.form()))


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    """The body Twilio answers an error with (legacy format, what the Messages API sends)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def twilio_message(account_sid: str, form: dict[str, str]) -> dict[str, Any]:
    sid = "SM" + secrets.token_hex(16)
    now = formatdate(time.time(), usegmt=True).replace("GMT", "+0000")
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if "MessagingServiceSid" in form else "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
        "to": form.get("To"),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _main() -> None:  # pragma: no cover - a manual helper
    """Both stand-ins in the foreground; each request is checked against the documents and the
    code it carries is printed (the stand-in plays the payer's phone and mailbox)."""
    import re

    from tests.providers import contracts

    checks: dict[str, tuple[Any, Any]] = {}
    if contracts.contracts_missing_reason() is None:
        checks["sendgrid"] = (contracts.load_sendgrid_contract(), contracts.validate_sendgrid)
        checks["twilio"] = (contracts.load_twilio_contract(), contracts.validate_twilio)
    sg, tw = SendGridStandIn().start(), TwilioStandIn().start()
    print("# stand-ins running; Ctrl-C to stop. Worker settings:")
    print(
        f"EMAIL_PROVIDER=sendgrid SENDGRID_API_KEY=SG.standin SENDGRID_FROM=codes@portalpay.test SENDGRID_HOST={sg.url}"
    )
    print(
        f"SMS_PROVIDER=twilio TWILIO_ACCOUNT_SID=AC{'0' * 32} TWILIO_AUTH_TOKEN=standin"
        f" TWILIO_FROM=+15005550006 TWILIO_BASE_URL={tw.url}"
    )
    seen = {"sendgrid": 0, "twilio": 0}
    try:
        while True:
            time.sleep(0.3)
            for standin in (sg, tw):
                for captured in standin.requests[seen[standin.name] :]:
                    verdict = "not checked"
                    if standin.name in checks:
                        contract, validate = checks[standin.name]
                        try:
                            validate(contract, captured)
                            verdict = "matches the document"
                        except Exception as exc:
                            verdict = f"DOES NOT match the document: {exc}"
                    code = re.search(rb"\b(\d{6})\b", captured.body)
                    shown = code.group(1).decode() if code else "-"
                    print(f"{standin.name}: {captured.method} {captured.path}: {verdict}; code {shown}")
                seen[standin.name] = len(standin.requests)
    except KeyboardInterrupt:
        sg.stop()
        tw.stop()


if __name__ == "__main__":  # pragma: no cover
    _main()
