"""The staff console in real headless Chromium, at 390 px and 1280 px: the seeds' staff steps.

"Open the customer's contact record. Click the Edit (pencil) icon. Select Mark as Customer Portal
Payer. Save the changes." Each test works on its own copy of a demo customer, saves a screenshot of
every page under `test-artifacts/screenshots/`, and runs axe-core on every page (staff pages and
the customer's /pay page): no serious or critical violation.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.attempt import ClientContext
from tests.console.support import StaffCreds, audit_row, eventually, make_staff
from tests.portal.conftest import clone_demo_customer
from tests.portal.test_browser import CHROMIUM, SCREENSHOTS, pay_url, serve
from tests.support import Harness, outbox_messages

try:
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs both
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.skipif(
        async_playwright is None, reason="needs playwright and axe-playwright-python (dev extra)"
    ),
]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


@contextlib.asynccontextmanager
async def staff_page(browser: "Browser", viewport: str) -> AsyncIterator["Page"]:
    size = VIEWPORTS[viewport]
    context = await browser.new_context(
        viewport=ViewportSize(width=size["width"], height=size["height"]),
        is_mobile=viewport == "phone",
        has_touch=viewport == "phone",
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    try:
        yield page
        assert not [p for p in problems if "status of 4" not in p], problems
    finally:
        await context.close()


async def check_page(page: "Page", name: str, viewport: str) -> None:
    """Screenshot, then axe-core: nothing serious or critical, and nothing wider than the viewport."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"console-{name}-{viewport}.png"), full_page=True)
    results = await Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name} at {viewport}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in serious
    )
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} at {viewport} scrolls sideways by {overflow}px"


async def sign_in(page: "Page", base_url: str, creds: StaffCreds, viewport: str) -> None:
    await page.goto(f"{base_url}/staff")
    await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    await check_page(page, "sign-in", viewport)
    await page.get_by_label("Email").fill(creds.email)
    await page.get_by_label("Password").fill(creds.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()


def contact(page: "Page", contact_id: str) -> Any:
    return page.locator(f'li.contact[data-contact-id="{contact_id}"]')


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_mark_ada_as_customer_portal_payer(harness: Harness, browser: "Browser", viewport: str) -> None:
    demo = await clone_demo_customer(harness.pool, "C-1001")
    invoice_id = demo.invoices["INV-1001"]
    ada, charles = demo.contacts["CT-1001-ADA"], demo.contacts["CT-1001-CHARLES"]
    running = await harness.gateway.open(invoice_id, ClientContext(actor="customer"))
    creds = await make_staff(harness.pool, "Maria Staff")
    async with serve(harness) as base_url, staff_page(browser, viewport) as page:
        await sign_in(page, base_url, creds, viewport)
        await page.get_by_label("Search by name or invoice number").fill("Ada Lovelace")
        await page.get_by_role("button", name="Search").click()
        result = page.locator(f'li[data-customer-id="{demo.customer_id}"]')
        await expect(result.get_by_role("link", name=invoice_id)).to_be_visible()
        await check_page(page, "customers", viewport)
        await result.get_by_role("link", name="Ada Lovelace").click()

        await expect(page.get_by_role("heading", name="Ada Lovelace", exact=True)).to_be_visible()
        await expect(contact(page, charles).locator(".tag", has_text="Customer Portal Payer")).to_be_visible()
        await expect(contact(page, ada).get_by_text("Customer Portal Payer")).to_have_count(0)
        await check_page(page, "customer", viewport)

        await page.get_by_role("button", name="Edit Ada Lovelace").click()
        await expect(page.get_by_label("Email")).to_have_value("ada@example.com")
        await expect(page.get_by_label("Phone")).to_have_value("+15555550101")
        await page.get_by_label("Mark as Customer Portal Payer").check()
        await check_page(page, "customer-edit", viewport)
        await page.get_by_role("button", name="Save").click()

        await expect(page.get_by_test_id("flash")).to_contain_text("Saved Ada Lovelace.")
        await expect(page.get_by_test_id("flash")).to_contain_text("1 running payment attempt cancelled")
        await expect(contact(page, ada).locator(".tag", has_text="Customer Portal Payer")).to_be_visible()
        await expect(contact(page, charles).get_by_text("Customer Portal Payer")).to_have_count(0)
        designated = page.locator('li[data-event-type="PORTAL_PAYER_DESIGNATED"]')
        await expect(designated).to_contain_text(creds.email)
        await check_page(page, "customer-saved", viewport)

        cancelled = await eventually(
            lambda: audit_row(harness.pool, invoice_id, "ATTEMPT_CANCELLED"), "cancel"
        )
        assert cancelled["run_id"] == running.run_id and cancelled["actor"] == creds.email
        await page.get_by_role("link", name=invoice_id).click()
        await expect(page.get_by_role("heading", name=f"Invoice {invoice_id}")).to_be_visible()
        attempt = page.locator(f'li[data-run-id="{running.run_id}"]')
        await expect(attempt).to_contain_text("CANCELLED")
        await expect(page.locator('li[data-event-type="ATTEMPT_CANCELLED"]')).to_contain_text(creds.email)
        await expect(page.get_by_test_id("chain")).to_have_text("Chain verified")
        await check_page(page, "invoice", viewport)

        await page.get_by_role("link", name="Needs attention").click()
        await expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
        await check_page(page, "attention", viewport)
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
        await page.goto(f"{base_url}/staff/customers/{demo.customer_id}")
        await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_change_alan_turings_phone_revokes_old_links(
    harness: Harness, browser: "Browser", viewport: str
) -> None:
    demo = await clone_demo_customer(harness.pool, "C-1003")
    invoice_id = demo.invoices["INV-1003"]
    alan = demo.contacts["CT-1003-ALAN"]
    creds = await make_staff(harness.pool)
    async with serve(harness) as base_url, staff_page(browser, viewport) as page:
        old_link = pay_url(harness, base_url, invoice_id)
        await sign_in(page, base_url, creds, viewport)
        await page.goto(f"{base_url}/staff/customers/{demo.customer_id}")
        await page.get_by_role("button", name="Edit Alan Turing").click()
        await page.get_by_label("Phone").fill("555 0103")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#phone-error-1")).to_contain_text("international format")
        await expect(page.get_by_label("Phone")).to_have_attribute("aria-invalid", "true")
        await check_page(page, "customer-edit-error", viewport)
        await page.get_by_label("Phone").fill("+15555550177")
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_test_id("flash")).to_contain_text("Pay links sent earlier no longer work")
        await expect(contact(page, alan)).to_contain_text("+15555550177")
        changed = page.locator('li[data-event-type="CONTACT_CHANGED"]')
        await expect(changed).to_contain_text(creds.email)
        await expect(changed).to_contain_text("•••-•••-0103")
        await expect(changed).to_contain_text("•••-•••-0177")

        async with httpx.AsyncClient(base_url=base_url) as http:
            token = old_link.rsplit("/", 1)[1]
            r = await http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and r.json()["reason"] == "link_revoked"
        await page.goto(old_link)
        await expect(page.get_by_role("heading", name="This link was replaced")).to_be_visible()
        await check_page(page, "pay-link-revoked", viewport)
    told = {m["to_address"] for m in await outbox_messages(harness.pool, "+15555550177")}
    assert told == {"+15555550177"}


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_send_payment_request_to_grace_hopper(
    harness: Harness, browser: "Browser", viewport: str
) -> None:
    demo = await clone_demo_customer(harness.pool, "C-1002")
    invoice_id = demo.invoices["INV-1002"]
    creds = await make_staff(harness.pool)
    before = len(await outbox_messages(harness.pool, "grace@example.com"))
    async with serve(harness) as base_url, staff_page(browser, viewport) as page:
        await sign_in(page, base_url, creds, viewport)
        await page.get_by_label("Search by name or invoice number").fill(invoice_id)
        await page.get_by_role("button", name="Search").click()
        await page.get_by_role("link", name=invoice_id).click()
        await expect(page.get_by_test_id("invoice-amount")).to_have_text("$480.00")
        await page.get_by_role("button", name="Send payment request").click()
        confirm = page.get_by_role("group", name="Send payment request?")
        await expect(confirm.get_by_test_id("recipient")).to_contain_text("Grace Hopper")
        await expect(confirm.locator(".tag")).to_have_text("Customer Portal Payer")
        await expect(confirm.get_by_test_id("destinations")).to_have_text("g•••@example.com")
        await check_page(page, "invoice-confirm", viewport)
        await confirm.get_by_role("button", name="Send to Grace Hopper").click()
        await expect(page.get_by_test_id("flash")).to_have_text(
            "Payment request sent to Grace Hopper at g•••@example.com."
        )
        sent = page.locator('li[data-event-type="PAYMENT_REQUEST_SENT"]')
        await expect(sent).to_contain_text(creds.email)

        mails = await outbox_messages(harness.pool, "grace@example.com")
        assert len(mails) == before + 1
        link = next(word for word in mails[-1]["body"].split() if "/pay/" in word)
        assert link.startswith(f"{base_url}/pay/")
        await page.goto(link)
        await expect(page.get_by_role("heading", name="Pay Your Invoice")).to_be_visible()
        await expect(page.get_by_test_id("invoice-number")).to_have_text(invoice_id)
        await check_page(page, "pay-your-invoice", viewport)
        await page.get_by_role("button", name="Pay $480.00").click()
        await expect(page.get_by_role("heading", name="Verify Identity")).to_be_visible()
        await expect(page.locator("#view-verify")).to_contain_text("Grace Hopper")
        await check_page(page, "pay-verify-identity", viewport)


async def test_hostile_names_render_as_text_in_the_browser(harness: Harness, browser: "Browser") -> None:
    tag = uuid.uuid4().hex[:8]
    name = f'<img src=x onerror=alert("{tag}")><script>alert(1)</script>'
    number = f"INV-<svg onload=alert({tag})>"
    customer_id, contact_id, invoice_id = f"C-X{tag}", f"CT-X{tag}", f"INV-X{tag}"
    async with harness.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO customers (id, name) VALUES ($1, $2)", customer_id, name)
        await conn.execute(
            "INSERT INTO contacts (id, customer_id, name, email, is_primary)"
            " VALUES ($1, $2, $3, 'x@example.com', true)",
            contact_id,
            customer_id,
            name,
        )
        await conn.execute(
            "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents)"
            " VALUES ($1, $2, $3, 'invoice', 100, 100)",
            invoice_id,
            number,
            customer_id,
        )
    creds = await make_staff(harness.pool)
    async with serve(harness) as base_url, staff_page(browser, "phone") as page:  # a dialog fails the test
        await sign_in(page, base_url, creds, "phone")
        await page.goto(f"{base_url}/staff/customers/{customer_id}?edit={contact_id}")
        await expect(contact(page, contact_id).locator(".name")).to_have_text(name)
        await expect(page.get_by_role("button", name=f"Edit {name}")).to_be_visible()
        await page.goto(f"{base_url}/staff/invoices/{invoice_id}?confirm=send")
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {number}")
        await expect(page.get_by_test_id("recipient")).to_contain_text(name)
        assert await page.locator("img, svg").count() == 0
