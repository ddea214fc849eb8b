"""Sending and checking one-time passcodes.

The code exists in plaintext only inside `send_code` (on its way to the provider) and in the
customer's update argument (encrypted by the codec). PostgreSQL keeps an HMAC of it under a
server key, bound to the attempt and send number, so a leaked table cannot be brute-forced
without the key and a code from one send never verifies another.

Until the provider has accepted the message, the code's pyotp secret is also kept, sealed under a
key derived from the same server key: a send retried after a crash (the provider may already have
delivered) re-sends the same code, never a second one. It is erased once `sent_at` is recorded.
"""

import hashlib
import hmac
import logging
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics_port import NO_METRICS, PaymentMetrics
from domain.activity_io import (
    AttemptRef,
    AuditEventInput,
    CheckCodeRequest,
    CheckCodeResult,
    SendCodeRequest,
    SendCodeResult,
)
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.channels import Channel, mask_destination
from domain.errors import ErrorType
from domain.events import EventType
from domain.otp_code import OTP_CODE_DIGITS
from domain.policy import SendCaps
from infra.providers.delivery.base import CodeSender, PermanentDeliveryError, TransientDeliveryError
from infra.providers.delivery.messages import compose_otp_message
from infra.stores.audit_trail import append_event
from infra.stores.events import record_event
from infra.stores.invoices import extend_lockout
from infra.stores.payers import fetch_payer

log = logging.getLogger(__name__)


_SEALING_CONTEXT = b"portalpay otp secret sealing v1"


def code_for_secret(secret: str) -> str:
    """Six digits: a random HOTP secret (pyotp draws it from `secrets`, a CSPRNG) at counter 0."""
    return pyotp.HOTP(secret, digits=OTP_CODE_DIGITS).at(0)


def destination_digest(key: bytes, channel: Channel, destination: str) -> bytes:
    """One phone or email across invoices, known without storing it in the clear."""
    return hmac.new(
        key, f"destination:{channel.value}:{destination.strip().lower()}".encode(), hashlib.sha256
    ).digest()


async def send_cap_refusal(
    conn: asyncpg.Connection, caps: SendCaps, invoice_id: str, run_id: str, dest_digest: bytes
) -> tuple[ErrorType, str, int] | None:
    """Which cap a new send would break, and when to ask again; every send tried counts.

    The cooldown here is across attempts (cancel and reopen buy nothing); inside one attempt the
    workflow keeps it, and waives it when the provider reported the last code undelivered.
    """
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE created_at > now() - make_interval(secs => $2)) AS in_window,"
        " min(created_at) FILTER (WHERE created_at > now() - make_interval(secs => $2)) AS oldest,"
        " max(created_at) FILTER (WHERE run_id <> $3) AS latest, now() AS now"
        " FROM otp_challenges WHERE invoice_id = $1",
        invoice_id,
        float(caps.per_invoice_window_seconds),
        run_id,
    )
    now = row["now"]
    if row["latest"] is not None and caps.cooldown_seconds:
        wait = (row["latest"] + timedelta(seconds=caps.cooldown_seconds) - now).total_seconds()
        if wait > 0:
            return ErrorType.RESEND_TOO_SOON, "invoice_cooldown", max(1, math.ceil(wait))
    if row["in_window"] >= caps.per_invoice:
        wait = (row["oldest"] + timedelta(seconds=caps.per_invoice_window_seconds) - now).total_seconds()
        return ErrorType.TOO_MANY_SENDS, "invoice", max(1, math.ceil(wait))
    dest = await conn.fetchrow(
        "SELECT count(*) AS sends, min(created_at) AS oldest, now() AS now FROM otp_challenges"
        " WHERE destination_digest = $1 AND created_at > now() - interval '24 hours'",
        dest_digest,
    )
    if dest["sends"] >= caps.per_destination_day:
        wait = (dest["oldest"] + timedelta(hours=24) - dest["now"]).total_seconds()
        return ErrorType.TOO_MANY_SENDS, "destination", max(1, math.ceil(wait))
    return None


def code_digest(key: bytes, run_id: str, send_seq: int, code: str) -> bytes:
    return hmac.new(key, f"{run_id}:{send_seq}:{code}".encode(), hashlib.sha256).digest()


class SecretSealer:
    """AES-GCM under a key derived from OTP_HMAC_KEY, bound to the challenge it belongs to."""

    def __init__(self, server_key: bytes) -> None:
        self._aead = AESGCM(hmac.new(server_key, _SEALING_CONTEXT, hashlib.sha256).digest())

    def seal(self, secret: str, run_id: str, send_seq: int) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), f"{run_id}:{send_seq}".encode())

    def unseal(self, sealed: bytes, run_id: str, send_seq: int) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], f"{run_id}:{send_seq}".encode()).decode()


class OtpActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        hmac_key: bytes,
        senders: Mapping[Channel, CodeSender],
        company_name: str,
        audit_key: bytes,
        caps: SendCaps | None = None,
        metrics: PaymentMetrics = NO_METRICS,
    ) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._caps = caps or SendCaps()
        self._key = hmac_key
        self._sealer = SecretSealer(hmac_key)
        self._senders = senders
        self._company = company_name
        self._metrics = metrics

    @activity.defn(name="send_code")
    async def send_code(self, request: SendCodeRequest) -> SendCodeResult:
        ref = request.attempt
        existing = await self._pool.fetchrow(
            "SELECT destination_masked, sent_at, expires_at, provider, provider_message_id"
            " FROM otp_challenges WHERE run_id = $1 AND send_seq = $2",
            ref.run_id,
            request.send_seq,
        )
        if existing is not None and existing["sent_at"] is not None:
            # A retry after the provider accepted the message: never send a second code.
            return SendCodeResult(
                channel=request.channel,
                destination=existing["destination_masked"],
                sent_at=existing["sent_at"],
                expires_at=existing["expires_at"],
                provider=existing["provider"],
                provider_message_id=existing["provider_message_id"],
            )
        payer = await fetch_payer(self._pool, ref.customer_id)
        # The payer (or its details) changed since the attempt resolved it: a code must never go
        # to a former payer or an old number (SPEC §11). Only what is stored on the contact is used.
        if (
            payer is None
            or payer.contact_id != ref.payer_contact_id
            or payer.version != request.contact_version
        ):
            raise ApplicationError(
                "the payer contact changed since the attempt started",
                type=ErrorType.CONTACT_CHANGED.value,
                non_retryable=True,
            )
        to = payer.email if request.channel is Channel.EMAIL else payer.phone
        if not to:
            raise ApplicationError(
                f"the payer contact no longer has {request.channel.value} on file",
                {"provider": None, "provider_code": "no_destination"},
                type=ErrorType.PERMANENT_DELIVERY_FAILURE.value,
                non_retryable=True,
            )
        masked = mask_destination(request.channel, to)
        secret = pyotp.random_base32()
        code = code_for_secret(secret)
        expires_at = datetime.now(UTC) + timedelta(seconds=request.ttl_seconds)
        # First writer wins; a retry (or a racing duplicate) picks up the stored secret, so every
        # message for this send carries the same code and the stored digest never changes. The caps
        # are checked and the challenge written under one lock per invoice and per destination.
        dest_digest = destination_digest(self._key, request.channel, to)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('otp-send:' || $1))", ref.invoice_id)
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(encode($1::bytea, 'hex')))", dest_digest
            )
            if existing is None:
                refusal = await send_cap_refusal(conn, self._caps, ref.invoice_id, ref.run_id, dest_digest)
                if refusal is not None:
                    kind, scope, retry_after = refusal
                    self._metrics.sends_refused(scope)
                    raise ApplicationError(
                        f"no more codes for now ({scope})",
                        {"scope": scope, "retry_after": retry_after},
                        type=kind.value,
                        non_retryable=True,
                    )
            await conn.execute(
                "INSERT INTO otp_challenges (run_id, send_seq, workflow_id, invoice_id, contact_id, channel,"
                " destination_masked, code_digest, secret_sealed, expires_at, destination_digest)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT (run_id, send_seq) DO NOTHING",
                ref.run_id,
                request.send_seq,
                ref.workflow_id,
                ref.invoice_id,
                ref.payer_contact_id,
                request.channel.value,
                masked,
                code_digest(self._key, ref.run_id, request.send_seq, code),
                self._sealer.seal(secret, ref.run_id, request.send_seq),
                expires_at,
                dest_digest,
            )
            # An earlier send of this attempt that never reached the payer is not tried again now.
            await conn.execute(
                "UPDATE otp_challenges SET secret_sealed = NULL"
                " WHERE run_id = $1 AND send_seq < $2 AND sent_at IS NULL AND secret_sealed IS NOT NULL",
                ref.run_id,
                request.send_seq,
            )
        stored = await self._pool.fetchrow(
            "SELECT secret_sealed, expires_at, sent_at FROM otp_challenges WHERE run_id = $1 AND send_seq = $2",
            ref.run_id,
            request.send_seq,
        )
        if stored["secret_sealed"] is None:
            raise ApplicationError(
                "the challenge was sent by a concurrent try", type=ErrorType.CONCURRENT_SEND.value
            )  # retryable: the next try takes the early return above
        code = code_for_secret(
            self._sealer.unseal(bytes(stored["secret_sealed"]), ref.run_id, request.send_seq)
        )
        expires_at = stored["expires_at"]
        message = compose_otp_message(
            channel=request.channel,
            to=to,
            code=code,
            ttl_seconds=request.ttl_seconds,
            invoice_number=request.invoice_number,
            company_name=self._company,
            idempotency_key=f"{ref.workflow_id}/{ref.run_id}/code/{request.send_seq}",
        )
        sender = self._senders[request.channel]
        try:
            receipt = await sender.send(message)
        except PermanentDeliveryError as exc:
            log.warning("code delivery refused by %s (%s) for %s", exc.provider, exc.provider_code, masked)
            await self._drop_sealed_secret(ref.run_id, request.send_seq)
            raise ApplicationError(
                f"{exc.provider} refused the message ({exc.provider_code})",
                {"provider": exc.provider, "provider_code": exc.provider_code},
                type=ErrorType.PERMANENT_DELIVERY_FAILURE.value,
                non_retryable=True,
            ) from None
        except TransientDeliveryError as exc:
            log.info("transient delivery fault from %s (%s) for %s", exc.provider, exc.provider_code, masked)
            if _last_try():
                await self._drop_sealed_secret(ref.run_id, request.send_seq)
            raise ApplicationError(
                f"{exc.provider} is unavailable ({exc.provider_code})",
                {"provider": exc.provider, "provider_code": exc.provider_code},
                type=ErrorType.TRANSIENT_DELIVERY_FAILURE.value,
            ) from None
        sent_at = datetime.now(UTC)
        # Recording sent_at is the guard a retry reads; a new code voids every older one.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE otp_challenges SET sent_at = $3, provider = $4, provider_message_id = $5,"
                " secret_sealed = NULL WHERE run_id = $1 AND send_seq = $2",
                ref.run_id,
                request.send_seq,
                sent_at,
                receipt.provider,
                receipt.message_id,
            )
            await conn.execute(
                "UPDATE otp_challenges SET voided_at = $3 WHERE run_id = $1 AND send_seq < $2 AND voided_at IS NULL",
                ref.run_id,
                request.send_seq,
                sent_at,
            )
            # OTP_SENT with the record of the send: both there, or neither.
            await append_event(
                conn,
                _audit(
                    ref,
                    f"send/{request.send_seq}",
                    AuditEventType.OTP_SENT,
                    request.client,
                    request.channel,
                    masked,
                    {
                        "send_seq": request.send_seq,
                        "provider": receipt.provider,
                        "provider_message_id": receipt.message_id,
                        "expires_at": expires_at.isoformat(),
                    },
                ),
                key=self._audit_key,
            )
        self._metrics.codes_sent(request.channel.value)
        return SendCodeResult(
            channel=request.channel,
            destination=masked,
            sent_at=sent_at,
            expires_at=expires_at,
            provider=receipt.provider,
            provider_message_id=receipt.message_id,
        )

    async def _drop_sealed_secret(self, run_id: str, send_seq: int) -> None:
        """A send that will not be tried again keeps no way to recreate its code (issue 21)."""
        await self._pool.execute(
            "UPDATE otp_challenges SET secret_sealed = NULL WHERE run_id = $1 AND send_seq = $2 AND sent_at IS NULL",
            run_id,
            send_seq,
        )

    @activity.defn(name="check_code")
    async def check_code(self, request: CheckCodeRequest) -> CheckCodeResult:
        """The verdict, its audit row (and a lockout it earns) in one transaction."""
        ref = request.attempt
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.fetchrow(
                "SELECT ok, reason FROM otp_checks WHERE run_id = $1 AND check_seq = $2",
                ref.run_id,
                request.check_seq,
            )
            if done is not None:
                return await self._recorded_check(conn, request, done["ok"], done["reason"], first=False)
            challenge = await conn.fetchrow(
                "SELECT code_digest, expires_at, voided_at, used_at, sent_at FROM otp_challenges"
                " WHERE run_id = $1 AND send_seq = $2 FOR UPDATE",
                ref.run_id,
                request.send_seq,
            )
            candidate = code_digest(self._key, ref.run_id, request.send_seq, request.code)
            matches = challenge is not None and hmac.compare_digest(
                bytes(challenge["code_digest"]), candidate
            )
            reason: str | None = None
            if challenge is None or challenge["sent_at"] is None:
                reason = "no_code"
            elif challenge["voided_at"] is not None:
                reason = "voided"
            elif challenge["used_at"] is not None:
                reason = "used"
            elif challenge["expires_at"] <= datetime.now(UTC):
                reason = "expired"
            elif not matches:
                reason = "mismatch"
            ok = reason is None
            if ok:
                await conn.execute(
                    "UPDATE otp_challenges SET used_at = now() WHERE run_id = $1 AND send_seq = $2",
                    ref.run_id,
                    request.send_seq,
                )
            await conn.execute(
                "INSERT INTO otp_checks (run_id, check_seq, send_seq, invoice_id, ok, reason)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                ref.run_id,
                request.check_seq,
                request.send_seq,
                ref.invoice_id,
                ok,
                reason,
            )
            result = await self._recorded_check(conn, request, ok, reason, first=True)
        self._metrics.verifications("ok" if ok else "failed")
        if result.locked_until is not None:
            self._metrics.locks()
        return result

    async def _recorded_check(
        self,
        conn: asyncpg.Connection,
        request: CheckCodeRequest,
        ok: bool,
        reason: str | None,
        *,
        first: bool,
    ) -> CheckCodeResult:
        """Write (or, on a retry, find) the check's audit rows by their keys; the lock's event
        (SPEC §12 `attempt.locked`) only the first time, since events are not keyed."""
        ref = request.attempt
        step = f"check/{request.check_seq}"
        details: dict[str, Any] = {"send_seq": request.send_seq, "check_seq": request.check_seq}
        if not ok:
            details |= {"reason": reason, "attempts_remaining": request.attempts_remaining_if_wrong}
        event = AuditEventType.OTP_VERIFIED if ok else AuditEventType.OTP_VERIFY_FAILED
        record = await append_event(
            conn,
            _audit(ref, step, event, request.client, request.channel, request.destination, details),
            key=self._audit_key,
        )
        locked_until = None if ok else request.lock_until_if_wrong
        if locked_until is not None:
            await extend_lockout(conn, ref.invoice_id, locked_until)
            await append_event(
                conn,
                _audit(
                    ref,
                    step,
                    AuditEventType.OTP_LOCKED,
                    ClientContext(actor="system"),
                    None,
                    None,
                    {
                        "failed_checks": request.failed_checks_if_wrong,
                        "locked_until": locked_until.isoformat(),
                    },
                ),
                key=self._audit_key,
            )
            if first:
                # Noted for staff (issue 21): who locked it is not known, only that it is locked.
                await record_event(
                    conn,
                    EventType.ATTEMPT_LOCKED,
                    {
                        "invoice_id": ref.invoice_id,
                        "customer_id": ref.customer_id,
                        "workflow_id": ref.workflow_id,
                        "run_id": ref.run_id,
                        "failed_checks": request.failed_checks_if_wrong,
                        "locked_until": locked_until.isoformat(),
                    },
                )
        return CheckCodeResult(ok=ok, reason=reason, audit_event_id=record.id, locked_until=locked_until)


def _last_try() -> bool:
    """Whether this activity attempt is the last its retry policy allows."""
    try:
        info = activity.info()
    except RuntimeError:
        return True  # called outside a worker: nobody will try again
    policy = info.retry_policy
    return policy is not None and policy.maximum_attempts > 0 and info.attempt >= policy.maximum_attempts


def _audit(
    ref: AttemptRef,
    step: str,
    event_type: AuditEventType,
    client: ClientContext,
    channel: Channel | None,
    destination: str | None,
    details: dict[str, Any],
) -> AuditEventInput:
    return AuditEventInput.for_attempt(
        ref,
        event_key=f"{ref.workflow_id}/{ref.run_id}/{step}/{event_type.value}",
        event_type=event_type,
        channel=channel,
        destination=destination,
        client=client,
        details=details,
        occurred_at=datetime.now(UTC),
    )
