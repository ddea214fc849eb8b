"""The tree's layering (README "Architecture"), read from the source: no module imports from a layer
above its own, nothing that ships imports `tools` or `tests`, and there is no import cycle.

Function-local imports count too: an import tucked inside a function is still a dependency.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: a module may import its own layer and those before it.
LAYERS = ("domain", "workflows", "infra", "activities", "workers", "starters")
SHIPPED = set(LAYERS) | {"migrations"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _product_modules(tops: tuple[str, ...] = LAYERS) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for top in tops:
        for path in (ROOT / top).rglob("*.py"):
            modules[_module_name(path)] = path
    return modules


MODULES = _product_modules()
# A service of its own that ships beside the product (`portalpay processor`): it stands in for the
# bank's processor, so it shares domain/ and infra/ but never the product's payment code.
SANDBOX = "sandbox_processor"
SANDBOX_MODULES = _product_modules((SANDBOX,))


def _internal(name: str) -> str | None:
    """The product module an import names (the longest known prefix), if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def test_the_layers_are_found() -> None:
    assert {name.split(".")[0] for name in MODULES} == set(LAYERS)
    assert len(MODULES) > 60


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_from_a_layer_above_or_from_tools(layer: str) -> None:
    rank = LAYERS.index(layer)
    wrong: list[str] = []
    for name, path in MODULES.items():
        if name.split(".")[0] != layer:
            continue
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top in ("tools", "tests"):
                wrong.append(f"{name} imports {imported} (never shipped)")
            elif top in LAYERS and LAYERS.index(top) > rank:
                wrong.append(f"{name} imports {imported} ({top} is above {layer})")
    assert not wrong, "\n".join(sorted(wrong))


def test_workflow_code_imports_only_the_standard_library_temporalio_and_domain() -> None:
    allowed_tops = {"domain", "workflows", "temporalio", "pydantic"}
    wrong = []
    for name, path in MODULES.items():
        if not name.startswith("workflows"):
            continue
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top in SHIPPED - allowed_tops or top in {"asyncpg", "fastapi", "sendgrid", "twilio", "httpx"}:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle() -> None:
    graph = {name: {_internal(i) for i in _imports(path)} - {None, name} for name, path in MODULES.items()}
    # A package's __init__ importing its own children is not a cycle through the children.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(n for n in graph.get(node, set()) if n is not None):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles[:10])


def _importers(prefix: str, target: str) -> list[str]:
    return sorted(
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name == prefix or name.startswith(prefix + ".")
        for imported in _imports(path)
        if imported == target or imported.startswith(target + ".")
    )


def test_the_portal_and_the_cli_never_import_each_other() -> None:
    """Reads both need live below both (starters/attempt_reads.py). The one exception: the CLI launches
    the portal (`portalpay portal`, `portalpay dev`) through the portal's server module, and only it."""
    assert not _importers("starters.portal", "starters.cli")
    launcher = "starters.portal.process"
    wrong = [
        line
        for line in _importers("starters.cli", "starters.portal")
        if not line.split(" imports ")[1].startswith(launcher)
    ]
    assert not wrong, "\n".join(wrong)
    assert _importers("starters.cli", launcher), "the CLI no longer launches the portal: update this rule"


# infra/stores is SQL only. processor_events.py still starts the payment's workflow itself (H20a
# rewrites the store and the lead then moves that delivery out of it): a known exception, not a rule.
STORES_IMPORTING_TEMPORAL = {"infra.stores.processor_events"}


def test_stores_never_import_temporal() -> None:
    wrong = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.startswith("infra.stores.") and name not in STORES_IMPORTING_TEMPORAL
        for imported in _imports(path)
        if imported.split(".")[0] == "temporalio"
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_sandbox_processor_keeps_to_itself() -> None:
    """It may use domain/ and infra/; it never imports the product's payment code, and nothing of the
    product imports it except the CLI launching it (`portalpay processor`, `portalpay dev`)."""
    assert SANDBOX_MODULES, "sandbox_processor/ not found"
    forbidden = {"activities", "workflows", "workers", "starters", "tools", "tests"}
    wrong = [
        f"{name} imports {imported}"
        for name, path in SANDBOX_MODULES.items()
        for imported in _imports(path)
        if imported.split(".")[0] in forbidden
    ]
    launchers = (f"{SANDBOX}.process", f"{SANDBOX}.settings")
    for name, path in MODULES.items():
        for imported in _imports(path):
            if imported.split(".")[0] != SANDBOX:
                continue
            if name.startswith("starters.cli.") and imported.startswith(launchers):
                continue
            wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))
