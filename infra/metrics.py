"""Prometheus metrics: PortalPay's payment counters, portal request latency, Temporal SDK metrics.

Our counters live in prometheus_client's default registry and are served by
`start_metrics_server`. The Temporal SDK's own metrics (task latencies, poller counts, ...)
come from the Rust core and are served by the runtime's exporter on a port of their own.

Never import this module from workflow code: counters are side effects, so they are counted in
activities, after the side effect happened, and a replay does not count twice.
"""

import time
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

# Labels are closed sets so a typo or an attacker cannot mint new time series.
_CHANNELS = ("email", "sms")
_OTHER = "other"
_UNMATCHED_ROUTE = "<unmatched>"
# Any string is a valid HTTP method token; only these become label values.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

OTP_CODES_SENT = Counter(
    "portalpay_otp_codes_sent", "OTP codes accepted by the email/SMS provider.", ["channel"]
)
OTP_VERIFICATIONS = Counter(
    "portalpay_otp_verifications", "OTP codes checked, by result (ok or failed).", ["result"]
)
# The send caps of SPEC §11 a refused send hit (activities/otp.py `send_cap_refusal`).
_SEND_CAP_SCOPES = ("invoice", "invoice_cooldown", "destination")
OTP_SENDS_REFUSED = Counter(
    "portalpay_otp_sends_refused", "Code sends refused by a send cap, by the cap hit.", ["scope"]
)
OTP_LOCKS = Counter("portalpay_otp_locks", "Attempts locked after too many wrong codes.")
PAYMENTS = Counter("portalpay_payments", "Debits answered by the processor, by outcome.", ["outcome"])
HTTP_REQUEST_SECONDS = Histogram(
    "portalpay_http_request_seconds",
    "Portal request latency, labelled by route template (not the raw path).",
    ["method", "route", "status"],
)

# Series exist at zero from the start, so rate() and alerts work before the first event.
for _channel in _CHANNELS:
    OTP_CODES_SENT.labels(channel=_channel)
for _result in ("ok", "failed"):
    OTP_VERIFICATIONS.labels(result=_result)
for _scope in _SEND_CAP_SCOPES:
    OTP_SENDS_REFUSED.labels(scope=_scope)
for _outcome in ("paid", "declined"):
    PAYMENTS.labels(outcome=_outcome)


class PortalPayMetrics:
    """The hooks activities call (`WorkerDeps.metrics`), satisfying `activities.metrics_port.PaymentMetrics`."""

    def codes_sent(self, channel: str) -> None:
        OTP_CODES_SENT.labels(channel=channel if channel in _CHANNELS else _OTHER).inc()

    def verifications(self, result: Literal["ok", "failed"] | str) -> None:
        OTP_VERIFICATIONS.labels(result="ok" if result == "ok" else "failed").inc()

    def sends_refused(self, scope: str) -> None:
        OTP_SENDS_REFUSED.labels(scope=scope if scope in _SEND_CAP_SCOPES else _OTHER).inc()

    def locks(self) -> None:
        OTP_LOCKS.inc()

    def payments(self, outcome: Literal["paid", "declined"] | str) -> None:
        PAYMENTS.labels(outcome=outcome if outcome in ("paid", "declined") else _OTHER).inc()


PORTALPAY_METRICS = PortalPayMetrics()


def start_metrics_server(port: int, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY) -> None:
    """Serve `/metrics` from a daemon thread; returns once the port is bound (fails if it is taken)."""
    start_http_server(port, addr=addr, registry=registry)


def temporal_runtime_with_prometheus(bind_address: str) -> Runtime:
    """A Temporal runtime whose SDK metrics are scraped at http://<bind_address>/metrics.

    The exporter binds when the runtime is created. Use one runtime per process and pass it to
    every `Client.connect(..., runtime=...)` in that process.
    """
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


class RequestMetricsMiddleware:
    """Times every HTTP request; the route label is the matched template, e.g. `/api/x/{id}`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_and_note_status)
        finally:
            HTTP_REQUEST_SECONDS.labels(
                method=_method_label(scope.get("method", "")),
                route=_route_template(scope, root_path),
                status=str(status),
            ).observe(time.perf_counter() - started)


def _method_label(method: str) -> str:
    return method if method in HTTP_METHODS else _OTHER


def _route_template(scope: Scope, outer_root_path: str) -> str:
    # Starlette's router records the matched route in the scope it was handed (ours).
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return _UNMATCHED_ROUTE
    # Inside a Mount the route path is relative; the mount's prefix was added to root_path.
    root_path = scope.get("root_path", "")
    prefix = root_path[len(outer_root_path) :] if root_path.startswith(outer_root_path) else ""
    return (prefix + template) or "/"


def add_request_metrics(app: Starlette) -> None:
    """Install the latency middleware on a Starlette/FastAPI app (before it starts serving)."""
    app.add_middleware(RequestMetricsMiddleware)
