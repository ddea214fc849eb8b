"""`portalpay dev` as a developer runs it: it comes up, prints its links and the staff password (which
signs in), and Ctrl-C leaves nothing running."""

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import asyncpg
import httpx
import psutil
from temporalio.client import Client

from tests.cli.stack import free_port, fresh_database
from tests.console.support import sign_in
from tests.ops.cli_process import PORTALPAY, cli_env


async def _read_until(stream: asyncio.StreamReader, wanted: str, seen: list[str], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError("portalpay dev stopped:\n" + "".join(seen))
            seen.append(line)
            if wanted in line:
                return


async def test_dev_comes_up_prints_links_and_ctrl_c_stops_everything(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    url = await fresh_database(db_pool, database_url)
    portal, temporal, ui = free_port(), free_port(), free_port()
    env = cli_env(temporal_client, url, tmp_path / "state")
    del env["TEMPORAL_ADDRESS"]  # dev starts its own Temporal dev server on --temporal-port
    env.pop("PORTAL_BASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        PORTALPAY,
        "dev",
        "--portal-port",
        str(portal),
        "--temporal-port",
        str(temporal),
        "--ui-port",
        str(ui),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        await _read_until(proc.stdout, "INV-1004", seen, timeout=180)
        printed = "".join(seen)
        assert f"http://127.0.0.1:{portal}" in printed
        assert f"http://127.0.0.1:{ui}" in printed
        assert f"http://127.0.0.1:{portal}/dev/outbox" in printed
        links = {
            line.split()[0]: line.split()[1] for line in seen if line.strip().startswith(("INV-", "DEP-"))
        }
        assert set(links) >= {"INV-1001", "DEP-1001", "INV-1002", "INV-1003", "INV-1004"}
        # SPEC §10: dev creates staff@example.com and prints its password; it signs in.
        await _read_until(proc.stdout, "with password", seen, timeout=60)
        printed_login = re.search(r"sign in as (\S+) with password (\S+)", "".join(seen))
        assert printed_login, "".join(seen)
        assert printed_login.group(1) == "staff@example.com"

        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(links["INV-1001"])
            assert page.status_code == 200 and "Pay Your Invoice" in page.text
            assert (await http.get(f"http://127.0.0.1:{portal}/dev/outbox")).status_code == 200
            assert (await http.get(f"http://127.0.0.1:{ui}/")).status_code == 200  # the Temporal UI
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{portal}", timeout=30) as staff:
            wrong = await sign_in(staff, "staff@example.com", printed_login.group(2) + "x")
            assert wrong.status_code == 401
            signed = await sign_in(staff, "staff@example.com", printed_login.group(2))
            assert signed.status_code == 303 and signed.headers["location"] == "/staff", signed.text
            assert (await staff.get("/staff")).status_code == 200

        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("temporal" in " ".join(c.cmdline()) for c in children)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=90)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode == 0, "".join(seen) + rest.decode()
    assert "Traceback" not in rest.decode()
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, [c.cmdline() for c in left]
    assert subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True).stdout == b""
