"""`orchestrator explain`: who still blocks an action, from live state, through the real SDK."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Fleet, run_cli

pytestmark = pytest.mark.integration

READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _denying_in_state(fleet: Fleet) -> set[str]:
    """Apps whose system deny assignment (as the emulator holds it) denies readMetadata: every locked one,
    since no generated definition or plan version 1 excludes it."""
    state = fleet.emulator.state()
    mrgs = {a["properties"]["managedResourceGroupId"].lower(): a["id"].lower() for a in state["applications"]}
    found = set()
    for deny in state["deny_assignments"]:
        props = deny["properties"]
        if props.get("isSystemProtected") and props["scope"].lower() in mrgs:
            assert READ_METADATA not in props["permissions"][0]["notActions"]
            found.add(mrgs[props["scope"].lower()])
    return found


def test_explain_lists_every_app_that_still_denies_read_metadata(fleet: Fleet) -> None:
    result = run_cli(
        "explain", "--action", READ_METADATA, "--config", str(fleet.config_path), "--format", "json"
    )
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    listed = {d["app_id"].lower() for t in doc["tenants"] for d in t["denying"]}
    assert listed == _denying_in_state(fleet)
    assert doc["denying_count"] == len(listed) and not doc["incomplete"]
    customers = {t["id"] for t in fleet.customer_tenants()}
    assert {t["tenant_id"] for t in doc["tenants"]} == customers

    table = run_cli("explain", "--action", READ_METADATA.lower(), "--config", str(fleet.config_path))
    assert table.code == 0
    assert f"{len(listed)} apps in {len(customers)} tenants deny action" in table.stdout
    for tenant in fleet.customer_tenants():
        assert tenant["name"] in table.stdout
    for secret in fleet.secrets():
        assert secret not in result.stdout + result.stderr + table.stdout + table.stderr


def test_explain_a_read_and_a_data_action(fleet: Fleet) -> None:
    reads = run_cli("explain", "-a", "Microsoft.Web/sites/read", "-c", str(fleet.config_path), "-f", "json")
    assert reads.code == 0 and json.loads(reads.stdout)["denying_count"] == 0  # ReadOnly excludes */read
    blob = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
    data = run_cli("explain", "-a", blob, "--data", "-c", str(fleet.config_path), "-f", "json")
    assert data.code == 0 and json.loads(data.stdout)["denying_count"] == len(_denying_in_state(fleet))


def test_explain_reports_a_tenant_it_could_not_read(fleet: Fleet) -> None:
    victim = fleet.customer_tenants()[0]
    fleet.break_secret(victim["id"])
    result = run_cli("explain", "--action", READ_METADATA, "--config", str(fleet.config_path))
    assert result.code == 3
    assert "not fully read, the answer may be incomplete" in result.stdout
    assert victim["id"] in result.stderr
