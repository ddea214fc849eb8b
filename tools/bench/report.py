"""Benchmark figures: percentiles, one phase's result, the final table, the JSON and the chart."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tools.bench.driver import ACTIONS, Timings

MB = 1024 * 1024


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_summary(values: list[float]) -> dict[str, float]:
    """Milliseconds."""
    return {f"p{q}": round(percentile(values, q) * 1000, 2) for q in (50, 95, 99)} | {"n": len(values)}


@dataclass
class ResourceUse:
    rss_peak_mb: float = 0.0
    cpu_percent: float = 0.0  # of one core; up to 200 on this machine


@dataclass
class PhaseResult:
    side: str  # "portalpay", "floor" (same shape) or "minimal" (minimal floor)
    concurrency: int
    attempts: int
    wall_seconds: float
    timings: Timings
    resources: dict[str, ResourceUse] = field(default_factory=dict)

    @property
    def attempts_per_second(self) -> float:
        return self.timings.completed / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def cpu_per_attempt(self) -> dict[str, float]:
        """Core-seconds each process spent per completed attempt (the machine's row included)."""
        done = max(self.timings.completed, 1)
        return {name: r.cpu_percent / 100.0 * self.wall_seconds / done for name, r in self.resources.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "concurrency": self.concurrency,
            "attempts": self.attempts,
            "completed": self.timings.completed,
            "failed": self.timings.failed,
            "errors": dict(self.timings.errors),
            "wall_seconds": round(self.wall_seconds, 3),
            "attempts_per_second": round(self.attempts_per_second, 2),
            "latency_ms": {a: latency_summary(v) for a, v in self.timings.by_action.items()},
            "resources": {
                name: {"rss_peak_mb": round(r.rss_peak_mb, 1), "cpu_percent": round(r.cpu_percent, 1)}
                for name, r in self.resources.items()
            },
        }


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 1000:.0f}"


def throughput_table(phases: list[PhaseResult]) -> Table:
    table = Table(title="End to end: PortalPay through the portal vs the bare-Temporal floor")
    for col in (
        "C",
        "side",
        "done/failed",
        "attempts/s",
        "vs same-shape / minimal",
        "worker CPU%",
        "worker RSS MB",
    ):
        table.add_column(col, justify="right")
    table.add_column("portal CPU% / RSS MB", justify="right")
    table.add_column("server CPU%", justify="right")
    table.add_column("PG CPU%", justify="right")
    table.add_column("driver / machine CPU%", justify="right")
    floors = {p.concurrency: p for p in phases if p.side == "floor"}
    minimals = {p.concurrency: p for p in phases if p.side == "minimal"}
    for p in phases:
        ratio = ""
        if p.side != "minimal":
            ratio = " / ".join(
                f"{p.attempts_per_second / f.attempts_per_second:.2f}x"
                if f is not None and f.attempts_per_second and f is not p
                else "—"
                for f in (floors.get(p.concurrency), minimals.get(p.concurrency))
            )
        worker = p.resources.get("worker", ResourceUse())
        portal = p.resources.get("portal")
        server = p.resources.get("temporal", ResourceUse())
        table.add_row(
            str(p.concurrency),
            p.side,
            f"{p.timings.completed}/{p.timings.failed}",
            f"{p.attempts_per_second:.1f}",
            ratio,
            f"{worker.cpu_percent:.0f}",
            f"{worker.rss_peak_mb:.0f}",
            f"{portal.cpu_percent:.0f} / {portal.rss_peak_mb:.0f}" if portal else "—",
            f"{server.cpu_percent:.0f}",
            f"{p.resources.get('postgres', ResourceUse()).cpu_percent:.0f}",
            f"{p.resources.get('(bench driver)', ResourceUse()).cpu_percent:.0f}"
            f" / {p.resources.get('(whole machine)', ResourceUse()).cpu_percent:.0f}",
        )
    return table


def latency_table(phases: list[PhaseResult]) -> Table:
    table = Table(title="Per action latency, ms (p50 / p95 / p99)")
    table.add_column("C", justify="right")
    table.add_column("side")
    actions = [*ACTIONS, "read_code"]
    for action in actions:
        table.add_column(action, justify="right")
    for p in phases:
        cells = []
        for action in actions:
            values = p.timings.by_action.get(action, [])
            if not values:
                cells.append("—")
                continue
            cells.append(" / ".join(_ms(percentile(values, q)) for q in (50, 95, 99)))
        table.add_row(str(p.concurrency), p.side, *cells)
    return table


TARGET_LEVEL = 20


def _ratio(a: PhaseResult | None, b: PhaseResult | None) -> float | None:
    if a is None or b is None or not b.attempts_per_second:
        return None
    return a.attempts_per_second / b.attempts_per_second


def targets(
    phases: list[PhaseResult], memory: dict[str, Any] | None, cold: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Issue 13's targets, each with the measured value and whether it was met.

    Throughput and p95 are judged at C = 20 (at every level measured when 20 was not).
    """
    out: list[dict[str, Any]] = []
    by = {(p.side, p.concurrency): p for p in phases}
    levels = sorted({p.concurrency for p in phases})
    for c in [TARGET_LEVEL] if TARGET_LEVEL in levels else levels:
        pp, fl, mini = by.get(("portalpay", c)), by.get(("floor", c)), by.get(("minimal", c))
        for floor, name, want in ((mini, "minimal", 0.5), (fl, "same-shape", 0.8)):
            ratio = _ratio(pp, floor)
            if ratio is not None:
                out.append(
                    {
                        "target": f"throughput ≥ {want}x the {name} floor at C={c}",
                        "measured": f"{ratio:.2f}x",
                        "met": ratio >= want,
                        "level": c,
                        "kind": "throughput",
                    }
                )
        if pp is None or fl is None:
            continue
        for action in ACTIONS:
            a = percentile(pp.timings.by_action.get(action, []), 95)
            b = percentile(fl.timings.by_action.get(action, []), 95)
            out.append(
                {
                    "target": f"{action} p95 ≤ same-shape floor p95 + 25 ms at C={c}",
                    "measured": f"{a * 1000:.0f} vs {b * 1000:.0f} + 25 ms",
                    "met": bool(a <= b + 0.025),
                    "level": c,
                    "kind": "latency",
                }
            )
    if memory:
        rss_ratio = memory.get("worker_rss_ratio")
        if rss_ratio is not None:
            out.append(
                {
                    "target": f"{memory['parked']} parked: worker RSS ≤ 1.3x floor's",
                    "measured": f"{rss_ratio:.2f}x",
                    "met": rss_ratio <= 1.3,
                    "kind": "memory",
                }
            )
    if cold:
        value = cold.get("portalpay", {}).get("first_task_seconds")
        if value is not None:
            out.append(
                {
                    "target": "worker cold start to first task ≤ 1 s",
                    "measured": f"{value:.2f} s",
                    "met": value <= 1.0,
                    "kind": "cold",
                }
            )
    return out


def cpu_table(phases: list[PhaseResult], level: int) -> Table:
    """What limits throughput on a saturated machine: core-seconds per attempt, per process."""
    table = Table(
        title=f"CPU per attempt at C={level}, core-ms (what limits throughput when the cores are full)"
    )
    names = ["worker", "portal", "temporal", "postgres", "(bench driver)", "(whole machine)"]
    table.add_column("side")
    for name in names:
        table.add_column(name, justify="right")
    for p in phases:
        if p.concurrency != level:
            continue
        per = p.cpu_per_attempt()
        table.add_row(p.side, *(f"{per[n] * 1000:.0f}" if n in per else "—" for n in names))
    return table


def targets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Targets (issue 13)")
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("met")
    for row in rows:
        table.add_row(row["target"], row["measured"], "[green]yes[/]" if row["met"] else "[red]no[/]")
    return table


def print_memory(console: Console, memory: dict[str, Any]) -> None:
    table = Table(title=f"Memory: {memory['parked']} attempts parked waiting for the code")
    for col in ("side", "park rate /s", "worker RSS before → after MB", "server RSS before → after MB"):
        table.add_column(col, justify="right")
    table.add_column("answer after eviction ms (p50 / max)", justify="right")
    for side in ("portalpay", "floor"):
        s = memory[side]
        table.add_row(
            side,
            f"{s['park_rate']:.1f}",
            f"{s['worker_rss_before_mb']:.0f} → {s['worker_rss_after_mb']:.0f}",
            f"{s['server_rss_before_mb']:.0f} → {s['server_rss_after_mb']:.0f}",
            s["evicted_answer"],
        )
    console.print(table)


def write_chart(path: Path, phases: list[PhaseResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({p.concurrency for p in phases})
    fig, axes = plt.subplots(1, len(levels), figsize=(6 * len(levels), 4.5), squeeze=False)
    for ax, c in zip(axes[0], levels, strict=True):
        width = 0.13
        for i, side in enumerate(("floor", "portalpay")):
            phase = next((p for p in phases if p.side == side and p.concurrency == c), None)
            if phase is None:
                continue
            for j, q in enumerate((50, 95, 99)):
                values = [percentile(phase.timings.by_action.get(a, []), q) * 1000 for a in ACTIONS]
                xs = [k + (i * 3 + j - 2.5) * width for k in range(len(ACTIONS))]
                ax.bar(xs, values, width, label=f"{side} p{q}", color=f"C{i}", alpha=0.35 + 0.3 * j)
        ax.set_xticks(range(len(ACTIONS)), list(ACTIONS))
        ax.set_ylabel("ms")
        ax.set_title(f"C = {c}")
        ax.legend(fontsize=7)
    fig.suptitle("PortalPay vs bare Temporal: latency per action")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
