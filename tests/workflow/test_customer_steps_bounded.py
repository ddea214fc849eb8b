"""Issue 20 finding 7 (attempt side): a step the customer waits on under the attempt's lock is
bounded. A code check that cannot reach the database answers "try again" (429 with retry_after)
instead of holding the lock, and every other message of the attempt, for the old 7 days."""

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity

from activities.otp import OtpActivities
from domain.activity_io import CheckCodeRequest, CheckCodeResult
from domain.channels import Channel
from domain.errors import ErrorType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.workflow.steps import Attempt, new_invoice
from workers import worker as worker_module
from workflows import activity_options as opts


class DatabaseGoneForChecks(OtpActivities):
    @activity.defn(name="check_code")
    async def check_code(self, request: CheckCodeRequest) -> CheckCodeResult:
        raise ConnectionError("the database does not answer")


async def test_a_code_check_that_cannot_finish_answers_try_again_and_frees_the_attempt(
    harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real bound is minutes; the rule is the same at seconds.
    monkeypatch.setattr(opts, "CUSTOMER_STEP_WITHIN", timedelta(seconds=4), raising=False)
    monkeypatch.setattr(worker_module, "OtpActivities", DatabaseGoneForChecks)
    async with harness_factory() as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        _, code = await attempt.send_and_read(Channel.SMS)
        with pytest.raises(AttemptRefused) as refused:
            async with asyncio.timeout(90):  # the old code held the lock for 7 days here
                await attempt.verify(code)
        assert refused.value.type is ErrorType.ATTEMPT_BUSY
        assert refused.value.retry_after == opts.CUSTOMER_STEP_RETRY_AFTER_SECONDS
        state = await attempt.current()
        # Nothing was judged: no guess counted, the code still stands, the attempt takes messages.
        assert state.status is PaymentStatus.AWAITING_CODE
        assert state.attempts_remaining == h.settings.attempt_timers().max_failed
        with pytest.raises(AttemptRefused) as again:
            async with asyncio.timeout(90):
                await attempt.verify(code)
        assert again.value.type is ErrorType.ATTEMPT_BUSY
