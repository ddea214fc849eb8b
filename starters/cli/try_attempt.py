"""`portalpay try <invoice>`: a whole attempt from the terminal, as a customer would click it."""

import asyncio
import json
from typing import Any

import typer
from rich.console import Console

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
from starters.cli.output import emit_table, say, to_jsonable
from starters.workflow_client import AttemptGateway

console = Console()
progress_to_stderr = Console(stderr=True)
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
    settings: Settings,
    invoice_id: str,
    *,
    channel: str | None,
    account: str,
    method: str,
    as_json: bool = False,
) -> bool:
    """With `as_json`, progress goes to stderr and stdout carries one JSON document."""
    out = progress_to_stderr if as_json else console
    steps: list[dict[str, Any]] = []
    try:
        pay_method = PaymentMethod(method)
        wanted = Channel(channel) if channel else None
    except ValueError as exc:
        raise ExpectedFailure(str(exc)) from None
    async with open_resources(settings) as res:
        gateway = AttemptGateway(res.client, res.pool, settings)
        state = await gateway.open(invoice_id, CLI)
        run_id = state.run_id
        steps.append({"step": "open", "status": state.status.value, "payer_name": state.payer_name})
        say(
            out,
            f"[bold]{invoice_id}[/] attempt {state.workflow_id} ({run_id[:8]}…): {state.status.value}; "
            f"payer [bold]{state.payer_name}[/]",
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
            steps.append(
                {"step": "code_sent", "channel": sent.channel.value, "destination": sent.destination}
            )
            say(out, f"code sent by {sent.channel.value} to {sent.destination}")
            code = await _code_from_outbox(gateway, invoice_id, run_id, chosen)
            if code is None:
                code = typer.prompt("Enter the code the payer received", err=True)
            else:
                say(out, "code read from the dev outbox")
            verified = await gateway.verify_code(invoice_id, run_id, VerifyCodeInput(code=code, client=CLI))
            steps.append(
                {
                    "step": "verify",
                    "verified": verified.verified,
                    "attempts_remaining": verified.attempts_remaining,
                }
            )
            say(out, f"verified: {verified.verified} ({verified.attempts_remaining} attempts left)")
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
            steps.append(
                {"step": "submit_payment", "method": pay_method.value, "account_last4": account[-4:]}
            )
            state = await gateway.state(invoice_id, run_id)
        payment_id = state.payment.payment_id if state.payment else None
        trail = await fetch_trail(gateway.pool, invoice_id)
        verifies = await chain_ok(gateway.pool, invoice_id, key=settings.audit_key())
        if as_json:
            document = {
                "invoice_id": invoice_id,
                "workflow_id": state.workflow_id,
                "run_id": run_id,
                "status": state.status.value,
                "reason": state.reason,
                "payment": to_jsonable(state.payment),
                "steps": steps,
                "audit_trail": to_jsonable(trail),
                "chain_ok": verifies,
            }
            typer.echo(json.dumps(document, indent=2))
        else:
            _print_outcome(state.status, state.reason, payment_id)
            _print_trail(invoice_id, trail, verifies)
        return state.status is PaymentStatus.PAID


def _print_outcome(status: PaymentStatus, reason: str | None, payment_id: str | None) -> None:
    colour = "green" if status is PaymentStatus.PAID else "red"
    line = f"[bold {colour}]{status.value}[/]"
    if payment_id:
        line += f" payment {payment_id}"
    if reason:
        line += f": {reason}"
    say(console, line)


def _print_trail(invoice_id: str, rows: list[dict[str, Any]], verifies: bool) -> None:
    emit_table(
        console,
        f"audit trail of {invoice_id}",
        ("#", "event", "payer contact", "channel", "destination", "actor", "at"),
        [
            (
                str(row["id"]),
                row["event_type"],
                row["payer_contact_id"] or "",
                row["channel"] or "",
                row["destination"] or "",
                row["actor"],
                row["occurred_at"].strftime("%H:%M:%S"),
            )
            for row in rows
        ],
    )
    say(console, f"chain verifies: {'yes' if verifies else '[red]NO[/]'}")
