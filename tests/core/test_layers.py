"""The architecture's layers, checked on every import in the source (README, "Layers").

    commands   grasprt/cli.py, *_cmd.py, options.py, calibration/cli.py, export/cli.py,
               drivers/devices.py: may import anything
    top        evaluation/, export/reference/: compose runtime and drivers
    middle     runtime/ and drivers/ (neither imports the other), export/ (torch side)
    lower      calibration/
    core       grasprt/: types, config, the contract, profiles, kinematics, the clock

A module may import its own layer and those below it, never one above or beside it.
Imports inside functions and under TYPE_CHECKING count too: a lazy import is still a
dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "grasprt": "grasprt",
    "calibration": "grasprt.calibration",
    "drivers": "grasprt.drivers",
    "runtime": "grasprt.runtime",
    "export": "grasprt.export",
    "evaluation": "grasprt.evaluation",
}
CORE = "grasprt"
# layer -> the layers it may import (its own included)
ALLOWED: dict[str, set[str]] = {
    CORE: {CORE},
    "grasprt.calibration": {CORE, "grasprt.calibration"},
    "grasprt.drivers": {CORE, "grasprt.calibration", "grasprt.drivers"},
    "grasprt.runtime": {CORE, "grasprt.calibration", "grasprt.runtime"},
    "grasprt.export": {CORE, "grasprt.calibration", "grasprt.export"},
    "grasprt.evaluation": {
        CORE,
        "grasprt.calibration",
        "grasprt.drivers",
        "grasprt.runtime",
        "grasprt.evaluation",
    },
    "grasprt.export.reference": {
        CORE,
        "grasprt.calibration",
        "grasprt.drivers",
        "grasprt.runtime",
        "grasprt.export",
        "grasprt.export.reference",
        "grasprt.evaluation",
    },
}
COMMANDS = {
    "grasprt/cli.py",
    "grasprt/options.py",
    "calibration/cli.py",
    "export/cli.py",
    "drivers/devices.py",
}


def layer_of(module: str) -> str:
    """The layer of a dotted grasprt module name."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "export" and parts[2] == "reference":
        return "grasprt.export.reference"
    if len(parts) >= 2 and f"grasprt.{parts[1]}" in ALLOWED:
        return f"grasprt.{parts[1]}"
    return CORE


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    package = FOLDERS[rel.parts[0]]
    rest = [p.removesuffix(".py") for p in rel.parts[1:] if p != "__init__.py"]
    return ".".join([package, *rest])


def grasprt_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("grasprt")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "grasprt":
                # `from grasprt import runtime` imports the package runtime.
                found += [(node.lineno, f"grasprt.{a.name}") for a in node.names]
            elif node.module.startswith("grasprt."):
                found.append((node.lineno, node.module))
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root).as_posix()
    if rel in COMMANDS or rel.endswith("_cmd.py"):
        return []
    own = layer_of(module_name(path, root))
    out = []
    for line, imported in grasprt_imports(ast.parse(path.read_text(), rel)):
        target = layer_of(imported)
        if target not in ALLOWED[own]:
            out.append(f"{rel}:{line}: {own} imports {imported} ({target})")
    return out


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_every_import_respects_the_layers() -> None:
    bad = [v for p in sources() for v in violations(p)]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_check_sees_every_folder() -> None:
    # A folder renamed or a glob gone wrong would make the test above pass on nothing.
    seen = {p.relative_to(ROOT).parts[0] for p in sources()}
    assert seen == set(FOLDERS)
    assert len(sources()) > 80


@pytest.mark.parametrize(
    ("rel", "code", "bad"),
    [
        ("runtime/x.py", "from grasprt.drivers.sim import factory", True),
        ("runtime/x.py", "def f():\n    import grasprt.drivers.registry", True),
        ("drivers/x.py", "from grasprt.runtime.loop import ControlLoop", True),
        ("grasprt/x.py", "from grasprt import runtime", True),
        ("grasprt/x.py", "from grasprt.runtime.inference import Pipeline", True),
        ("calibration/x.py", "from grasprt.drivers.realsense import x", True),
        ("runtime/x.py", "from grasprt.export.eager import EagerPair", True),
        ("export/x.py", "from grasprt.evaluation.evaluate import evaluate", True),
        ("drivers/x.py", "from grasprt.calibration.camera_info import load", False),
        ("evaluation/x.py", "from grasprt.drivers.registry import build_drivers", False),
        ("grasprt/run_cmd.py", "from grasprt.runtime.runner import Run", False),
        ("runtime/x.py", "from grasprt.config import RunConfig", False),
    ],
)
def test_the_check_itself(tmp_path: Path, rel: str, code: str, bad: bool) -> None:
    # The checker on made-up modules, each placed where its path says.
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code + "\n")
    assert bool(violations(path, tmp_path)) is bad


def test_no_function_in_the_runtime_is_longer_than_a_screen() -> None:
    # The loop's cycle in a few screens, not one: every function in runtime/ fits in 60
    # lines (decorators and docstring included), so each reads at once.
    long = []
    for path in sorted((ROOT / "runtime").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > 60:
                    long.append(f"runtime/{path.name}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)
