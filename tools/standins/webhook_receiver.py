"""A webhook receiver on loopback for the delivery tests and the campaign: it verifies every
request with the `standardwebhooks` package (what a company's developer would use) and can be
told to be down, answer a status, hang, redirect, or fail a share of tries at random."""

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class ReceivedTry:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[int]  # indexes of the secrets that verified it


@dataclass
class WebhookReceiver:
    secrets: list[str] = field(default_factory=list)  # whsec_… secrets it trusts
    down: bool = False
    answer_status: int | None = None
    redirect_to: str | None = None
    hang_seconds: float = 0.0
    hang_tries: int = 0  # how many of the first tries hang for hang_seconds (0: all of them)
    failure_rate: float = 0.0
    seed: int = 7
    tries: list[ReceivedTry] = field(default_factory=list)
    accepted: list[ReceivedTry] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.app = FastAPI()
        self.app.add_api_route("/hook", self._hook, methods=["POST"])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(index)
        entry = ReceivedTry(headers.get("webhook-id", ""), headers, body, verified)
        self.tries.append(entry)
        self.arrived.set()
        hangs = self.hang_seconds and (not self.hang_tries or len(self.tries) <= self.hang_tries)
        if hangs and not await _held(request, self.hang_seconds):
            # The sender gave up or died: nobody is left to answer, so nothing is accepted.
            return Response(status_code=499)
        if self.redirect_to:
            return Response(status_code=307, headers={"location": self.redirect_to})
        if self.down:
            return Response(status_code=503)
        if self.answer_status is not None:
            return Response(status_code=self.answer_status)
        if self.failure_rate and self._random.random() < self.failure_rate:
            return Response(status_code=500)
        if not verified:
            return Response(status_code=401)
        self.accepted.append(entry)
        return Response(status_code=204)

    def delivered_ids(self) -> Counter[str]:
        return Counter(t.webhook_id for t in self.accepted)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(t.body) for t in self.accepted]


async def _held(request: Request, seconds: float) -> bool:
    """Hold the request for `seconds`; False as soon as its sender has gone away."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(min(left, 0.05))
    return not await request.is_disconnected()
