"""What one attempt costs Temporal, counted from its history: events, activity and workflow tasks,
timers, search-attribute upserts and Updates.

Most of the Temporal server's CPU per attempt is proportional to these counts, so they are the
structural side of the benchmark (issue 13 targets ≤ 5 activity tasks and ≤ 60 events for a
paid-by-SMS attempt). `python -m tools.bench.history_shape [FILE.json ...]` prints them for every
recorded history in `tests/histories/` (or the files given).
"""

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

HISTORIES = Path(__file__).resolve().parents[2] / "tests" / "histories"


@dataclass(frozen=True)
class HistoryShape:
    events: int
    activity_tasks: int  # ActivityTaskScheduled: each retry is an attempt of the same task
    workflow_tasks: int  # WorkflowTaskScheduled
    timers_started: int
    timers_cancelled: int
    search_attribute_upserts: int
    updates_accepted: int

    @classmethod
    def of(cls, events: Iterable[HistoryEvent]) -> "HistoryShape":
        counts: Counter[int] = Counter()
        total = 0
        for event in events:
            counts[event.event_type] += 1
            total += 1
        return cls(
            events=total,
            activity_tasks=counts[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
            workflow_tasks=counts[EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED],
            timers_started=counts[EventType.EVENT_TYPE_TIMER_STARTED],
            timers_cancelled=counts[EventType.EVENT_TYPE_TIMER_CANCELED],
            search_attribute_upserts=counts[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
            updates_accepted=counts[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
        )

    @classmethod
    def of_file(cls, path: Path) -> "HistoryShape":
        return cls.of(WorkflowHistory.from_json(path.stem, path.read_text()).events)


COLUMNS = (
    ("events", "events"),
    ("activity_tasks", "activity tasks"),
    ("workflow_tasks", "workflow tasks"),
    ("timers_started", "timers started"),
    ("timers_cancelled", "timers cancelled"),
    ("search_attribute_upserts", "SA upserts"),
    ("updates_accepted", "Updates"),
)


def markdown_table(shapes: dict[str, HistoryShape]) -> str:
    """The table docs/benchmarks.md carries, one row per recorded scenario."""
    lines = [
        "| scenario | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for name, shape in shapes.items():
        values = asdict(shape)
        lines.append(f"| {name} | " + " | ".join(str(values[key]) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or sorted(HISTORIES.glob("*.json"))
    print(markdown_table({p.stem: HistoryShape.of_file(p) for p in paths}))


if __name__ == "__main__":
    main(sys.argv[1:])
