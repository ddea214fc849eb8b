"""For every target the bench missed, what limits it: CPU per attempt per process, the py-spy
profile of the worker and the portal, the parked RSS per cached workflow, the cold start's imports.
"""

from typing import Any

from rich.console import Console

from tools.bench.report import TARGET_LEVEL, cpu_table

# What was tried against each kind of missed target, and what it did (docs/benchmarks.md has the
# measurements). Printed with the profile so a reader of one run sees both.
TRIED = {
    "throughput": (
        "tried: audit rows folded into their activities and the screening and lifecycle hand-over"
        " into the debit (99 → 57 events, 10 → 4 activities); one upsert per status change; the"
        " workflows' helper modules passed through the sandbox (below the noise); the workflow file"
        " passed through (31 → 21 ms CPU per replayed run) declined: it turns off the sandbox's checks"
    ),
    "memory": "tried: the proof PDF stack and argon2 kept out of the worker (idle 206 → 173 MB)",
    "cold": "tried: the proof PDF stack and argon2 kept out of the worker's start (1.20 → 0.82 s alone)",
}


def render_limits(result: dict[str, Any], console: Console) -> None:
    """For every missed target, what limits it: CPU per attempt, RSS growth, the py-spy profile."""
    missed = [t for t in result["targets"] if not t["met"]]
    if not missed:
        return
    console.print("[bold]What limits the missed targets[/]")
    kinds = {t["kind"] for t in missed}
    if kinds & {"throughput", "latency"}:
        level = next(t["level"] for t in missed if "level" in t)
        console.print(cpu_table(result["phases"], level))
        if "latency" in kinds:
            console.print(
                "  p95 on a saturated machine is mostly time queued behind other attempts' CPU"
                " (Little's law: C / attempts per second), so it follows the CPU per attempt above."
            )
        console.print(f"  {TRIED['throughput']}")
    for name, summary in (result.get("profile") or {}).items():
        console.print(
            f"  py-spy on the {name} at C={TARGET_LEVEL}: {summary['samples']} busy samples"
            f" ({summary['idle_samples']} idle left out); share of busy samples:"
        )
        for category, share in summary["categories_percent"].items():
            console.print(f"    {share:5.1f}%  {category}")
        for frame, share in summary["top_self_frames_percent"]:
            console.print(f"    {share:5.1f}%  self: {frame}")
    memory = result.get("memory")
    if "memory" in kinds and memory:
        for side in ("portalpay", "floor"):
            s = memory[side]
            grew = s["worker_rss_after_mb"] - s["worker_rss_before_mb"]
            cached = min(memory["parked"], memory["worker_cache"])
            console.print(
                f"  {side}: worker idle {s['worker_rss_before_mb']:.0f} MB, +{grew:.0f} MB for"
                f" {cached} cached workflows ({grew * 1024 / max(cached, 1):.0f} KB each)"
            )
        console.print(f"  {TRIED['memory']}")
    if "cold" in kinds:
        console.print(
            "  cold start: python -X importtime -m starters.cli.app worker shows the imports"
            " (provider SDKs, asyncpg, pydantic models) that come before the first poll."
        )
        console.print(f"  {TRIED['cold']}")
