"""Bank account screening before a debit (SPEC §9): refuse a blocked account; validate an account
not seen before through the processor, once, and remember it by its keyed fingerprint.

`AccountScreen` is the rule's one home. The debit activity runs it first in the same task (one
activity per submission, issue 13); the `screen_bank_account` activity stays registered for
attempts whose history scheduled it before the fold (see docs/versioning.md).
"""

import asyncpg
from temporalio import activity

from domain.activity_io import AuditEventInput
from domain.audit import AuditEventType
from domain.bank_account import (
    BLOCKED_MESSAGE,
    NEEDS_NEW_DETAILS_MESSAGE,
    VALIDATION_FAILED_MESSAGE,
    ScreenAccountRequest,
    ScreenAccountResult,
)
from domain.masking import last4
from infra.bank_accounts import (
    bank_fingerprint,
    debit_request_digest,
    is_blocked,
    is_validated,
    known_fingerprints,
    needs_new_details,
    remember_validated,
)
from infra.providers.processor.client import AccountValidation, ProcessorClient, ProcessorRejected
from infra.stores.audit_trail import append_event


class AccountScreen:
    """Blocklist, then validation of an unseen account; idempotent by the request's screen_seq."""

    def __init__(
        self, pool: asyncpg.Pool, processor: ProcessorClient, fingerprint_key: bytes, *, audit_key: bytes
    ) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._processor = processor
        self._key = fingerprint_key

    def fingerprint(self, routing_number: str, account_number: str) -> str:
        return bank_fingerprint(self._key, routing_number, account_number)

    def request_digest(
        self, *, amount_cents: int, currency: str, routing_number: str, account_number: str, account_type: str
    ) -> str:
        """The keyed digest of a debit request, under the same server key as the fingerprints."""
        return debit_request_digest(
            self._key,
            amount_cents=amount_cents,
            currency=currency,
            routing_number=routing_number,
            account_number=account_number,
            account_type=account_type,
        )

    async def screen(self, request: ScreenAccountRequest) -> ScreenAccountResult:
        """ProcessorUnavailable propagates: the caller decides whether to retry or to say "later"."""
        fingerprint = self.fingerprint(request.routing_number, request.account_number)
        blocked = await is_blocked(
            self._pool, known_fingerprints(self._key, request.routing_number, request.account_number)
        )
        if blocked is not None:
            return ScreenAccountResult(
                allowed=False, fingerprint=fingerprint, reason="blocked", message=BLOCKED_MESSAGE
            )
        if await needs_new_details(self._pool, fingerprint):
            return ScreenAccountResult(
                allowed=False,
                fingerprint=fingerprint,
                reason="needs_new_details",
                message=NEEDS_NEW_DETAILS_MESSAGE,
            )
        if await is_validated(self._pool, fingerprint):
            # A retry of the try that validated it says so too: its audit row is this screening's.
            return ScreenAccountResult(
                allowed=True, fingerprint=fingerprint, validated_now=await self._audited(request)
            )
        try:
            answer = await self._processor.validate_account(
                routing_number=request.routing_number, account_number=request.account_number
            )
        except ProcessorRejected as exc:
            # The processor refused to check these numbers (a 4xx): no debit exists, so this is not
            # a decline. SPEC §9: the customer is asked to check the numbers and may try again.
            answer = AccountValidation(id="", valid=False, reason=f"rejected: {exc.code or exc.status}")
        # The account remembered as validated and its audit row: both or neither, so a retry
        # after a crash never finds a validated account whose validation the trail lacks.
        async with self._pool.acquire() as conn, conn.transaction():
            if answer.valid:
                await remember_validated(conn, fingerprint, answer.id)
            await self._audit(conn, request, answer.valid, answer.id, answer.reason)
        if not answer.valid:
            return ScreenAccountResult(
                allowed=False,
                fingerprint=fingerprint,
                reason="validation_failed",
                message=VALIDATION_FAILED_MESSAGE,
                validated_now=True,
            )
        return ScreenAccountResult(allowed=True, fingerprint=fingerprint, validated_now=True)

    async def _audited(self, request: ScreenAccountRequest) -> bool:
        found = await self._pool.fetchval(
            "SELECT 1 FROM audit_events WHERE event_key = $1", _event_key(request)
        )
        return found is not None

    async def _audit(
        self,
        conn: asyncpg.Connection,
        request: ScreenAccountRequest,
        valid: bool,
        validation_id: str,
        reason: str | None,
    ) -> None:
        await append_event(
            conn,
            AuditEventInput.for_attempt(
                request.attempt,
                event_key=_event_key(request),
                event_type=AuditEventType.ACCOUNT_VALIDATED
                if valid
                else AuditEventType.ACCOUNT_VALIDATION_FAILED,
                client=request.client,
                details={
                    "validation_id": validation_id,
                    "account_last4": last4(request.account_number),
                    "reason": reason,
                },
                occurred_at=activity.info().started_time,
            ),
            key=self._audit_key,
        )


def _event_key(request: ScreenAccountRequest) -> str:
    return f"account-validation/{request.attempt.run_id}/{request.screen_seq}"


class BankAccountActivities:
    def __init__(self, screen: AccountScreen) -> None:
        self._screen = screen

    @activity.defn(name="screen_bank_account")
    async def screen_bank_account(self, request: ScreenAccountRequest) -> ScreenAccountResult:
        return await self._screen.screen(request)
