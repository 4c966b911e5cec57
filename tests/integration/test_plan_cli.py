"""`orchestrator plan` end to end: live inventory through the SDK, the v2 target, a sealed plan file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import REPO, Fleet, run_cli

pytestmark = pytest.mark.integration

READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _v1_service_catalog_apps(fleet: Fleet) -> dict[str, dict[str, Any]]:
    state = fleet.emulator.state()
    return {
        a["id"].lower(): a
        for a in state["applications"]
        if a["kind"] == "ServiceCatalog" and a["properties"]["applicationDefinitionId"].endswith("/app-v1")
    }


def test_plan_for_v2_updates_service_catalog_v1_apps_with_read_metadata(fleet: Fleet, tmp_path: Path) -> None:
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    out = tmp_path / "plan.json"
    result = run_cli(
        "plan", "--config", str(fleet.config_path), "--target-definition", v2, "--waves", "50%,100%",
        "--out", str(out), "--log-level", "debug", "--log-format", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    plan = read_plan(out)  # validates the schema and the digest
    assert plan.target.definition_id and plan.target.definition_id.lower() == v2.lower()
    v1 = _v1_service_catalog_apps(fleet)
    updates = [i for i in plan.items if i.decision == "update"]
    assert updates
    for item in updates:
        assert item.app_id.lower() in v1
        assert item.change.actions_added == (READ_METADATA,)
        assert item.change.actions_removed == ()
        assert READ_METADATA in item.expected_not_actions
    # Every healthy v1 app whose deny assignment matches app-v1 is planned; the rest carry a reason.
    decided = {i.app_id.lower(): i for i in plan.items}
    for app_id, app in v1.items():
        item = decided[app_id]
        if item.decision != "update":
            assert item.decision in ("drifted", "skip") and item.reason
        elif app["properties"]["provisioningState"] != "Succeeded":
            pytest.fail(f"{app_id} is not Succeeded but was planned")
    assert "update" in result.stdout and READ_METADATA in result.stdout
    assert f"plan written to {out}" in result.stderr
    # The canary ring goes first.
    canary = {t["id"] for t in fleet.customer_tenants() if t["ring"] == "canary"}
    first_wave = set(plan.waves[0].app_ids)
    assert first_wave and all(decided[a.lower()].tenant_id in canary for a in first_wave)
    # No secret anywhere: stdout, stderr (with debug JSON logs), the plan file.
    plan_text = out.read_text(encoding="utf-8")
    for secret in fleet.secrets():
        assert secret not in result.stdout and secret not in result.stderr and secret not in plan_text


def test_plan_from_a_target_file_for_marketplace(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    target = REPO / "plans" / "examples" / "target-marketplace-2.0.0.toml"
    result = run_cli("plan", "--config", str(fleet.config_path), "--target", str(target), "--out", str(out))
    assert result.code == 0, result.stderr
    body = json.loads(out.read_text(encoding="utf-8"))
    updates = [i for i in body["items"] if i["decision"] == "update"]
    assert updates and all(i["kind"] == "MarketPlace" and i["to_plan"]["version"] == "2.0.0" for i in updates)


def test_plan_flags_and_inputs_are_checked(fleet: Fleet, tmp_path: Path) -> None:
    neither = run_cli("plan", "--config", str(fleet.config_path))
    assert neither.code == 2 and "--target" in neither.stderr and "Traceback" not in neither.stderr
    bad_target = tmp_path / "t.toml"
    bad_target.write_text("name = 1\n", encoding="utf-8")
    result = run_cli("plan", "--config", str(fleet.config_path), "--target", str(bad_target))
    assert result.code == 2 and str(bad_target) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    waves = run_cli("plan", "--config", str(fleet.config_path), "--target-definition", v2, "--waves", "abc")
    assert waves.code == 2 and "--waves" in waves.stderr and "Traceback" not in waves.stderr
    missing = run_cli("plan", "--config", str(fleet.config_path), "--target-definition", v2 + "-nope")
    assert missing.code == 2 and "--target-definition" in missing.stderr and "404" in missing.stderr


def test_plan_with_a_failed_tenant_still_writes_the_plan_and_exits_3(fleet: Fleet, tmp_path: Path) -> None:
    victim = fleet.customer_tenants()[0]
    fleet.break_secret(victim["id"])
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    out = tmp_path / "plan.json"
    result = run_cli("plan", "--config", str(fleet.config_path), "--target-definition", v2, "--out", str(out))
    assert result.code == 3, result.stderr
    plan = read_plan(out)
    assert not any(i.tenant_id == victim["id"] for i in plan.items)
    assert any(victim["id"] in note or victim["name"] in note for note in plan.notes)
    assert "not-the-secret" not in out.read_text(encoding="utf-8") + result.stdout + result.stderr


def test_plan_marks_apps_the_operator_cannot_write_instead_of_failing_them_at_apply(
    fleet: Fleet, tmp_path: Path
) -> None:
    read_only = {t["id"].lower() for t in fleet.customer_tenants() if t["publisher_access"] == "read-only"}
    assert read_only, "the generated fleet has a tenant without write access"
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    out = tmp_path / "plan.json"
    result = run_cli("plan", "--config", str(fleet.config_path), "--target-definition", v2, "--out", str(out))
    assert result.code == 0, result.stderr
    plan = read_plan(out)
    in_read_only = [i for i in plan.items if i.tenant_id.lower() in read_only]
    assert in_read_only
    assert all(i.decision != "update" for i in in_read_only)
    blocked = [i for i in in_read_only if i.reason.startswith("no write access")]
    assert blocked and all(READ_METADATA in i.change.actions_added for i in blocked)
    assert any(i.decision == "update" for i in plan.items if i.tenant_id.lower() not in read_only)
