"""Connecting to Temporal with the one data converter; a clear error when the server is away.

The worker, the portal and every CLI command connect here, so all of them reach a secured
cluster the same way (SPEC §11): mTLS from `TEMPORAL_TLS_CERT`/`TEMPORAL_TLS_KEY` (PEM files),
an optional private CA (`TEMPORAL_TLS_CA`) and server name (`TEMPORAL_TLS_SERVER_NAME`), and/or
an API key (`TEMPORAL_API_KEY`, Temporal Cloud; TLS is then on with the system CAs).
"""

from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from infra.converter import build_data_converter
from infra.settings import Settings, SettingsError


class TemporalUnavailable(Exception):
    pass


@dataclass(frozen=True)
class ConnectOptions:
    """What `Client.connect` is given besides the address, namespace and converter."""

    tls: TLSConfig | bool
    api_key: str | None


def _read_pem(setting: str, path: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path} ({exc.strerror or exc})") from None
    if b"-----BEGIN " not in data:
        raise SettingsError(f"{setting}: {path} is not a PEM file")
    return data


def connect_options(settings: Settings) -> ConnectOptions:
    """The TLS and API-key arguments the settings ask for; SettingsError (one line) if they cannot work."""
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if bool(cert) != bool(key):
        raise SettingsError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both or neither")
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    ca = settings.temporal_tls_ca
    server_name = settings.temporal_tls_server_name
    if not (cert or ca or server_name):
        # Plain TLS with the system CAs when asked for, or implied by an API key (never send a
        # bearer credential in the clear).
        return ConnectOptions(tls=bool(settings.temporal_tls or api_key), api_key=api_key or None)
    return ConnectOptions(
        tls=TLSConfig(
            client_cert=_read_pem("TEMPORAL_TLS_CERT", cert) if cert else None,
            client_private_key=_read_pem("TEMPORAL_TLS_KEY", key) if key else None,
            server_root_ca_cert=_read_pem("TEMPORAL_TLS_CA", ca) if ca else None,
            domain=server_name or None,
        ),
        api_key=api_key or None,
    )


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    options = connect_options(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=build_data_converter(settings.codec_key_ring()),
            runtime=runtime,
            tls=options.tls,
            api_key=options.api_key,
        )
    except RuntimeError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc).splitlines()[0][:120]
        raise TemporalUnavailable(
            f"cannot reach Temporal at {settings.temporal_address} ({reason}); is the server running?"
        ) from exc
