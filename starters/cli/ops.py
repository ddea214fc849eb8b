"""`portalpay ops stuck` and `portalpay ops show`: the operator's view of payment attempts (SPEC §7)."""

import json
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console

from domain.status import PaymentStatus
from infra.resources import open_resources
from infra.settings import Settings
from infra.temporal import connect
from starters.attempt_reads import (
    AttemptReport,
    StuckAttempt,
    find_stuck,
    literal,
    load_attempt_report,
    parse_duration,
    parse_statuses,
)
from starters.cli.output import emit_table, say, to_jsonable
from starters.cli.payment_life import payment_lives, render_payment_lives
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit
from starters.cli.reconcile import reconcile
from starters.cli.stuck_followers import StuckFollower, find_stuck_followers

ops_app = typer.Typer(help="Operators: stuck attempts, one invoice's story.", no_args_is_help=True)
ops_app.command("reconcile")(reconcile)


def _bad_argument(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


@ops_app.command("stuck")
def stuck(
    older_than: str = typer.Option("15m", "--older-than", help="Time in the current status: 90s, 15m, 2h."),
    status: list[str] = typer.Option(
        [], "--status", help="Only this non-terminal status (repeatable, or comma-separated)."
    ),
    customer: str | None = typer.Option(None, "--customer", help="Only this customer id."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many attempts."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout instead of a table."),
) -> None:
    """Attempts sitting in a non-terminal status longer than the threshold, and live payments whose
    follower is missing, failed or waiting on an activity that keeps failing (not with --status)."""

    try:
        threshold = parse_duration(older_than)
        statuses = parse_statuses(status)
        if customer is not None:
            literal(customer)
    except ValueError as exc:
        raise _bad_argument(str(exc)) from None
    settings = settings_or_exit()
    found, now, followers = run_async(_stuck)(settings, threshold, statuses, customer, limit, not status)
    if as_json:
        typer.echo(json.dumps([a.as_json(now) for a in found] + [f.as_json() for f in followers], indent=2))
    else:
        render_stuck(console, found, now, threshold)
        if followers:
            emit_table(
                console,
                "Payments whose follower needs a hand",
                ("payment", "invoice", "payment status", "problem", "detail", "what to do"),
                [
                    (f.payment_id, f.invoice_id, f.payment_status, f.problem, f.detail, f.what_to_do)
                    for f in followers
                ],
            )


async def _stuck(
    settings: Settings,
    threshold: timedelta,
    statuses: tuple[PaymentStatus, ...],
    customer: str | None,
    limit: int,
    with_followers: bool = False,
) -> tuple[list[StuckAttempt], datetime, list[StuckFollower]]:
    client = await connect(settings)
    now = datetime.now(UTC)
    found = await find_stuck(
        client, older_than=threshold, statuses=statuses, customer_id=customer, limit=limit, now=now
    )
    followers: list[StuckFollower] = []
    if with_followers:  # the same client: one Temporal connection per short-lived process
        async with open_resources(settings, client=client) as res:
            followers = await find_stuck_followers(
                res.client,
                res.pool,
                return_window_days=settings.ach_return_window_days,
                customer_id=customer,
                limit=limit,
            )
    return found, now, followers


@ops_app.command("show")
def show(
    invoice_id: str = typer.Argument(..., help="Invoice id, e.g. INV-1001."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout instead of text and tables."),
) -> None:
    """The invoice's current attempt state, its history of states, and the audit trail.

    Exits 3 when the audit chain does not verify."""

    settings = settings_or_exit()
    report = run_async(_show)(settings, invoice_id)
    lives = run_async(payment_lives)(settings, invoice_id)
    if as_json:
        body = report_as_json(report)
        body["payments"] = [life.as_json() for life in lives]
        typer.echo(json.dumps(body, indent=2))
    else:
        render_report(console, report)
        render_payment_lives(console, lives)
    if not report.chain_ok:
        raise typer.Exit(3)


async def _show(settings: Settings, invoice_id: str) -> AttemptReport:
    async with open_resources(settings) as res:
        return await load_attempt_report(res.client, res.pool, invoice_id, audit_key=settings.audit_key())


# ---- rendering -----------------------------------------------------------------------------------


def human_age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600:02d}h"


def render_stuck(out: Console, found: list[StuckAttempt], now: datetime, threshold: timedelta) -> None:
    if not found:
        say(out, f"no attempt has sat in a non-terminal status for {human_age(threshold)} or more")
        return
    rows = []
    for a in found:
        payer = a.payer_contact_id or "?"
        if a.payer_name:
            payer += f" ({a.payer_name})"
        rows.append(
            (
                a.invoice_id,
                a.status.value,
                human_age(now - a.in_status_since),
                human_age(now - a.started_at),
                payer,
                a.waiting_for,
            )
        )
    emit_table(
        out,
        f"attempts in the same status for {human_age(threshold)} or more",
        ("invoice", "status", "in status", "age", "payer", "waiting for"),
        rows,
    )


def _at(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def report_as_json(report: AttemptReport) -> dict[str, object]:
    return {
        "invoice_id": report.invoice_id,
        "workflow_id": report.workflow_id,
        "run_id": report.run_id,
        "execution_status": report.execution_status,
        "search_attributes": to_jsonable(report.search_attributes),
        "state": to_jsonable(report.state),
        "outcome": to_jsonable(report.outcome),
        "note": report.note,
        "status_changes": [{"at": at.isoformat(), "status": s.value} for at, s in report.status_changes],
        "runs": to_jsonable(report.runs),
        "audit_trail": to_jsonable(report.trail),
        "chain_ok": report.chain_ok,
    }


def render_report(out: Console, report: AttemptReport) -> None:
    say(out, f"[bold]{report.invoice_id}[/]  workflow {report.workflow_id}  run {report.run_id or '-'}")
    if report.execution_status:
        attrs = ", ".join(f"{k}={v}" for k, v in report.search_attributes.items() if v is not None)
        say(out, f"execution {report.execution_status}; {attrs}")
    if report.state is not None:
        s = report.state
        say(out, f"status [bold]{s.status.value}[/]: {s.waiting_for}")
        say(
            out,
            f"payer {s.payer_contact_id} ({s.payer_name}); {s.attempts_remaining} code attempts left,"
            f" {s.sends_remaining} sends left; idle expiry {_at(s.idle_expires_at)}",
        )
    if report.outcome is not None:
        o = report.outcome
        line = f"ended [bold]{o.status.value}[/]"
        if o.payment is not None:
            verdict = "accepted" if o.payment.accepted else f"declined ({o.payment.decline_reason})"
            line += f"; payment {o.payment.payment_id} {verdict}, account …{o.payment.account_last4}"
        if o.reason:
            line += f"; {o.reason}"
        say(out, line)
    if report.note:
        say(out, f"[yellow]{report.note}[/]")

    if report.status_changes:
        states = []
        for i, (at, status) in enumerate(report.status_changes):
            until = report.status_changes[i + 1][0] if i + 1 < len(report.status_changes) else None
            lasted = human_age(until - at) if until else ("-" if status.is_terminal else "now")
            states.append((_at(at), status.value, lasted))
        emit_table(out, "states of the latest run", ("since", "status", "for"), states)

    if len(report.runs) > 1:
        emit_table(
            out,
            f"runs of {report.workflow_id}",
            ("run", "execution", "payment status", "started", "closed"),
            [
                (r.run_id, r.execution_status, r.payment_status or "-", _at(r.started_at), _at(r.closed_at))
                for r in report.runs
            ],
        )

    trail = []
    for row in report.trail:
        details = row.get("details") or {}
        trail.append(
            (
                str(row["id"]),
                row["occurred_at"].astimezone(UTC).strftime("%H:%M:%S"),
                row["event_type"],
                row["actor"] or "",
                row["payer_contact_id"] or "",
                row["channel"] or "",
                row["destination"] or "",
                ", ".join(f"{k}={v}" for k, v in details.items() if v is not None),
            )
        )
    emit_table(
        out,
        f"audit trail of {report.invoice_id}",
        ("#", "at", "event", "actor", "contact", "channel", "destination", "details"),
        trail,
    )
    if report.chain_ok:
        say(out, f"[green]chain verified[/]: {len(report.trail)} events, every hash links to the one before")
    else:
        say(out, "[bold red]CHAIN BROKEN[/]: an audit row was edited, removed or reordered")


# Registered here so `portalpay ops proof` sits with the other operator commands (SPEC §9).
from starters.cli.proof import proof as _proof  # noqa: E402

ops_app.command("proof")(_proof)
