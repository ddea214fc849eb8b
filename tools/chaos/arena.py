"""Where the campaign's attacks (`tools.chaos.attacks`) play: the stack, the answers they got, the
customers they seeded and the secrets the run used (for the log grep afterwards)."""

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from infra.pay_links import PayLinkSigner
from tools.chaos.log_secrets import RunSecrets
from tools.standins.faulty_providers import AcceptedMessages

# The campaign's provider stand-in refuses every send on its broken channel for good: the portal
# relays that as 502 DeliveryFailed. It is the provider's answer, not a fault of the portal.
PROVIDER_REFUSAL = "DeliveryFailed"


@dataclass
class AnswerTally:
    """Every answer the attacks got, by status; 5xx (and requests left unanswered) by what was tried."""

    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    provider_refusals: int = 0
    unanswered: list[str] = field(default_factory=list)

    def record(self, label: str, response: httpx.Response, *, broken_channel: str | None = None) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code < 500:
            return
        if (
            broken_channel is not None
            and response.status_code == 502
            and _error(response) == PROVIDER_REFUSAL
        ):
            self.provider_refusals += 1
            return
        self.server_errors.append(f"{label}: {response.status_code} {response.text[:120]}")

    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.unanswered)


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


@dataclass
class Arena:
    """What every attack needs: the stack's portal, database and Temporal, and the run's ledgers."""

    http: httpx.AsyncClient
    pool: asyncpg.Pool
    client: Client
    signer: PayLinkSigner
    inbox: AcceptedMessages
    task_queue: str
    staff_token: str
    broken_channel: str
    working_channel: str
    run_secrets: RunSecrets
    tally: AnswerTally = field(default_factory=AnswerTally)
    tag: str = field(default_factory=lambda: secrets.token_hex(3).upper())
    seeded: int = 0

    async def call(
        self,
        label: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        staff: bool = False,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        wait: float = 30.0,
    ) -> httpx.Response | None:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if staff:
            sent["Authorization"] = f"Bearer {self.staff_token}"
        sent.setdefault("Idempotency-Key", secrets.token_hex(12))
        try:
            response = await self.http.request(
                method, path, json=json, content=content, headers=sent, timeout=wait
            )
        except httpx.TransportError as exc:
            self.tally.unanswered.append(f"{label}: {type(exc).__name__}")
            return None
        self.tally.record(label, response, broken_channel=self.broken_channel)
        return response

    async def seed_customer(
        self,
        *,
        kind: str = "invoice",
        amount_cents: int = 12_500,
        contacts: list[tuple[str, str]] | None = None,
    ) -> "Seeded":
        """One customer whose first contact is the portal payer, with one open invoice and its link."""
        self.seeded += 1
        key = f"ATK{self.tag}{self.seeded:04d}"
        contacts = contacts or [(f"payer-{key.lower()}@attack.example", unique_phone())]
        ids = [f"CT-{key}-{i}" for i in range(len(contacts))]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO customers (id, name) VALUES ($1, $2)", f"C-{key}", customer_name("Attack", key)
            )
            await conn.executemany(
                "INSERT INTO contacts (id, customer_id, name, email, phone, is_primary, portal_payer)"
                " VALUES ($1, $2, 'Attacked Payer', $3, $4, $5, $5)",
                [
                    (cid, f"C-{key}", email, phone, i == 0)
                    for i, (cid, (email, phone)) in enumerate(zip(ids, contacts, strict=True))
                ],
            )
            await conn.execute(
                "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents)"
                " VALUES ($1, $1, $2, $3, $4, $4)",
                f"INV-{key}",
                f"C-{key}",
                kind,
                amount_cents,
            )
        self.run_secrets.add("email", (email for email, _ in contacts))
        self.run_secrets.add("phone", (phone for _, phone in contacts))
        self.run_secrets.add("phone", (phone.lstrip("+") for _, phone in contacts))
        seeded = Seeded(f"INV-{key}", f"C-{key}", ids, contacts, self.signer.issue(f"INV-{key}"))
        self.run_secrets.add("pay-link token", [seeded.token])
        return seeded

    async def open(self, label: str, token: str) -> dict[str, Any]:
        response = await self.call(label, "POST", "/api/portal/sessions", token=token)
        if response is None or response.status_code != 200:
            raise AttackSetupFailed(f"{label}: open answered {_shown(response)}")
        body: dict[str, Any] = response.json()
        return body

    async def code_to(self, recipient: str, before: str | None, *, within: float = 10.0) -> str | None:
        """The newest code the stand-in delivered to `recipient`, once it differs from `before`."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            code = self.inbox.latest_code(recipient)
            if code and code != before:
                return code
            await asyncio.sleep(0.1)
        return None

    async def verified(self, label: str, seeded: "Seeded") -> str:
        """Open, ask for a code on the working channel, type it: the session id, at AWAITING_PAYMENT."""
        session_id = str((await self.open(label, seeded.token))["session_id"])
        email, phone = seeded.contacts[0]
        to = email if self.working_channel == "email" else phone
        for _ in range(6):  # the working channel faults now and then; ask again
            before = self.inbox.latest_code(to)
            sent = await self.call(
                label,
                "POST",
                f"/api/portal/sessions/{session_id}/code",
                token=seeded.token,
                json={"channel": self.working_channel},
            )
            code = await self.code_to(to, before) if sent is not None and sent.status_code == 200 else None
            if code is None:
                await asyncio.sleep(1.1)
                continue
            checked = await self.call(
                label,
                "POST",
                f"/api/portal/sessions/{session_id}/verify",
                token=seeded.token,
                json={"code": code},
            )
            if checked is not None and checked.status_code == 200 and checked.json().get("verified"):
                return session_id
        raise AttackSetupFailed(f"{label}: could not verify a code on {self.working_channel}")

    def new_link(self, invoice_id: str) -> str:
        token = self.signer.issue(invoice_id)
        self.run_secrets.add("pay-link token", [token])
        return token


class AttackSetupFailed(Exception):
    """The stack would not let an attack get where it starts (itself a finding, reported as such)."""


def _shown(response: httpx.Response | None) -> str:
    return "nothing" if response is None else f"{response.status_code} {response.text[:120]}"


@dataclass
class Seeded:
    invoice_id: str
    customer_id: str
    contact_ids: list[str]
    contacts: list[tuple[str, str]]  # (email, phone), the payer first
    token: str


# Staff change notices name the customer, and every reader of a message (the stand-in's inbox, the
# campaign's checks) takes its first run of six digits as a code: a name must never hold one.
_DIGITS_AS_LETTERS = str.maketrans("0123456789", "OIZEASGTBN")


def customer_name(prefix: str, key: str) -> str:
    """A customer's name for `key` with its digits spelled as letters (no six-digit run, ever)."""
    return f"{prefix} {key.translate(_DIGITS_AS_LETTERS)}"


def unique_phone() -> str:
    # +1556…: never one of the bench's seeded +1555… numbers, so only the attacks share a phone.
    return f"+1556{secrets.randbelow(10_000_000):07d}"


def unique_account() -> str:
    """An account number no one else in the run types, so a grep for it means only this one."""
    return f"0009{secrets.randbelow(10**8):08d}"
