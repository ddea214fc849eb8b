"""`portalpay try <invoice>`: a whole attempt from the terminal, as a customer would click it."""

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from domain.attempt import (
    ClientContext,
    PaymentDetails,
    RequestCodeInput,
    SubmitPaymentInput,
    VerifyCodeInput,
)
from domain.channels import Channel
from domain.otp_code import find_code
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from infra.resources import ExpectedFailure, open_resources
from infra.settings import Settings
from infra.stores.audit_trail import chain_ok, fetch_trail
from starters.workflow_client import AttemptGateway

console = Console()
SANDBOX_ROUTING = "011000015"
CLI = ClientContext(actor="cli", ip="127.0.0.1", user_agent="portalpay-try")


async def _code_from_outbox(
    gateway: AttemptGateway, invoice_id: str, run_id: str, channel: Channel
) -> str | None:
    """Console provider only: the outbox row for this send, matched by its idempotency key."""
    state = await gateway.state(invoice_id, run_id)
    key_prefix = f"{state.workflow_id}/{run_id}/code/"
    for _ in range(50):
        row = await gateway.pool.fetchrow(
            "SELECT body FROM dev_outbox WHERE idempotency_key LIKE $1 || '%' AND channel = $2 ORDER BY id DESC LIMIT 1",
            key_prefix,
            channel.value,
        )
        if row is not None:
            code = find_code(row["body"])
            if code:
                return code
        await asyncio.sleep(0.1)
    return None


async def run_try(
    settings: Settings, invoice_id: str, *, channel: str | None, account: str, method: str
) -> bool:
    try:
        pay_method = PaymentMethod(method)
        wanted = Channel(channel) if channel else None
    except ValueError as exc:
        raise ExpectedFailure(str(exc)) from None
    async with open_resources(settings) as res:
        gateway = AttemptGateway(res.client, res.pool, settings)
        state = await gateway.open(invoice_id, CLI)
        run_id = state.run_id
        console.print(
            f"[bold]{invoice_id}[/] attempt {state.workflow_id} ({run_id[:8]}…): {state.status.value}; "
            f"payer [bold]{state.payer_name}[/]"
        )
        if state.status is PaymentStatus.CHOOSING_CHANNEL:
            offered = [c.channel for c in state.channels if c.channel not in state.failed_channels]
            chosen = wanted or offered[0]
            if chosen not in offered:
                raise ExpectedFailure(
                    f"{chosen.value} is not on file for {state.payer_name}; on file: {offered}"
                )
            sent = await gateway.request_code(
                invoice_id, run_id, RequestCodeInput(channel=chosen, client=CLI)
            )
            console.print(f"code sent by {sent.channel.value} to {sent.destination}")
            code = await _code_from_outbox(gateway, invoice_id, run_id, chosen)
            if code is None:
                code = typer.prompt("Enter the code the payer received")
            else:
                console.print("code read from the dev outbox")
            verified = await gateway.verify_code(invoice_id, run_id, VerifyCodeInput(code=code, client=CLI))
            console.print(f"verified: {verified.verified} ({verified.attempts_remaining} attempts left)")
            state = await gateway.state(invoice_id, run_id)
        if state.status is PaymentStatus.AWAITING_PAYMENT:
            details = PaymentDetails(
                method=pay_method,
                account_holder=state.payer_name or "Sandbox Payer",
                routing_number=SANDBOX_ROUTING,
                account_number=account,
                account_type="checking",
            )
            await gateway.submit_payment(invoice_id, run_id, SubmitPaymentInput(details=details, client=CLI))
            state = await gateway.state(invoice_id, run_id)
        _print_outcome(state.status, state.reason, state.payment.payment_id if state.payment else None)
        await _print_trail(gateway, invoice_id)
        return state.status is PaymentStatus.PAID


def _print_outcome(status: PaymentStatus, reason: str | None, payment_id: str | None) -> None:
    colour = "green" if status is PaymentStatus.PAID else "red"
    line = f"[bold {colour}]{status.value}[/]"
    if payment_id:
        line += f" payment {payment_id}"
    if reason:
        line += f": {reason}"
    console.print(line)


async def _print_trail(gateway: AttemptGateway, invoice_id: str) -> None:
    rows = await fetch_trail(gateway.pool, invoice_id)
    table = Table(title=f"audit trail of {invoice_id}")
    for col in ("#", "event", "payer contact", "channel", "destination", "actor", "at"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["event_type"],
            row["payer_contact_id"] or "",
            row["channel"] or "",
            row["destination"] or "",
            row["actor"],
            row["occurred_at"].strftime("%H:%M:%S"),
        )
    console.print(table)
    console.print(f"chain verifies: {'yes' if await chain_ok(gateway.pool, invoice_id) else '[red]NO[/]'}")
