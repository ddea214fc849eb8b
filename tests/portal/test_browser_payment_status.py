"""The pay link after PAID in real headless Chromium at 390 px (issue 11): the receipt says the payment
is submitted and when it should settle; the link, opened again, says where the payment is.

The lifecycle stack (tests/lifecycle/stack.py) runs the sandbox processor service delivering signed
webhooks to the portal, so the page changes only when the processor's event has been applied. axe-core
runs on each new view: no serious or critical violation, nothing wider than the phone.
"""

from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from infra.pay_links import signer_from_settings
from tests.conftest import HarnessFactory
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import Stack, lifecycle_stack, settle_now
from tests.portal.test_browser import CHROMIUM, SCREENSHOTS, fill_bank, phone_page, view
from tests.support import create_invoice, latest_code, outbox_messages
from tests.workflow.steps import unique_email

try:
    from axe_playwright_python.async_playwright import Axe
except ImportError:  # pragma: no cover - the dev extra installs it
    Axe = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.skipif(Axe is None, reason="needs axe-playwright-python (dev extra)"),
]


async def check_view(page: "Page", name: str) -> None:
    """Screenshot, axe-core (nothing serious or critical), and no sideways scroll at 390 px."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"pay-link-{name}.png"), full_page=True)
    results = await Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: " + "; ".join(f"{v['id']}: {v['help']}" for v in serious)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px"


async def _status(pool: asyncpg.Pool, invoice_id: str) -> str | None:
    value: str | None = await pool.fetchval(
        "SELECT status FROM payments WHERE invoice_id = $1 ORDER BY submitted_at DESC LIMIT 1", invoice_id
    )
    return value


async def _pay_in_the_browser(s: Stack, page: "Page", url: str, email: str, account: str) -> Any:
    await page.goto(url)
    await view(page, "invoice")
    await page.locator("#start").click()
    verify = await view(page, "verify")
    seen = len(await outbox_messages(s.pool, email))
    await verify.locator("#channel-buttons button").first.click()
    await view(page, "code")
    await wait_for(lambda: outbox_messages(s.pool, email), lambda m: len(m) > seen, what="the code")
    await page.get_by_label("Verification code").fill(await latest_code(s.pool, email))
    await page.get_by_role("button", name="Verify").click()
    await view(page, "bank")
    await fill_bank(page, account=account)
    await page.locator("#pay-button").click()
    return await view(page, "receipt")


async def test_receipt_says_submitted_then_the_link_shows_processing_and_settled(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool, browser: "Browser"
) -> None:
    # Settlement an hour away, so the first reload finds the debit processing however slow the
    # machine; then brought forward in the sandbox's ledger (settle_now).
    async with lifecycle_stack(harness_factory, db_pool, sandbox_settlement_seconds=3600) as s:
        inv = await create_invoice(s.pool, amount_cents=125000, email=unique_email(), phone=None)
        assert inv.email
        url = f"{s.portal_url}/pay/{signer_from_settings(s.harness.settings).issue(inv.invoice_id)}"
        async with phone_page(browser) as page:
            receipt = await _pay_in_the_browser(s, page, url, inv.email, "000123456789")
            await expect(receipt.get_by_role("heading")).to_have_text("Payment submitted")
            await expect(receipt).to_contain_text("was submitted to your bank")
            await expect(receipt.get_by_test_id("receipt-settlement")).to_contain_text(
                "Expected to settle by"
            )
            await expect(receipt.locator('[data-field="receipt-status"]')).to_have_text("Processing")
            await expect(receipt).to_contain_text("••••6789")
            assert "received" not in (await receipt.inner_text()).lower()
            await check_view(page, "receipt")

            await page.goto(url)
            processing = await view(page, "payment-processing")
            await expect(processing).to_contain_text("Payment submitted")
            await expect(processing).to_contain_text("$1,250.00")
            await expect(processing.get_by_test_id("status-settlement")).to_contain_text(
                "Expected to settle by"
            )
            await check_view(page, "processing")

            await settle_now(s.pool, inv.invoice_id)
            await wait_for(
                lambda: _status(s.pool, inv.invoice_id), lambda v: v == "settled", timeout=40, what="settled"
            )
            await page.reload()
            settled = await view(page, "payment-settled")
            await expect(settled.get_by_role("heading")).to_have_text("Paid, thank you")
            await expect(settled).to_contain_text("ending 6789")
            await check_view(page, "settled")


async def test_a_payment_that_did_not_go_through_says_why_and_what_to_do(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool, browser: "Browser"
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        r01 = await create_invoice(s.pool, amount_cents=99900, email=unique_email(), phone=None)
        r10 = await create_invoice(s.pool, amount_cents=48000, email=unique_email(), phone=None)
        signer = signer_from_settings(s.harness.settings)
        async with phone_page(browser) as page:
            # R01: insufficient funds. The invoice is open again and the customer pays again.
            assert r01.email and r10.email
            url = f"{s.portal_url}/pay/{signer.issue(r01.invoice_id)}"
            await _pay_in_the_browser(s, page, url, r01.email, "000444444440")
            await wait_for(lambda: _status(s.pool, r01.invoice_id), lambda v: v == "failed", what="failed")
            await page.goto(url)
            failed = await view(page, "payment-failed")
            await expect(failed.get_by_role("heading")).to_have_text("Your payment did not go through")
            await expect(failed.get_by_test_id("status-reason")).to_have_text(
                "there were not enough funds in the account"
            )
            await expect(failed.get_by_test_id("contact-company")).to_be_hidden()
            again = failed.get_by_role("button", name="Pay $999.00 again")
            await expect(again).to_be_visible()
            await check_view(page, "failed-r01")
            await again.click()
            await view(page, "verify")

            # R10: unauthorized. No pay-again button: the customer is asked to contact the company.
            url = f"{s.portal_url}/pay/{signer.issue(r10.invoice_id)}"
            await _pay_in_the_browser(s, page, url, r10.email, "000555555553")
            await wait_for(
                lambda: _status(s.pool, r10.invoice_id), lambda v: v == "returned", what="returned"
            )
            await page.goto(url)
            returned = await view(page, "payment-failed")
            await expect(returned.get_by_test_id("status-reason")).to_contain_text("not authorized")
            await expect(returned.get_by_test_id("contact-company")).to_be_visible()
            await expect(returned.get_by_role("button", name="Pay $480.00 again")).to_be_hidden()
            await check_view(page, "returned-r10")
