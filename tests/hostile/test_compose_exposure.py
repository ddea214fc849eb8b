"""What docker-compose.yml exposes (SPEC §11, issue 10 finding 2): no Temporal frontend port, the
portal published, the Temporal UI only on 127.0.0.1 behind the operator sign-in, and the TLS /
API-key settings passed to the worker and the portal. Docker is not needed."""

import re
from pathlib import Path
from typing import Any

import asyncpg
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NGINX_CONF = ROOT / "deploy" / "ui-proxy" / "nginx.conf"


def _published(service: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    """(host ip or None, host port, container port) for each published port, short or long syntax."""
    found: list[tuple[str | None, str, str]] = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.append((port.get("host_ip"), str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split("/")[0].rsplit(":", 2)
        if len(parts) == 3:
            found.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            found.append((None, parts[0], parts[1]))
        else:
            found.append((None, parts[0], parts[0]))
    return found


def test_no_service_publishes_the_temporal_frontend() -> None:
    for name, service in COMPOSE["services"].items():
        for _, host_port, container_port in _published(service):
            assert "7233" not in (host_port, container_port), name
    assert "ports" not in COMPOSE["services"]["temporal"]


def test_only_the_portal_is_published_on_all_interfaces() -> None:
    open_to_all = {
        name
        for name, service in COMPOSE["services"].items()
        for host_ip, _, _ in _published(service)
        if host_ip not in ("127.0.0.1", "::1", "[::1]")
    }
    assert open_to_all == {"portal"}


def test_the_ui_is_reached_only_through_the_operator_sign_in() -> None:
    services = COMPOSE["services"]
    assert "ports" not in services["temporal-ui"]
    proxy = services["ui-proxy"]
    assert _published(proxy) == [("127.0.0.1", "8080", "8080")]
    assert any(str(v).startswith("./deploy/ui-proxy/nginx.conf:") for v in proxy["volumes"])
    conf = NGINX_CONF.read_text()
    # Every UI location is guarded by the portal's operator check; a refusal goes to the sign-in.
    ui_block = re.search(r"location / \{(.*?)\n    \}", conf, re.S)
    assert ui_block is not None
    assert "auth_request /_operator_check;" in ui_block.group(1)
    assert "proxy_pass http://temporal-ui:8080;" in ui_block.group(1)
    assert re.search(
        r"location = /_operator_check \{[^}]*internal;[^}]*proxy_pass http://portal:8000/codec/session;", conf
    )
    assert re.search(r"location @sign_in \{\s*return 302 /codec/login;", conf)
    # Nothing else reaches the UI unguarded.
    assert conf.count("proxy_pass http://temporal-ui") == 1


def test_worker_and_portal_get_the_temporal_tls_and_api_key_settings() -> None:
    for name in ("worker", "portal"):
        service = COMPOSE["services"][name]
        env = service.get("environment") or {}
        for variable in (
            "TEMPORAL_TLS_CERT",
            "TEMPORAL_TLS_KEY",
            "TEMPORAL_TLS_CA",
            "TEMPORAL_TLS_SERVER_NAME",
            "TEMPORAL_API_KEY",
        ):
            assert env.get(variable) == f"${{{variable}:-}}", (name, variable)
    # Only the portal is behind a reverse proxy whose X-Forwarded-* it believes.
    assert COMPOSE["services"]["portal"]["environment"]["TRUSTED_PROXIES"] == "${TRUSTED_PROXIES:-}"


async def test_the_operator_check_the_proxy_asks_answers_204_only_for_a_signed_in_operator(
    app_pool: asyncpg.Pool,
) -> None:
    import httpx

    from starters.portal.codec_api import SESSION_COOKIE, codec_ui_key, create_codec_app
    from tests.support import test_settings

    settings = test_settings(operator_api_token="operator-" + "x" * 32)
    token = settings.secret("operator_api_token")
    app = create_codec_app(settings, pool=app_pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ui.test") as http:
        assert (await http.get("/codec/session")).status_code == 401
        assert (
            await http.get("/codec/session", headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
        assert (await http.get("/codec/session", cookies={SESSION_COOKIE: "forged"})).status_code == 401
        # The UI path key opens the codec path, not the UI: neither as a bearer nor as the cookie.
        assert (
            await http.get("/codec/session", cookies={SESSION_COOKIE: codec_ui_key(token)})
        ).status_code == 401
        assert (
            await http.get("/codec/session", headers={"Authorization": f"Bearer {codec_ui_key(token)}"})
        ).status_code == 401
        assert (
            await http.get("/codec/session", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 204
        signed_in = await http.post("/codec/login", data={"token": token, "operator": "ops@example.com"})
        assert signed_in.status_code == 200
        assert (await http.get("/codec/session")).status_code == 204


def test_the_owner_and_temporal_database_passwords_stay_with_who_needs_them() -> None:
    """Issue 21 finding 2, tried again: compose gave the owner's password, the Temporal database
    password and every app secret to every app container, the sandbox processor included."""
    text = {name: yaml.safe_dump(service.get("environment")) for name, service in COMPOSE["services"].items()}
    assert {name for name, env in text.items() if "APP_DB_PASSWORD" in env} == {"postgres", "migrate"}
    assert {name for name, env in text.items() if "TEMPORAL_DB_PASSWORD" in env} == {
        "temporal-postgresql",
        "temporal-schema",
        "temporal",
    }
    processor = text["processor"]
    for secret in ("STAFF_API_TOKEN", "OPERATOR_API_TOKEN", "LINK_SIGNING_KEY", "OTP_HMAC_KEY", "CODEC_KEYS"):
        assert secret not in processor, secret
    # Not one network for all: the processor shares none with Temporal or its database.
    processor_nets = set(COMPOSE["services"]["processor"]["networks"])
    for other in ("temporal", "temporal-postgresql", "temporal-ui", "ui-proxy", "migrate"):
        assert not processor_nets & set(COMPOSE["services"][other]["networks"]), other
