"""`WebhookDeliveryWorkflow`: one event to one endpoint, tried on the retry schedule (SPEC §12).

Id `webhook-<endpoint_id>-<event_id>`, started by the outbox relay. Each try is one activity that
reads the endpoint and the event from PostgreSQL, checks the address, signs and POSTs, and
records the try; its result says whether it was delivered, whether the endpoint is gone, and how
long until the next try (the worker's schedule, recorded in history so replay is the same). The
waits are durable timers, so worker and server restarts lose nothing.

A receiver that misbehaves is data, never an exception: the run ends COMPLETED whatever the
receiver did. Even an activity that cannot finish (the database away for days) ends the run as a
failed delivery, which `redeliver` can start again.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.webhooks import (
        TryOutcome,
        WebhookDeliveryInput,
        WebhookDeliveryOutcome,
        WebhookTryRequest,
        WebhookTryResult,
    )

DELIVER_WEBHOOK = "deliver_webhook"
SWEEP_WEBHOOK_EVENTS = "sweep_webhook_events"
SWEEP_SCHEDULE_ID = "webhook-relay-sweep"

# One try is at most 15 s of HTTP plus a few database statements; the heartbeat lets a try on a
# killed worker be taken over in seconds (at most one duplicate POST, same webhook-id).
TRY_TIMEOUT = timedelta(seconds=45)
TRY_HEARTBEAT = timedelta(seconds=10)
# The activity raises only when the database or the worker fails, never for the receiver:
# retried until it answers, for as long as the whole schedule would last.
TRY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
TRY_MUST_FINISH_WITHIN = timedelta(days=2)
SWEEP_TIMEOUT = timedelta(minutes=5)
SWEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, input: WebhookDeliveryInput) -> WebhookDeliveryOutcome:
        attempt = 0
        outcome = TryOutcome.FAILED
        while True:
            attempt += 1
            try:
                result: WebhookTryResult = await workflow.execute_activity(
                    DELIVER_WEBHOOK,
                    WebhookTryRequest(
                        endpoint_id=input.endpoint_id, event_id=input.event_id, attempt=attempt
                    ),
                    result_type=WebhookTryResult,
                    start_to_close_timeout=TRY_TIMEOUT,
                    schedule_to_close_timeout=TRY_MUST_FINISH_WITHIN,
                    heartbeat_timeout=TRY_HEARTBEAT,
                    retry_policy=TRY_RETRY,
                    summary=f"try {attempt}",
                )
            except ActivityError:
                break  # recorded as a failed delivery; `redeliver` starts it again
            outcome = result.outcome
            workflow.set_current_details(
                f"try {attempt}: {result.outcome.value}"
                + (f" ({result.status_code})" if result.status_code is not None else "")
            )
            if outcome is not TryOutcome.FAILED or result.retry_after_seconds is None:
                break
            await workflow.sleep(timedelta(seconds=result.retry_after_seconds), summary="next try")
        return WebhookDeliveryOutcome(
            endpoint_id=input.endpoint_id, event_id=input.event_id, outcome=outcome, tries=attempt
        )


@workflow.defn
class WebhookSweepWorkflow:
    """The `webhook-relay-sweep` Schedule's job: start deliveries for events the relay missed."""

    @workflow.run
    async def run(self) -> int:
        started: int = await workflow.execute_activity(
            SWEEP_WEBHOOK_EVENTS,
            result_type=int,
            start_to_close_timeout=SWEEP_TIMEOUT,
            retry_policy=SWEEP_RETRY,
            summary="start deliveries for undispatched events",
        )
        return started
