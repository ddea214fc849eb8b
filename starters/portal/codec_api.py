"""Codec server for the Temporal UI and CLI: POST /codec/encode and /codec/decode, operator only.

Speaks the Temporal codec-server protocol: a `Payloads` message in protobuf-JSON form in, the
same shape out. Every call needs the operator's credential, in one of three forms:

- `Authorization: Bearer <OPERATOR_API_TOKEN>`: the CLI, scripts, an auth proxy.
- a cookie set by signing in at `/codec/login`: the Temporal UI in a browser, which cannot add
  a header of its own (its codec client only forwards an OIDC token, and only over https) but
  sends cookies when `TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true`.
- a capability path `/codec/ui/<key>/decode`, the key derived from the operator token
  (`codec_ui_endpoint`): for `temporal server start-dev --ui-codec-endpoint`, whose UI can do
  neither. The derived key opens the codec and nothing else the operator token opens.
"""

import base64
import hashlib
import hmac
import html
from collections.abc import Sequence
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from infra.codec import AesGcmPayloadCodec, CodecError
from infra.settings import Settings, load_settings
from starters.portal.auth import bearer_credential
from starters.portal.edge import RequestGuard

CODEC_PREFIX = "/codec"
SESSION_COOKIE = "portalpay_codec"
SESSION_SECONDS = 8 * 3600
# Temporal refuses payloads over 2 MiB; a batch of a few of them is the most the UI sends.
MAX_BODY_BYTES = 16 * 1024 * 1024
_UI_KEY_CONTEXT = b"portalpay codec-ui key v1"
# The sign-in cookie also opens the Temporal UI behind ui-proxy, so it is not the UI path key:
# a `--ui-codec-endpoint` URL (dev) never doubles as an operator session.
_SESSION_KEY_CONTEXT = b"portalpay operator-session v1"


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
    return [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]


def codec_router(
    codec: AesGcmPayloadCodec, operator_token: str, *, secure_cookie: bool | None = None
) -> APIRouter:
    """`secure_cookie`: True outside dev (SPEC §11); None marks it Secure only over https."""
    if not operator_token:
        raise ValueError("the codec endpoint needs an operator token")
    token = operator_token.encode()
    ui_key = codec_ui_key(operator_token).encode()
    session_key = _derived_key(operator_token, _SESSION_KEY_CONTEXT).encode()

    def _same(given: str | None, expected: bytes) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected)

    def require_operator(request: Request) -> None:
        if _same(bearer_credential(request), token):
            return
        if _same(request.cookies.get(SESSION_COOKIE), session_key):
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
        return HTMLResponse(_login_page())

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body())[:4096].decode(errors="replace"))
        given = (form.get("token") or [""])[0].strip()
        if not _same(given, token):
            return HTMLResponse(_login_page("That is not the operator token."), status_code=401)
        answer = HTMLResponse(_page("Signed in. The Temporal UI can now decode payloads; close this tab."))
        # The cookie holds the derived key, never the operator token itself.
        answer.set_cookie(
            SESSION_COOKIE,
            session_key.decode(),
            max_age=SESSION_SECONDS,
            path=CODEC_PREFIX,
            httponly=True,
            secure=request.url.scheme == "https" if secure_cookie is None else secure_cookie,
            samesite="lax",
        )
        return answer

    @router.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        answer = Response(status_code=204)
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
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in converted]})


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401, detail="operator token required", headers={"WWW-Authenticate": "Bearer"}
    )


def _page(message: str, form: bool = False) -> str:
    form_html = (
        '<form method="post" action="login"><label>Operator token '
        '<input type="password" name="token" autocomplete="off" autofocus></label> '
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


def create_codec_app(settings: Settings) -> FastAPI:
    """The codec server on its own: `uvicorn --factory` or mounted by whoever owns the process."""
    app = FastAPI(title="PortalPay codec server", docs_url=None, redoc_url=None)
    codec = AesGcmPayloadCodec(settings.codec_key_ring())
    app.include_router(
        codec_router(
            codec, settings.secret("operator_api_token"), secure_cookie=None if settings.is_dev else True
        )
    )
    add_codec_cors(app, parse_origins(settings.codec_cors_origins))
    app.add_middleware(RequestGuard, max_bytes=MAX_BODY_BYTES)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def codec_app_from_environment() -> FastAPI:
    """`uvicorn --factory starters.portal.codec_api:codec_app_from_environment` (settings from the environment)."""
    return create_codec_app(load_settings())
