"""Codec server for the Temporal UI and CLI: POST /codec/encode and /codec/decode, operator only.

Speaks the Temporal codec-server protocol: a `Payloads` message in protobuf-JSON form in, the
same shape out. Every call needs the operator's credential, in one of three forms:

- `Authorization: Bearer <OPERATOR_API_TOKEN>`: the CLI, scripts, an auth proxy.
- a session cookie set by signing in at `/codec/login`: the Temporal UI in a browser, which cannot
  add a header of its own (its codec client only forwards an OIDC token, and only over https) but
  sends cookies when `TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true`. Each sign-in is its own session
  (a random token; PostgreSQL keeps its SHA-256, the operator's name, expiry and last use), ended
  by `/codec/logout` everywhere at once; sign-ins are throttled per address and overall, and
  every sign-in, refusal and sign-out is logged (`infra/stores/operator_sessions.py`).
- a capability path `/codec/ui/<key>/decode`, the key derived from the operator token
  (`codec_ui_endpoint`): for `temporal server start-dev --ui-codec-endpoint`, whose UI can do
  neither. The derived key opens the codec and nothing else the operator token opens.
"""

import base64
import hashlib
import hmac
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from domain.contact_details import has_control_characters
from infra.codec import AesGcmPayloadCodec, CodecError
from infra.settings import Settings, load_settings, parse_origin_list
from infra.stores import operator_sessions
from starters.portal.auth import bearer_credential
from starters.portal.edge import RequestGuard

CODEC_PREFIX = "/codec"
SESSION_COOKIE = "portalpay_codec"
# Temporal refuses payloads over 2 MiB; a batch of a few of them is the most the UI sends.
MAX_BODY_BYTES = 16 * 1024 * 1024
_UI_KEY_CONTEXT = b"portalpay codec-ui key v1"
# The console's page headers (starters/portal/staff/console/web.py): no framing, no caching, no
# script but our own (these pages have none).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
}
HSTS = "max-age=31536000; includeSubDomains"


@dataclass(frozen=True)
class OperatorSignIn:
    """What browser sign-in needs: the database its sessions live in, and its limits."""

    pool: asyncpg.Pool
    session_lifetime: timedelta = timedelta(hours=8)
    session_idle: timedelta = timedelta(minutes=30)
    throttle_window: timedelta = timedelta(minutes=15)
    max_refusals_per_address: int = 10
    max_refusals_overall: int = 50

    @classmethod
    def from_settings(cls, settings: Settings, pool: asyncpg.Pool) -> "OperatorSignIn":
        return cls(
            pool=pool,
            session_lifetime=timedelta(seconds=settings.operator_session_absolute_seconds),
            session_idle=timedelta(seconds=settings.operator_session_idle_seconds),
            throttle_window=timedelta(seconds=settings.operator_sign_in_window_seconds),
            max_refusals_per_address=settings.operator_sign_in_max_failures_per_address,
            max_refusals_overall=settings.operator_sign_in_max_failures_overall,
        )


def _derived_key(operator_token: str, context: bytes) -> str:
    digest = hmac.new(operator_token.encode(), context, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def codec_ui_key(operator_token: str) -> str:
    """The path key the Temporal UI uses; derived, so a leaked UI config never reveals the token."""
    return _derived_key(operator_token, _UI_KEY_CONTEXT)


def codec_ui_endpoint(portal_base_url: str, operator_token: str) -> str:
    """What to give `temporal server start-dev --ui-codec-endpoint` (the UI appends /decode)."""
    return f"{portal_base_url.rstrip('/')}{CODEC_PREFIX}/ui/{codec_ui_key(operator_token)}"


def parse_origins(raw: str) -> list[str]:
    return parse_origin_list(raw)


def codec_router(
    codec: AesGcmPayloadCodec,
    operator_token: str,
    *,
    sign_in: OperatorSignIn | None = None,
    secure_cookie: bool | None = None,
) -> APIRouter:
    """`sign_in`: browser sessions (without it, only the bearer token and the UI path key open the
    codec). `secure_cookie`: True outside dev (SPEC §11); None marks it Secure only over https."""
    if not operator_token:
        raise ValueError("the codec endpoint needs an operator token")
    token = operator_token.encode()
    ui_key = codec_ui_key(operator_token).encode()

    def _same(given: str | None, expected: bytes) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected)

    async def require_operator(request: Request) -> None:
        if _same(bearer_credential(request), token):
            return
        cookie = request.cookies.get(SESSION_COOKIE)
        if (
            sign_in is not None
            and cookie
            and len(cookie) <= 128
            and await operator_sessions.load_session(sign_in.pool, cookie, idle=sign_in.session_idle)
        ):
            return
        raise _unauthorized()

    def require_ui_key(key: str) -> None:
        if not _same(key, ui_key):
            raise _unauthorized()

    router = APIRouter(prefix=CODEC_PREFIX, tags=["codec"])
    operator = [Depends(require_operator)]
    ui = [Depends(require_ui_key)]

    async def encode(request: Request) -> JSONResponse:
        return await _convert(request, codec, encode=True)

    async def decode(request: Request) -> JSONResponse:
        return await _convert(request, codec, encode=False)

    router.add_api_route(
        "/encode", encode, methods=["POST"], dependencies=operator, summary="Encrypt payloads"
    )
    router.add_api_route(
        "/decode", decode, methods=["POST"], dependencies=operator, summary="Decrypt payloads"
    )
    router.add_api_route(
        "/ui/{key}/encode", encode, methods=["POST"], dependencies=ui, include_in_schema=False
    )
    router.add_api_route(
        "/ui/{key}/decode", decode, methods=["POST"], dependencies=ui, include_in_schema=False
    )

    @router.get("/session", include_in_schema=False, dependencies=operator, status_code=204)
    async def session() -> Response:
        """204 for a signed-in operator, 401 otherwise: the UI proxy's `auth_request` (deploy/ui-proxy)."""
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    @router.get("/login", include_in_schema=False)
    async def login_form() -> HTMLResponse:
        if sign_in is None:
            return _html(_page("Browser sign-in is served by the portal; use the bearer token here."), 404)
        return _html(_login_page())

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if sign_in is None:
            return _html(_page("Browser sign-in is served by the portal."), 404)
        ip = request.client.host if request.client else "unknown"
        user_agent = request.headers.get("user-agent")
        here, everywhere = await operator_sessions.recent_refusals(
            sign_in.pool, ip=ip, window=sign_in.throttle_window
        )
        if here >= sign_in.max_refusals_per_address or everywhere >= sign_in.max_refusals_overall:
            # Refused before the token is looked at: a guesser learns nothing, even when right.
            await operator_sessions.log_sign_in(
                sign_in.pool, "throttled", operator=None, ip=ip, user_agent=user_agent
            )
            retry_after = int(sign_in.throttle_window.total_seconds())
            answer = _html(_login_page("Too many refused sign-ins. Try again later."), 429)
            answer.headers["Retry-After"] = str(retry_after)
            return answer
        form = parse_qs((await request.body())[:4096].decode(errors="replace"))
        given = (form.get("token") or [""])[0].strip()
        operator = " ".join((form.get("operator") or [""])[0].split())[:200]
        if not _plausible_token(given):
            # Empty, binary or oversized: malformed input that can never be the token, not a guess.
            return _html(_login_page("That is not the operator token."), 401)
        if not _same(given, token):
            await operator_sessions.log_sign_in(
                sign_in.pool, "refused", operator=operator or None, ip=ip, user_agent=user_agent
            )
            return _html(_login_page("That is not the operator token."), 401)
        if has_control_characters(operator):
            return _html(_login_page("Your name or email may not hold control characters."), 422)
        # The name is what the operator says (the token is the credential); a script that sends
        # only the token still gets a session of its own, logged under its address.
        operator = operator or f"unnamed operator at {ip}"
        session_token = await operator_sessions.start_session(
            sign_in.pool, operator, lifetime=sign_in.session_lifetime, ip=ip, user_agent=user_agent
        )
        answer = _html(_page("Signed in. The Temporal UI can now decode payloads; close this tab."))
        answer.set_cookie(
            SESSION_COOKIE,
            session_token,
            max_age=int(sign_in.session_lifetime.total_seconds()),
            path=CODEC_PREFIX,
            httponly=True,
            secure=request.url.scheme == "https" if secure_cookie is None else secure_cookie,
            samesite="lax",
        )
        return answer

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        if sign_in is not None and cookie and len(cookie) <= 128:
            await operator_sessions.end_session(
                sign_in.pool,
                cookie,
                ip=request.client.host if request.client else "unknown",
                user_agent=request.headers.get("user-agent"),
            )
        answer = Response(status_code=204, headers={"Cache-Control": "no-store"})
        answer.delete_cookie(SESSION_COOKIE, path=CODEC_PREFIX)
        return answer

    return router


async def _convert(request: Request, codec: AesGcmPayloadCodec, *, encode: bool) -> JSONResponse:
    # X-Namespace is accepted and not used: one namespace, one key ring.
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail="payload batch too large")
    try:
        message = json_format.Parse(body or b"{}", Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise HTTPException(
            status_code=400, detail=f"body is not a Payloads message in JSON: {exc}"
        ) from None
    payloads: list[Payload] = list(message.payloads)
    try:
        converted = await (codec.encode(payloads) if encode else codec.decode_for_display(payloads))
    except CodecError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    # Decrypted customer data: never kept by a browser or a proxy cache.
    return JSONResponse(
        {"payloads": [json_format.MessageToDict(p) for p in converted]},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _plausible_token(given: str) -> bool:
    return 0 < len(given) <= 512 and given.isascii() and given.isprintable()


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401, detail="operator token required", headers={"WWW-Authenticate": "Bearer"}
    )


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


def _page(message: str, form: bool = False) -> str:
    form_html = (
        '<form method="post" action="login"><p><label>Your name or email '
        '<input type="text" name="operator" autocomplete="username" maxlength="200" autofocus>'
        "</label></p><p><label>Operator token "
        '<input type="password" name="token" autocomplete="off" required></label></p> '
        '<button type="submit">Sign in</button></form>'
        if form
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PortalPay codec</title></head>'
        f"<body><h1>PortalPay codec server</h1><p>{html.escape(message)}</p>{form_html}</body></html>"
    )


def _login_page(error: str | None = None) -> str:
    return _page(error or "Sign in so the Temporal UI in this browser can decode payloads.", form=True)


class _CodecCors:
    """CORS for /codec only: the Temporal UI origin gets no cross-origin access to the rest."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self._app = app
        self._cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == CODEC_PREFIX or path.startswith(CODEC_PREFIX + "/"):
            await self._cors(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def add_codec_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Let the Temporal UI at `origins` call /codec from the browser (preflight, credentials)."""
    if "*" in origins:
        raise ValueError("the codec endpoint takes credentials; list the UI origins, not '*'")
    app.add_middleware(_CodecCors, origins=list(origins))


def add_codec_security_headers(app: FastAPI, settings: Settings) -> None:
    """Every /codec answer: not cached, not sniffed; HSTS outside dev (finding 5)."""

    @app.middleware("http")
    async def _codec_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path == CODEC_PREFIX or request.url.path.startswith(CODEC_PREFIX + "/"):
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("X-Frame-Options", "DENY")
        if not settings.is_dev:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def create_codec_app(settings: Settings, *, pool: asyncpg.Pool | None = None) -> FastAPI:
    """The codec server on its own: `uvicorn --factory` or mounted by whoever owns the process.
    Browser sign-in needs the sessions' database (`pool`); without it only bearer and UI-key calls."""
    app = FastAPI(title="PortalPay codec server", docs_url=None, redoc_url=None, openapi_url=None)
    codec = AesGcmPayloadCodec(settings.codec_key_ring())
    app.include_router(
        codec_router(
            codec,
            settings.secret("operator_api_token"),
            sign_in=OperatorSignIn.from_settings(settings, pool) if pool is not None else None,
            secure_cookie=None if settings.is_dev else True,
        )
    )
    add_codec_cors(app, parse_origins(settings.codec_cors_origins))
    add_codec_security_headers(app, settings)
    app.add_middleware(RequestGuard, max_bytes=MAX_BODY_BYTES)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def codec_app_from_environment() -> FastAPI:
    """`uvicorn --factory starters.portal.codec_api:codec_app_from_environment` (settings from the environment)."""
    return create_codec_app(load_settings())
