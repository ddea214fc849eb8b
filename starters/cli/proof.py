"""`portalpay ops proof <payment_id>`: the proof of authorization as PDF and JSON files (SPEC §9)."""

import socket
from pathlib import Path

import typer

from domain.attempt import ClientContext
from domain.proof import ProofOfAuthorization
from infra.resources import ExpectedFailure, open_pool
from infra.settings import Settings
from infra.stores.proofs import export_proof
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit

CLI_ACTOR = "cli"


def proof(
    payment_id: str = typer.Argument(..., help="Payment id, e.g. PAY-0123456789ABCDEF."),
    out: Path = typer.Option(Path("."), "--out", help="Folder to write proof-<payment_id>.pdf and .json to."),
) -> None:
    """Write the payment's proof of authorization (PDF and JSON), its audit chain verified now.

    Exits 3 when the invoice's audit chain does not verify (the files say so too)."""

    if not payment_id.isprintable() or "/" in payment_id or "\\" in payment_id or payment_id in (".", ".."):
        err_console.print("[red]error:[/] a payment id is printable and holds no path separator")
        raise typer.Exit(2)
    settings = settings_or_exit()
    document = run_async(_export)(settings, payment_id)
    out.mkdir(parents=True, exist_ok=True)
    pdf_path = out / f"proof-{payment_id}.pdf"
    json_path = out / f"proof-{payment_id}.json"
    # Here, not at the top: the PDF stack (fpdf, fontTools, numpy) is a quarter second of import
    # that every other command, the worker's start included, would pay (issue 13: cold start).
    from infra.proof_pdf import render_proof_pdf

    pdf_path.write_bytes(render_proof_pdf(document))
    json_path.write_text(document.model_dump_json(indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {pdf_path}")
    console.print(f"wrote {json_path}")
    if document.chain_ok:
        console.print("[green]chain verified[/]")
    else:
        err_console.print(f"[bold red]CHAIN BROKEN[/]: {document.chain_statement}")
        raise typer.Exit(3)


async def _export(settings: Settings, payment_id: str) -> ProofOfAuthorization:
    async with open_pool(settings) as pool:
        client = ClientContext(actor=CLI_ACTOR, user_agent=f"portalpay-cli on {socket.gethostname()}")
        document = await export_proof(
            pool, payment_id, client, formats=["pdf", "json"], chain_key=settings.audit_key()
        )
    if document is None:
        raise ExpectedFailure(f"no payment {payment_id!r}")
    return document
