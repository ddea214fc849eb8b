"""Output a person can pipe: `ops show`, `ops stuck` and `try` as text to a pipe, and as --json."""

import asyncio
import json
import shlex
from pathlib import Path

from domain.attempt import RequestCodeInput, SubmitPaymentInput, VerifyCodeInput
from domain.channels import Channel
from domain.status import PaymentStatus
from tests import support
from tests.ops.cli_process import PORTALPAY, cli_env, run_cli, run_cli_in_process
from tests.support import Harness, create_invoice, latest_code
from tests.workflow.steps import BROWSER, bank_details, eventually

NARROW = "40"  # a narrow terminal width must not matter when the output goes to a pipe


async def _paid(h: Harness) -> support.TestInvoice:
    inv = await create_invoice(h.pool)
    run_id = (await h.gateway.open(inv.invoice_id, BROWSER)).run_id
    await h.gateway.request_code(
        inv.invoice_id, run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
    )
    code = await latest_code(h.pool, inv.phone or "")
    await h.gateway.verify_code(inv.invoice_id, run_id, VerifyCodeInput(code=code, client=BROWSER))
    paid = await h.gateway.submit_payment(
        inv.invoice_id, run_id, SubmitPaymentInput(details=bank_details(), client=BROWSER)
    )
    assert paid.status is PaymentStatus.PAID
    return inv


async def _shell(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_shell(
        command, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_ops_show_piped_to_grep_finds_whole_rows(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    inv = await _paid(harness)
    env = cli_env(harness.client, database_url, tmp_path, COLUMNS=NARROW)

    rc, found = await _shell(
        f"{shlex.quote(PORTALPAY)} ops show {shlex.quote(inv.invoice_id)} | grep PAYMENT_SUBMITTED",
        env,
        tmp_path,
    )
    assert rc == 0, found
    (row,) = found.splitlines()
    cells = row.split("\t")
    # #, at, event, actor, contact, channel, destination, details: one row, nothing folded away.
    assert len(cells) == 8 and cells[2] == "PAYMENT_SUBMITTED" and cells[4] == inv.payer_contact_id

    rc, out, err = await run_cli_in_process("ops", "show", inv.invoice_id, env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "╭" not in out and "│" not in out  # no box drawing in a pipe
    assert "ended PAID; payment " in out and "chain verified: " in out
    header = "#\tat\tevent\tactor\tcontact\tchannel\tdestination\tdetails"
    trail = out.split(header, 1)[1].split("chain verified", 1)[0].strip().splitlines()
    events = [line.split("\t")[2] for line in trail]
    assert events.index("PAYMENT_SUBMITTED") < events.index("PAYMENT_ACCEPTED")  # settlement may follow
    assert all(len(line.split("\t")) == 8 for line in trail)


async def test_ops_show_json(harness: Harness, database_url: str, tmp_path: Path) -> None:
    inv = await _paid(harness)
    env = cli_env(harness.client, database_url, tmp_path)
    rc, out, err = await run_cli_in_process("ops", "show", inv.invoice_id, "--json", env=env, cwd=tmp_path)
    assert rc == 0, err
    report = json.loads(out)
    assert report["invoice_id"] == inv.invoice_id and report["chain_ok"] is True
    assert report["outcome"]["status"] == "PAID" and report["outcome"]["payment"]["account_last4"] == "6789"
    events = [row["event_type"] for row in report["audit_trail"]]
    # The attempt's trail ends with the acceptance; the session's sandbox settles a debit two seconds
    # later, so the follower's PAYMENT_SETTLED may already follow it (and nothing else may).
    accepted = events.index("PAYMENT_ACCEPTED")
    assert events.index("PAYMENT_SUBMITTED") < accepted
    assert events[accepted + 1 :] in ([], ["PAYMENT_SETTLED"]), events
    assert [change["status"] for change in report["status_changes"]][-1] == "PAID"


async def test_ops_stuck_piped_keeps_each_attempt_on_one_line(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    inv = await create_invoice(harness.pool)
    run_id = (await harness.gateway.open(inv.invoice_id, BROWSER)).run_id
    await harness.gateway.request_code(
        inv.invoice_id, run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
    )
    env = cli_env(harness.client, database_url, tmp_path, COLUMNS=NARROW)
    args = ("ops", "stuck", "--older-than", "0s", "--customer", inv.customer_id)

    async def listed() -> str:
        return (await run_cli_in_process(*args, env=env, cwd=tmp_path))[1]

    out = await eventually(listed, lambda text: inv.invoice_id in text)  # visibility is eventually consistent
    (row,) = [line for line in out.splitlines() if line.startswith(inv.invoice_id)]
    cells = row.split("\t")
    assert cells[1] == "AWAITING_CODE" and cells[5].startswith("Waiting for the code sent by SMS to •••-•••-")


async def test_try_pays_an_invoice_and_answers_json(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    inv = await create_invoice(harness.pool)
    env = cli_env(harness.client, database_url, tmp_path, TEMPORAL_TASK_QUEUE=harness.task_queue)
    rc, out, err = await run_cli("try", inv.invoice_id, "--channel", "sms", "--json", env=env, cwd=tmp_path)
    assert rc == 0, err
    result = json.loads(out)  # stdout is one JSON document; progress went to stderr
    assert result["invoice_id"] == inv.invoice_id and result["status"] == "PAID"
    assert [step["step"] for step in result["steps"]] == ["open", "code_sent", "verify", "submit_payment"]
    assert result["steps"][2]["verified"] is True
    assert result["payment"]["account_last4"] == "6789" and result["chain_ok"] is True
    assert [row["event_type"] for row in result["audit_trail"]][-1] == "PAYMENT_ACCEPTED"
    assert "code sent by sms" in err

    declined = await create_invoice(harness.pool)
    rc, out, err = await run_cli_in_process(
        "try", declined.invoice_id, "--account", "000111111113", env={**env, "COLUMNS": NARROW}, cwd=tmp_path
    )
    assert rc == 2, out + err  # not paid: the sandbox closes this account
    assert any(line.startswith("DECLINED") for line in out.splitlines()), out
    assert any(line.split("\t")[1:2] == ["PAYMENT_DECLINED"] for line in out.splitlines()), out
