"""Pure modules do no I/O: they import no Azure SDK, HTTP, SQLite, socket, CLI or logging library.

The layers between rooms (cli above the services, arm at the edge, the emulator apart, render over models
only) are import-linter contracts in pyproject.toml, run by ./scripts/test as `lint-imports`.
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
    "planning/checks",
    "planning/risks",
    "executor/work",
    "executor/durations",
]
IO_LIBRARIES = ("azure", "aiohttp", "sqlite3", "typer", "rich", "structlog", "requests", "httpx", "socket")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_do_no_io(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"orchestrator/{name}.py is listed as pure but does not exist"
    bad = sorted(i for i in _imports(path) if i.split(".")[0] in IO_LIBRARIES)
    assert bad == [], f"orchestrator/{name}.py imports I/O libraries: {bad}"
