"""The console's `Download proof of authorization`: signed-in staff get the PDF, audited with their email.

Over HTTP in-process (httpx) for the refusals, and in real headless Chromium for the link itself.
"""

import pytest

from domain.audit import AuditEventType
from infra.stores.audit_trail import fetch_trail
from tests.console.support import audit_row, console_client, make_staff, signed_in
from tests.console.test_console_browser import check_page, staff_page
from tests.portal.conftest import Portal
from tests.portal.test_browser import serve
from tests.proof.support import pay, pdf_text
from tests.support import Harness, create_invoice

try:
    from playwright.async_api import Browser, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]


async def test_console_proof_is_for_signed_in_staff_only(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    payment_id = await pay(portal.harness, inv)
    creds = await make_staff(portal.pool, "Proof Staff")
    url = f"/staff/payments/{payment_id}/proof.pdf"

    async with console_client(portal.app) as anonymous:
        r = await anonymous.get(url)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"
        assert not r.content.startswith(b"%PDF")
        r = await anonymous.get(url, headers=portal.staff)  # the API's bearer token opens no console page
        assert r.status_code == 303
        r = await anonymous.get(url, cookies={"portalpay_staff": "forged-session-token"})
        assert r.status_code == 303
    assert await audit_row(portal.pool, inv.invoice_id, AuditEventType.PROOF_EXPORTED) is None

    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        page = await http.get(f"/staff/invoices/{inv.invoice_id}")
        assert f'href="/staff/payments/{payment_id}/proof.pdf"' in page.text
        assert "Download proof of authorization" in page.text
        r = await http.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"] == f'attachment; filename="proof-{payment_id}.pdf"'
        assert r.headers["cache-control"] == "no-store"
        text = pdf_text(r.content)
        assert inv.invoice_id in text and f"by {creds.email}" in text
        exported = await audit_row(portal.pool, inv.invoice_id, AuditEventType.PROOF_EXPORTED)
        assert exported is not None and exported["actor"] == creds.email
        assert exported["details"] == {
            "payment_id": payment_id,
            "formats": ["pdf"],
            "chain_ok": True,
            "chain_checked_at": exported["details"]["chain_checked_at"],
        }
        before = len(await fetch_trail(portal.pool, inv.invoice_id))
        missing = await http.get("/staff/payments/PAY-NOPE/proof.pdf")
        assert missing.status_code == 404 and "No such payment" in missing.text
        odd = await http.get("/staff/payments/%3Cscript%3Ealert(1)%3C%2Fscript%3E/proof.pdf")
        assert odd.status_code == 404 and "<script>alert(1)" not in odd.text
        assert len(await fetch_trail(portal.pool, inv.invoice_id)) == before


@pytest.mark.browser
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_download_link_in_chromium_returns_the_pdf(
    harness: Harness, browser: "Browser", viewport: str
) -> None:
    inv = await create_invoice(harness.pool)
    payment_id = await pay(harness, inv)
    creds = await make_staff(harness.pool, "Dispute Desk")
    async with serve(harness) as base_url:
        async with staff_page(browser, viewport) as page:
            context = page.context
            await page.goto(f"{base_url}/staff/invoices/{inv.invoice_id}")
            await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
            await page.get_by_label("Email").fill(creds.email)
            await page.get_by_label("Password").fill(creds.password)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
            await page.goto(f"{base_url}/staff/invoices/{inv.invoice_id}")
            link = page.get_by_role("link", name="Download proof of authorization")
            await expect(link).to_have_count(1)
            await check_page(page, "invoice-with-proof-link", viewport)  # axe, no sideways scroll

            async with page.expect_download() as waiting:
                await link.click()
            download = await waiting.value
            assert download.suggested_filename == f"proof-{payment_id}.pdf"
            saved = await download.path()
            data = saved.read_bytes()
            assert data.startswith(b"%PDF") and inv.invoice_id in pdf_text(data)

            href = await link.get_attribute("href")
            assert href == f"/staff/payments/{payment_id}/proof.pdf"
            response = await context.request.get(f"{base_url}{href}")
            assert response.status == 200 and response.headers["content-type"] == "application/pdf"
            assert (await response.body()).startswith(b"%PDF")

        signed_out = await browser.new_context()
        try:
            response = await signed_out.request.get(
                f"{base_url}/staff/payments/{payment_id}/proof.pdf", max_redirects=0
            )
            assert response.status == 303 and response.headers["location"] == "/staff/login"
            assert not (await response.body()).startswith(b"%PDF")
        finally:
            await signed_out.close()
    exports = [
        r for r in await fetch_trail(harness.pool, inv.invoice_id) if r["event_type"] == "PROOF_EXPORTED"
    ]
    assert [r["actor"] for r in exports] == [creds.email, creds.email]
