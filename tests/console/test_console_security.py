"""The staff console against an attacker: CSRF, stolen and stale sessions, guessing, disabled accounts, XSS.

Real portal app (in-process over HTTP), real PostgreSQL, real Temporal worker.
"""

import uuid
from datetime import timedelta

import asyncpg
from fastapi.responses import Response
from markupsafe import escape

from infra.stores.audit_trail import STAFF_CONSOLE_CHAIN
from infra.stores.staff_accounts import disable_staff_user
from starters.portal.staff.console.web import set_session_cookie
from tests.console.support import (
    StaffCreds,
    audit_row,
    console_client,
    csrf_of,
    eventually,
    make_staff,
    sign_in,
    signed_in,
)
from tests.portal.conftest import Portal, clone_demo_customer
from tests.support import test_settings


async def staff_events(pool: asyncpg.Pool, email: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT event_type, actor, details->>'reason' AS reason FROM audit_events"
        " WHERE chain_id = $1 AND details->>'email' = $2 ORDER BY id",
        STAFF_CONSOLE_CHAIN,
        email,
    )
    return rows


async def test_sign_in_sets_a_strict_http_only_session_and_is_audited(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        r = await http.get("/staff")
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"
        r = await sign_in(http, creds.email.upper(), creds.password)  # email is case-blind
        assert r.status_code == 303
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and "portalpay_staff=" in v)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        page = await http.get("/staff")
        assert page.status_code == 200 and creds.email in page.text
        assert (
            page.headers["cache-control"] == "no-store"
            and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        )
    events = await staff_events(portal.pool, creds.email)
    assert [(e["event_type"], e["actor"]) for e in events] == [("STAFF_SIGNED_IN", creds.email)]


def test_outside_dev_the_cookie_is_secure_and_host_only() -> None:
    response = Response()
    set_session_cookie(response, test_settings(portalpay_env="prod"), "token")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-portalpay_staff=token") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Domain" not in cookie


async def test_forms_without_the_csrf_token_are_refused(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    demo = await clone_demo_customer(portal.pool, "C-1001")
    ada = demo.contacts["CT-1001-ADA"]
    url = f"/staff/customers/{demo.customer_id}/contacts/{ada}"
    form = {"email": "mallory@example.com", "phone": "+15555550666", "portal_payer": "on"}
    async with console_client(portal.app) as http:
        token = await signed_in(http, creds)
        for extra in ({}, {"csrf_token": ""}, {"csrf_token": token[:-2] + "xx"}):
            r = await http.post(url, data={**form, **extra})
            assert r.status_code == 403 and "could not be accepted" in r.text
        r = await http.post(f"/staff/invoices/{demo.invoices['INV-1001']}/payment-requests", data={})
        assert r.status_code == 403
        r = await http.post("/staff/logout", data={})
        assert r.status_code == 403 and (await http.get("/staff")).status_code == 200  # still signed in
        # The sign-in form has its own token (double-submit cookie).
        r = await http.post("/staff/login", data={"email": creds.email, "password": creds.password})
        assert r.status_code == 403
    row = await portal.pool.fetchrow("SELECT email, phone, portal_payer FROM contacts WHERE id = $1", ada)
    assert (row["email"], row["phone"], row["portal_payer"]) == ("ada@example.com", "+15555550101", False)
    assert (
        await portal.pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1", f"customer:{demo.customer_id}"
        )
        == 0
    )


async def test_a_session_cookie_is_refused_after_sign_out_idle_and_lifetime(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        token = await signed_in(http, creds)
        stolen = dict(http.cookies)
        r = await http.post("/staff/logout", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"
    async with console_client(portal.app) as replay:
        replay.cookies.update(stolen)
        r = await replay.get("/staff")
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"

    # Idle 30 min and lifetime 12 h by default (SPEC §10): age the row to just inside each limit (the
    # session still works), then to just past it (refused), instead of waiting.
    settings = portal.harness.settings
    idle = timedelta(seconds=settings.staff_session_idle_seconds)
    lifetime = timedelta(seconds=settings.staff_session_absolute_seconds)
    assert (idle, lifetime) == (timedelta(minutes=30), timedelta(hours=12))
    margin = timedelta(seconds=20)
    for column, limit in (("last_seen_at", idle), ("created_at", lifetime)):
        async with console_client(portal.app) as http:
            await signed_in(http, creds)
            for age, works in ((limit - margin, True), (limit + margin, False)):
                await portal.pool.execute(
                    f"UPDATE staff_sessions SET {column} = now() - $2::interval"
                    " WHERE staff_user_id = $1 AND ended_at IS NULL",
                    creds.id,
                    age,
                )
                r = await http.get("/staff")
                if works:
                    assert r.status_code == 200, f"a session aged {age} on its {column} was refused"
                else:
                    assert r.status_code == 303, f"a session aged {age} on its {column} still works"


async def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        async with portal.pool.acquire() as conn:
            assert await disable_staff_user(conn, creds.email) is not None
        r = await http.get("/staff")
        assert r.status_code == 303  # the open session ended at once
        r = await sign_in(http, creds.email, creds.password)
        assert r.status_code == 401 and "The email or password is not correct." in r.text
    reasons = [(e["event_type"], e["reason"]) for e in await staff_events(portal.pool, creds.email)]
    assert reasons[-1] == ("STAFF_SIGN_IN_FAILED", "disabled")


async def test_the_sixth_wrong_password_is_refused_with_a_clear_message(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        for _ in range(5):
            r = await sign_in(http, creds.email, "wrong password, sorry")
            assert r.status_code == 401 and "The email or password is not correct." in r.text
        r = await sign_in(http, creds.email, "wrong password, sorry")
        assert (
            r.status_code == 429
            and "Too many failed sign-ins" in r.text
            and "try again in 15 minutes" in r.text
        )
        # Even the right password waits out the window: the guesser learns nothing.
        r = await sign_in(http, creds.email, creds.password)
        assert r.status_code == 429
    # From another address too: the limit is per account.
    async with console_client(portal.app) as other:
        r = await sign_in(other, creds.email, creds.password)
        assert r.status_code == 429
    events = await staff_events(portal.pool, creds.email)
    assert [e["reason"] for e in events].count("wrong_credentials") == 5
    assert [e["reason"] for e in events][-1] == "too_many_failures"


async def test_sign_in_failures_are_limited_per_client_address(portal_factory: object) -> None:
    async with portal_factory(staff_sign_in_max_failures_per_address=3) as portal:  # type: ignore[operator]
        creds = await make_staff(portal.pool)
        async with console_client(portal.app) as http:
            for _ in range(3):
                r = await sign_in(http, f"nobody-{uuid.uuid4().hex[:6]}@example.com", "guess guess guess")
                assert r.status_code == 401
            r = await sign_in(http, creds.email, creds.password)  # a real account, from the same address
            assert r.status_code == 429 and "Too many failed sign-ins" in r.text


async def test_hostile_names_and_invoice_numbers_render_as_text(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    tag = uuid.uuid4().hex[:8]
    name = f'<script>alert("x{tag}")</script><img src=x onerror=alert(1)>'
    number = f'INV-<img src=x onerror=alert("{tag}")>'
    customer_id, contact_id, invoice_id = f"C-X{tag}", f"CT-X{tag}", f"INV-X{tag}"
    async with portal.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO customers (id, name) VALUES ($1, $2)", customer_id, name)
        await conn.execute(
            "INSERT INTO contacts (id, customer_id, name, email, is_primary) VALUES ($1, $2, $3, 'x@example.com', true)",
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
    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        pages = [
            await http.get("/staff", params={"q": tag}),
            await http.get(f"/staff/customers/{customer_id}", params={"edit": contact_id}),
            await http.get(f"/staff/invoices/{invoice_id}", params={"confirm": "send"}),
            await http.get("/staff", params={"q": number}),
        ]
        for page in pages:
            assert page.status_code == 200, page.text
            assert "<script>alert" not in page.text and "<img src=x" not in page.text
        # Shown as text, escaped the way Jinja's autoescape writes it.
        assert str(escape(name)) in pages[1].text and f'aria-label="Edit {escape(name)}"' in pages[1].text
        assert str(escape(number)) in pages[2].text and str(escape(number)) in pages[3].text


async def test_contact_edit_errors_show_beside_the_field_and_change_nothing(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    demo = await clone_demo_customer(portal.pool, "C-1003")
    alan = demo.contacts["CT-1003-ALAN"]
    async with console_client(portal.app) as http:
        token = await signed_in(http, creds)
        r = await http.post(
            f"/staff/customers/{demo.customer_id}/contacts/{alan}",
            data={"csrf_token": token, "email": "alan@", "phone": "555-0103"},
        )
        assert r.status_code == 422
        assert 'aria-invalid="true" aria-describedby="email-error-1"' in r.text
        assert (
            'id="email-error-1" class="error" role="alert">Enter an email address like name@example.com.'
            in r.text
        )
        # A foreign contact through another customer's URL is not found, not changed.
        other = await clone_demo_customer(portal.pool, "C-1002")
        r = await http.post(
            f"/staff/customers/{other.customer_id}/contacts/{alan}",
            data={"csrf_token": token, "email": "", "phone": "+15555550000"},
        )
        assert r.status_code == 404
    row = await portal.pool.fetchrow("SELECT email, phone FROM contacts WHERE id = $1", alan)
    assert (row["email"], row["phone"]) == (None, "+15555550103")


async def test_cancelling_an_attempt_needs_a_reason_and_is_audited_with_the_staff_email(
    portal: Portal,
) -> None:
    creds: StaffCreds = await make_staff(portal.pool)
    demo = await clone_demo_customer(portal.pool, "C-1002")
    invoice_id = demo.invoices["INV-1002"]
    opened = await portal.open(invoice_id)
    run_id = opened["session_id"].split("~")[1]
    async with console_client(portal.app) as http:
        token = await signed_in(http, creds)
        page = await http.get(f"/staff/invoices/{invoice_id}")
        assert (
            "Waiting for the customer to choose where the code goes" in page.text
            and "Cancel attempt" in page.text
        )
        url = f"/staff/invoices/{invoice_id}/attempts/{run_id}/cancel"
        r = await http.post(url, data={"csrf_token": token, "reason": "  "})
        assert r.status_code == 422 and "Say why the attempt is being cancelled" in r.text
        assert not (await portal.harness.gateway.state(invoice_id)).status.is_terminal
        r = await http.post(url, data={"csrf_token": token, "reason": "customer called: wrong invoice"})
        assert r.status_code == 303
        page = await http.get(r.headers["location"])
        assert "The attempt was cancelled" in page.text
        assert csrf_of(page.text) == token
    state = await portal.harness.gateway.state(invoice_id)
    assert state.status.value == "CANCELLED"
    row = await eventually(
        lambda: audit_row(portal.pool, invoice_id, "ATTEMPT_CANCELLED"), "ATTEMPT_CANCELLED"
    )
    assert row["actor"] == creds.email and "customer called: wrong invoice" in str(row["details"])


async def test_control_characters_in_console_and_api_paths_are_a_4xx(portal: Portal) -> None:
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        token = await signed_in(http, creds)
        for url in ("/staff/customers/C-1%00", "/staff/invoices/INV%00X", "/staff/customers/C%0A1?edit=x"):
            r = await http.get(url)
            assert 400 <= r.status_code < 500, (url, r.status_code)
        r = await http.post("/staff/customers/C-1/contacts/CT%00", data={"csrf_token": token})
        assert 400 <= r.status_code < 500
    r = await portal.http.patch(
        "/api/staff/contacts/CT%00X", json={"phone": "+15555550100"}, headers=portal.staff
    )
    assert r.status_code in (400, 404), r.text  # the edge refuses a NUL in a path before routing
