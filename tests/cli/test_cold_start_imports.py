"""The worker's cold start (issue 13: ≤ 1 s to its first task) pays only for what it uses: the
proof PDF stack and argon2 load with the commands that need them, not with `portalpay worker`.
Structure, not time: which modules a fresh interpreter has loaded."""

import subprocess
import sys

HEAVY_AND_UNUSED_BY_THE_WORKER = ("fpdf", "fontTools", "numpy", "argon2", "asyncssh")


def test_the_worker_command_loads_no_pdf_or_password_stack() -> None:
    probe = (
        "import sys, starters.cli.app, workers.process; "
        f"print(','.join(m for m in {HEAVY_AND_UNUSED_BY_THE_WORKER!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"loaded at start: {loaded}"
