"""`portalpay ops proof` as an operator runs it: against the test servers; the broken-chain
run (exit 3, for a script) as a real subprocess, the others in-process."""

import json
from pathlib import Path

import asyncpg
from temporalio.client import Client

from domain.audit import AuditEventType
from infra.stores.audit_trail import fetch_trail
from tests.conftest import HarnessFactory
from tests.console.support import audit_row
from tests.ops.cli_process import cli_env, run_cli, run_cli_in_process
from tests.portal.conftest import clone_demo_customer
from tests.proof.support import forge_audit_row, pay, payment_row, pdf_text
from tests.support import TestInvoice as InvoiceUnderTest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def test_ops_proof_writes_pdf_and_json_and_is_audited_as_cli(
    harness_factory: HarnessFactory, temporal_client: Client, database_url: str, tmp_path: Path
) -> None:
    async with harness_factory() as h:
        demo = await clone_demo_customer(h.pool, "C-1001")  # the operator's story: INV-1001 paid by SMS
        inv = InvoiceUnderTest(
            demo.invoices["INV-1001"],
            demo.customer_id,
            demo.contacts["CT-1001-CHARLES"],
            demo.contacts["CT-1001-ADA"],
            "charles@example.com",
            "+15555550102",
        )
        payment_id = await pay(h, inv)
        env = cli_env(temporal_client, database_url, tmp_path)
        out = tmp_path / "proofs"

        rc, stdout, stderr = await run_cli_in_process(
            "ops", "proof", payment_id, "--out", str(out), env=env, cwd=tmp_path
        )
        assert rc == 0, stderr
        pdf = out / f"proof-{payment_id}.pdf"
        doc = out / f"proof-{payment_id}.json"
        assert f"wrote {pdf}" in " ".join(stdout.split()) and "chain verified" in stdout
        body = json.loads(doc.read_text(encoding="utf-8"))
        payment = await payment_row(h.pool, payment_id)
        assert (
            body["payment_id"] == payment_id and body["authorization_text"] == payment["authorization_text"]
        )
        assert body["otp"]["audit_event_id"] == payment["otp_audit_event_id"] and body["chain_ok"] is True
        assert body["exported_by"] == "cli"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "proof-of-authorization-INV-1001.pdf").write_bytes(
            pdf.read_bytes()
        )  # docs/ shows page 1
        text = pdf_text(pdf.read_bytes())
        assert inv.invoice_id in text and "Chain verified" in text and "Charles Babbage" in text
        assert "Code #1 sent by SMS to •••-•••-0102" in text and "$1,250.00" in text
        assert body["payer"]["designation"].startswith(
            "Marked as Customer Portal Payer; the marking predates"
        )
        exported = await audit_row(h.pool, inv.invoice_id, AuditEventType.PROOF_EXPORTED)
        assert exported is not None and exported["actor"] == "cli"
        assert exported["details"]["formats"] == ["pdf", "json"]

        # A broken chain: the files say so, and the command exits 3 so a script notices.
        await forge_audit_row(h.pool, inv.invoice_id)
        rc, stdout, stderr = await run_cli(
            "ops", "proof", payment_id, "--out", str(out), env=env, cwd=tmp_path
        )
        assert rc == 3, stdout + stderr
        assert "CHAIN BROKEN" in stderr
        assert json.loads(doc.read_text(encoding="utf-8"))["chain_ok"] is False
        assert "Chain broken" in pdf_text(pdf.read_bytes())


async def test_ops_proof_of_an_unknown_payment_writes_nothing(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    env = cli_env(temporal_client, database_url, tmp_path)
    out = tmp_path / "proofs"
    rc, stdout, stderr = await run_cli_in_process(
        "ops", "proof", "PAY-NOPE", "--out", str(out), env=env, cwd=tmp_path
    )
    assert rc == 1 and "no payment 'PAY-NOPE'" in stderr, stdout + stderr
    assert not out.exists()
    rc, _, stderr = await run_cli_in_process(
        "ops", "proof", "../escape", "--out", str(out), env=env, cwd=tmp_path
    )
    assert rc == 2 and "path separator" in stderr
    assert not (tmp_path / "escape.pdf").exists() and not out.exists()
    assert await fetch_trail(db_pool, "PAY-NOPE") == []
