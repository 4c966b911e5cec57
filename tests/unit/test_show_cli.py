"""`orchestrator show`: each format on a sealed plan; bad plans and flags exit 2 with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plans" / "examples" / "example-plan.json"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "show", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "NO_COLOR": "1"},
    )


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    shutil.copy(EXAMPLE, path)
    return path


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_table_is_the_default(plan_file: Path) -> None:
    result = run(plan_file)
    assert result.returncode == 0, result.stderr
    assert "Rollout plan: app-v2" in result.stdout
    assert result.stdout.index("Risks") < result.stdout.index("Apps by tenant")


def test_markdown(plan_file: Path) -> None:
    result = run(plan_file, "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## Rollout plan: app-v2")
    assert "<details><summary>" in result.stdout


def test_json_to_a_file(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run(plan_file, "-f", "json", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(out.read_text()) == json.loads(plan_file.read_text())


def test_table_to_a_file_is_plain_text(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    assert run(plan_file, "--out", out).returncode == 0
    text = out.read_text()
    assert "Rollout plan: app-v2" in text and "\x1b[" not in text


def test_html_is_one_self_contained_page(plan_file: Path) -> None:
    result = run(plan_file, "--format", "html")
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().lower().startswith("<!doctype html>")


def test_tampered_plan_exits_2_with_one_line(plan_file: Path) -> None:
    text = plan_file.read_text()
    plan_file.write_text(text.replace("readMetadata", "readMetadatA", 1))
    line = _one_error_line(run(plan_file, "--format", "markdown"))
    assert line == f"error: {plan_file}: digest mismatch: the plan was modified after it was written"


def test_malformed_plan_exits_2_with_one_line(plan_file: Path) -> None:
    plan_file.write_text("{")
    assert f"{plan_file}: not valid JSON" in _one_error_line(run(plan_file))


def test_missing_plan_exits_2_with_one_line(tmp_path: Path) -> None:
    assert "cannot read" in _one_error_line(run(tmp_path / "missing.json"))


def test_unknown_format_exits_2_with_one_line(plan_file: Path) -> None:
    assert "--format: 'yaml' is not one of table, markdown, json, html" in _one_error_line(
        run(plan_file, "--format", "yaml")
    )


def test_unwritable_out_exits_2_with_one_line(plan_file: Path, tmp_path: Path) -> None:
    assert "--out" in _one_error_line(run(plan_file, "-f", "json", "--out", tmp_path / "no" / "dir.json"))
