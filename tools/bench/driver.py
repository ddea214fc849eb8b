"""One benchmark attempt, done as the browser does it (PortalPay) or as a plain client would (floor).

PortalPay: `POST /api/portal/sessions` → `/code` → read the code from `GET /dev/outbox` → `/verify`
→ `/payment`, every call with the pay-link token. Each action's latency is recorded by name.
"""

import asyncio
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import httpx
from temporalio.client import Client

from domain.otp_code import find_code
from tools.bench import floor as bench_floor
from tools.bench import minimal_floor

ACTIONS = ("open", "request_code", "verify", "pay")
SANDBOX_ROUTING = "011000015"
SANDBOX_ACCOUNT = "000123456789"
PAYMENT_BODY = {
    "method": "echeck",
    "account_holder": "Bench Payer",
    "routing_number": SANDBOX_ROUTING,
    "account_number": SANDBOX_ACCOUNT,
    "account_type": "checking",
}


class AttemptFailed(Exception):
    pass


@dataclass
class BenchInvoice:
    invoice_id: str
    email: str
    phone: str
    token: str = ""
    session_id: str = ""


@dataclass
class Timings:
    """Latencies in seconds per action, and the attempts that completed or failed."""

    by_action: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def record(self, action: str, started: float) -> None:
        self.by_action[action].append(time.perf_counter() - started)

    def error(self, what: str) -> None:
        self.failed += 1
        self.errors[what[:120]] += 1


# A customer's name appears in messages (staff change notices) whose readers take the first run of six
# digits as a code: the name spells the key's digits as letters.
_DIGITS_AS_LETTERS = str.maketrans("0123456789", "OIZEASGTBN")


async def seed_invoices(
    pool: asyncpg.Pool, count: int, *, tag: str | None = None, first: int = 0
) -> list[BenchInvoice]:
    """`count` customers, each with one payer contact (unique email and phone) and one open invoice.

    Phones are numbered from `first`: a second batch in the same database starts after the first.
    """
    tag = tag or secrets.token_hex(3).upper()
    rows = []
    for i in range(first, first + count):
        key = f"B{tag}{i:06d}"
        rows.append((key, f"payer-{key.lower()}@bench.example", f"+1555{i % 10_000_000:07d}"))
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO customers (id, name) VALUES ($1, $2)",
            [(f"C-{k}", f"Bench {k.translate(_DIGITS_AS_LETTERS)}") for k, *_ in rows],
        )
        await conn.executemany(
            "INSERT INTO contacts (id, customer_id, name, email, phone, is_primary, portal_payer)"
            " VALUES ($1, $2, 'Bench Payer', $3, $4, true, true)",
            [(f"CT-{k}", f"C-{k}", email, phone) for k, email, phone in rows],
        )
        await conn.executemany(
            "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents)"
            " VALUES ($1, $1, $2, 'invoice', 12500, 12500)",
            [(f"INV-{k}", f"C-{k}") for k, *_ in rows],
        )
    return [BenchInvoice(f"INV-{k}", email, phone) for k, email, phone in rows]


def _check(response: httpx.Response, action: str) -> dict[str, object]:
    if response.status_code != 200:
        raise AttemptFailed(f"{action}: HTTP {response.status_code} {response.text[:80]}")
    body: dict[str, object] = response.json()
    return body


async def read_code(http: httpx.AsyncClient, email: str, *, tries: int = 100) -> str:
    """What the customer does with their inbox: the newest message to them holds the code."""
    for _ in range(tries):
        response = await http.get("/dev/outbox", params={"to": email, "limit": 1})
        messages = response.json() if response.status_code == 200 else []
        if messages:
            code = find_code(messages[-1]["body"])
            if code:
                return code
        await asyncio.sleep(0.05)
    raise AttemptFailed("read_code: no code in the outbox")


async def portal_open(http: httpx.AsyncClient, inv: BenchInvoice, timings: Timings) -> None:
    auth = {"Authorization": f"Bearer {inv.token}"}
    t = time.perf_counter()
    body = _check(await http.post("/api/portal/sessions", headers=auth), "open")
    timings.record("open", t)
    inv.session_id = str(body["session_id"])


async def portal_request_code(http: httpx.AsyncClient, inv: BenchInvoice, timings: Timings) -> None:
    auth = {"Authorization": f"Bearer {inv.token}"}
    t = time.perf_counter()
    _check(
        await http.post(
            f"/api/portal/sessions/{inv.session_id}/code", json={"channel": "email"}, headers=auth
        ),
        "request_code",
    )
    timings.record("request_code", t)


async def portal_verify_and_pay(http: httpx.AsyncClient, inv: BenchInvoice, timings: Timings) -> None:
    auth = {"Authorization": f"Bearer {inv.token}"}
    t = time.perf_counter()
    code = await read_code(http, inv.email)
    timings.record("read_code", t)
    t = time.perf_counter()
    body = _check(
        await http.post(f"/api/portal/sessions/{inv.session_id}/verify", json={"code": code}, headers=auth),
        "verify",
    )
    timings.record("verify", t)
    if body.get("verified") is not True:
        raise AttemptFailed(f"verify: not verified ({body.get('reason')})")
    t = time.perf_counter()
    body = _check(
        await http.post(f"/api/portal/sessions/{inv.session_id}/payment", json=PAYMENT_BODY, headers=auth),
        "pay",
    )
    timings.record("pay", t)
    if body.get("status") != "PAID":
        raise AttemptFailed(f"pay: ended {body.get('status')}")


async def portal_attempt(http: httpx.AsyncClient, inv: BenchInvoice, timings: Timings) -> None:
    await portal_open(http, inv, timings)
    await portal_request_code(http, inv, timings)
    await portal_verify_and_pay(http, inv, timings)


async def floor_park(client: Client, workflow_id: str, task_queue: str, timings: Timings) -> None:
    t = time.perf_counter()
    await bench_floor.floor_open(client, workflow_id, task_queue)
    timings.record("open", t)
    t = time.perf_counter()
    await bench_floor.floor_request_code(client, workflow_id)
    timings.record("request_code", t)


async def floor_finish(client: Client, workflow_id: str, timings: Timings) -> None:
    t = time.perf_counter()
    await bench_floor.floor_verify(client, workflow_id)
    timings.record("verify", t)
    t = time.perf_counter()
    await bench_floor.floor_pay(client, workflow_id)
    timings.record("pay", t)


async def floor_attempt(client: Client, workflow_id: str, task_queue: str, timings: Timings) -> None:
    await floor_park(client, workflow_id, task_queue, timings)
    await floor_finish(client, workflow_id, timings)


async def minimal_attempt(client: Client, workflow_id: str, task_queue: str, timings: Timings) -> None:
    """The minimal floor: the send opens the attempt; "pay" is the wait for debit, audit and completion."""
    t = time.perf_counter()
    await minimal_floor.minimal_request_code(client, workflow_id, task_queue)
    timings.record("request_code", t)
    t = time.perf_counter()
    if not await minimal_floor.minimal_verify(client, workflow_id):
        raise AttemptFailed("verify: not verified")
    timings.record("verify", t)
    t = time.perf_counter()
    if await minimal_floor.minimal_paid(client, workflow_id) != "PAID":
        raise AttemptFailed("pay: not paid")
    timings.record("pay", t)
