"""SPEC §12 CSV import: `portalpay import` (a dry run in a subprocess, as a person runs it; the
rest in-process) and the shared import service on the real harness. The rows go through the API's
own upsert rules."""

import json
import uuid
from pathlib import Path

import asyncpg
from temporalio.client import Client

from domain.attempt import ClientContext
from starters.record_import import ImportKind, run_import
from tests.api_v1.conftest import Api
from tests.ops.cli_process import cli_env, run_cli, run_cli_in_process

STAFF = ClientContext(actor="staff@example.com")


def write(tmp_path: Path, name: str, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


async def test_ten_thousand_customers_with_three_bad_rows_twice(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    t = uuid.uuid4().hex[:8]
    lines = ["external_id,name"]
    bad = {1500: "", 4000: "x" * 200, 9000: "bad id"}  # row numbers (1-based) that must fail
    for n in range(1, 10_001):
        if n == 9000:
            lines.append(f"IMP {t} {n},Customer {n}")
        elif n in bad:
            lines.append(f"IMP-{t}-{n},{bad[n]}")
        elif n == 7:
            lines.append(f'IMP-{t}-{n},"=HYPERLINK(""http://evil"")"')
        else:
            lines.append(f"IMP-{t}-{n},Customer {n}")
    path = write(tmp_path, "customers.csv", "\r\n".join(lines) + "\r\n", bom=True)
    env = cli_env(temporal_client, database_url, tmp_path)

    rc, out, err = await run_cli_in_process(
        "import", "customers", str(path), "--commit", "--json", env=env, cwd=tmp_path, timeout=900
    )
    assert rc == 1, err
    first = json.loads(out)
    assert (first["created"], first["updated"], first["unchanged"], first["failed"]) == (9997, 0, 0, 3)
    assert [(e["line"], e["column"]) for e in first["errors"]] == [
        (1501, "name"),
        (4001, "name"),
        (9001, "external_id"),
    ]
    stored = await db_pool.fetchval("SELECT count(*) FROM customers WHERE external_id LIKE $1", f"IMP-{t}-%")
    assert stored == 9997
    formula = await db_pool.fetchval("SELECT name FROM customers WHERE external_id = $1", f"IMP-{t}-7")
    assert formula == '=HYPERLINK("http://evil")'  # stored as text, as given
    print(f"\n10,000-row customer import (commit) took {first['seconds']} s")

    rc, out, err = await run_cli_in_process(
        "import", "customers", str(path), "--commit", "--json", env=env, cwd=tmp_path, timeout=900
    )
    assert rc == 1, err
    second = json.loads(out)
    assert (second["created"], second["updated"], second["unchanged"], second["failed"]) == (0, 0, 9997, 3)
    assert (
        await db_pool.fetchval("SELECT count(*) FROM customers WHERE external_id LIKE $1", f"IMP-{t}-%")
        == 9997
    )
    print(f"the same import again took {second['seconds']} s")
    audits = await db_pool.fetch(
        "SELECT details FROM audit_events WHERE event_type = 'IMPORT_COMMITTED' AND actor = 'cli'"
        " AND (details->>'created')::int = 9997"
    )
    assert len(audits) >= 1


async def test_dry_run_writes_nothing_and_errors_name_line_and_column(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    t = uuid.uuid4().hex[:8]
    env = cli_env(temporal_client, database_url, tmp_path)
    customers = write(tmp_path, "c.csv", f"name,external_id\nAcme,C-{t}\n")  # columns in any order
    rc, out, err = await run_cli("import", "customers", str(customers), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "1 would be created" in out and "dry run" in out
    assert await db_pool.fetchval("SELECT count(*) FROM customers WHERE external_id = $1", f"C-{t}") == 0
    rc, out, err = await run_cli_in_process(
        "import", "customers", str(customers), "--commit", env=env, cwd=tmp_path
    )
    assert rc == 0 and "1 created" in out, err

    invoices = write(
        tmp_path,
        "i.csv",
        "external_id,customer_external_id,number,kind,amount,currency,due_date\n"
        f"I-{t}-1,C-{t},N-{t}-1,invoice,1250.00,USD,2026-12-31\n"
        f"I-{t}-2,C-{t},N-{t}-2,invoice,12.5,USD,\n"
        f"I-{t}-3,NOPE-{t},N-{t}-3,deposit,10.00,USD,\n"
        f"I-{t}-4,C-{t},N-{t}-4,refund,10.00,USD,\n"
        f"I-{t}-5,C-{t},N-{t}-5,invoice,10.00,USD,31/12/2026\n"
        f"I-{t}-1,C-{t},N-{t}-1,invoice,1250.00,USD,2026-12-31\n",
    )
    rc, out, err = await run_cli_in_process(
        "import", "invoices", str(invoices), "--json", env=env, cwd=tmp_path
    )
    assert rc == 1, err
    report = json.loads(out)
    assert report["committed"] is False and (report["created"], report["failed"]) == (1, 5)
    assert [(e["line"], e["column"]) for e in report["errors"]] == [
        (3, "amount"),
        (4, "customer_external_id"),
        (5, "kind"),
        (6, "due_date"),
        (7, "external_id"),
    ]
    assert await db_pool.fetchval("SELECT count(*) FROM invoices WHERE external_id LIKE $1", f"I-{t}-%") == 0
    rc, out, err = await run_cli_in_process(
        "import", "invoices", str(invoices), "--commit", env=env, cwd=tmp_path
    )
    assert rc == 1
    row = await db_pool.fetchrow(
        "SELECT amount_cents, due_date FROM invoices WHERE external_id = $1", f"I-{t}-1"
    )
    assert row is not None and row["amount_cents"] == 125000 and str(row["due_date"]) == "2026-12-31"

    wrong = write(tmp_path, "w.csv", "id,name\nx,y\n")
    rc, out, err = await run_cli_in_process("import", "customers", str(wrong), env=env, cwd=tmp_path)
    assert rc == 1 and "header must be external_id,name" in err
    latin1 = tmp_path / "l.csv"
    latin1.write_bytes(b"external_id,name\nx,Caf\xe9\n")
    rc, out, err = await run_cli_in_process("import", "customers", str(latin1), env=env, cwd=tmp_path)
    assert rc == 1 and "not UTF-8" in err


async def test_a_second_payer_for_one_customer_in_a_file_fails_that_row(api: Api) -> None:
    t = uuid.uuid4().hex[:8]
    services = api.portal.app.state.staff_services
    customers = f"external_id,name\nC-{t}-A,Acme\nC-{t}-B,Bolt\n".encode()
    assert (await run_import(services, ImportKind.CUSTOMERS, customers, commit=True, client=STAFF)).ok
    contacts = (
        "external_id,customer_external_id,name,email,phone,primary,portal_payer\n"
        f"P1,C-{t}-A,Pat One,p1-{t}@example.com,,true,true\n"
        f"P2,C-{t}-A,Pat Two,p2-{t}@example.com,,false,yes\n"
        f"P3,C-{t}-B,Pat Three,p3-{t}@example.com,+15555550123,,true\n"
        f"P4,C-{t}-B,Pat Four,not-an-email,,,\n"
    ).encode()
    dry = await run_import(services, ImportKind.CONTACTS, contacts, commit=False, client=STAFF)
    assert (dry.created, dry.failed) == (2, 2)
    assert [(e.line, e.column) for e in dry.errors] == [(3, "portal_payer"), (5, "email")]
    assert "first is on line 2" in dry.errors[0].reason
    report = await run_import(services, ImportKind.CONTACTS, contacts, commit=True, client=STAFF)
    assert (report.created, report.failed) == (2, 2)
    payers = await api.portal.pool.fetch(
        "SELECT c.external_id FROM contacts c JOIN customers u ON u.id = c.customer_id"
        " WHERE u.external_id = ANY($1::text[]) AND c.portal_payer ORDER BY 1",
        [f"C-{t}-A", f"C-{t}-B"],
    )
    assert [p["external_id"] for p in payers] == ["P1", "P3"]
    again = await run_import(services, ImportKind.CONTACTS, contacts, commit=True, client=STAFF)
    assert (again.created, again.updated, again.unchanged, again.failed) == (0, 0, 2, 2)
    events = await api.portal.pool.fetchval(
        "SELECT count(*) FROM events WHERE type = 'payer.designated' AND data->'object'->'customer'->>'external_id' = ANY($1::text[])",
        [f"C-{t}-A", f"C-{t}-B"],
    )
    assert events == 2


async def test_an_imported_amount_change_cancels_the_running_attempt_after_its_batch_commits(
    api: Api,
) -> None:
    from tests.console.support import audit_row, eventually

    t = uuid.uuid4().hex[:8]
    services = api.portal.app.state.staff_services
    head = "external_id,customer_external_id,number,kind,amount,currency,due_date\n"
    assert (
        await run_import(
            services,
            ImportKind.CUSTOMERS,
            f"external_id,name\nC-{t},Acme\n".encode(),
            commit=True,
            client=STAFF,
        )
    ).ok
    contacts = f"external_id,customer_external_id,name,email,phone,primary,portal_payer\nP-{t},C-{t},Pat,p-{t}@example.com,,true,true\n"
    assert (await run_import(services, ImportKind.CONTACTS, contacts.encode(), commit=True, client=STAFF)).ok
    first = f"{head}I-{t},C-{t},N-{t},invoice,100.00,USD,\nI-{t}-2,C-{t},N-{t}-2,invoice,5.00,USD,\n"
    assert (await run_import(services, ImportKind.INVOICES, first.encode(), commit=True, client=STAFF)).ok
    invoice_id = await api.portal.pool.fetchval("SELECT id FROM invoices WHERE external_id = $1", f"I-{t}")
    opened = await api.portal.open(invoice_id)
    assert opened["invoice"]["amount_cents"] == 10000

    changed = f"{head}I-{t},C-{t},N-{t},invoice,120.00,USD,\nI-{t}-2,C-{t},N-{t}-2,invoice,5.00,USD,\n"
    report = await run_import(services, ImportKind.INVOICES, changed.encode(), commit=True, client=STAFF)
    assert (report.updated, report.unchanged, report.failed, report.problems) == (1, 1, 0, [])
    row = await eventually(
        lambda: audit_row(api.portal.pool, invoice_id, "ATTEMPT_CANCELLED"), "the cancellation"
    )
    assert row["actor"] == STAFF.actor
    assert (
        await api.portal.pool.fetchval("SELECT amount_cents FROM invoices WHERE id = $1", invoice_id) == 12000
    )
