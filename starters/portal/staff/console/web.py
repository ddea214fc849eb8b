"""What every console page shares: templates, the signed-in staff member, CSRF, and page headers.

Sessions are rows in PostgreSQL (`infra/stores/staff_sessions.py`); the cookie carries a random
token only. Every state-changing form carries the session's CSRF token and is refused without it;
the sign-in form, which has no session yet, uses a double-submit cookie instead.
"""

import hmac
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from domain.attempt import ClientContext
from domain.contact_details import has_control_characters
from domain.money import format_amount
from infra.settings import Settings
from infra.stores.staff_sessions import StaffSession, load_session, set_flash
from starters.portal.deps import PortalDeps, client_context, portal_deps
from starters.portal.path_ids import PathId

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
ASSET_VERSION = "1"
LOGIN_CSRF_COOKIE = "portalpay_staff_login"

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}

templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
)
templates.env.globals["format_amount"] = format_amount
# Audit details as readable JSON text; autoescape makes it safe, masked values stay legible (•••).
templates.env.filters["details_text"] = lambda value: json.dumps(
    value, ensure_ascii=False, sort_keys=True, default=str
)


def session_cookie_name(settings: Settings) -> str:
    # `__Host-` makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
    return "portalpay_staff" if settings.is_dev else "__Host-portalpay_staff"


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        session_cookie_name(settings),
        token,
        max_age=settings.staff_session_absolute_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=not settings.is_dev,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings), path="/", httponly=True, samesite="strict", secure=not settings.is_dev
    )


# Ids in console URLs: the one path-id rule (starters/portal/path_ids.py).
PlainId = PathId


class SignInRequired(Exception):
    """No live session: pages redirect to the sign-in form."""


async def optional_staff(
    request: Request, deps: Annotated[PortalDeps, Depends(portal_deps)]
) -> StaffSession | None:
    token = request.cookies.get(session_cookie_name(deps.settings))
    if not token or len(token) > 200 or not token.isascii():
        return None
    return await load_session(
        deps.pool,
        token,
        idle=timedelta(seconds=deps.settings.staff_session_idle_seconds),
        absolute=timedelta(seconds=deps.settings.staff_session_absolute_seconds),
    )


async def current_staff(session: Annotated[StaffSession | None, Depends(optional_staff)]) -> StaffSession:
    if session is None:
        raise SignInRequired()
    return session


Staff = Annotated[StaffSession, Depends(current_staff)]


def staff_context(request: Request, staff: StaffSession) -> ClientContext:
    """Console actions are audited with the signed-in staff member's email as actor (SPEC §10)."""
    return client_context(request, actor=staff.email)


def csrf_ok(expected: str | None, submitted: Any) -> bool:
    if not expected or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


class CsrfRefused(Exception):
    pass


def require_csrf(staff: StaffSession, form: Any) -> None:
    if not csrf_ok(staff.csrf_token, form.get("csrf_token")):
        raise CsrfRefused()


def form_text(form: Any, name: str, *, limit: int = 320) -> str | None:
    """A text field as typed, or None if missing, too long or holding control characters."""
    value = form.get(name)
    if not isinstance(value, str) or len(value) > limit or has_control_characters(value):
        return None
    return value


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


async def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    staff: StaffSession | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    flash = None
    if staff is not None and staff.flash:
        flash = staff.flash
        await set_flash(portal_deps(request).pool, staff, None)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            "csrf_token": staff.csrf_token if staff is not None else None,
            "flash": flash,
            "asset_version": ASSET_VERSION,
            "company_name": portal_deps(request).settings.company_name,
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(PAGE_HEADERS)
    return response


async def not_found(request: Request, staff: StaffSession, what: str, ident: str) -> HTMLResponse:
    """The console's 404 page: which kind of record, and the id that was asked for."""
    return await render(
        request, "staff/not_found.html", {"what": what, "ident": ident}, staff=staff, status_code=404
    )


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(PAGE_HEADERS)
    return response
