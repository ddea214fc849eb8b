"""`/staff/login` and sign-out: Argon2 passwords, server-side sessions, limits kept in PostgreSQL.

After `STAFF_SIGN_IN_MAX_FAILURES_PER_ACCOUNT` wrong passwords for one account (or
`…_PER_ADDRESS` from one client address) within `STAFF_SIGN_IN_WINDOW_SECONDS`, further tries are
refused before any password is checked, with a message saying when to try again. Every sign-in and
every failure is audited; a wrong email and a wrong password get the same answer.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from infra.staff_passwords import hash_password, needs_rehash, verify_password
from infra.stores import staff_accounts as accounts
from infra.stores.audit_trail import append_event
from infra.stores.staff_sessions import StaffSession, end_session, start_session
from starters.portal.deps import Deps, client_context
from starters.portal.staff.console.web import (
    LOGIN_CSRF_COOKIE,
    Staff,
    clear_session_cookie,
    csrf_ok,
    form_text,
    new_login_csrf,
    optional_staff,
    redirect,
    render,
    require_csrf,
    session_cookie_name,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)

WRONG_CREDENTIALS = "The email or password is not correct."
ANONYMOUS = "anonymous"


async def _login_page(
    request: Request, deps: Deps, *, email: str = "", error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    token = new_login_csrf()
    response = await render(
        request,
        "staff/login.html",
        {"email": email, "error": error, "login_csrf": token},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/staff/login",
        httponly=True,
        samesite="strict",
        secure=not deps.settings.is_dev,
    )
    return response


@router.get("/staff/login", response_class=HTMLResponse)
async def login_form(
    request: Request, deps: Deps, staff: Annotated[StaffSession | None, Depends(optional_staff)]
) -> Response:
    if staff is not None:
        return redirect("/staff")
    return await _login_page(request, deps)


async def _audit(
    deps: Deps,
    event_type: AuditEventType,
    client: ClientContext,
    details: dict[str, object],
    *,
    key: str | None = None,
) -> None:
    async with deps.pool.acquire() as conn:
        await append_event(
            conn,
            key=deps.audit_key,
            event=AuditEventInput(
                event_key=key or f"staff-sign-in:{uuid.uuid4().hex}",
                event_type=event_type,
                invoice_id=None,
                customer_id=None,
                payer_contact_id=None,
                client=client,
                details=details,
                occurred_at=datetime.now(UTC),
            ),
        )


@router.post("/staff/login", response_class=HTMLResponse)
async def login(request: Request, deps: Deps) -> Response:
    form = await request.form()
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        return await _login_page(
            request, deps, error="The sign-in form expired. Please try again.", status_code=403
        )
    email = form_text(form, "email") or ""
    password = form_text(form, "password", limit=256) or ""
    email = accounts.normalise_email(email)
    if not email or not password:
        return await _login_page(
            request, deps, email=email, error="Enter your email and password.", status_code=422
        )
    client = client_context(request, actor=ANONYMOUS)
    ip = client.ip or "unknown"
    settings = deps.settings
    window = timedelta(seconds=settings.staff_sign_in_window_seconds)
    async with deps.pool.acquire() as conn, conn.transaction():
        # One check at a time per account, so parallel guesses cannot all slip under the limit.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"staff-sign-in:{email}")
        failures = await accounts.count_sign_in_failures(conn, email, ip, window)
        limited = (
            failures.by_account >= settings.staff_sign_in_max_failures_per_account
            or failures.by_address >= settings.staff_sign_in_max_failures_per_address
        )
        user = None if limited else await accounts.find_staff_user(conn, email)
        good = not limited and await asyncio.to_thread(
            verify_password, user.password_hash if user is not None else None, password
        )
        if not limited and (user is None or not good or not user.active):
            await accounts.record_sign_in_failure(conn, email, ip)
    if limited:
        minutes = max(1, settings.staff_sign_in_window_seconds // 60)
        # Refusals are audited once per address (or account) and window, so a flood of tries
        # cannot grow the append-only table without bound.
        bucket = int(time.time()) // settings.staff_sign_in_window_seconds
        by_address = failures.by_address >= settings.staff_sign_in_max_failures_per_address
        scope = f"address:{ip}" if by_address else f"account:{email}"
        await _audit(
            deps,
            AuditEventType.STAFF_SIGN_IN_FAILED,
            client,
            {"email": email, "reason": "too_many_failures", "limit": "address" if by_address else "account"},
            key=f"staff-sign-in-limited:{scope}:{bucket}",
        )
        return await _login_page(
            request,
            deps,
            email=email,
            error=(
                "Too many failed sign-ins. For your security, sign-in is paused: "
                f"try again in {minutes} minutes, or ask an administrator."
            ),
            status_code=429,
        )
    if user is None or not good or not user.active:
        reason = "disabled" if user is not None and good else "wrong_credentials"
        await _audit(deps, AuditEventType.STAFF_SIGN_IN_FAILED, client, {"email": email, "reason": reason})
        return await _login_page(request, deps, email=email, error=WRONG_CREDENTIALS, status_code=401)
    if needs_rehash(user.password_hash):
        await accounts.set_password(deps.pool, user.id, hash_password(password))
    await accounts.clear_account_failures(deps.pool, email)
    previous = request.cookies.get(session_cookie_name(settings))
    if previous:
        await end_session(deps.pool, previous)  # a new sign-in never inherits an older session
    token = await start_session(deps.pool, user.id, client.ip, client.user_agent)
    await _audit(
        deps,
        AuditEventType.STAFF_SIGNED_IN,
        client.model_copy(update={"actor": user.email}),
        {"email": user.email},
    )
    response = redirect("/staff")
    set_session_cookie(response, settings, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff/login")
    return response


@router.post("/staff/logout")
async def logout(request: Request, deps: Deps, staff: Staff) -> Response:
    form = await request.form()
    require_csrf(staff, form)
    token = request.cookies.get(session_cookie_name(deps.settings), "")
    await end_session(deps.pool, token)
    response = redirect("/staff/login")
    clear_session_cookie(response, deps.settings)
    return response
