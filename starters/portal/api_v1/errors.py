"""The /api/v1 error envelope: SPEC §4's `ErrorBody` plus `param`, the field at fault (SPEC §12).

Routes raise `ApiError`; request-model failures on /api/v1 paths name their field in `param` too.
"""

import inspect
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field

from starters.portal.schemas import ErrorBody

API_V1_PREFIX = "/api/v1"


class ApiErrorBody(ErrorBody):
    param: str | None = Field(default=None, description="The request field at fault, if one")


class ApiError(Exception):
    """An /api/v1 answer other than 2xx, already decided."""

    def __init__(
        self,
        http_status: int,
        error: str,
        message: str,
        *,
        param: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error = error
        self.message = message
        self.param = param
        self.reason = reason
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.detail = detail


def api_error_response(exc: ApiError) -> JSONResponse:
    body = ApiErrorBody(
        error=exc.error,
        message=exc.message,
        detail=exc.message if exc.detail is None else exc.detail,
        param=exc.param,
        reason=exc.reason,
        retry_after=exc.retry_after,
    )
    headers = {"Cache-Control": "no-store", **exc.headers}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, exc.retry_after))
    return JSONResponse(
        jsonable_encoder(body, exclude_none=True), status_code=exc.http_status, headers=headers
    )


# Documented on every /api/v1 route so /openapi.json shows the envelope.
API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ApiErrorBody, "description": text}
    for code, text in {
        401: "Missing, unknown, revoked or expired API key",
        403: "The key lacks the scope this call needs",
        409: "Conflict (e.g. InvoiceLocked, IdempotencyKeyInUse)",
        422: "Malformed input (`param` names the field), or IdempotencyKeyReused",
        429: "Over API_RATE_LIMIT_PER_SECOND on this key (`Retry-After`)",
    }.items()
}


def _param_of(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_api_error_handlers(app: FastAPI) -> None:
    """`ApiError` everywhere; request-model failures on /api/v1 gain `param` (others keep §4's)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    previous = app.exception_handlers.get(RequestValidationError)

    async def _invalid(request: Request, exc: Exception) -> Any:
        if not request.url.path.startswith(API_V1_PREFIX + "/") and previous is not None:
            answer = previous(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        assert isinstance(exc, RequestValidationError)
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        for error in errors:
            error.pop("input", None)  # never echo what was sent (it may be a secret)
            error.pop("url", None)
            error.pop("ctx", None)
        first = errors[0] if errors else {"msg": "Invalid request", "loc": []}
        return api_error_response(
            ApiError(422, "InvalidInput", str(first["msg"]), param=_param_of(first["loc"]), detail=errors)
        )

    app.add_exception_handler(RequestValidationError, _invalid)
