"""The document model alone: a lifecycle status-history table, when one exists, is the history shown."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.audit import GENESIS_HASH, compute_event_hash
from domain.proof import PRIMARY_NO_DESIGNATION, first_broken_row
from domain.proof_story import build_proof
from infra import proof_pdf
from tests.proof.support import pdf_text

KEY = b"proof-model-test-key"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _chain(*types: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for i, event_type in enumerate(types, start=1):
        row: dict[str, Any] = {
            "id": i,
            "event_key": f"k{i}",
            "event_type": event_type,
            "invoice_id": "INV-1",
            "run_id": "run-1",
            "actor": "customer",
            "details": {"payment_id": "PAY-1"} if event_type.startswith("PAYMENT_") else {},
            "occurred_at": T0 + timedelta(seconds=i),
            "prev_hash": prev,
        }
        row["hash"] = prev = compute_event_hash(prev, row, key=KEY)
        rows.append(row)
    return rows


def _build(rows: list[dict[str, Any]], status_rows: list[dict[str, Any]] | None) -> Any:
    return build_proof(
        chain_key=KEY,
        payment={
            "id": "PAY-1",
            "invoice_id": "INV-1",
            "run_id": "run-1",
            "payer_contact_id": "CT-1",
            "amount_cents": 125000,
            "currency": "USD",
            "method": "echeck",
            "account_type": "checking",
            "account_holder": "Ada",
            "account_last4": "6789",
            "status": "returned",
            "return_code": "R10",
            "authorization_text": "I authorize.",
            "authorized_at": T0 + timedelta(seconds=3),
            "otp_audit_event_id": None,
        },
        invoice={
            "id": "INV-1",
            "number": "INV-1",
            "kind": "deposit",
            "customer_id": "C-1",
            "customer_name": "C",
        },
        contact={"name": "Ada", "destinations": ["a•••@example.com"], "portal_payer": False},
        invoice_rows=rows,
        customer_rows=[],
        status_rows=status_rows,
        checked_at=T0 + timedelta(days=1),
        exported_by="cli",
    )


def test_status_history_table_rows_are_the_history_with_return_codes() -> None:
    rows = _chain("ATTEMPT_STARTED", "OTP_NOT_REQUIRED", "PAYMENT_SUBMITTED", "PAYMENT_ACCEPTED")
    history = [
        {"payment_id": "PAY-1", "status": "processing", "changed_at": T0 + timedelta(seconds=5)},
        {"payment_id": "PAY-1", "status": "settled", "changed_at": T0 + timedelta(days=1)},
        {
            "payment_id": "PAY-1",
            "status": "returned",
            "return_code": "R10",
            "changed_at": T0 + timedelta(days=3),
        },
    ]
    proof = _build(rows, history)
    assert proof.status_history_source == "audit_trail+payment_status_history"
    assert [(s.status, s.return_code) for s in proof.status_history] == [
        ("submitting", None),
        ("accepted", None),
        ("processing", None),
        ("settled", None),
        ("returned", "R10"),
    ]
    assert proof.return_code == "R10" and proof.timeline[-1].what == "Debit returned (R10)"
    assert proof.payer.designation == PRIMARY_NO_DESIGNATION
    assert proof.otp.required is False and proof.chain_ok


def test_without_a_history_table_the_audit_rows_and_current_status_tell_it() -> None:
    proof = _build(_chain("ATTEMPT_STARTED", "PAYMENT_SUBMITTED", "PAYMENT_ACCEPTED"), None)
    assert proof.status_history_source == "audit_trail"
    assert [s.status for s in proof.status_history] == ["submitting", "accepted", "returned"]


def test_first_broken_row_names_the_row_that_does_not_verify() -> None:
    rows = _chain("ATTEMPT_STARTED", "PAYER_RESOLVED", "OTP_SENT")
    assert first_broken_row(rows, key=KEY) is None
    rows[1] = {**rows[1], "actor": "someone else"}
    assert first_broken_row(rows, key=KEY) == 2
    assert first_broken_row(_chain("A", "B")[1:], key=KEY) == 2  # a removed first row breaks the link


def test_without_dejavu_the_pdf_falls_back_to_core_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without `fonts-dejavu-core` still gets a readable PDF: "•" drawn as "*", other
    characters outside latin-1 (a browser name in another script) as "?", never an exception."""
    proof = _build(_chain("ATTEMPT_STARTED", "PAYMENT_SUBMITTED", "PAYMENT_ACCEPTED"), None)
    proof = proof.model_copy(update={"user_agent": "Браузер/1.0 — test"})
    monkeypatch.setattr(proof_pdf, "FONT_DIRS", ())
    text = pdf_text(proof_pdf.render_proof_pdf(proof))
    assert "a***@example.com" in text and "I authorize." in text and "Chain verified" in text
    assert "???????/1.0 - test" in text
    monkeypatch.undo()
    assert "Браузер/1.0 — test" in pdf_text(proof_pdf.render_proof_pdf(proof))
