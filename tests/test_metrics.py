"""PortalPay's Prometheus counters, the portal latency middleware, and the SDK metrics exporter."""

import socket
import time

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from infra.metrics import (
    PORTALPAY_METRICS,
    add_request_metrics,
    start_metrics_server,
    temporal_runtime_with_prometheus,
)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_counters_increment() -> None:
    before = {
        "sms": _value("portalpay_otp_codes_sent_total", channel="sms"),
        "ok": _value("portalpay_otp_verifications_total", result="ok"),
        "failed": _value("portalpay_otp_verifications_total", result="failed"),
        "locks": _value("portalpay_otp_locks_total"),
        "paid": _value("portalpay_payments_total", outcome="paid"),
        "declined": _value("portalpay_payments_total", outcome="declined"),
        "refused": _value("portalpay_otp_sends_refused_total", scope="destination"),
    }
    PORTALPAY_METRICS.codes_sent("sms")
    PORTALPAY_METRICS.verifications("ok")
    PORTALPAY_METRICS.verifications("failed")
    PORTALPAY_METRICS.verifications("failed")
    PORTALPAY_METRICS.locks()
    PORTALPAY_METRICS.payments("paid")
    PORTALPAY_METRICS.payments("declined")
    PORTALPAY_METRICS.sends_refused("destination")

    assert _value("portalpay_otp_codes_sent_total", channel="sms") == before["sms"] + 1
    assert _value("portalpay_otp_verifications_total", result="ok") == before["ok"] + 1
    assert _value("portalpay_otp_verifications_total", result="failed") == before["failed"] + 2
    assert _value("portalpay_otp_locks_total") == before["locks"] + 1
    assert _value("portalpay_payments_total", outcome="paid") == before["paid"] + 1
    assert _value("portalpay_payments_total", outcome="declined") == before["declined"] + 1
    assert _value("portalpay_otp_sends_refused_total", scope="destination") == before["refused"] + 1


def test_series_exist_before_the_first_event() -> None:
    assert REGISTRY.get_sample_value("portalpay_otp_codes_sent_total", {"channel": "email"}) is not None
    assert REGISTRY.get_sample_value("portalpay_payments_total", {"outcome": "declined"}) is not None


def test_unexpected_labels_do_not_mint_series() -> None:
    PORTALPAY_METRICS.codes_sent("carrier-pigeon")
    PORTALPAY_METRICS.payments("weird")
    assert _value("portalpay_otp_codes_sent_total", channel="carrier-pigeon") == 0
    assert _value("portalpay_otp_codes_sent_total", channel="other") >= 1
    assert _value("portalpay_payments_total", outcome="other") >= 1


async def test_middleware_records_requests_by_route_template() -> None:
    app = FastAPI()

    @app.get("/api/portal/sessions/{session_id}")
    async def session(session_id: str) -> dict[str, str]:
        return {"session_id": session_id}

    add_request_metrics(app)
    labels = {"method": "GET", "route": "/api/portal/sessions/{session_id}", "status": "200"}
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    before = _value("portalpay_http_request_seconds_count", **labels)
    before_unmatched = _value("portalpay_http_request_seconds_count", **unmatched)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://portal") as client:
        assert (await client.get("/api/portal/sessions/abc")).status_code == 200
        assert (await client.get("/api/portal/sessions/def")).status_code == 200
        assert (await client.get("/no/such/page")).status_code == 404

    assert _value("portalpay_http_request_seconds_count", **labels) == before + 2
    assert _value("portalpay_http_request_seconds_count", **unmatched) == before_unmatched + 1
    assert _value("portalpay_http_request_seconds_sum", **labels) > 0
    # Raw paths never become labels.
    assert _value("portalpay_http_request_seconds_count", method="GET", route="/api/portal/sessions/abc") == 0


def test_metrics_server_serves_the_registry() -> None:
    registry = CollectorRegistry()
    Counter("portalpay_probe", "probe", registry=registry).inc()
    port = _free_port()
    start_metrics_server(port, addr="127.0.0.1", registry=registry)
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "portalpay_probe_total 1.0" in body


def test_temporal_runtime_exports_prometheus() -> None:
    port = _free_port()
    runtime = temporal_runtime_with_prometheus(f"127.0.0.1:{port}")
    # The Rust core binds the exporter on its own thread; give it a moment.
    deadline = time.monotonic() + 5
    while True:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            break
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert answer.status_code == 200
    del runtime
