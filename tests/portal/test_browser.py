"""Pay Your Invoice end to end in real headless Chromium (Debian's `chromium`, driven by playwright).

The portal is the assembled app (`build_portal_app`) served by uvicorn on 127.0.0.1 in this
process, on a worker with a fresh task queue. Each test pays its own copy of a demo customer
(audit rows are forever), reads codes from the dev outbox like a person would, and saves a
screenshot of every page under `test-artifacts/screenshots/`.
"""

import asyncio
import contextlib
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, ViewportSize, expect

from domain.status import PaymentStatus
from infra.pay_links import signer_from_settings
from starters.portal.app import build_portal_app
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.portal.conftest import DemoClone, clone_demo_customer
from tests.support import GOOD_ROUTING, Harness
from workflows.pay_invoice import PayInvoiceWorkflow

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
]  # the session browser's (tests/conftest.py), for the other browser tests
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE: "ViewportSize" = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None,
        reason="no Chromium at /usr/bin/chromium (`make browser` apt-installs it where it can)",
    ),
]


@contextlib.asynccontextmanager
async def serve(harness: Harness) -> AsyncIterator[str]:
    """The portal on 127.0.0.1 at a random free port, in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    settings = harness.settings.model_copy(update={"portal_base_url": base_url})
    app = build_portal_app(
        settings, harness.client, harness.app_pool or harness.pool, task_queue=harness.task_queue
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def phone_page(browser: "Browser") -> AsyncIterator["Page"]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
        assert not [e for e in errors if "status of 4" not in e], errors  # 4xx answers are expected
    finally:
        await context.close()


async def shot(page: "Page", name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def outbox_count(harness: Harness, invoice_id: str) -> int:
    return len(await _attempt_messages(harness, invoice_id))


async def _attempt_messages(harness: Harness, invoice_id: str) -> list[str]:
    # By the attempt's workflow id, not by address: demo copies share the demo's addresses.
    rows = await harness.pool.fetch(
        "SELECT body FROM dev_outbox WHERE idempotency_key LIKE $1 ORDER BY id", f"pay-invoice-{invoice_id}/%"
    )
    return [row["body"] for row in rows]


async def outbox_code(harness: Harness, base_url: str, invoice_id: str, to: str, *, after: int) -> str:
    """The code in this invoice's first message after the `after` already there, as GET /dev/outbox shows it."""
    async with asyncio.timeout(60):
        while len(messages := await _attempt_messages(harness, invoice_id)) <= after:
            await asyncio.sleep(0.1)
    match = re.search(r"\b(\d{6})\b", messages[after])
    assert match, messages[after]
    async with httpx.AsyncClient(base_url=base_url) as http:
        shown = (await http.get("/dev/outbox", params={"to": to})).json()
    assert any(m["to"] == to and match.group(1) in m["body"] for m in shown)
    return match.group(1)


def pay_url(harness: Harness, base_url: str, invoice_id: str) -> str:
    return f"{base_url}/pay/{signer_from_settings(harness.settings).issue(invoice_id)}"


async def view(page: "Page", name: str) -> Any:
    section = page.locator(f"#view-{name}")
    await expect(section).to_be_visible(timeout=15_000)
    return section


async def fill_bank(page: "Page", *, account: str = "000123456789", routing: str = GOOD_ROUTING) -> None:
    await page.get_by_label("Account holder name").fill("Charles Babbage")
    await page.get_by_label("Routing number").fill(routing)
    await page.get_by_label("Account number").fill(account)
    await page.get_by_label("Account type").select_option("checking")
    await page.get_by_label("I agree to this authorization").check()


async def test_pay_inv_1001_with_the_sms_code_from_the_outbox(harness: Harness, browser: "Browser") -> None:
    demo: DemoClone = await clone_demo_customer(harness.pool, "C-1001")
    invoice_id = demo.invoices["INV-1001"]
    async with serve(harness) as base_url, phone_page(browser) as page:
        url = pay_url(harness, base_url, invoice_id)
        await page.goto(url)
        landing = await view(page, "invoice")
        await expect(landing.get_by_role("heading")).to_have_text("Pay Your Invoice")
        await expect(landing.get_by_test_id("invoice-number")).to_have_text(invoice_id)
        await expect(landing.get_by_test_id("invoice-amount")).to_have_text("$1,250.00")
        await shot(page, "inv-1001-1-pay-your-invoice")

        await page.get_by_role("button", name="Pay $1,250.00").click()
        verify = await view(page, "verify")
        await expect(verify.get_by_role("heading")).to_have_text("Verify Identity")
        await expect(verify).to_contain_text("Charles Babbage")
        buttons = verify.locator("#channel-buttons button")
        await expect(buttons).to_have_count(2)
        await expect(buttons.nth(0)).to_have_text("Email a code to c•••@example.com")
        await expect(buttons.nth(1)).to_have_text("Text a code to •••-•••-0102")
        assert (
            await verify.locator("input, textarea, select").count() == 0
        )  # nothing to type a destination into
        await shot(page, "inv-1001-2-verify-identity")

        seen = await outbox_count(harness, invoice_id)
        await buttons.nth(1).click()
        code_view = await view(page, "code")
        await expect(code_view).to_contain_text("•••-•••-0102")
        await expect(page.locator("#attempts-remaining")).to_have_text("5 attempts remaining.")
        await expect(
            code_view.get_by_role("button", name="Email it to c•••@example.com instead")
        ).to_be_enabled()
        await expect(code_view.get_by_role("button", name="Send a new code")).to_be_enabled()
        code = await outbox_code(harness, base_url, invoice_id, "+15555550102", after=seen)
        await page.reload()  # a reload resumes the same attempt at the same step
        code_view = await view(page, "code")
        await expect(code_view).to_contain_text("•••-•••-0102")
        await page.get_by_label("Verification code").fill(code)
        await shot(page, "inv-1001-3-enter-code")
        await page.get_by_role("button", name="Verify").click()

        bank = await view(page, "bank")
        await expect(bank).to_contain_text("You're verified")
        await page.get_by_label("Routing number").fill("011000016")
        await page.get_by_label("Account number").focus()
        await expect(page.locator("#routing_number-error")).to_contain_text("not a valid routing number")
        await fill_bank(page)
        await expect(page.locator("#routing_number-error")).to_be_hidden()
        await expect(page.get_by_test_id("authorization-text")).to_contain_text("1,250.00 USD")
        await expect(page.get_by_test_id("authorization-text")).to_contain_text("account ending in 6789")
        shown_authorization = await page.get_by_test_id("authorization-text").inner_text()
        await shot(page, "inv-1001-4-bank-details")
        await page.get_by_role("button", name="Pay $1,250.00").click()

        receipt = await view(page, "receipt")
        await expect(receipt).to_contain_text("Payment submitted")  # accepted is not settled (SPEC §9)
        await expect(receipt).to_contain_text("$1,250.00")
        await expect(receipt).to_contain_text("••••6789")
        await shot(page, "inv-1001-5-receipt")

        payment = await harness.pool.fetchrow(
            "SELECT ip, user_agent, account_last4, authorization_text FROM payments WHERE invoice_id = $1",
            invoice_id,
        )
        assert payment["ip"] == "127.0.0.1" and "Chrome" in payment["user_agent"]
        assert payment["account_last4"] == "6789"
        # The wording kept as proof of authorization is the wording the customer agreed to on screen.
        assert " ".join(payment["authorization_text"].split()) == " ".join(shown_authorization.split())
        assert "1,250.00 USD" in payment["authorization_text"]
        shown = await page.evaluate("() => document.title")
        assert shown == "Payment submitted"

        # The link now tells the payment's own status: processing, or settled once the processor says so.
        await page.goto(url)
        status = page.locator("#view-payment-processing:visible, #view-payment-settled:visible")
        await expect(status).to_be_visible(timeout=15_000)
        await shot(page, "inv-1001-6-payment-status")


async def test_five_wrong_codes_on_inv_1003_hit_the_lock(harness_factory: Any, browser: "Browser") -> None:
    async with harness_factory(otp_resend_cooldown_seconds=30) as harness:
        demo = await clone_demo_customer(harness.pool, "C-1003")
        invoice_id = demo.invoices["INV-1003"]
        async with serve(harness) as base_url, phone_page(browser) as page:
            url = pay_url(harness, base_url, invoice_id)
            await page.goto(url)
            await view(page, "invoice")
            await page.locator("#start").click()
            verify = await view(page, "verify")
            await expect(verify).to_contain_text("Alan Turing")
            await expect(verify.locator("#channel-buttons button")).to_have_count(1)  # phone only
            seen = await outbox_count(harness, invoice_id)
            await verify.get_by_role("button", name="Text a code to •••-•••-0103").click()

            await view(page, "code")
            await expect(page.locator("#resend")).to_be_disabled()
            await expect(page.locator("#resend-countdown")).to_contain_text("You can ask for a new code in")
            await expect(page.locator("#switch-buttons button")).to_have_count(0)
            code = await outbox_code(harness, base_url, invoice_id, "+15555550103", after=seen)
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            for remaining in (4, 3, 2, 1):
                await page.get_by_label("Verification code").fill(wrong)
                await page.get_by_role("button", name="Verify").click()
                await expect(page.locator("#code-error")).to_contain_text(
                    f"That code isn't right. {remaining} attempt"
                )
                if remaining == 4:
                    await shot(page, "inv-1003-1-wrong-code")
            await page.get_by_label("Verification code").fill(wrong)
            await page.get_by_role("button", name="Verify").click()

            locked = await view(page, "locked")
            await expect(locked).to_contain_text("Too many incorrect codes")
            await expect(locked.locator("#locked-until")).to_contain_text("after")
            await shot(page, "inv-1003-2-locked")

            # A new visit is refused while the lock lasts, and says when to come back.
            await page.goto(url)
            again = await view(page, "locked")
            await expect(again.locator("#locked-until")).to_contain_text("min")
            await shot(page, "inv-1003-3-locked-on-return")
        status = await harness.pool.fetchval(
            "SELECT locked_until > now() FROM invoices WHERE id = $1", invoice_id
        )
        assert status is True


async def test_pay_dep_1001_with_no_otp_step(harness: Harness, browser: "Browser") -> None:
    demo = await clone_demo_customer(harness.pool, "C-1001")
    invoice_id = demo.invoices["DEP-1001"]
    async with serve(harness) as base_url, phone_page(browser) as page:
        await page.goto(pay_url(harness, base_url, invoice_id))
        landing = await view(page, "invoice")
        await expect(landing).to_contain_text("Deposit due")
        await expect(landing.get_by_test_id("invoice-amount")).to_have_text("$200.00")
        await shot(page, "dep-1001-1-pay-your-invoice")
        await page.get_by_role("button", name="Pay $200.00").click()

        bank = await view(page, "bank")  # straight to bank details: no Verify Identity step
        await expect(bank).to_contain_text("Deposits do not need a verification code")
        await fill_bank(page, account="000987654321")
        await page.get_by_role("radio", name="ACH bank debit").check()
        await shot(page, "dep-1001-2-bank-details")
        await page.get_by_role("button", name="Pay $200.00").click()
        receipt = await view(page, "receipt")
        await expect(receipt).to_contain_text("••••4321")
        await shot(page, "dep-1001-3-receipt")
    trail = [
        r["event_type"]
        for r in await harness.pool.fetch(
            "SELECT event_type FROM audit_events WHERE invoice_id = $1 ORDER BY id", invoice_id
        )
    ]
    assert "OTP_NOT_REQUIRED" in trail and "OTP_SENT" not in trail and trail[-1] == "PAYMENT_ACCEPTED"


async def test_no_contact_declined_and_bad_link_pages(harness: Harness, browser: "Browser") -> None:
    kurt = await clone_demo_customer(harness.pool, "C-1004")
    ada = await clone_demo_customer(harness.pool, "C-1001")
    async with serve(harness) as base_url, phone_page(browser) as page:
        await page.goto(pay_url(harness, base_url, kurt.invoices["INV-1004"]))
        await page.locator("#start").click()
        no_contact = await view(page, "no-contact")
        await expect(no_contact).to_contain_text("have your contact details updated in your profile")
        await expect(no_contact).to_contain_text("Kurt Goedel")
        await shot(page, "inv-1004-no-contact-method")

        # Declined: the sandbox closes account 000111111113.
        await page.goto(pay_url(harness, base_url, ada.invoices["INV-1001"]))
        await page.locator("#start").click()
        await view(page, "verify")
        seen = await outbox_count(harness, ada.invoices["INV-1001"])
        await page.get_by_role("button", name="Email a code to c•••@example.com").click()
        await view(page, "code")
        code = await outbox_code(
            harness, base_url, ada.invoices["INV-1001"], "charles@example.com", after=seen
        )
        await page.get_by_label("Verification code").fill(code)
        await page.get_by_role("button", name="Verify").click()
        await view(page, "bank")
        await fill_bank(page, account="000111111113")
        await page.get_by_role("button", name="Pay $1,250.00").click()
        declined = await view(page, "declined")
        await expect(declined).to_contain_text("the account is closed")
        await shot(page, "inv-1001-declined")

        # Bad links: forged and expired.
        await page.goto(f"{base_url}/pay/p1.forged.token.here.AAAA")
        await expect(await view(page, "link-invalid")).to_contain_text("This link is not valid")
        await shot(page, "link-forged")
        expired = signer_from_settings(harness.settings).issue(ada.invoices["INV-1001"], ttl_seconds=-10)
        await page.goto(f"{base_url}/pay/{expired}")
        await expect(await view(page, "link-invalid")).to_contain_text("This link has expired")
        await shot(page, "link-expired")


async def test_an_idle_attempt_expires_and_can_start_again(harness_factory: Any, browser: "Browser") -> None:
    async with harness_factory(attempt_idle_seconds=3) as harness:
        demo = await clone_demo_customer(harness.pool, "C-1002")
        invoice_id = demo.invoices["INV-1002"]
        async with serve(harness) as base_url, phone_page(browser) as page:
            await page.goto(pay_url(harness, base_url, invoice_id))
            await page.locator("#start").click()
            verify = await view(page, "verify")
            await expect(verify.locator("#channel-buttons button")).to_have_count(1)  # Grace: email only
            # The customer comes back after the attempt has ended for idleness (its run has closed).
            run = harness.client.get_workflow_handle_for(PayInvoiceWorkflow.run, f"pay-invoice-{invoice_id}")
            outcome = await asyncio.wait_for(run.result(), timeout=120)
            assert outcome.status is PaymentStatus.EXPIRED
            await verify.get_by_role("button", name="Email a code to g•••@example.com").click()
            expired = await view(page, "expired")
            await expect(expired).to_contain_text("no activity")
            await shot(page, "inv-1002-expired")
            await expired.get_by_role("button", name="Start again").click()
            await view(page, "verify")
