"""Connecting to Temporal with the one data converter; a clear error when the server is away."""

from temporalio.client import Client
from temporalio.runtime import Runtime

from infra.converter import build_data_converter
from infra.settings import Settings


class TemporalUnavailable(Exception):
    pass


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=build_data_converter(settings.codec_key_ring()),
            runtime=runtime,
        )
    except RuntimeError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc).splitlines()[0][:120]
        raise TemporalUnavailable(
            f"cannot reach Temporal at {settings.temporal_address} ({reason}); is the server running?"
        ) from exc
