"""Signing in to the staff console as a person would, over HTTP, from an address of its own."""

import asyncio
import functools
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import httpx
from fastapi import FastAPI

from infra.staff_passwords import generate_password, hash_password
from infra.stores.audit_trail import fetch_trail
from infra.stores.staff_accounts import add_staff_user

T = TypeVar("T")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class StaffCreds:
    id: int
    email: str
    password: str
    name: str


@functools.cache
def _known_password() -> tuple[str, str]:
    """One password and its Argon2id hash per test process.

    Hashing costs about 0.3 s of CPU here, and a test's staff user needs only a password the test
    knows: every user made by `make_staff` shares this one, each under its own unique email. Signing
    in still verifies it against the stored hash with Argon2id, as in production.
    """
    password = generate_password()
    return password, hash_password(password)


async def make_staff(pool: asyncpg.Pool, name: str = "Test Staff") -> StaffCreds:
    email = f"staff-{uuid.uuid4().hex[:10]}@example.com"
    password, password_hash = _known_password()
    user = await add_staff_user(pool, email, name, password_hash)
    assert user is not None
    return StaffCreds(user.id, email, password, name)


def client_address() -> str:
    """A fresh client address per test: sign-in limits count per address across the shared database."""
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def console_client(app: FastAPI, ip: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip or client_address(), 50321))
    return httpx.AsyncClient(
        transport=transport, base_url="http://portal.test", headers={"User-Agent": "pytest-console"}
    )


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    form = await http.get("/staff/login")
    assert form.status_code == 200, form.text
    return await http.post(
        "/staff/login", data={"csrf_token": csrf_of(form.text), "email": email, "password": password}
    )


async def signed_in(http: httpx.AsyncClient, creds: StaffCreds) -> str:
    """Signs in and returns the session's CSRF token (from the next page)."""
    r = await sign_in(http, creds.email, creds.password)
    assert r.status_code == 303 and r.headers["location"] == "/staff", r.text
    page = await http.get("/staff")
    assert page.status_code == 200
    return csrf_of(page.text)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 15.0) -> T:
    """Wait for something the workflow does after answering (an audit row), up to a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def audit_row(pool: asyncpg.Pool, invoice_id: str, event_type: str) -> dict[str, Any] | None:
    rows = [e for e in await fetch_trail(pool, invoice_id) if e["event_type"] == event_type]
    return rows[-1] if rows else None
