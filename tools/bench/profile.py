"""py-spy on the worker and the portal for a short window, summarised as the frames that cost most.

Run when a throughput or latency target is missed, so the bench says what limits it. The Temporal
server is Go and not profiled here; its share is in the CPU-per-attempt table.
"""

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Where a worker's or portal's CPU goes, matched on "function (file)" frames anywhere in a stack.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "workflow sandbox (per-run imports, restrictions)": ("temporalio/worker/workflow_sandbox",),
    "pydantic (validate, serialise, rebuild)": ("pydantic/", "pydantic_core"),
    "payload codec (AES-GCM)": ("(infra/codec", "(cryptography/"),
    "data converter (JSON payloads)": ("temporalio/converter", "temporalio/contrib/pydantic"),
    "asyncpg (PostgreSQL)": ("asyncpg/",),
    "HTTP server (uvicorn, starlette, fastapi)": ("uvicorn/", "starlette/", "fastapi/", "h11/", "httptools"),
    "Temporal SDK bridge (core, protobuf)": ("temporalio/bridge", "google/protobuf"),
    "logging": ("logging/__init__",),
    # Last: a frame of ours is what a framework frame around it was called for (py-spy names files
    # relative to sys.path; the CLI frames at the root of every stack are left out).
    "PortalPay code (portal, activities, infra, domain)": (
        "(starters/portal",
        "(starters/workflow_client",
        "(activities/",
        "(infra/",
        "(domain/",
        "(workflows/",
    ),
}
# Leaf frames of a thread that waits (event loop in epoll, an idle executor thread): not CPU.
IDLE_LEAVES = (
    "select (selectors.py",
    "Condition.wait (threading.py",
    "_worker (concurrent/futures/thread.py",
)
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarise(raw: str, top: int = 8) -> dict[str, Any]:
    """Top self frames and the share of busy samples per category, from py-spy's raw format.

    Percentages are of the samples where the process was on CPU (idle waits left out); a sample
    counts for the category of its innermost categorised frame.
    """
    total = idle = 0
    leaves: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for line in raw.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        count = int(m["count"])
        frames = m["stack"].split(";")
        if any(leaf in frames[-1] for leaf in IDLE_LEAVES):
            idle += count
            continue
        total += count
        leaves[_short(frames[-1]) or "(native or unnamed frame)"] += count
        categories[_category(frames)] += count
    share = {k: round(100.0 * v / total, 1) for k, v in categories.most_common()} if total else {}
    frames_top = [(f, round(100.0 * c / total, 1)) for f, c in leaves.most_common(top)] if total else []
    return {
        "samples": total,
        "idle_samples": idle,
        "categories_percent": share,
        "top_self_frames_percent": frames_top,
    }


def _category(frames: list[str]) -> str:
    """The innermost frame that belongs to a category names it (uvicorn is under every portal stack)."""
    for frame in reversed(frames):
        for name, needles in CATEGORIES.items():
            if any(n in frame for n in needles):
                return name
    return "other (asyncio, the standard library, native)"


def _short(frame: str) -> str:
    # "fn (/long/path/site-packages/pkg/mod.py:123)" -> "fn (pkg/mod.py:123)"
    return re.sub(r"\(.*?(site-packages/|/work/[^/]+/)", "(", frame)


class Profiler:
    """`py-spy record` attached to each named pid, stopped with SIGINT (it then writes its file)."""

    def __init__(self, pids: dict[str, int], work_dir: Path, rate: int = 50) -> None:
        self.pids = pids
        self.work_dir = work_dir
        self.rate = rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> "Profiler":
        binary = py_spy()
        if binary is None:
            return self
        for name, pid in self.pids.items():
            out = self.work_dir / f"profile-{name}.raw"
            log = (self.work_dir / f"profile-{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [
                    *(binary, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"),
                    *("--rate", str(self.rate), "--output", str(out)),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
            log.close()
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    async def stop(self) -> dict[str, Any]:
        await asyncio.to_thread(self.__exit__, None, None, None)
        out: dict[str, Any] = {}
        for name in self.procs:
            path = self.work_dir / f"profile-{name}.raw"
            if path.exists():
                out[name] = summarise(path.read_text(errors="replace"))
        return out
