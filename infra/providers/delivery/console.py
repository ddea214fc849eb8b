"""The default provider without credentials: messages land in the `dev_outbox` table.

The developer reads them in the terminal (dev mode echoes a line) and at `GET /dev/outbox`;
tests read the code from there exactly as a person would from their phone.
"""

import asyncpg
from rich.console import Console

from infra.providers.delivery.base import DeliveryReceipt, OutboundMessage


class ConsoleSender:
    def __init__(self, pool: asyncpg.Pool, *, echo: bool = False, name: str = "console") -> None:
        self.name = name
        self._pool = pool
        self._echo = Console(stderr=True) if echo else None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        row_id = await self._pool.fetchval(
            "INSERT INTO dev_outbox (channel, to_address, subject, body, idempotency_key)"
            " VALUES ($1, $2, $3, $4, $5)"
            # One message per send. A retried send mints a fresh code (only a digest of the first
            # was kept), so the message must carry the code the stored digest was made from.
            " ON CONFLICT (idempotency_key) DO UPDATE SET to_address = EXCLUDED.to_address,"
            " subject = EXCLUDED.subject, body = EXCLUDED.body"
            " RETURNING id",
            message.channel.value,
            message.to,
            message.subject,
            message.text,
            message.idempotency_key,
        )
        if self._echo is not None:
            # Dev outbox only (PORTALPAY_ENV=dev): this is the developer's stand-in for a phone.
            self._echo.print(
                f"[bold cyan]dev outbox[/] {message.channel.value} → {message.to}: {message.text}"
            )
        return DeliveryReceipt(provider=self.name, message_id=f"outbox-{row_id}")

    async def aclose(self) -> None:
        return None
