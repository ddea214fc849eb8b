"""After a campaign: grep every log its stack wrote for the secrets that run used (SPEC §3, §11).

The run collects what must never be logged as it goes: the plaintext codes the provider stand-ins
delivered (PostgreSQL holds only keyed digests), the pay-link tokens the signer issued, the seeded
payers' emails and phones, and the account numbers customers and attackers typed. A grep of files
that say nothing proves nothing, so the promise also needs the portal's access log to show
requests.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tools.chaos.checks import Promise

# Written by the campaign's own tools (the attacker's schemathesis), not by the stack.
NOT_THE_STACKS = ("schemathesis",)
# A 6-digit code is short: never count it inside a longer number, a timestamp's fraction or a word.
_CODE_EDGE_BEFORE = r"(?<![\w.:+-])"
_CODE_EDGE_AFTER = r"(?![\w])"


@dataclass
class RunSecrets:
    """What the run used, by kind; each value is looked for verbatim (codes as whole numbers)."""

    by_kind: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, values: Iterable[str]) -> None:
        self.by_kind.setdefault(kind, set()).update(v for v in values if v)

    def count(self) -> int:
        return sum(len(v) for v in self.by_kind.values())


def stack_logs(work_dir: Path) -> list[Path]:
    """Every log file under the campaign's work dir: worker, portal, processor, Temporal, and
    PostgreSQL's (`pgdata/log`, a file, or a directory of them with a logging collector)."""
    found = [
        path
        for path in sorted(work_dir.rglob("*"))
        if path.is_file()
        and (path.suffix == ".log" or path.name == "log" or path.parent.name == "log")
        and not path.name.startswith(NOT_THE_STACKS)
    ]
    return found


def _pattern(kind: str, value: str) -> re.Pattern[str]:
    escaped = re.escape(value)
    if kind == "code":
        return re.compile(_CODE_EDGE_BEFORE + escaped + _CODE_EDGE_AFTER)
    return re.compile(escaped, re.IGNORECASE if kind == "email" else 0)


def find_secrets(paths: list[Path], secrets: RunSecrets) -> list[str]:
    """`kind in file:line` for every secret found, the value itself never repeated."""
    patterns = [(kind, _pattern(kind, v)) for kind, values in secrets.by_kind.items() for v in values]
    found: list[str] = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for kind, pattern in patterns:
                if pattern.search(line):
                    found.append(f"{kind} in {path.name}:{number}")
    return found


def access_lines(paths: list[Path]) -> int:
    """Request lines in the portal's access log (uvicorn: `"GET /path HTTP/1.1" 200`)."""
    request = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) /\S* HTTP/1\.[01]" \d{3}')
    return sum(
        len(request.findall(p.read_text(errors="replace"))) for p in paths if p.name.startswith("portal")
    )


def check_logs(work_dir: Path, secrets: RunSecrets) -> Promise:
    paths = stack_logs(work_dir)
    found = find_secrets(paths, secrets)
    requests = access_lines(paths)
    sizes = ", ".join(f"{p.name} {p.stat().st_size // 1024} KiB" for p in paths)
    return Promise(
        "0 secrets in logs",
        f"{len(found)} found; {secrets.count()} secrets looked for in {len(paths)} files"
        f" ({requests} access-log request lines; {sizes})",
        not found and requests > 0 and secrets.count() > 0,
        "; ".join(found[:10]) if found else ("" if requests else "the portal's access log shows no request"),
    )
