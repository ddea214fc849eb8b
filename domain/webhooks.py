"""Webhook deliveries to the company's own systems (SPEC §12, Standard Webhooks): who gets which
event, how a try is judged, and when the next try comes.

Pure rules shared by the delivery workflow, its activity, the API and the console. The workflow
only ever sees ids and outcomes: the secret, the URL and the event body stay in PostgreSQL and are
read by the activity on each try, so nothing secret reaches a history.
"""

import re
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel

from domain.events import EventType

ENDPOINT_ID_PATTERN = re.compile(r"^we_[0-9a-z]{24}$")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ALL_EVENTS = "*"
# A receiver has this long to answer 2xx; anything slower is a failed try.
TRY_TIMEOUT_SECONDS = 15.0
# SPEC §12 (Svix's schedule plus one): the first retry within 10 s, at least 8 retries spanning at
# least 24 h. Each is a durable timer in the delivery workflow.
DEFAULT_RETRY_DELAYS_SECONDS: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)
MIN_RETRIES = 8
MIN_RETRY_SPAN = timedelta(hours=24)
MAX_FIRST_RETRY_SECONDS = 10.0
DEFAULT_DISABLE_AFTER = timedelta(days=5)
# A rotated-out secret keeps signing beside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)


def delivery_workflow_id(endpoint_id: str, event_id: str) -> str:
    """One durable delivery per (endpoint, event); a second start with this id is a no-op."""
    return f"webhook-{endpoint_id}-{event_id}"


def subscribes(subscribed: list[str] | tuple[str, ...], event_type: str) -> bool:
    return ALL_EVENTS in subscribed or event_type in subscribed


def unknown_event_types(requested: list[str]) -> list[str]:
    """What in a subscription list is neither `*` nor one of the SPEC's event types."""
    known = {str(t) for t in EventType}
    return [name for name in requested if name != ALL_EVENTS and name not in known]


def retry_schedule_is_safe(delays: tuple[float, ...]) -> bool:
    """The floor SPEC §12 promises outside dev (tests and dev may shorten the schedule)."""
    return (
        len(delays) >= MIN_RETRIES
        and delays[0] <= MAX_FIRST_RETRY_SECONDS
        and sum(delays) >= MIN_RETRY_SPAN.total_seconds()
    )


def parse_duration(text: str) -> timedelta:
    """`432000`, `90s`, `30m`, `36h` or `5d` (WEBHOOK_DISABLE_AFTER and the retry schedule)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 2h or 5d")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=float(match.group(1)) * unit)


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """WEBHOOK_RETRY_SCHEDULE: the delays between tries, in seconds."""
    delays = tuple(parse_duration(item).total_seconds() for item in text.split(",") if item.strip())
    if not delays or any(d <= 0 for d in delays):
        raise ValueError("list positive delays, e.g. 5s,5m,30m,2h,5h,10h,10h,10h")
    return delays


class TryOutcome(StrEnum):
    DELIVERED = "delivered"  # 2xx within the timeout
    FAILED = "failed"  # anything else: retried on the schedule
    ENDPOINT_GONE = "endpoint_gone"  # 410, or the endpoint was disabled or deleted: no more tries


def judge_response(status_code: int | None) -> TryOutcome:
    if status_code is not None and 200 <= status_code < 300:
        return TryOutcome.DELIVERED
    if status_code == 410:
        return TryOutcome.ENDPOINT_GONE
    return TryOutcome.FAILED


class WebhookDeliveryInput(BaseModel):
    endpoint_id: str
    event_id: str


class WebhookTryRequest(BaseModel):
    endpoint_id: str
    event_id: str
    attempt: int  # 1 for the first try


class WebhookTryResult(BaseModel):
    outcome: TryOutcome
    status_code: int | None = None
    error: str | None = None
    # From the worker's schedule: how long until the next try; None when there is none.
    retry_after_seconds: float | None = None


class WebhookDeliveryOutcome(BaseModel):
    endpoint_id: str
    event_id: str
    outcome: TryOutcome
    tries: int
