"""What ships: the wheel built from this tree holds the product and nothing of tools/ or tests/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = {
    "domain",
    "workflows",
    "activities",
    "workers",
    "starters",
    "infra",
    "migrations",
    "sandbox_processor",
}


def test_the_wheel_ships_the_product_and_no_tools_or_tests(tmp_path: Path) -> None:
    # Build from a copy so setuptools' build/ folder never lands in the work tree.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".portalpay", "build", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = out.glob("portalpay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}

    assert top_level == PRODUCT_PACKAGES
    assert not [n for n in names if n.startswith(("tools/", "tests/"))]
    # The benchmark's floor workflow, the campaign and the provider stand-ins live only in tools/.
    assert not [n for n in names if any(part in n for part in ("bench", "chaos", "standins"))]
    # Files the product reads at run time are in it.
    assert "migrations/0001_initial.sql" in names
    assert any(n.startswith("starters/portal/templates/") for n in names)
    assert any(n.startswith("starters/portal/static/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-')[0]}-0.1.0.dist-info/entry_points.txt")
    assert b"portalpay = starters.cli.app:run" in entry_points


def test_product_dependencies_leave_out_what_only_tools_and_tests_need() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    shipped = {_name(req) for req in project["dependencies"]}
    for name in ("matplotlib", "schemathesis", "psutil", "pytest", "ruff", "mypy", "playwright"):
        assert name not in shipped, name
    assert {"temporalio", "asyncpg", "fastapi"} <= shipped


def test_every_declared_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in ("dev", "tools"):
        declared |= {_name(r) for r in project["optional-dependencies"][extra]}
    pins = _pins(ROOT / "requirements.lock")
    assert declared - pins.keys() == set(), "run `make lock`"
    assert pins["temporalio"] == "1.35.0"
    assert pins["asyncpg"] == "0.32.0"
    prod = _pins(ROOT / "requirements-prod.lock")
    assert {_name(r) for r in project["dependencies"]} <= prod.keys()
    # The product lock is the full lock cut down to what ships: same versions, no test tools.
    assert all(pins[name] == version for name, version in prod.items())
    assert "pytest" not in prod and "matplotlib" not in prod


def _name(requirement: str) -> str:
    for sep in "=<>[!~ ;":
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower().replace("_", "-")


def _pins(lock: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[_name(name)] = version.split()[0]
    return pins
