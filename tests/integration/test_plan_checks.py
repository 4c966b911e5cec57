"""`plan` checks its inputs against Azure, and apply refuses an incomplete plan (CLI against the emulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import REPO, Fleet, run_cli

pytestmark = pytest.mark.integration


def test_example_target_with_a_placeholder_definition_is_one_line_exit_2(
    fleet: Fleet, tmp_path: Path
) -> None:
    example = REPO / "plans" / "examples" / "target-v2.toml"  # copied unchanged: its id is a placeholder
    out = tmp_path / "plan.json"
    result = run_cli("plan", "-c", str(fleet.config_path), "--target", str(example), "--out", str(out))
    assert result.code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"--target {example}: definition_id" in lines[0] and "no such application definition" in lines[0]
    assert not out.exists()


def test_target_file_naming_a_real_definition_plans(fleet: Fleet, tmp_path: Path) -> None:
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    target = tmp_path / "target.toml"
    # The file says something the definition in Azure does not: plan warns (apply verifies the file).
    target.write_text(
        f'definition_id = "{v2}"\nlock_level = "ReadOnly"\n'
        'allowed_actions = ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"]\n'
    )
    out = tmp_path / "plan.json"
    result = run_cli("plan", "-c", str(fleet.config_path), "--target", str(target), "--out", str(out))
    assert result.code == 0, result.stderr
    assert read_plan(out).items
    assert "differs from definition" in result.stderr


def test_incomplete_plan_is_refused_unless_allowed(fleet: Fleet, tmp_path: Path) -> None:
    broken = fleet.customer_tenants()[0]
    fleet.break_secret(broken["id"])
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    out = tmp_path / "plan.json"
    planned = run_cli("plan", "-c", str(fleet.config_path), "--target-definition", v2, "--out", str(out))
    plan = read_plan(out)
    assert plan.incomplete_tenants, planned.stderr
    assert "incomplete" in planned.stderr and "--allow-incomplete" in planned.stderr
    shown = run_cli("show", str(out), "--format", "markdown")
    assert "| unread | ? | 1 |" in shown.stdout

    journal = tmp_path / "journal.db"
    args = ["apply", str(out), "-c", str(fleet.config_path), "--journal", str(journal), "--yes"]
    refused = run_cli(*args)
    assert refused.code == 2 and "incomplete" in refused.stderr and "--allow-incomplete" in refused.stderr
    assert not journal.exists() and fleet.emulator.stats()["writes_per_app"] == {}
    allowed = run_cli(*args, "--allow-incomplete", "--failure-tolerance", "100%")
    assert allowed.code in (0, 3), allowed.stderr[-2000:]
    assert journal.exists()


def test_explain_warns_about_an_unknown_action(fleet: Fleet) -> None:
    result = run_cli("explain", "-c", str(fleet.config_path), "--action", "bogus", "-f", "json")
    assert result.code == 0, result.stderr
    assert "warning: --action 'bogus' is not an operation name" in result.stderr
    assert "not an operation name" in json.loads(result.stdout)["warning"]
    typo = run_cli("explain", "-c", str(fleet.config_path), "-a", "Microsoft.Web/sites/restrat/action")
    assert "did you mean Microsoft.Web/sites/restart/action?" in typo.stderr
    real = run_cli(
        "explain", "-c", str(fleet.config_path), "-a", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
    )
    assert "warning" not in real.stderr
