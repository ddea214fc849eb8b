"""`portalpay nacha send-now | files | show | ingest` as a person runs them (SPEC §13): the first
`send-now` as a real subprocess, the rest in-process, against the test servers, the worker of a PROCESSOR=nacha stack and a real sshd."""

import json
from pathlib import Path

from tests.bank_direct.bank_files import Answered, return_file
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer
from tests.bank_direct.stack import NachaStack, nacha_stack
from tests.bank_direct.test_nacha_end_to_end import _account, _entries, _paid, _pass_prenote_wait
from tests.conftest import HarnessFactory
from tests.lifecycle.services import wait_for
from tests.ops.cli_process import cli_env, run_cli, run_cli_in_process
from tests.support import GOOD_ROUTING


def _env(s: NachaStack, database_url: str, tmp_path: Path) -> dict[str, str]:
    nacha = {k.upper(): str(v) for k, v in {**bank_settings(), **s.sshd.settings()}.items()}
    return cli_env(
        s.client,
        database_url,
        tmp_path,
        TEMPORAL_TASK_QUEUE=s.harness.task_queue,
        AUDIT_CHAIN_KEY=s.harness.settings.secret("audit_chain_key"),
        **nacha,
    )


async def test_send_now_files_show_and_ingest(
    harness_factory: HarnessFactory, sshd: SshServer, database_url: str, tmp_path: Path
) -> None:
    account = _account(51)
    async with nacha_stack(harness_factory, sshd) as s:
        env = _env(s, database_url, tmp_path)
        _, payment_id = await _paid(s, account)
        prenote, debit = await _entries(s.pool, payment_id)

        rc, out, err = await run_cli("nacha", "send-now", env=env, cwd=tmp_path, timeout=180)
        assert rc == 0, (out, err)
        assert "Uploaded" in out and "prenote" in out
        await _pass_prenote_wait(s.pool, prenote["id"])
        rc, out, err = await run_cli_in_process(
            "nacha", "send-now", "--json", env=env, cwd=tmp_path, timeout=180
        )
        assert rc == 0, (out, err)
        sent = json.loads(out)
        assert sent["uploaded"] and sent["entries"] >= 1, sent

        rc, out, err = await run_cli_in_process("nacha", "files", "--json", env=env, cwd=tmp_path)
        assert rc == 0, err
        listed = {f["name"]: f for f in json.loads(out)}
        assert listed[sent["file_name"]]["status"] == "uploaded"
        assert listed[sent["file_name"]]["debit_total_cents"] == sent["debit_total_cents"]

        rc, out, err = await run_cli_in_process("nacha", "show", sent["file_name"], env=env, cwd=tmp_path)
        assert rc == 0, err
        assert debit["trace_number"] in out and account not in out
        assert "••••••••" + account[-4:] in out
        assert all(len(line) == 94 for line in out.splitlines() if not line.startswith("6"))

        rc, _, err = await run_cli_in_process("nacha", "show", "no-such-file.ach", env=env, cwd=tmp_path)
        assert rc == 1 and "no NACHA file named" in err and "Traceback" not in err

        returned = tmp_path / "return-r02.ach"
        answered = Answered(debit["trace_number"], GOOD_ROUTING, account, 48000)
        returned.write_text(return_file([(answered, "R02")]))
        rc, out, err = await run_cli_in_process("nacha", "ingest", str(returned), env=env, cwd=tmp_path)
        assert rc == 0, (out, err)
        assert "1 return(s)" in out
        await wait_for(
            lambda: s.pool.fetchval("SELECT return_code FROM payments WHERE id = $1", payment_id),
            lambda code: code == "R02",
            timeout=60,
            what="the R02 applied",
        )
        rc, out, err = await run_cli_in_process("nacha", "ingest", str(returned), env=env, cwd=tmp_path)
        assert rc == 0 and "ingested before" in out, (out, err)


async def test_the_commands_refuse_without_processor_nacha(
    harness_factory: HarnessFactory, sshd: SshServer, database_url: str, tmp_path: Path
) -> None:
    async with nacha_stack(harness_factory, sshd) as s:
        env = _env(s, database_url, tmp_path)
        env["PROCESSOR"] = "sandbox"
        rc, _, err = await run_cli_in_process("nacha", "files", env=env, cwd=tmp_path)
        assert rc == 1 and "PROCESSOR is not nacha" in err
        env["PROCESSOR"] = "nacha"
        env["NACHA_IMMEDIATE_DESTINATION"] = "011000016"
        rc, _, err = await run_cli_in_process("nacha", "files", env=env, cwd=tmp_path)
        assert rc == 1 and "NACHA_IMMEDIATE_DESTINATION" in err and "Traceback" not in err
