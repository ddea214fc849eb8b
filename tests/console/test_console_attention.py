"""SPEC §10 pages no other test read: the invoice page's `Chain broken`, and `/staff/attention`.

Real components throughout: a worker on the dev server, the session's PostgreSQL, the sandbox
processor service sending signed webhooks (tests/lifecycle/stack.py) for the returned and failed
payments, and a signed-in staff member over HTTP.

- A forged audit row (an insert claiming the chain's last hash; UPDATE and DELETE are refused by
  the table) turns the invoice page's `Chain verified` into `Chain broken`, in red, as an alert.
- `/staff/attention` lists an attempt once its status is older than 15 minutes, not before: the
  page's clock is moved forward (14 then 16 minutes) instead of waiting, the attempt being real.
- A debit returned R10 (which blocks its bank account) and one failed R01 are listed with their
  return codes; the blocked account is listed by its last four digits, never its full number.
"""

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from starters import attempt_reads
from starters.portal.app import build_portal_app
from starters.portal.staff.console import attention
from tests.conftest import HarnessFactory
from tests.console.support import console_client, make_staff, signed_in
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import lifecycle_stack
from tests.lifecycle.test_test_accounts import accept_debit
from tests.portal.conftest import Portal
from tests.proof.support import forge_audit_row, pay
from tests.support import create_invoice
from tests.workflow.steps import unique_email

STAFF_CSS = Path(__file__).resolve().parents[2] / "starters" / "portal" / "static" / "staff.css"


async def test_a_forged_audit_row_shows_chain_broken_in_red_on_the_invoice_page(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    await pay(portal.harness, inv)
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        page = await http.get(f"/staff/invoices/{inv.invoice_id}")
        assert page.status_code == 200
        assert chain_line(page.text) == ("chain-ok", "Chain verified")

        await forge_audit_row(portal.pool, inv.invoice_id)
        page = await http.get(f"/staff/invoices/{inv.invoice_id}")
        assert page.status_code == 200
        assert chain_line(page.text) == ("chain-broken", "Chain broken")
        assert 'class="chain-broken" data-testid="chain" role="alert"' in page.text
        assert "Chain verified" not in page.text
    rule = re.search(r"\.chain-broken\s*\{([^}]*)\}", STAFF_CSS.read_text())
    assert rule and re.search(r"color:\s*#b3261e", rule.group(1)), "Chain broken is shown in red"


def chain_line(html: str) -> tuple[str, str]:
    found: list[tuple[str, str]] = re.findall(
        r'<p class="(chain-[a-z]+)" data-testid="chain"[^>]*>([^<]+)</p>', html
    )
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def page_clock(monkeypatch: pytest.MonkeyPatch) -> list[timedelta]:
    """How far ahead of the wall clock `/staff/attention` asks for stuck attempts."""
    ahead = [timedelta(0)]

    async def find_stuck(client: Any, **kwargs: Any) -> list[attempt_reads.StuckAttempt]:
        return await attempt_reads.find_stuck(client, now=datetime.now(UTC) + ahead[0], **kwargs)

    monkeypatch.setattr(attention, "find_stuck", find_stuck)
    return ahead


async def test_attention_lists_an_attempt_stuck_over_fifteen_minutes(
    portal: Portal, page_clock: list[timedelta]
) -> None:
    inv = await create_invoice(portal.pool)
    await portal.open(inv.invoice_id)  # a real attempt, waiting for the customer to choose a channel
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        row = f'<a href="/staff/invoices/{inv.invoice_id}">{inv.invoice_id}</a>'
        page_clock[0] = timedelta(minutes=14)
        assert row not in (await http.get("/staff/attention")).text, "listed before 15 minutes"
        page_clock[0] = timedelta(minutes=16)
        page = await wait_for(
            lambda: http.get("/staff/attention"),
            lambda r: row in r.text,
            timeout=30,  # visibility is eventually consistent on the dev server
            what="the stuck attempt on /staff/attention",
        )
        assert page.status_code == 200
        listed = page.text[page.text.index(row) :].split("</tr>", 1)[0]
        assert "CHOOSING_CHANNEL" in listed


def status_of(pool: asyncpg.Pool, payment_id: str) -> Callable[[], Awaitable[str | None]]:
    async def probe() -> str | None:
        status: str | None = await pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id)
        return status

    return probe


@pytest.fixture
async def returned_and_failed(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> AsyncIterator[tuple[Any, dict[str, str]]]:
    """A debit returned R10 (its account blocked) and one failed R01, through the sandbox service."""
    async with lifecycle_stack(harness_factory, db_pool) as s:
        paid: dict[str, str] = {}
        for account, wanted in (("000555555553", "returned"), ("000444444440", "failed")):
            inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
            payment_id = await accept_debit(s, inv, account)
            await wait_for(
                status_of(s.pool, payment_id),
                lambda status, wanted=wanted: status == wanted,  # type: ignore[misc]
                timeout=60,
                what=f"{account} {wanted}",
            )
            paid[wanted] = payment_id
        await wait_for(
            lambda: s.pool.fetchval(
                "SELECT count(*) FROM blocked_bank_accounts WHERE payment_id = $1", paid["returned"]
            ),
            lambda n: n == 1,
            timeout=60,
            what="the R10 account blocked",
        )
        yield s, paid


async def test_attention_lists_returned_and_failed_payments_and_blocked_accounts(
    returned_and_failed: tuple[Any, dict[str, str]],
) -> None:
    s, paid = returned_and_failed
    h = s.harness
    app = build_portal_app(h.settings, h.client, h.pool, task_queue=h.task_queue)
    creds = await make_staff(h.pool)
    async with console_client(app) as http:
        await signed_in(http, creds)
        page = await http.get("/staff/attention")
    assert page.status_code == 200
    payments = section(page.text, "payments-heading")
    for status, code in (("returned", "R10"), ("failed", "R01")):
        row = row_of(payments, paid[status])
        assert f"<td>{status}</td>" in row and f"<td>{code}</td>" in row, row
    blocked = section(page.text, "blocked-heading")
    assert "5553" in blocked and "000555555553" not in blocked, "the blocked account, by its last four"
    assert "R10" in blocked
    assert "000555555553" not in page.text and "000444444440" not in page.text


def section(html: str, heading_id: str) -> str:
    start = html.index(f'aria-labelledby="{heading_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def row_of(html: str, payment_id: str) -> str:
    at = html.index(f"<code>{payment_id}</code>")
    return html[html.rfind("<tr>", 0, at) : html.index("</tr>", at)]
