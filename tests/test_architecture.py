"""The one-way data flow, made executable: which modules may import which.

- The core never imports the emulator, and the emulator imports nothing from the core.
- Pure modules (planning, action matching, waves, windows, derivation, fingerprints, models) do no I/O:
  they import no Azure SDK, HTTP, SQLite, CLI or logging library.
- Only `orchestrator.arm` talks to the Azure SDK.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"

PURE_MODULES = [
    "models",
    "planning/actions",
    "planning/derive",
    "planning/fingerprint",
    "planning/lineage",
    "planning/waves",
    "planning/planner",
    "planning/windows",
    "planning/explain",
]
IO_LIBRARIES = ("azure", "aiohttp", "sqlite3", "typer", "rich", "structlog", "requests", "httpx", "socket")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _all_modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_core_never_imports_the_emulator() -> None:
    offenders = {
        mod: sorted(i for i in imps if i.startswith("orchestrator.emulator"))
        for mod, imps in _all_modules().items()
        if not mod.startswith("orchestrator.emulator")
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_emulator_imports_nothing_from_the_core() -> None:
    offenders = {
        mod: sorted(
            i for i in imps if i.startswith("orchestrator") and not i.startswith("orchestrator.emulator")
        )
        for mod, imps in _all_modules().items()
        if mod.startswith("orchestrator.emulator")
    }
    assert {m: i for m, i in offenders.items() if i} == {}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_do_no_io(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"orchestrator/{name}.py is listed as pure but does not exist"
    bad = sorted(i for i in _imports(path) if i.split(".")[0] in IO_LIBRARIES)
    assert bad == [], f"orchestrator/{name}.py imports I/O libraries: {bad}"


def test_only_the_arm_edge_imports_the_azure_sdk() -> None:
    offenders = {
        mod: sorted(i for i in imps if i.startswith("azure"))
        for mod, imps in _all_modules().items()
        if not mod.startswith(("orchestrator.arm", "orchestrator.emulator"))
    }
    assert {m: i for m, i in offenders.items() if i} == {}
