"""What every portal route shares: its dependencies, the two bearer checks, and the error mapping.

The workflow refuses an action with an `ApplicationError` type (`domain.errors.RefusalType`); the
gateway raises it as `AttemptRefused`, and this module turns it into the status code SPEC §4 names.
A customer can cause any 4xx here, never a 500.
"""

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from domain.attempt import ClientContext
from domain.errors import RefusalType
from domain.invoice_standing import INVOICE_VOID_MESSAGE, INVOICE_VOID_REASON, INVOICE_VOID_STATUS
from domain.status import PaymentStatus
from infra.pay_links import PayLinkClaims, PayLinkExpired, PayLinkForged, PayLinkSigner, token_matches
from infra.providers.delivery.base import CodeSender
from infra.settings import Settings
from starters.portal.revoked_links import LINK_REVOKED_MESSAGE, LINK_REVOKED_REASON, link_is_revoked
from starters.portal.schemas import ErrorBody
from starters.workflow_client import (
    HTTP_STATUS_FOR,
    AttemptGateway,
    AttemptNotFound,
    AttemptRefused,
    parse_session_id,
)

log = logging.getLogger(__name__)

_USER_AGENT_LIMIT = 512


@dataclass
class PortalDeps:
    settings: Settings
    gateway: AttemptGateway
    pool: asyncpg.Pool
    signer: PayLinkSigner
    link_sender: CodeSender
    staff_token: str
    request_id_key: bytes  # keys update ids derived from request bodies (see `request_id_for`)
    audit_key: bytes  # AUDIT_CHAIN_KEY: every audit row written or checked by the portal


def portal_deps(request: Request) -> PortalDeps:
    deps: PortalDeps = request.app.state.portal
    return deps


Deps = Annotated[PortalDeps, Depends(portal_deps)]


class PortalError(Exception):
    """An answer other than 2xx, already decided; rendered as `ErrorBody`."""

    def __init__(
        self,
        http_status: int,
        error: str,
        message: str,
        *,
        status: PaymentStatus | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.http_status = http_status
        self.error = error
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.headers = dict(headers or {})


def error_response(
    http_status: int,
    error: str,
    message: str,
    *,
    status: PaymentStatus | None = None,
    retry_after: int | None = None,
    detail: Any = None,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> JSONResponse:
    body = ErrorBody(
        error=error,
        message=message,
        detail=message if detail is None else detail,
        status=status,
        retry_after=retry_after,
        reason=reason,
    )
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    if retry_after is not None:
        all_headers["Retry-After"] = str(max(0, retry_after))
    return JSONResponse(jsonable_encoder(body), status_code=http_status, headers=all_headers)


# Documented on every customer route so /openapi.json shows the error shapes.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "Missing, forged or expired token",
        403: "The token belongs to another invoice",
        404: "Unknown session or invoice",
        409: "Not allowed in the attempt's current state (named in `status`)",
        422: "Malformed input, including a routing number failing the ABA checksum",
        429: "Resend too soon, too many sends, or the invoice is locked (`retry_after`)",
    }.items()
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PortalError)
    async def _portal_error(_: Request, exc: PortalError) -> JSONResponse:
        return error_response(
            exc.http_status,
            exc.error,
            exc.message,
            status=exc.status,
            retry_after=exc.retry_after,
            headers=exc.headers,
            reason=exc.reason,
        )

    @app.exception_handler(AttemptRefused)
    async def _refused(_: Request, exc: AttemptRefused) -> JSONResponse:
        http_status = HTTP_STATUS_FOR.get(exc.type, 409)
        message = exc.message
        if exc.type == RefusalType.INVALID_STATE and exc.status is not None and exc.status not in message:
            message = f"{message} (the attempt is {exc.status})"
        return error_response(
            http_status, str(exc.type), message, status=exc.status, retry_after=exc.retry_after
        )

    @app.exception_handler(AttemptNotFound)
    async def _not_found(_: Request, exc: AttemptNotFound) -> JSONResponse:
        return error_response(404, "SessionNotFound", "No such payment session.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        for error in errors:
            error.pop("input", None)  # never echo bank numbers or codes back
            error.pop("url", None)
        first = errors[0]["msg"] if errors else "Invalid request"
        return error_response(422, RefusalType.INVALID_INPUT, str(first), detail=errors)

    install_malformed_input_handlers(app)


def install_malformed_input_handlers(app: FastAPI) -> None:
    """Malformed input that slipped past the request models is still the caller's fault: a 4xx.

    A domain model built inside a route refuses a value (422); text that is not valid in its
    encoding, or a value PostgreSQL cannot store (a NUL, a number out of range), is 400. Nothing
    from the input is echoed back or logged.
    """

    @app.exception_handler(ValidationError)
    async def _invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        errors = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in exc.errors()
        ]
        first = errors[0]["msg"] if errors else "Invalid request"
        return error_response(422, RefusalType.INVALID_INPUT, str(first), detail=errors)

    @app.exception_handler(UnicodeError)
    async def _bad_encoding(_: Request, exc: UnicodeError) -> JSONResponse:
        return error_response(
            400, "MalformedRequest", "The request holds text that is not valid UTF-8/ASCII."
        )

    @app.exception_handler(asyncpg.DataError)
    async def _unstorable(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        log.warning(
            "refused input PostgreSQL cannot store on %s (%s)", _route_of(request), type(exc).__name__
        )
        return error_response(400, "MalformedRequest", "The request holds a value that is not allowed.")


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "<unmatched>"))


# --- credentials -----------------------------------------------------------------------------------

_pay_link_bearer = HTTPBearer(
    scheme_name="PayLinkToken",
    description="The token from the Pay Your Invoice link (`/pay/<token>`)",
    auto_error=False,
)
_staff_bearer = HTTPBearer(scheme_name="StaffToken", description="STAFF_API_TOKEN", auto_error=False)

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def pay_link_claims(
    request: Request,
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_pay_link_bearer)],
) -> PayLinkClaims:
    if credentials is None:
        raise PortalError(401, "TokenMissing", "A pay-link token is required.", headers=_UNAUTHORIZED)
    try:
        claims = deps.signer.verify(credentials.credentials)
    except PayLinkExpired as exc:
        raise PortalError(401, "TokenExpired", str(exc), headers=_UNAUTHORIZED) from None
    except PayLinkForged as exc:
        raise PortalError(401, "TokenInvalid", str(exc), headers=_UNAUTHORIZED) from None
    if await link_is_revoked(
        deps.pool,
        claims,
        client_context(request),
        link_ttl_seconds=deps.settings.link_ttl_seconds,
        audit_key=deps.audit_key,
    ):
        raise PortalError(
            401, "TokenRevoked", LINK_REVOKED_MESSAGE, headers=_UNAUTHORIZED, reason=LINK_REVOKED_REASON
        )
    if await invoice_is_void(deps.pool, claims.invoice_id):
        raise PortalError(
            410, str(RefusalType.INVOICE_VOID), INVOICE_VOID_MESSAGE, reason=INVOICE_VOID_REASON
        )
    return claims


async def invoice_is_void(pool: asyncpg.Pool, invoice_id: str) -> bool:
    status = await pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id)
    return bool(status == INVOICE_VOID_STATUS)


def require_staff(
    deps: Deps, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_staff_bearer)]
) -> None:
    if credentials is None or not token_matches(credentials.credentials, deps.staff_token):
        raise PortalError(401, "StaffTokenInvalid", "A valid staff token is required.", headers=_UNAUTHORIZED)


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


def client_context(request: Request, actor: str = "customer") -> ClientContext:
    user_agent = request.headers.get("user-agent")
    return ClientContext(
        actor=actor,
        ip=request.client.host if request.client else None,
        user_agent=user_agent[:_USER_AGENT_LIMIT] if user_agent else None,
    )


def request_id_for(request: Request, session_id: str, action: str, body: BaseModel | None) -> str:
    """The Temporal update id for this POST, so a retried request gets the first answer.

    Keyed by the client's `Idempotency-Key` (or `X-Request-Nonce`) and the body: the same key with
    the same body is the same action. Without either header every POST is a new action, because
    two identical wrong codes typed on purpose are two guesses, not one.

    The id lands in workflow history in the clear, and the body may hold the typed code, so it is
    an HMAC under a server key: a plain hash of a 6-digit code could be reversed (SPEC §3).
    """
    key = request.headers.get("idempotency-key") or request.headers.get("x-request-nonce")
    if not key:
        key = "fresh:" + secrets.token_hex(16)
    payload = body.model_dump_json() if body is not None else ""
    material = "\x1f".join((session_id, action, key[:200], payload)).encode()
    deps = portal_deps(request)
    digest = hmac.new(deps.request_id_key, material, hashlib.sha256).hexdigest()
    return f"{action}-{digest[:40]}"
