"""Customers for the fault campaign: each drives one attempt through the portal like a patient person.

A person whose page errors (a 5xx, a dropped connection, a timeout) presses the button again: the
retry carries the same `Idempotency-Key`, so the portal maps it to the same Update and the action
happens once. On 409 they reload the session and carry on from where the attempt really is.
"""

import asyncio
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tools.bench.driver import PAYMENT_BODY, BenchInvoice
from tools.standins.faulty_providers import AcceptedMessages

RETRYABLE = {500, 503, 504}
TERMINAL = {"PAID", "DECLINED", "LOCKED", "EXPIRED", "CANCELLED", "NO_CONTACT_METHOD"}
DECLINING_ACCOUNT = "000111111113"  # sandbox: account_closed


@dataclass
class Plan:
    kind: str  # pay | pay_after_wrong | declined | cancel | abandon
    first_channel: str  # email | sms

    @property
    def expected(self) -> set[str]:
        return {
            "pay": {"PAID"},
            "pay_after_wrong": {"PAID"},
            "declined": {"DECLINED"},
            "cancel": {"CANCELLED"},
            "abandon": {"AWAITING_CODE"},
        }[self.kind]


@dataclass
class CustomerRecord:
    invoice: BenchInvoice
    plan: Plan
    session_id: str = ""
    final_status: str = ""
    code_obtained: bool = False
    moved_channel: bool = False
    retried_requests: int = 0
    server_errors: int = 0
    notes: list[str] = field(default_factory=list)


def make_plans(count: int, rng: random.Random) -> list[Plan]:
    kinds = ["pay"] * 6 + ["pay_after_wrong", "declined", "cancel", "abandon"]
    return [Plan(rng.choice(kinds), rng.choice(("email", "sms"))) for _ in range(count)]


class GaveUp(Exception):
    pass


def _busy(response: httpx.Response) -> bool:
    try:
        return bool(response.json().get("error") == "AttemptBusy")
    except ValueError:
        return False


class Customer:
    def __init__(
        self,
        http: httpx.AsyncClient,
        record: CustomerRecord,
        inbox: AcceptedMessages,
        rng: random.Random,
        *,
        patience: float = 240.0,
    ) -> None:
        self.http = http
        self.r = record
        self.inbox = inbox
        self.rng = rng
        self.deadline = time.monotonic() + patience
        self.auth = {"Authorization": f"Bearer {record.invoice.token}"}

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.1, 1.0))

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One action, retried with the same Idempotency-Key until the portal gives a real answer."""
        headers = {**self.auth, "Idempotency-Key": secrets.token_hex(12)}
        pause = 0.3
        while True:
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
                if response.status_code == 429 and _busy(response):
                    # "Busy, try again in a moment" means nothing was done (Temporal unreachable,
                    # the bank account not checkable yet). That answer is final for its update
                    # id, so the person's next press is a new action: a new key.
                    headers = {**self.auth, "Idempotency-Key": secrets.token_hex(12)}
                elif response.status_code not in RETRYABLE:
                    return response
                else:
                    self.r.server_errors += 1
            except httpx.TransportError as exc:
                self.r.notes.append(type(exc).__name__)
            self.r.retried_requests += 1
            if time.monotonic() > self.deadline:
                raise GaveUp(f"{method} {path}: no answer in time")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def session(self) -> dict[str, Any]:
        response = await self.call("GET", f"/api/portal/sessions/{self.r.session_id}")
        if response.status_code != 200:
            raise GaveUp(f"reload: HTTP {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def run(self) -> None:
        try:
            await self._run()
        except GaveUp as exc:
            self.r.notes.append(str(exc))
        if self.r.session_id:
            try:
                self.r.final_status = str((await self.session())["status"])
            except GaveUp as exc:
                self.r.notes.append(str(exc))

    async def _run(self) -> None:
        response = await self.call("POST", "/api/portal/sessions")
        if response.status_code != 200:
            raise GaveUp(f"open: HTTP {response.status_code} {response.text[:100]}")
        self.r.session_id = response.json()["session_id"]
        await self.think()
        code = await self.get_code()
        if self.r.plan.kind == "abandon":
            return
        if self.r.plan.kind == "cancel":
            await self.call("POST", f"/api/portal/sessions/{self.r.session_id}/cancel")
            return
        if self.r.plan.kind == "pay_after_wrong":
            await self.verify(f"{(int(code) + 1) % 1_000_000:06d}")
        for _ in range(5):
            await self.think()
            state = await self.verify(code)
            if state == "AWAITING_PAYMENT":
                break
            if state != "AWAITING_CODE":
                return
            code = await self.get_code(resend=True)  # the code on the phone did not match: ask again
        await self.think()
        await self.call("POST", f"/api/portal/sessions/{self.r.session_id}/payment", self.payment_body())

    def payment_body(self) -> dict[str, Any]:
        """The bank details the customer types in."""
        account = DECLINING_ACCOUNT if self.r.plan.kind == "declined" else PAYMENT_BODY["account_number"]
        return {**PAYMENT_BODY, "account_number": account}

    async def get_code(self, *, resend: bool = False) -> str:
        """Ask for a code until one arrives; move to the other channel if this one is refused for good."""
        channel = self.r.plan.first_channel
        other = "email" if channel == "sms" else "sms"
        for _ in range(12):
            state = await self.session()
            if state["status"] not in ("CHOOSING_CHANNEL", "AWAITING_CODE"):
                raise GaveUp(f"cannot ask for a code while {state['status']}")
            if channel in state.get("failed_channels", []):
                channel, self.r.moved_channel = other, True
            if state["status"] == "AWAITING_CODE" and state.get("code") and not resend:
                code = self._inbox_code(channel)
                if code:
                    self.r.code_obtained = True
                    return code
            before = self._inbox_code(channel)
            response = await self.call(
                "POST", f"/api/portal/sessions/{self.r.session_id}/code", {"channel": channel}
            )
            if response.status_code == 200:
                code = await self._wait_inbox(channel, before)
                if code:
                    self.r.code_obtained = True
                    return code
            elif response.status_code == 429:
                await asyncio.sleep(float(response.json().get("retry_after") or 1))
            resend = False
            await self.think()
        raise GaveUp("no code after 12 requests")

    def _inbox_code(self, channel: str) -> str | None:
        to = self.r.invoice.email if channel == "email" else self.r.invoice.phone
        return self.inbox.latest_code(to)

    async def _wait_inbox(self, channel: str, before: str | None) -> str | None:
        for _ in range(50):
            code = self._inbox_code(channel)
            if code and code != before:
                return code
            await asyncio.sleep(0.1)
        return self._inbox_code(channel)

    async def verify(self, code: str) -> str:
        response = await self.call("POST", f"/api/portal/sessions/{self.r.session_id}/verify", {"code": code})
        if response.status_code == 200:
            return str(response.json()["status"])
        return str((await self.session())["status"])
