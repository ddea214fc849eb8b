"""The worker passes the workflows' helper modules through the sandbox, never a workflow file
(workers/sandbox.py): those keep the sandbox's restriction checks."""

import ast
import importlib
from pathlib import Path

from workers.sandbox import HELPER_MODULES

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def _defines_a_workflow(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.ClassDef) and any("workflow.defn" in ast.unparse(d) for d in node.decorator_list)
        for node in ast.walk(tree)
    )


def test_passed_through_modules_exist_and_define_no_workflow() -> None:
    for name in HELPER_MODULES:
        module = importlib.import_module(name)
        assert module.__file__ is not None
        path = Path(module.__file__)
        assert path.parent == WORKFLOWS, name
        assert not _defines_a_workflow(path), f"{name} defines a workflow: keep it sandboxed"


def test_every_workflow_file_stays_sandboxed() -> None:
    workflow_files = {f"workflows.{p.stem}" for p in WORKFLOWS.glob("*.py") if _defines_a_workflow(p)}
    assert workflow_files == {
        "workflows.pay_invoice",
        "workflows.ach_payment",
        "workflows.reconciliation",
        "workflows.nacha_files",
        "workflows.webhook_delivery",
    }
    assert not workflow_files & set(HELPER_MODULES)
