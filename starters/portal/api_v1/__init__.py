"""`/api/v1` (SPEC §12): the company's own systems call PortalPay with an API key.

`install_api_v1` wires the gate (key, rate limit, `Idempotency-Key`), the error envelope and the
resource routers into the portal app. A router added later (webhook endpoints) only needs
`include_router` and `require_scope(...)` on its routes: the gate covers it.
"""

import asyncpg
from fastapi import FastAPI

from infra.settings import Settings
from starters.portal.api_v1 import customers, events, invoices, payments
from starters.portal.api_v1.auth import ApiV1State, RateLimiter
from starters.portal.api_v1.errors import install_api_error_handlers
from starters.portal.api_v1.gate import ApiV1Gate


def install_api_v1(app: FastAPI, settings: Settings, pool: asyncpg.Pool) -> None:
    """Call before the edge middleware is added, so the edge runs first (bounded, clean input)."""
    state = ApiV1State(
        pool=pool,
        pepper=settings.secret("api_key_pepper").encode(),
        limiter=RateLimiter(settings.api_rate_limit_per_second),
        audit_key=settings.audit_key(),
    )
    app.state.api_v1 = state
    install_api_error_handlers(app)
    app.add_middleware(ApiV1Gate, state=state)
    for router in (customers.router, invoices.router, payments.router, events.router):
        app.include_router(router)
