"""Who may call: the one bearer-token reader, the pay-link check and the staff-token check.

Every credential the portal takes in an `Authorization` header is read by `bearer_credential`
(`infra.pay_links.bearer_token` underneath): the pay-link routes, the staff API and the operator's
codec endpoint. API keys (SPEC §12) read theirs the same way. The schemes are still declared per
audience so /openapi.json names them (`PayLinkToken`, `StaffToken`).
"""

import uuid
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from domain.errors import RefusalType
from domain.invoice_standing import INVOICE_VOID_MESSAGE, INVOICE_VOID_REASON, INVOICE_VOID_STATUS
from infra.pay_links import PayLinkClaims, PayLinkExpired, PayLinkForged, bearer_token, token_matches
from starters.portal.customer.revoked_links import LINK_REVOKED_MESSAGE, LINK_REVOKED_REASON, link_is_revoked
from starters.portal.deps import Deps, PortalDeps, client_context
from starters.portal.errors import PortalError
from starters.workflow_client import parse_session_id

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def bearer_credential(request: HTTPConnection) -> str | None:
    """The token of the request's `Authorization: Bearer <token>` header, or None."""
    return bearer_token(request.headers.get("authorization"))


class _BearerScheme(HTTPBearer):
    """An OpenAPI bearer scheme whose reading is `bearer_credential`, never FastAPI's own parser."""

    def __init__(self, *, scheme_name: str, description: str) -> None:
        super().__init__(scheme_name=scheme_name, description=description, auto_error=False)

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        token = bearer_credential(request)
        return None if token is None else HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


_pay_link_bearer = _BearerScheme(
    scheme_name="PayLinkToken", description="The token from the Pay Your Invoice link (`/pay/<token>`)"
)
_staff_bearer = _BearerScheme(scheme_name="StaffToken", description="STAFF_API_TOKEN")


class PayLinkRevoked(Exception):
    """The link was issued before the invoice's payer contact changed (SPEC §11); audited once."""


async def verify_pay_link(token: str, request: Request, deps: PortalDeps) -> PayLinkClaims:
    """The claims of a genuine, unexpired, unrevoked pay link, else `PayLinkExpired`, `PayLinkForged`
    or `PayLinkRevoked`. The API (`pay_link_claims`) and the page (`GET /pay/{token}`) read a link
    this one way and differ only in how they answer."""
    claims = deps.signer.verify(token)
    if await link_is_revoked(
        deps.pool,
        claims,
        client_context(request),
        link_ttl_seconds=deps.settings.link_ttl_seconds,
        audit_key=deps.audit_key,
    ):
        raise PayLinkRevoked(LINK_REVOKED_MESSAGE)
    return claims


async def pay_link_claims(
    request: Request,
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_pay_link_bearer)],
) -> PayLinkClaims:
    if credentials is None:
        raise PortalError(401, "TokenMissing", "A pay-link token is required.", headers=UNAUTHORIZED_HEADERS)
    try:
        claims = await verify_pay_link(credentials.credentials, request, deps)
    except PayLinkExpired as exc:
        raise PortalError(401, "TokenExpired", str(exc), headers=UNAUTHORIZED_HEADERS) from None
    except PayLinkForged as exc:
        raise PortalError(401, "TokenInvalid", str(exc), headers=UNAUTHORIZED_HEADERS) from None
    except PayLinkRevoked:
        raise PortalError(
            401,
            "TokenRevoked",
            LINK_REVOKED_MESSAGE,
            headers=UNAUTHORIZED_HEADERS,
            reason=LINK_REVOKED_REASON,
        ) from None
    if await invoice_is_void(deps.pool, claims.invoice_id):
        raise PortalError(
            410, str(RefusalType.INVOICE_VOID), INVOICE_VOID_MESSAGE, reason=INVOICE_VOID_REASON
        )
    return claims


async def invoice_is_void(pool: asyncpg.Pool, invoice_id: str) -> bool:
    """SPEC §12: a void invoice's links answer 410 invoice_void."""
    status = await pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id)
    return bool(status == INVOICE_VOID_STATUS)


def require_staff(
    deps: Deps, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff_bearer)]
) -> None:
    if credentials is None or not token_matches(credentials.credentials, deps.staff_token):
        raise PortalError(
            401, "StaffTokenInvalid", "A valid staff token is required.", headers=UNAUTHORIZED_HEADERS
        )


Claims = Annotated[PayLinkClaims, Depends(pay_link_claims)]


def session_for_invoice(session_id: str, claims: PayLinkClaims) -> tuple[str, str]:
    """(invoice_id, run_id) of a session this link may act on: 404 if unknown, 403 if another invoice's."""
    try:
        invoice_id, run_id = parse_session_id(session_id)
        uuid.UUID(run_id)  # run ids are UUIDs; anything else would reach Temporal as a bad argument
    except ValueError:
        raise PortalError(404, "SessionNotFound", "No such payment session.") from None
    if invoice_id != claims.invoice_id:
        raise PortalError(403, "WrongInvoice", "This link is for a different invoice.")
    return invoice_id, run_id
