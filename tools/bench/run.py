"""Running jobs at a fixed concurrency while watching the processes that serve them."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tools.bench.driver import AttemptFailed, Timings
from tools.bench.report import MB, PhaseResult, ResourceUse
from tools.bench.stack import ProcessSample

Job = Callable[[Timings], Awaitable[None]]


class Sampled(Protocol):
    def sample(self) -> ProcessSample: ...


def progress_bar(enabled: bool, console: Console) -> Progress | None:
    if not enabled:
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class ResourceWatch:
    """Peak RSS while running and CPU used between `__enter__` and `__exit__`, per process."""

    def __init__(self, procs: Mapping[str, Sampled | None], interval: float = 0.5) -> None:
        self.procs: dict[str, Sampled] = {k: v for k, v in procs.items() if v is not None}
        self.interval = interval
        self.peak: dict[str, int] = dict.fromkeys(self.procs, 0)
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0
        self._task: asyncio.Task[None] | None = None
        self.result: dict[str, ResourceUse] = {}

    async def _sample(self) -> None:
        while True:
            for name, proc in self.procs.items():
                self.peak[name] = max(self.peak[name], (await asyncio.to_thread(proc.sample)).rss_bytes)
            await asyncio.sleep(self.interval)

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return float(
            t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        )

    @staticmethod
    def _driver_cpu() -> float:
        t = psutil.Process(os.getpid()).cpu_times()
        return float(t.user + t.system)

    async def __aenter__(self) -> "ResourceWatch":
        self._t0 = time.monotonic()
        self._cpu0 = {n: p.sample().cpu_seconds for n, p in self.procs.items()}
        self._cpu0["(bench driver)"] = self._driver_cpu()
        self._cpu0["(whole machine)"] = self._machine_busy()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        wall = max(time.monotonic() - self._t0, 1e-9)
        for name, proc in self.procs.items():
            sample = proc.sample()
            self.peak[name] = max(self.peak[name], sample.rss_bytes)
            self.result[name] = ResourceUse(
                rss_peak_mb=self.peak[name] / MB,
                cpu_percent=100.0 * (sample.cpu_seconds - self._cpu0[name]) / wall,
            )
        # The driver's own share, and the machine's: what is left is someone else's load.
        for name, now in (("(bench driver)", self._driver_cpu()), ("(whole machine)", self._machine_busy())):
            self.result[name] = ResourceUse(cpu_percent=100.0 * (now - self._cpu0[name]) / wall)


async def run_jobs(
    jobs: Iterable[Job], total: int, concurrency: int, timings: Timings, progress: Progress | None, label: str
) -> float:
    """Run every job, `concurrency` at a time; returns the wall time. Failures are counted, not raised."""
    iterator = iter(jobs)
    task_id = progress.add_task(label, total=total) if progress is not None else None

    async def lane() -> None:
        for job in iterator:
            try:
                await job(timings)
                timings.completed += 1
            except AttemptFailed as exc:
                timings.error(str(exc))
            except Exception as exc:
                timings.error(f"{type(exc).__name__}: {exc}")
            if progress is not None and task_id is not None:
                progress.advance(task_id)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run_phase(
    side: str,
    concurrency: int,
    jobs: list[Job],
    procs: Mapping[str, Sampled | None],
    progress: Progress | None,
) -> PhaseResult:
    timings = Timings()
    async with ResourceWatch(procs) as watch:
        wall = await run_jobs(jobs, len(jobs), concurrency, timings, progress, f"{side:9} C={concurrency:<4}")
    return PhaseResult(side, concurrency, len(jobs), wall, timings, watch.result)


def live(progress: Progress | None) -> AbstractContextManager[object]:
    return progress if progress is not None else nullcontext()
