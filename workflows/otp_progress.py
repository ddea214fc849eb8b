"""What one attempt knows of its codes (SPEC §2, §11): sends and checks counted, the code the
customer was last sent, the channels that failed, verification and a lockout.

Kept together so the send rule, the check counters and the `state` query read one object; the
workflow only decides when each changes.
"""

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.attempt import CodeChallengeView, PayerResolution
    from domain.attempt_clock import AttemptClock
    from domain.channels import Channel
    from domain.errors import ErrorType
    from workflows.attempt_refusals import refuse


@dataclass
class OtpProgress:
    send_seq: int = 0
    check_seq: int = 0
    failed_checks: int = 0
    failed_channels: list[Channel] = field(default_factory=list)
    # The code last sent successfully: the one a check is against (a failed resend keeps it).
    code: CodeChallengeView | None = None
    last_sent_at: datetime | None = None
    verified_event_id: int | None = None
    verified_at: datetime | None = None
    locked_until: datetime | None = None

    def attempts_remaining(self, clock: AttemptClock) -> int:
        return max(clock.timers.max_failed - self.failed_checks, 0)

    def sends_remaining(self, clock: AttemptClock) -> int:
        return max(clock.timers.max_sends - self.send_seq, 0)

    def check_can_send(
        self, channel: Channel, payer: PayerResolution, clock: AttemptClock, now: datetime
    ) -> None:
        """Refuses a send this attempt may not make (the caps across attempts live in PostgreSQL)."""
        if channel not in {c.channel for c in payer.channels}:
            raise refuse(ErrorType.CHANNEL_UNAVAILABLE, f"no {channel.value} on file for the payer")
        if channel in self.failed_channels:
            raise refuse(
                ErrorType.CHANNEL_UNAVAILABLE,
                f"{channel.value} delivery failed for this attempt; use another",
            )
        if self.send_seq >= clock.timers.max_sends:
            raise refuse(ErrorType.TOO_MANY_SENDS, "no more codes can be sent for this attempt")
        # A failed delivery waives the cooldown: the customer never got that code.
        delivered_code = self.code is not None and self.code.channel not in self.failed_channels
        ready_at = clock.resend_available_at(self.last_sent_at)
        if ready_at is not None and delivered_code:
            wait = (ready_at - now).total_seconds()
            if wait > 0:
                raise refuse(
                    ErrorType.RESEND_TOO_SOON,
                    "a new code can be asked for shortly",
                    retry_after=max(1, int(-(-wait // 1))),
                )

    def channel_failed(self, channel: Channel) -> None:
        if channel not in self.failed_channels:
            self.failed_channels.append(channel)

    def channels_left(self, payer: PayerResolution) -> list[str]:
        return [c.channel.value for c in payer.channels if c.channel not in self.failed_channels]

    def delivery_failed(self, channel: Channel, send_seq: int) -> None:
        """A provider reported a code undelivered: that channel is out, and that code never arrived."""
        self.channel_failed(channel)
        if self.code is not None and self.code.channel is channel and send_seq == self.code.send_seq:
            self.code = None
