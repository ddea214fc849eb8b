"""`/staff/developers` (SPEC §12): keys by prefix only, endpoints, recent deliveries and `Resend`
(CSRF, audited as the staff member); over HTTP, and in real Chromium at 390 px and 1280 px."""

import uuid

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from domain.events import EventType
from domain.webhooks import TryOutcome
from infra.stores import api_keys
from starters.portal.app import create_app
from tests.console.support import console_client, csrf_of, make_staff, signed_in
from tests.console.test_console_browser import check_page, sign_in, staff_page
from tests.lifecycle.services import wait_for
from tests.portal.test_browser import CHROMIUM, serve
from tests.webhooks.conftest import StackFactory
from tests.webhooks.support import delivery_outcome
from tools.standins.webhook_receiver import WebhookReceiver


async def test_the_page_lists_keys_by_prefix_endpoints_and_deliveries_and_resends(
    webhook_stack_factory: StackFactory,
    receiver: tuple[WebhookReceiver, str],
    db_pool: asyncpg.Pool,
) -> None:
    rec, url = receiver
    async with webhook_stack_factory() as stack:
        app = create_app(stack.harness.settings, stack.harness.gateway, stack.pool)
        issued = await api_keys.create_key(
            stack.pool,
            pepper=stack.harness.settings.secret("api_key_pepper").encode(),
            name=f"CRM {uuid.uuid4().hex[:6]}",
            scopes=None,
            mode="test",
        )
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = [secret]
        event_id = await stack.event(EventType.PAYMENT_SETTLED)
        assert (await delivery_outcome(stack.client, endpoint_id, event_id)).outcome is TryOutcome.DELIVERED

        creds = await make_staff(db_pool)
        async with console_client(app) as http:
            await signed_in(http, creds)
            page = await http.get("/staff/developers")
            assert page.status_code == 200
            html = page.text
            assert issued.record.prefix in html and issued.secret not in html
            assert endpoint_id in html and url in html and secret not in html
            assert event_id in html and "payment.settled" in html and "Resend" in html

            form = {"event_id": event_id, "endpoint_id": endpoint_id}
            refused = await http.post("/staff/developers/resend", data={**form, "csrf_token": "forged"})
            assert refused.status_code == 403
            done = await http.post("/staff/developers/resend", data={**form, "csrf_token": csrf_of(html)})
            assert done.status_code == 303 and done.headers["location"] == "/staff/developers"
            await wait_for(lambda: _accepted(rec), lambda n: n == 2, what="the resent delivery")
            after = await http.get("/staff/developers")
            assert f"Event {event_id} is being sent again to {endpoint_id}." in after.text

    assert [t.webhook_id for t in rec.accepted] == [event_id, event_id]
    audit = await db_pool.fetch(
        "SELECT actor, details->>'action' AS action FROM audit_events"
        " WHERE event_type = 'WEBHOOK_ENDPOINT_CHANGED' AND details->>'endpoint_id' = $1",
        endpoint_id,
    )
    assert [(a["actor"], a["action"]) for a in audit] == [(creds.email, "redeliver")]


async def _accepted(rec: WebhookReceiver) -> int:
    return len(rec.accepted)


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None or not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_resend_in_a_browser(
    webhook_stack_factory: StackFactory,
    receiver: tuple[WebhookReceiver, str],
    db_pool: asyncpg.Pool,
    browser: "Browser",
    viewport: str,
) -> None:
    rec, url = receiver
    async with webhook_stack_factory() as stack:
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = [secret]
        event_id = await stack.event(EventType.INVOICE_PAID)
        assert (await delivery_outcome(stack.client, endpoint_id, event_id)).outcome is TryOutcome.DELIVERED
        creds = await make_staff(db_pool, "Dev Staff")
        async with serve(stack.harness) as base_url, staff_page(browser, viewport) as page:
            await sign_in(page, base_url, creds, viewport)
            await page.get_by_role("link", name="Developers").click()
            await expect(page.get_by_role("heading", name="Developers", exact=True)).to_be_visible()
            await check_page(page, "developers", viewport)
            await page.get_by_role("button", name=f"Resend {event_id} to {endpoint_id}").first.click()
            await expect(page.get_by_test_id("flash")).to_contain_text(
                f"Event {event_id} is being sent again"
            )
            await wait_for(lambda: _accepted(rec), lambda n: n == 2, what="the resent delivery")
    assert [t.webhook_id for t in rec.accepted] == [event_id, event_id]
