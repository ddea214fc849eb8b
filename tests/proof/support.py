"""Paying an invoice as a customer would, then reading a proof back as a dispute desk would."""

import io
from typing import Any

import asyncpg
from pypdf import PdfReader

from domain.audit import compute_event_hash
from domain.channels import Channel
from domain.status import PaymentStatus
from infra.stores.audit_trail import fetch_trail
from tests.support import Harness, TestInvoice
from tests.support import test_settings as settings_for_tests
from tests.workflow.steps import Attempt, bank_details


async def pay(harness: Harness, inv: TestInvoice, *, account: str | None = None, otp: bool = True) -> str:
    """One attempt through the gateway: code by SMS (unless not required), then the debit."""
    attempt = await Attempt.open(harness, inv)
    if otp:
        await attempt.verified(Channel.SMS)
    else:
        assert attempt.state.status is PaymentStatus.AWAITING_PAYMENT, attempt.state
    result = await attempt.pay(bank_details(account) if account else None)
    assert result.payment is not None and result.payment.payment_id
    return result.payment.payment_id


async def payment_row(pool: asyncpg.Pool, payment_id: str) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
    assert row is not None
    return dict(row)


def pdf_text(data: bytes) -> str:
    """The PDF's text with line breaks folded, as a reader would quote it."""
    assert data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def pdf_pages(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def folded(text: str) -> str:
    return " ".join(text.split())


async def forge_audit_row(pool: asyncpg.Pool, invoice_id: str) -> int:
    """What an attacker with the owner's connection can do: append a row whose hash was not earned.

    UPDATE and DELETE are refused by the table's trigger, so the forgery is an insert that claims
    the chain's last hash as its predecessor but carries a made-up hash."""
    trail = await fetch_trail(pool, invoice_id)
    last = trail[-1]
    forged = {**last, "event_key": f"forged:{invoice_id}", "event_type": "PAYMENT_SETTLED"}
    honest_hash = compute_event_hash(last["hash"], forged, key=settings_for_tests().audit_key())
    row_id: int = await pool.fetchval(
        "INSERT INTO audit_events (event_key, chain_id, event_type, invoice_id, actor, details, occurred_at,"
        " prev_hash, hash) VALUES ($1, $2, 'PAYMENT_SETTLED', $3, 'processor', '{}'::jsonb, now(), $4, $5)"
        " RETURNING id",
        forged["event_key"],
        f"invoice:{invoice_id}",
        invoice_id,
        last["hash"],
        honest_hash,  # computed over other fields than the ones stored: it cannot verify
    )
    return row_id
