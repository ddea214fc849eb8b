"""Output a person can read and a pipe can take.

On a terminal: rich tables and coloured lines. Anywhere else (`| grep`, `> file`): one line per
row, cells separated by tabs, never wrapped, so a word is never broken across lines. `--json`
output is built with `to_jsonable`.
"""

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table


def say(out: Console, text: str) -> None:
    """A line of rich markup; unwrapped and uncoloured when not on a terminal."""
    out.print(text, soft_wrap=not out.is_terminal, highlight=out.is_terminal)


def emit_table(out: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    if out.is_terminal:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    lines = [f"# {title}", "\t".join(columns), *("\t".join(_cell(value) for value in row) for row in rows)]
    if out.record:  # a recording console (tests, exports) keeps its own copy; rich expands the tabs
        for line in lines:
            out.out(line, highlight=False)
        return
    out.file.write("".join(f"{line}\n" for line in lines))
    out.file.flush()


def _cell(value: str) -> str:
    return " ".join(value.split()) if any(c in value for c in "\t\r\n") else value


def to_jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601, enums by value, bytes as hex, models and dataclasses as objects."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value
