"""SPEC §5: a web debit's proof (the authorization and the authentication behind it) is kept two years.

A real paid attempt writes its payment row with `retain_until` at least two calendar years after
`authorized_at` (whatever leap day lies between), and the app's role cannot delete the payment or
the audit rows the proof rests on before then (or ever: it has no DELETE).
"""

from datetime import datetime, timedelta

import asyncpg
import pytest

from domain.channels import Channel
from domain.status import PaymentStatus
from tests.support import Harness
from tests.workflow.steps import Attempt, new_invoice


def two_years_after(moment: datetime) -> datetime:
    """The same calendar moment two years on (29 February becomes 1 March)."""
    try:
        return moment.replace(year=moment.year + 2)
    except ValueError:
        return moment.replace(year=moment.year + 2, month=3, day=1)


def test_two_calendar_years_are_sometimes_731_days() -> None:
    # Why a 730-day retention is not "two years": a leap day inside the span.
    start = datetime(2026, 12, 6, 12, 0)
    assert two_years_after(start) - start == timedelta(days=731)
    assert two_years_after(datetime(2028, 2, 29)) == datetime(2030, 3, 1)


async def test_a_paid_attempts_proof_is_kept_two_years(harness: Harness) -> None:
    assert harness.app_pool is not None
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.verified(Channel.SMS)
    paid = await attempt.pay()
    assert paid.status is PaymentStatus.PAID and paid.payment is not None

    row = await harness.pool.fetchrow(
        "SELECT authorized_at, retain_until, otp_audit_event_id FROM payments WHERE id = $1",
        paid.payment.payment_id,
    )
    assert row is not None and row["otp_audit_event_id"] is not None
    authorized_at, retain_until = row["authorized_at"], row["retain_until"]
    assert retain_until >= two_years_after(authorized_at), (authorized_at, retain_until)
    assert retain_until - authorized_at <= timedelta(days=732), "kept two years, not forever"

    # What the proof rests on cannot be deleted by the product's own role.
    for sql, arg in (
        ("DELETE FROM payments WHERE id = $1", paid.payment.payment_id),
        ("DELETE FROM audit_events WHERE id = $1", row["otp_audit_event_id"]),
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await harness.app_pool.execute(sql, arg)
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM payments WHERE id = $1", paid.payment.payment_id)
        == 1
    )
