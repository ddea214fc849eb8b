"""The proof of authorization as the staff API hands it out, for the three kinds of payment.

Each payment is made through the AttemptGateway like a customer's browser (tests/workflow/steps.py);
the JSON is then compared with what the attempt recorded (payment row, audit rows), and the PDF of
the same payment is read back with pypdf.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.money import format_amount
from domain.proof import ProofOfAuthorization, when
from infra.proof_pdf import render_proof_pdf
from infra.stores.audit_trail import append_event, fetch_chain, fetch_trail
from infra.stores.proofs import load_proof
from tests.console.support import audit_row
from tests.portal.conftest import CLIENT_IP, Portal
from tests.proof.support import folded, forge_audit_row, pay, payment_row, pdf_pages, pdf_text
from tests.support import create_invoice
from tests.support import test_settings as settings_for_tests
from tests.workflow.steps import BROWSER

KEY = settings_for_tests().audit_key()

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DECLINED_ACCOUNT = "000111111113"  # SPEC §9: declined at submission, account_closed


async def _proof(portal: Portal, payment_id: str) -> dict[str, Any]:
    r = await portal.http.get(f"/api/staff/payments/{payment_id}/proof", headers=portal.staff)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def _by_type(trail: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    rows = [row for row in trail if row["event_type"] == event_type]
    assert len(rows) == 1, (event_type, [row["event_type"] for row in trail])
    return rows[0]


async def test_paid_by_sms_proof_holds_what_the_attempt_recorded(portal: Portal) -> None:
    pool = portal.pool
    inv = await create_invoice(pool)
    designated = await portal.http.put(
        f"/api/staff/customers/{inv.customer_id}/portal-payer",
        json={"contact_id": inv.payer_contact_id},
        headers=portal.staff,
    )
    assert designated.status_code == 200, designated.text
    sent = await portal.http.post(
        f"/api/staff/invoices/{inv.invoice_id}/payment-requests", headers=portal.staff
    )
    assert sent.status_code in (200, 201), sent.text
    payment_id = await pay(portal.harness, inv)

    body = await _proof(portal, payment_id)
    payment = await payment_row(pool, payment_id)
    trail = await fetch_trail(pool, inv.invoice_id)
    verified = _by_type(trail, "OTP_VERIFIED")
    code_sent = _by_type(trail, "OTP_SENT")
    designation = [
        r
        for r in await fetch_chain(pool, f"customer:{inv.customer_id}")
        if r["event_type"] == "PORTAL_PAYER_DESIGNATED"
    ][-1]

    assert body["payment_id"] == payment_id and body["invoice_number"] == inv.invoice_id
    assert body["amount_cents"] == 125000 and body["amount"] == "$1,250.00" and body["currency"] == "USD"
    # Accepted by the processor, then followed by the payment's lifecycle (SPEC §9).
    assert body["account_last4"] == "6789" and body["status"] in ("processing", "settled")
    assert body["processor_reference"] == payment["processor_reference"]
    assert body["authorization_text"] == payment["authorization_text"]
    assert "1,250.00 USD" in body["authorization_text"] and inv.invoice_id in body["authorization_text"]
    assert ProofOfAuthorization.model_validate(body).authorized_at == payment["authorized_at"]
    assert body["ip"] == BROWSER.ip == payment["ip"] and body["user_agent"] == BROWSER.user_agent

    payer = body["payer"]
    assert payer["contact_id"] == inv.payer_contact_id and payer["name"] == "Designated Payer"
    assert payer["destinations"] == ["p•••@example.com", "•••-•••-0199"]
    assert payer["designated_by"] == "api" and payer["designation_audit_event_id"] == designation["id"]
    assert payer["designation"].startswith("Marked as Customer Portal Payer by api on ")

    otp = body["otp"]
    assert (
        otp["required"] is True and otp["audit_event_id"] == payment["otp_audit_event_id"] == verified["id"]
    )
    assert otp["channel"] == "sms" and otp["destination"] == "•••-•••-0199" == verified["destination"]
    assert otp["send_seq"] == verified["details"]["send_seq"] == code_sent["details"]["send_seq"]
    assert otp["check_seq"] == verified["details"]["check_seq"]
    assert otp["failed_checks_before"] == 0 and otp["not_required_reason"] is None

    assert [s["status"] for s in body["status_history"]][:3] == ["submitting", "accepted", "processing"]
    assert body["chain_ok"] is True and body["chain_broken_at_event_id"] is None
    assert [r["hash"] for r in body["audit_rows"]] == [r["hash"] for r in trail[: len(body["audit_rows"])]]
    assert [r["id"] for r in body["audit_rows"]] == [
        r["id"] for r in trail if r["event_type"] != "PROOF_EXPORTED"
    ]
    whats = [e["what"] for e in body["timeline"]]
    assert whats[0].startswith("Payment request sent by email to p•••@")
    assert any(w.startswith("Code #1 sent by SMS to •••-•••-0199") for w in whats)
    assert any(w.startswith("Code verified (code #1, entry #1)") for w in whats)
    assert f"Debit authorized from IP {BROWSER.ip} with browser {BROWSER.user_agent}" in whats
    assert whats[-1].startswith("Debit accepted by the processor")
    # Nothing the audit trail masks leaves in the document.
    raw = str(body)
    assert (inv.phone or "-") not in raw and (inv.email or "-") not in raw
    assert "000123456789" not in raw and payment["routing_number"] not in raw

    exported = await audit_row(pool, inv.invoice_id, AuditEventType.PROOF_EXPORTED)
    assert exported is not None and exported["actor"] == "api" and exported["ip"] == CLIENT_IP
    assert exported["details"]["payment_id"] == payment_id and exported["details"]["chain_ok"] is True

    proof = await load_proof(pool, payment_id, exported_by="test", chain_key=KEY)
    assert proof is not None
    data = render_proof_pdf(proof)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "proof-of-authorization-sms.pdf").write_bytes(data)  # for eyes: pdftoppm renders it
    text = pdf_text(data)
    assert 1 <= pdf_pages(data) <= 2
    for needle in (
        "Proof of authorization",
        inv.invoice_id,
        "$1,250.00",
        "Designated Payer",
        "•••-•••-0199",
        when(payment["authorized_at"]),
        BROWSER.ip or "",
        folded(payment["authorization_text"]),
        "Chain verified",
        verified["hash"],
    ):
        assert needle in text, needle


async def test_deposit_proof_says_no_code_was_required_and_why(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, designate_payer=False)
    payment_id = await pay(portal.harness, inv, otp=False)
    body = await _proof(portal, payment_id)
    not_required = _by_type(await fetch_trail(portal.pool, inv.invoice_id), "OTP_NOT_REQUIRED")

    assert body["invoice_kind"] == "deposit" and body["amount"] == format_amount(20000, "USD")
    assert body["otp"]["required"] is False
    assert body["otp"]["not_required_reason"] == not_required["details"]["reason"]
    assert body["otp"]["audit_event_id"] == not_required["id"] and body["otp"]["verified_at"] is None
    assert (await payment_row(portal.pool, payment_id))["otp_audit_event_id"] is None
    assert body["payer"]["name"] == "Primary Person" and body["payer"]["contact_id"] == inv.primary_contact_id
    assert body["payer"]["designation"] == "primary contact, no designation"

    proof = await load_proof(portal.pool, payment_id, exported_by="test", chain_key=KEY)
    assert proof is not None
    text = pdf_text(render_proof_pdf(proof))
    assert f"Not required: {folded(not_required['details']['reason'])}" in text
    assert "primary contact, no designation" in text
    assert inv.invoice_id in text and "$200.00" in text and BROWSER.ip in text  # type: ignore[operator]


async def test_declined_payment_proof_shows_the_decline(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    payment_id = await pay(portal.harness, inv, account=DECLINED_ACCOUNT)
    body = await _proof(portal, payment_id)
    payment = await payment_row(portal.pool, payment_id)

    assert body["status"] == "declined" == payment["status"]
    assert body["decline_reason"] == "account_closed" and body["account_last4"] == "1113"
    history = body["status_history"]
    assert [s["status"] for s in history] == ["submitting", "declined"]
    assert history[-1]["detail"] == "account_closed"
    assert body["otp"]["audit_event_id"] == payment["otp_audit_event_id"]
    proof = await load_proof(portal.pool, payment_id, exported_by="test", chain_key=KEY)
    assert proof is not None
    text = pdf_text(render_proof_pdf(proof))
    assert "Debit declined (account_closed)" in text and "declined (account_closed)" in text


async def test_a_forged_audit_row_makes_the_proof_say_the_chain_is_broken(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    payment_id = await pay(portal.harness, inv)
    assert (await _proof(portal, payment_id))["chain_ok"] is True
    forged_id = await forge_audit_row(portal.pool, inv.invoice_id)

    body = await _proof(portal, payment_id)
    assert body["chain_ok"] is False and body["chain_broken_at_event_id"] == forged_id
    assert body["chain_statement"].startswith(f"Chain broken at audit row #{forged_id}")
    proof = await load_proof(portal.pool, payment_id, exported_by="test", chain_key=KEY)
    assert proof is not None
    text = pdf_text(render_proof_pdf(proof))
    assert f"Chain broken at audit row #{forged_id}" in text and "Chain verified" not in text
    exported = await audit_row(portal.pool, inv.invoice_id, AuditEventType.PROOF_EXPORTED)
    assert exported is not None and exported["details"]["chain_ok"] is False


async def test_the_api_refuses_without_the_staff_token_and_404s_unknown_payments(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    payment_id = await pay(portal.harness, inv)
    url = f"/api/staff/payments/{payment_id}/proof"
    before = len(await fetch_trail(portal.pool, inv.invoice_id))

    assert (await portal.http.get(url)).status_code == 401
    assert (await portal.http.get(url, headers={"Authorization": "Bearer another-token"})).status_code == 401
    assert (await portal.http.get(url, headers=portal.auth(inv.invoice_id))).status_code == 401  # a pay link
    for odd in ("PAY-NOPE", "PAY-' OR '1'='1", "..%2F..%2Fetc", "PAY-%E2%80%A2"):
        r = await portal.http.get(f"/api/staff/payments/{odd}/proof", headers=portal.staff)
        assert r.status_code == 404, (odd, r.text)
    r = await portal.http.get("/api/staff/payments/PAY-%00/proof", headers=portal.staff)
    assert r.status_code in (400, 404, 422), r.text
    assert len(await fetch_trail(portal.pool, inv.invoice_id)) == before  # nothing audited for refusals


async def test_returned_r10_payment_proof_tells_settlement_and_return(portal: Portal) -> None:
    """The lifecycle (SPEC §9) is not in this branch: its audit rows are appended here as its
    workflow writes them (details with `payment_id` and `return_code`), after a real payment."""
    pool = portal.pool
    inv = await create_invoice(pool)
    payment_id = await pay(portal.harness, inv)
    processor = ClientContext(actor="processor")
    settled_at = datetime.now(UTC)
    async with pool.acquire() as conn:
        for event_type, details, at in (
            (AuditEventType.PAYMENT_SETTLED, {"payment_id": payment_id}, settled_at),
            (
                AuditEventType.PAYMENT_RETURNED,
                {"payment_id": payment_id, "return_code": "R10"},
                settled_at + timedelta(seconds=1),
            ),
            (
                AuditEventType.PAYMENT_RETURNED,
                {"payment_id": "PAY-SOMEONE-ELSE", "return_code": "R01"},
                settled_at + timedelta(seconds=2),
            ),
        ):
            await append_event(
                conn,
                key=KEY,
                event=AuditEventInput(
                    event_key=f"lifecycle:{payment_id}:{event_type}:{details['payment_id']}",
                    event_type=event_type,
                    invoice_id=inv.invoice_id,
                    customer_id=inv.customer_id,
                    payer_contact_id=inv.payer_contact_id,
                    client=processor,
                    details=details,
                    occurred_at=at,
                ),
            )

    body = await _proof(portal, payment_id)
    told = [(s["status"], s["return_code"]) for s in body["status_history"]]
    assert told[:3] == [("submitting", None), ("accepted", None), ("processing", None)]
    assert told[-2:] == [("settled", None), ("returned", "R10")]
    assert body["return_code"] == "R10" and body["latest_status"] == "returned" and body["chain_ok"] is True
    assert [e["what"] for e in body["timeline"]][-2:] == ["Debit settled", "Debit returned (R10)"]
    proof = await load_proof(pool, payment_id, exported_by="test", chain_key=KEY)
    assert proof is not None
    text = pdf_text(render_proof_pdf(proof))
    assert (
        "returned, return code R10" in text and "Debit returned (R10)" in text and "R01" in text
    )  # appendix
    assert "Debit returned (R01)" not in text
