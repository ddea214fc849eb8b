"""What every portal route is handed: the deps container (`Deps`), the caller's context, update ids.

The app factory (`starters.portal.app`) builds one `PortalDeps` per app; routes take it as `Deps`.
It opens nothing itself: the pool, the gateway and the senders are the caller's.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from pydantic import BaseModel

from domain.attempt import ClientContext
from infra.pay_links import PayLinkSigner
from infra.providers.delivery.base import CodeSender
from infra.settings import Settings
from starters.workflow_client import AttemptGateway

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
