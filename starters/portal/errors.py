"""How the portal answers anything but 2xx: the error envelope (`ErrorBody`), the handlers, and the
refusal → HTTP status mapping.

The workflow refuses an action with an `ApplicationError` type (`domain.errors.RefusalType`); the
gateway raises it as `AttemptRefused`, and this module turns it into the status code SPEC §4 names.
A customer can cause any 4xx here, never a 500; a dependency being down is a 503 to retry.
"""

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from temporalio.service import RPCError

from domain.errors import RefusalType
from domain.status import PaymentStatus
from starters.portal.schemas import ErrorBody
from starters.workflow_client import AttemptNotFound, AttemptRefused

log = logging.getLogger(__name__)

# How a refusal reads over HTTP (the CLI prints the refusal's message and needs no status).
HTTP_STATUS_FOR: dict[str, int] = {
    RefusalType.INVALID_STATE: 409,
    RefusalType.INVALID_INPUT: 422,
    RefusalType.CHANNEL_UNAVAILABLE: 422,
    RefusalType.RESEND_TOO_SOON: 429,
    RefusalType.TOO_MANY_SENDS: 429,
    RefusalType.DELIVERY_FAILED: 502,
    RefusalType.INVOICE_NOT_FOUND: 404,
    RefusalType.INVOICE_ALREADY_PAID: 409,
    RefusalType.INVOICE_LOCKED: 429,
    RefusalType.INVOICE_VOID: 410,
    RefusalType.CONTACT_CHANGED: 409,
    RefusalType.DEBIT_IN_FLIGHT: 409,
    RefusalType.ATTEMPT_BUSY: 429,
    RefusalType.BANK_ACCOUNT_BLOCKED: 422,
    RefusalType.ACCOUNT_VALIDATION_FAILED: 422,
}


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
    install_unavailable_handlers(app)


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


def install_unavailable_handlers(app: FastAPI) -> None:
    """A dependency being down is a 503 the customer can retry, not a 500."""

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError):  # type: ignore[no-untyped-def]
        return error_response(503, "Unavailable", "Payments are briefly unavailable. Please try again.")

    async def _db_down(_: Request, exc: Exception):  # type: ignore[no-untyped-def]
        return error_response(503, "Unavailable", "Payments are briefly unavailable. Please try again.")

    # A PostgreSQL restart surfaces as any of these, depending on where the connection broke.
    for down in (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        ConnectionError,
        OSError,
    ):
        app.add_exception_handler(down, _db_down)
