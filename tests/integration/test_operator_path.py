"""The operator's whole path, as the demo runs it: plan → apply → status → explain, through the CLI.

It answers the incident question before and after: every app the plan updated stops denying
readMetadata; the apps it did not update are listed with the plan's reason.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import Fleet, run_cli

pytestmark = pytest.mark.integration

READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _explain(fleet: Fleet, plan: Path) -> dict[str, Any]:
    result = run_cli(
        "explain", "-a", READ_METADATA, "-c", str(fleet.config_path), "--plan", str(plan), "-f", "json"
    )
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_plan_apply_status_explain(fleet: Fleet, tmp_path: Path) -> None:
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    plan_path, journal = tmp_path / "plan.json", tmp_path / "journal.db"
    planned = run_cli("plan", "-c", str(fleet.config_path), "--target-definition", v2, "-o", str(plan_path))
    assert planned.code == 0, planned.stderr
    plan = read_plan(plan_path)
    updates = {i.app_id.lower() for i in plan.items if i.decision == "update"}
    assert updates

    before = _explain(fleet, plan_path)
    assert before["plan"] == {"updated_apps": len(updates), "updated_apps_still_denying": len(updates)}

    config = str(fleet.config_path)
    applied = run_cli("apply", str(plan_path), "-c", config, "--journal", str(journal), "--yes")
    assert applied.code == 0, applied.stderr

    status = run_cli("status", "--journal", str(journal), "--format", "json")
    assert status.code == 0, status.stderr
    apps = json.loads(status.stdout)["apps"]
    assert {a["app_id"].lower() for a in apps if a["state"] == "succeeded"} == updates

    after = _explain(fleet, plan_path)
    assert after["plan"] == {"updated_apps": len(updates), "updated_apps_still_denying": 0}
    still = [d for t in after["tenants"] for d in t["denying"]]
    assert still, "the fleet has apps the plan did not update"
    assert all(d["plan_decision"] in ("skip", "drifted") and d["plan_reason"] for d in still)

    # No secret in anything the run wrote or printed.
    dump = "\n".join(sqlite3.connect(journal).iterdump())
    printed = planned.stdout + planned.stderr + applied.stdout + applied.stderr + status.stdout
    for secret in fleet.secrets():
        assert secret not in dump and secret not in printed and secret not in plan_path.read_text()
