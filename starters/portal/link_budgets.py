"""What one pay-link holder may do, enforced before an Update reaches Temporal (issue 21, finding 3).

Whoever holds a link (the payer, or anyone it was forwarded to) could repeat refused requests
without end, each adding audit rows and history, burn the invoice's send caps and lock the invoice
again and again. The portal now answers from PostgreSQL first (shared by every portal process):

- a refused send that wrote an audit row (the invoice's or the destination's cap) holds further
  sends for the invoice until they would be allowed: at most one audit row per window, nothing
  more in history;
- each link has a budget of refused requests per window (`PAY_LINK_REFUSALS_PER_WINDOW` per
  `OTP_LOCKOUT_SECONDS`); past it every request of that link is answered 429 until the window ends;
- each link may ask for fewer than two windows' worth of codes and type fewer than two lockouts'
  worth of wrong codes in its whole life (`2 * OTP_MAX_SENDS - 1`, `2 * OTP_MAX_FAILED - 1`), so
  on its own it can lock the payer out for one lockout window at most, and slow guessing over
  weeks stays bounded (links come only from staff);
- each link may submit bank details `PAY_LINK_PAYMENT_TRIES_PER_WINDOW` times per window (each is
  an account validation).
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType

from domain.channels import Channel
from domain.errors import RefusalType
from infra.pay_links import PayLinkClaims
from infra.stores import pay_link_budgets as store
from starters.portal.deps import PortalDeps
from starters.portal.errors import PortalError
from starters.workflow_client import AttemptRefused

LINK_SPENT = "LinkBudgetSpent"
# Refusals by the caps PostgreSQL keeps across attempts (activities/otp.py `send_cap_refusal`):
# these wrote OTP_SEND_REFUSED and history, so repeats are held.
_HELD_SCOPES = {"invoice", "invoice_cooldown", "destination"}
# A payment refused before any account was looked at gives its slot back.
_VALIDATED = {RefusalType.ACCOUNT_VALIDATION_FAILED, RefusalType.BANK_ACCOUNT_BLOCKED}


class LinkAction(StrEnum):
    OPEN = "open"
    CODE = "code"
    VERIFY = "verify"
    PAYMENT = "payment"
    CANCEL = "cancel"


def _seconds_until(moment: datetime | None, now: datetime | None = None) -> int:
    if moment is None:
        return 1
    return max(1, math.ceil((moment - (now or datetime.now(UTC))).total_seconds()))


@dataclass
class LinkBudget:
    """One customer request's use of its link's budget: `async with` around the attempt call."""

    deps: PortalDeps
    claims: PayLinkClaims
    invoice_id: str
    action: LinkAction
    channel: Channel | None = None
    _reserved: store.LifetimeCounter | None = None
    _payment_slot: bool = False

    @property
    def _link(self) -> bytes:
        return store.link_id(self.claims.nonce)

    @property
    def _window(self) -> timedelta:
        return timedelta(seconds=max(self.deps.settings.otp_lockout_seconds, 1))

    async def __aenter__(self) -> "LinkBudget":
        pool, settings = self.deps.pool, self.deps.settings
        await store.ensure_link(pool, self._link, self.invoice_id)
        refusals, window_ends = await store.refusals_window(pool, self._link, self._window)
        if refusals >= settings.pay_link_refusals_per_window:
            raise PortalError(
                429,
                LINK_SPENT,
                "Too many refused requests from this link. Try again later.",
                retry_after=_seconds_until(window_ends),
                reason="link_refusals",
            )
        try:
            await self._take_slots()
        except PortalError:
            await store.count_refusal(pool, self._link, self._window)
            raise
        return self

    async def _take_slots(self) -> None:
        pool, settings = self.deps.pool, self.deps.settings
        if self.action is LinkAction.CODE:
            assert self.channel is not None
            held = await store.active_hold(pool, self.invoice_id, ["code", f"code:{self.channel.value}"])
            if held is not None:
                raise PortalError(
                    429, held.refusal, held.message, retry_after=_seconds_until(held.hold_until, held.now)
                )
            if not await store.reserve(pool, self._link, "sends", 2 * settings.otp_max_sends - 1):
                raise self._spent("codes")
            self._reserved = "sends"
        elif self.action is LinkAction.VERIFY:
            if not await store.reserve(pool, self._link, "wrong_codes", 2 * settings.otp_max_failed - 1):
                raise self._spent("wrong codes")
            self._reserved = "wrong_codes"
        elif self.action is LinkAction.PAYMENT:
            retry_at = await store.reserve_payment_try(
                pool, self._link, settings.pay_link_payment_tries_per_window, self._window
            )
            if retry_at is not None:
                raise PortalError(
                    429,
                    LINK_SPENT,
                    "Too many bank-detail submissions from this link. Try again later.",
                    retry_after=_seconds_until(retry_at),
                    reason="link_payment_tries",
                )
            self._payment_slot = True

    def _spent(self, what: str) -> PortalError:
        return PortalError(
            429,
            LINK_SPENT,
            f"This link has been used for as many {what} as it allows. Ask for a new payment request.",
            retry_after=_seconds_until(self.claims.expires_at),
            reason="link_spent",
        )

    async def give_back(self) -> None:
        """The action did not use what it reserved (a right code, a refusal before any send)."""
        if self._reserved is not None:
            await store.give_back(self.deps.pool, self._link, self._reserved)
            self._reserved = None
        if self._payment_slot:
            await store.give_back(self.deps.pool, self._link, "payment_tries")
            self._payment_slot = False

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, AttemptRefused):
            if not (self.action is LinkAction.PAYMENT and exc.type in _VALIDATED):
                await self.give_back()
            await store.count_refusal(self.deps.pool, self._link, self._window)
            await self._hold_if_capped(exc)
            return
        if isinstance(exc, PortalError) and 400 <= exc.http_status < 500:
            await store.count_refusal(self.deps.pool, self._link, self._window)
        await self.give_back()

    async def _hold_if_capped(self, refused: AttemptRefused) -> None:
        scope = refused.details.get("scope")
        if self.action is not LinkAction.CODE or scope not in _HELD_SCOPES or not refused.retry_after:
            return
        action = f"code:{self.channel.value}" if scope == "destination" and self.channel else "code"
        await store.hold(
            self.deps.pool,
            self.invoice_id,
            action,
            str(refused.type),
            refused.message,
            int(refused.retry_after),
        )
