"""Metrics labels from closed sets (SPEC §11, issue 10 finding 7): whatever method or path a caller
sends, the portal's request histogram gains no new label value, and no raw path reaches it."""

import re
import uuid

import httpx
from prometheus_client import REGISTRY, generate_latest

from infra.metrics import HTTP_METHODS, HTTP_REQUEST_SECONDS
from starters.portal.app import build_portal_app
from tests.portal.conftest import CLIENT_IP, Portal


def _label_values(label: str) -> set[str]:
    return {
        sample.labels[label]
        for metric in HTTP_REQUEST_SECONDS.collect()
        for sample in metric.samples
        if label in sample.labels
    }


async def test_hostile_methods_and_paths_mint_no_label_values(portal: Portal) -> None:
    h = portal.harness
    app = build_portal_app(h.settings, h.client, h.app_pool or h.pool, task_queue=h.task_queue)
    marker = uuid.uuid4().hex
    token = portal.token("INV-METRICS")
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        for method in (f"X{marker.upper()}", "PROPFIND", "get", "GET"):
            await http.request(method, f"/api/staff/customers/{marker}/contacts")
        for path in (
            f"/pay/{token}",
            f"/nowhere/{marker}",
            f"/api/portal/sessions/{marker}",
            f"/x%00{marker}",
        ):
            await http.get(path)

    methods = _label_values("method")
    assert methods <= HTTP_METHODS | {"other"}, methods
    assert "other" in methods  # the hostile methods were counted, under one value
    routes = _label_values("route")
    assert all(r == "<unmatched>" or (r.startswith("/") and marker not in r) for r in routes), routes
    assert {"/pay/{token}", "/api/staff/customers/{customer_id}/contacts"} <= routes
    exposition = generate_latest(REGISTRY).decode()
    assert marker not in exposition.lower() and token not in exposition
    # Status codes are the app's own three-digit numbers.
    assert all(re.fullmatch(r"[1-5][0-9]{2}", s) for s in _label_values("status"))
