"""Logs free of secrets (SPEC §11, issue 10 finding 7): a full pay flow through the portal served by
uvicorn, the way `portalpay portal` serves it, with every log record of the process captured."""

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from starters.portal.app import build_portal_app
from starters.portal.codec_api import codec_ui_key
from starters.portal.process import install_access_log_redaction, portal_server_config, redact_path
from tests.hostile.helpers import bank, session_path, unique_email, unique_phone
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, Harness, create_invoice, latest_code

TEST_CLIENT_LOGGERS = ("httpx", "httpcore")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(TEST_CLIENT_LOGGERS):
            return  # the test's own HTTP client, not the portal process
        self.lines.append(f"{record.name} {record.getMessage()}")


@contextlib.contextmanager
def captured_logs() -> Iterator[Capture]:
    capture = Capture()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(capture)
            logger.setLevel(level)


@contextlib.asynccontextmanager
async def serve(harness: Harness) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = harness.settings.model_copy(update={"portal_base_url": base_url})
    app = build_portal_app(
        settings, harness.client, harness.app_pool or harness.pool, task_queue=harness.task_queue
    )
    config = portal_server_config(app, host="127.0.0.1", port=0)
    config.lifespan = "off"
    server = uvicorn.Server(config)
    install_access_log_redaction()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_full_pay_flow_leaves_no_secret_in_the_logs(harness: Harness) -> None:
    email, phone = unique_email(), unique_phone()
    inv = await create_invoice(harness.pool, email=email, phone=phone)
    staff = {"Authorization": f"Bearer {harness.settings.secret('staff_api_token')}"}
    operator_token = harness.settings.secret("operator_api_token")
    # Captured once uvicorn has configured its loggers (its dictConfig replaces their handlers).
    async with serve(harness) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        with captured_logs() as logs:
            r = await http.post(f"/api/staff/invoices/{inv.invoice_id}/payment-requests", headers=staff)
            assert r.status_code == 200, r.text
            url = r.json()["url"]
            token = url.rsplit("/pay/", 1)[1]
            assert (await http.get(f"/pay/{token}")).status_code == 200
            auth = {"Authorization": f"Bearer {token}"}
            r = await http.post("/api/portal/sessions", headers=auth)
            sid = r.json()["session_id"]
            assert (
                await http.post(session_path(sid, "/code"), json={"channel": "sms"}, headers=auth)
            ).status_code == 200
            code = await latest_code(harness.pool, phone)
            r = await http.post(session_path(sid, "/verify"), json={"code": code}, headers=auth)
            assert r.json()["verified"] is True, r.text
            r = await http.post(session_path(sid, "/payment"), json=bank(), headers=auth)
            assert r.json()["status"] == "PAID", r.text
            # Requests whose path or query holds a secret, and a token sent where it does not belong.
            assert (await http.get("/dev/outbox", params={"to": phone})).status_code == 200
            assert (await http.get("/dev/outbox", params={"to": email})).status_code == 200
            ui_key = codec_ui_key(operator_token)
            assert (await http.post(f"/codec/ui/{ui_key}/decode", json={})).status_code == 200
            assert (await http.get(f"/api/portal/sessions/{token}", headers=auth)).status_code == 404
            assert (await http.get(f"/pay/{token}%00")).status_code == 400

    text = "\n".join(logs.lines)
    access = [line for line in logs.lines if line.startswith("uvicorn.access")]
    # The log is there, and shows the requests: redaction did not simply drop it.
    assert any('"GET /pay/… HTTP/1.1" 200' in line for line in access), access
    assert any("/api/portal/sessions/" in line and "/verify" in line for line in access), access
    assert any("/codec/ui/…/decode" in line for line in access), access
    assert any("/dev/outbox?to=…" in line for line in access), access
    secrets = {
        "pay-link token": token,
        "token's signature": token.rsplit(".", 1)[-1],
        "code": code,
        "email": email,
        "phone": phone,
        "phone digits": phone.lstrip("+"),
        "account number": GOOD_ACCOUNT,
        "routing number": GOOD_ROUTING,
        "codec UI key": ui_key,
        "operator token": operator_token,
    }
    leaked = {name: value for name, value in secrets.items() if value in text}
    assert not leaked, (leaked, [line for line in logs.lines if any(v in line for v in leaked.values())][:5])


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/pay/v1.SU5WLTEwMDE.1767225600.abc.def", "/pay/…"),
        ("/pay/", "/pay/"),
        ("/codec/ui/cBH4EUpJuS245fM-ssi3yselHEkRkOvfsQXs7WvJgoA/decode", "/codec/ui/…/decode"),
        ("/dev/outbox?to=%2B15555550101&limit=5", "/dev/outbox?to=…&limit=…"),
        ("/api/portal/sessions/v1.SU5WLTEwMDE.1767225600.abcdefgh.ijklmnopqrstu", "/api/portal/sessions/…"),
        ("/api/portal/sessions/INV-1001~0b7c1c9e-3f7a-4c1e-9a55-2f1d0c9d1e22/verify", None),
        ("/api/staff/customers/C-1001/contacts", None),
        ("/x/" + "A" * 43, "/x/…"),
    ],
)
def test_redact_path(target: str, shown: str | None) -> None:
    assert redact_path(target) == (target if shown is None else shown)
