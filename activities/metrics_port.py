"""What activities count, as a typed port: the worker hands in `PortalPayMetrics` (Prometheus),
tests and tools hand in nothing and get `NO_METRICS`.

A Protocol rather than duck typing through `getattr`: a hook an activity calls but the
Prometheus side lacks is then a type error, not a counter that silently never moves.
"""

from typing import Protocol


class PaymentMetrics(Protocol):
    def codes_sent(self, channel: str) -> None: ...

    def sends_refused(self, scope: str) -> None: ...

    def verifications(self, result: str) -> None: ...

    def locks(self) -> None: ...

    def payments(self, outcome: str) -> None: ...


class NoMetrics:
    """Counts nothing."""

    def codes_sent(self, channel: str) -> None:
        pass

    def sends_refused(self, scope: str) -> None:
        pass

    def verifications(self, result: str) -> None:
        pass

    def locks(self) -> None:
        pass

    def payments(self, outcome: str) -> None:
        pass


NO_METRICS: PaymentMetrics = NoMetrics()
