"""The campaign's webhook promises (SPEC §12): every event written is delivered, nothing twice
beyond what a killed try explains, every signature good.

A duplicate is an event the receiver accepted (2xx) more than once. One is explained when the
product could not record the try it made (a worker killed between the POST and the record: the
try is made again with the same `webhook-id`), so the allowance per event is the number of
requests the receiver saw minus the tries the product recorded. Anything beyond is a double.
"""

from collections import Counter
from dataclasses import dataclass, field

from tools.chaos.checks import Promise


@dataclass
class WebhookFacts:
    written: list[str]  # event ids written after the endpoint was made (every type subscribed)
    accepted: Counter[str] = field(default_factory=Counter)  # webhook-id → 2xx answers
    received: Counter[str] = field(default_factory=Counter)  # webhook-id → requests seen
    recorded: Counter[str] = field(default_factory=Counter)  # event id → tries in webhook_deliveries
    unverified: int = 0  # requests whose signature did not verify


def check_webhooks(facts: WebhookFacts) -> list[Promise]:
    written = set(facts.written)
    lost = sorted(e for e in written if facts.accepted[e] == 0)
    strangers = sorted(w for w in facts.accepted if w not in written)
    doubled = {
        e: facts.accepted[e] - 1 - max(0, facts.received[e] - facts.recorded[e])
        for e in written
        if facts.accepted[e] > 1
    }
    doubled = {e: n for e, n in doubled.items() if n > 0}
    retried = sum(1 for e in written if facts.received[e] > 1)
    return [
        Promise(
            "webhooks: events written = events delivered (0 lost)",
            f"{len(written) - len(lost)}/{len(written)} delivered, {retried} after retries",
            bool(written) and not lost and not strangers,
            "; ".join([*(f"lost {e}" for e in lost[:5]), *(f"never written {w}" for w in strangers[:5])])
            or ("no event was written" if not written else ""),
        ),
        Promise(
            "webhooks: 0 duplicates beyond retries",
            f"{sum(doubled.values())} beyond retries",
            not doubled,
            "; ".join(f"{e} accepted {facts.accepted[e]}x" for e in list(doubled)[:5]),
        ),
        Promise(
            "webhooks: every signature verifies (standardwebhooks)",
            f"{facts.unverified} unverified of {sum(facts.received.values())} requests",
            facts.unverified == 0,
        ),
    ]
