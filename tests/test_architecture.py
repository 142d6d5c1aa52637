"""The floor plan: one package per stage of the data flow (DESIGN.md §2), imports that run one way — down the
data flow — and no import cycle between modules, counting imports inside functions and under TYPE_CHECKING.

Read statically (``ast``) from the source, so a lazy import inside a function counts as much as one at the top.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "adtarget"

#: each package (or top-level module) and the packages it may import; exceptions and _core are the floor
LAYERS: dict[str, set[str]] = {
    "exceptions": set(),
    "_core": {"exceptions"},
    "reference": {"exceptions", "_core"},
    "budget": {"exceptions", "_core"},
    "events": {"exceptions", "_core", "reference"},
    "consent": {"exceptions", "_core", "events"},
    "gate": {"exceptions", "_core", "reference", "events", "consent"},
    "profiles": {"exceptions", "_core", "reference", "gate"},
    "segments": {"exceptions", "_core", "reference", "budget", "profiles", "gate"},
    "reports": {"exceptions", "_core", "reference", "budget", "gate", "profiles", "segments"},
    "engine": {"exceptions", "_core", "reference", "budget", "events", "consent", "gate", "profiles", "segments",
               "reports"},
    "rights": {"exceptions", "_core", "events", "consent", "gate"},
    "synth": {"exceptions", "_core", "reference", "events"},
    "testing": {"exceptions", "_core", "reports"},
    "cli": {"exceptions", "_core", "reference", "budget", "events", "consent", "gate", "profiles", "segments",
            "reports", "engine", "rights", "synth", "adtarget"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The adtarget modules ``name`` imports anywhere in its source (a ``from X import y`` of a submodule
    counts as importing the submodule)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name and target.startswith("adtarget"):
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "adtarget"


def test_the_package_root_shows_the_stages_of_the_data_flow():
    entries = {p.name for p in ROOT.iterdir() if not p.name.startswith((".", "__pycache__"))}
    stages = {"reference", "events", "consent", "gate", "profiles", "segments", "reports", "budget", "engine",
              "rights", "synth", "testing", "cli"}
    assert stages <= entries
    loose = sorted(e for e in entries - stages if e.endswith(".py") and e != "__init__.py")
    assert loose == ["exceptions.py"], f"modules outside a stage package: {loose}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_run_down_the_data_flow(module):
    stage = _stage(module)
    if stage == "adtarget":
        return  # the package's own __init__ names everything (lazily)
    allowed = LAYERS[stage] | {stage}
    upward = sorted(t for t in GRAPH[module] if _stage(t) not in allowed)
    assert not upward, f"{module} imports {upward}, above or beside its stage {stage!r}"


def test_no_import_cycle_between_modules():
    sys.setrecursionlimit(10_000)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_the_layer_table_is_itself_acyclic():
    seen: dict[str, int] = {}

    def visit(stage: str) -> None:
        assert seen.get(stage) != 1, f"the layer table has a cycle through {stage}"
        if seen.get(stage) == 2:
            return
        seen[stage] = 1
        for lower in LAYERS.get(stage, set()) - {"adtarget"}:
            visit(lower)
        seen[stage] = 2

    for stage in LAYERS:
        visit(stage)
