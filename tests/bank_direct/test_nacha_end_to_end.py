"""Bank-direct ACH end to end on loopback (SPEC §13): a portal payment, its prenote file, the debit
file once the prenote wait has passed (dates moved in the database, never slept), a return dropped
in the returns folder, a notice of change refusing the account's next debit, an upload failing at
cut-off and sent on the next run exactly once; every file written passes achkit's validator and no
table holds a full account number once the file is uploaded."""

from datetime import timedelta
from typing import Any

import achkit
import asyncpg

from domain.ach_files import OriginationReport
from infra.nacha.sealing import Sealer
from tests.bank_direct.bank_files import Answered, notice_file, return_file
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer
from tests.bank_direct.stack import STAFF_EMAIL, NachaStack, nacha_stack
from tests.conftest import HarnessFactory
from tests.console.support import console_client, make_staff, signed_in
from tests.lifecycle.services import wait_for
from tests.lifecycle.test_portal_payments import customer, pay, verified_session
from tests.support import GOOD_ROUTING, create_invoice, outbox_messages
from tests.support import TestInvoice as Invoice
from tests.workflow.steps import unique_email
from workers.schedules import send_nacha_file_now


def _account(seed: int) -> str:
    return f"7{seed:011d}"[-12:]


async def _send(s: NachaStack) -> OriginationReport:
    return await send_nacha_file_now(s.client, s.harness.task_queue)


def _traces(text: str) -> set[str]:
    """The trace numbers of a file's entries (a batch header's last 15 digits can look like one)."""
    return {line[79:94] for line in text.splitlines() if line.startswith("6")}


def _valid(path_text: str) -> None:
    verdict = achkit.validate(path_text)
    assert verdict["ok"] is True and verdict["errors"] == [], verdict


async def _entries(pool: asyncpg.Pool, payment_id: str) -> list[dict[str, Any]]:
    debit = await pool.fetchrow(
        "SELECT * FROM ach_entries WHERE payment_id = $1 AND kind = 'debit'", payment_id
    )
    prenote = await pool.fetchrow(
        "SELECT e.* FROM ach_entries e JOIN ach_prenotes p ON p.entry_id = e.id WHERE p.bank_fingerprint = $1",
        debit["bank_fingerprint"],
    )
    return [dict(prenote), dict(debit)]


async def _paid(s: NachaStack, account: str, inv: Invoice | None = None) -> tuple[str, str]:
    inv = inv or await create_invoice(s.pool, amount_cents=48000, email=unique_email())
    async with customer(s, inv) as http:  # type: ignore[arg-type]
        session = await verified_session(s, http, inv)  # type: ignore[arg-type]
        answer = await pay(http, session, account)
        assert answer.status_code == 200 and answer.json()["status"] == "PAID", answer.text
        payment_id = answer.json()["payment"]["payment_id"]
    return inv.invoice_id, payment_id


async def _pass_prenote_wait(pool: asyncpg.Pool, prenote_id: str) -> None:
    await pool.execute(
        "UPDATE ach_entries SET effective_date = effective_date - 14 WHERE id = $1", prenote_id
    )


async def _no_full_number_anywhere(pool: asyncpg.Pool, account: str) -> list[str]:
    columns = await pool.fetch(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        " AND data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')"
    )
    found = []
    for col in columns:
        hit = await pool.fetchval(
            f'SELECT count(*) FROM "{col["table_name"]}" WHERE "{col["column_name"]}"::text LIKE $1',
            f"%{account}%",
        )
        if hit:
            found.append(f"{col['table_name']}.{col['column_name']}")
    return found


async def test_prenote_then_debit_then_r01_return_fails_the_payment_and_reopens_the_invoice(
    harness_factory: HarnessFactory, sshd: SshServer
) -> None:
    account = _account(41)
    async with nacha_stack(harness_factory, sshd) as s:
        invoice_id, payment_id = await _paid(s, account)
        assert await s.pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id) == "processing"
        prenote, debit = await _entries(s.pool, payment_id)
        assert prenote["transaction_code"] == "28" and prenote["amount_cents"] == 0
        assert debit["transaction_code"] == "27" and debit["status"] == "waiting"

        first = await _send(s)
        assert first.uploaded and first.prenotes >= 1, first
        body = (sshd.outbound / str(first.file_name)).read_text()
        _valid(body)
        assert prenote["trace_number"] in _traces(body) and debit["trace_number"] not in _traces(body)
        assert (await _send(s)).nothing_due  # the debit waits for the prenote's quiet days

        await _pass_prenote_wait(s.pool, prenote["id"])
        second = await _send(s)
        assert second.uploaded and second.file_name != first.file_name, second
        body = (sshd.outbound / str(second.file_name)).read_text()
        _valid(body)
        assert debit["trace_number"] in _traces(body) and f"{48000:010d}" in body
        sent = await s.pool.fetchrow("SELECT * FROM ach_entries WHERE id = $1", debit["id"])
        assert sent["status"] == "sent" and sent["account_number_sealed"] is None
        assert await _no_full_number_anywhere(s.pool, account) == []
        # The stored file too, opened with the key: kept as `nacha show` prints it once sent.
        sealer = Sealer(bank_settings()["nacha_account_key"])
        stored_file = await s.pool.fetchrow(
            "SELECT id, body_sealed FROM ach_files WHERE name = $1", second.file_name
        )
        kept = sealer.open(stored_file["body_sealed"], bound_to=stored_file["id"]).decode()
        assert account not in kept and debit["trace_number"] in _traces(kept)
        kinds = {
            r["event_type"]
            for r in await s.pool.fetch(
                "SELECT event_type FROM audit_events WHERE invoice_id = $1", invoice_id
            )
        }
        assert {"PRENOTE_SENT", "NACHA_FILE_SENT"} <= kinds

        answered = Answered(debit["trace_number"], GOOD_ROUTING, account, 48000)
        (sshd.returns / "return-r01.ach").write_text(return_file([(answered, "R01")]))
        report = await s.inbound_now()
        assert [f.returns for f in report.files] == [1], report
        await wait_for(
            lambda: s.pool.fetchrow("SELECT status, return_code FROM payments WHERE id = $1", payment_id),
            lambda row: row["status"] == "failed",
            timeout=60,
            what="the payment failed by the return",
        )
        row = await s.pool.fetchrow("SELECT status, return_code FROM payments WHERE id = $1", payment_id)
        assert row["return_code"] == "R01"
        invoice = await s.pool.fetchrow(
            "SELECT status, balance_cents FROM invoices WHERE id = $1", invoice_id
        )
        assert (invoice["status"], invoice["balance_cents"]) == ("open", 48000)
        stored = await s.pool.fetchrow(
            "SELECT processor, payment_id FROM processor_events WHERE debit_id = $1", debit["id"]
        )
        assert (stored["processor"], stored["payment_id"]) == ("nacha", payment_id)
        # The same file again (another name, same bytes) is ingested once.
        (sshd.returns / "return-r01-copy.ach").write_text(return_file([(answered, "R01")]))
        assert (await s.inbound_now()).files == []


async def test_a_c01_notice_refuses_the_next_debit_from_that_account(
    harness_factory: HarnessFactory, sshd: SshServer
) -> None:
    account = _account(42)
    async with nacha_stack(harness_factory, sshd) as s:
        inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
        invoice_id, payment_id = await _paid(s, account, inv)
        prenote, _ = await _entries(s.pool, payment_id)
        assert (await _send(s)).uploaded
        answered = Answered(prenote["trace_number"], GOOD_ROUTING, account, 0)
        (sshd.returns / "notice-c01.ach").write_text(notice_file(answered, "C01", "99912345678"))
        report = await s.inbound_now()
        assert [f.notices for f in report.files] == [1], report
        notice = await s.pool.fetchrow(
            "SELECT * FROM ach_notices WHERE trace_number = $1", prenote["trace_number"]
        )
        assert notice["change_code"] == "C01" and "99912345678" not in notice["corrected_data_masked"]
        assert notice["corrected_data_masked"].endswith("5678")
        assert await s.pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE event_type = 'NOTICE_OF_CHANGE' AND invoice_id = $1",
            invoice_id,
        )
        assert await s.pool.fetchval(
            "SELECT count(*) FROM events WHERE type = 'ach.notice_of_change' AND data->'object'->>'trace_number' = $1",
            prenote["trace_number"],
        )
        # The debit waiting for that prenote is withdrawn before sending: the invoice is open again.
        await wait_for(
            lambda: s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id),
            lambda status: status == "open",
            timeout=60,
            what="the invoice open again",
        )
        async with customer(s, inv) as http:  # type: ignore[arg-type]
            session = await verified_session(s, http, inv)  # type: ignore[arg-type]
            refused = await pay(http, session, account)
            assert refused.status_code == 422, refused.text
            assert "again" in refused.text and "changed" in refused.text
            state = await http.get(f"/api/portal/sessions/{session}")
            assert state.json()["status"] == "AWAITING_PAYMENT"
        # Staff see it on /staff/attention, the corrected number masked.
        creds = await make_staff(s.pool)
        async with console_client(s.app) as console:
            await signed_in(console, creds)
            page = await console.get("/staff/attention")
            assert page.status_code == 200
            section = page.text[page.text.index("Accounts needing new details") :]
            assert prenote["trace_number"] in section and "C01" in section and "5678" in section
            assert "99912345678" not in page.text and account not in page.text


async def test_an_upload_failing_at_cutoff_stays_unsent_tells_staff_and_is_sent_once(
    harness_factory: HarnessFactory, sshd: SshServer
) -> None:
    account = _account(43)
    async with nacha_stack(harness_factory, sshd) as s:
        _, payment_id = await _paid(s, account)
        prenote, _ = await _entries(s.pool, payment_id)
        sshd.stop()
        down = await _send(s)
        assert not down.uploaded and down.error and down.file_name, down
        assert (
            await s.pool.fetchval("SELECT status FROM ach_entries WHERE id = $1", prenote["id"]) == "waiting"
        )
        assert await s.pool.fetchval(
            "SELECT account_number_sealed IS NOT NULL FROM ach_entries WHERE id = $1", prenote["id"]
        )
        assert not down.staff_told
        await s.pool.execute(
            "UPDATE ach_files SET created_at = created_at - $2::interval WHERE name = $1",
            down.file_name,
            timedelta(minutes=31),
        )
        still = await _send(s)
        assert still.staff_told and still.file_name == down.file_name, still
        mails = await outbox_messages(s.harness.app_pool or s.pool, STAFF_EMAIL)
        assert any(str(down.file_name) in m["subject"] for m in mails)

        # Meanwhile another customer pays: that entry is not in the waiting file; it goes in the
        # same run, in a file of its own, once the waiting file is up.
        _, later_payment = await _paid(s, _account(47))
        later_prenote, _ = await _entries(s.pool, later_payment)
        sshd.start()
        sent = await _send(s)
        assert sent.uploaded and sent.reused_unsent_file and sent.file_name == down.file_name, sent
        assert len(sent.more_files) == 1 and sent.error is None, sent
        assert (await _send(s)).nothing_due
        holding = [p for p in s.outbound_files() if prenote["trace_number"] in _traces(p.read_text())]
        assert [p.name for p in holding] == [down.file_name]
        _valid(holding[0].read_text())
        later = [p for p in s.outbound_files() if later_prenote["trace_number"] in _traces(p.read_text())]
        assert [p.name for p in later] == sent.more_files
        _valid(later[0].read_text())
        assert await s.pool.fetchval("SELECT status FROM ach_entries WHERE id = $1", prenote["id"]) == "sent"


async def test_a_server_showing_another_host_key_is_refused(
    harness_factory: HarnessFactory, sshd: SshServer
) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    async with nacha_stack(harness_factory, sshd, nacha_sftp_host_key=other) as s:
        await _paid(s, _account(44))
        report = await _send(s)
        assert not report.uploaded and "host key" in str(report.error), report
        assert s.outbound_files() == []
        # Leave no unsent file behind for the next test sharing this database.
        await s.pool.execute(
            "UPDATE ach_entries SET status = 'canceled', account_number_sealed = NULL, file_id = NULL"
            " WHERE file_id = (SELECT id FROM ach_files WHERE name = $1)",
            report.file_name,
        )
        await s.pool.execute("DELETE FROM ach_files WHERE name = $1", report.file_name)


async def test_a_sent_debit_settles_after_its_quiet_banking_days_and_a_late_r10_returns_it(
    harness_factory: HarnessFactory, sshd: SshServer
) -> None:
    account = _account(45)
    async with nacha_stack(harness_factory, sshd) as s:
        invoice_id, payment_id = await _paid(s, account)
        prenote, debit = await _entries(s.pool, payment_id)
        assert (await _send(s)).uploaded
        await _pass_prenote_wait(s.pool, prenote["id"])
        assert (await _send(s)).uploaded
        assert (await s.inbound_now()).settled == 0  # the effective date is still ahead
        assert await s.pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id) == "processing"
        # The quiet days pass (moved in the database, never slept).
        await s.pool.execute(
            "UPDATE ach_entries SET effective_date = effective_date - 10 WHERE id = $1", debit["id"]
        )
        assert (await s.inbound_now()).settled >= 1
        await wait_for(
            lambda: s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id),
            lambda status: status == "paid",
            timeout=60,
            what="the invoice paid on settlement",
        )
        assert await s.pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id) == "settled"
        debit_id = await s.pool.fetchval("SELECT processor_reference FROM payments WHERE id = $1", payment_id)
        assert debit_id == debit["id"]

        answered = Answered(debit["trace_number"], GOOD_ROUTING, account, 48000)
        (sshd.returns / "late-r10.ach").write_text(return_file([(answered, "R10")]))
        assert [f.returns for f in (await s.inbound_now()).files] == [1]
        await wait_for(
            lambda: s.pool.fetchrow("SELECT status, return_code FROM payments WHERE id = $1", payment_id),
            lambda row: (row["status"], row["return_code"]) == ("returned", "R10"),
            timeout=60,
            what="the payment returned R10",
        )
        assert await s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id) == "open"


async def test_a_returned_prenote_fails_the_payment_before_any_money_moves(
    harness_factory: HarnessFactory, sshd: SshServer
) -> None:
    account = _account(46)
    async with nacha_stack(harness_factory, sshd) as s:
        invoice_id, payment_id = await _paid(s, account)
        prenote, debit = await _entries(s.pool, payment_id)
        assert (await _send(s)).uploaded
        answered = Answered(prenote["trace_number"], GOOD_ROUTING, account, 0, transaction_code="28")
        unknown = Answered("011000019999999", GOOD_ROUTING, "123456789", 100)
        (sshd.returns / "prenote-r03.ach").write_text(return_file([(answered, "R03"), (unknown, "R01")]))
        report = await s.inbound_now()
        assert [(f.returns, f.unknown_traces) for f in report.files] == [(1, ["011000019999999"])]
        await wait_for(
            lambda: s.pool.fetchrow("SELECT status, return_code FROM payments WHERE id = $1", payment_id),
            lambda row: (row["status"], row["return_code"]) == ("failed", "R03"),
            timeout=60,
            what="the payment failed R03",
        )
        left = await s.pool.fetchrow(
            "SELECT status, file_id, account_number_sealed FROM ach_entries WHERE id = $1", debit["id"]
        )
        assert (left["status"], left["file_id"], left["account_number_sealed"]) == ("failed", None, None)
        await _pass_prenote_wait(s.pool, prenote["id"])
        second = await _send(s)
        assert all(debit["trace_number"] not in _traces(p.read_text()) for p in s.outbound_files()), second
        assert await s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id) == "open"
        assert await s.pool.fetchval(
            "SELECT count(*) FROM ach_unknown_traces WHERE trace_number = '011000019999999'"
        )
