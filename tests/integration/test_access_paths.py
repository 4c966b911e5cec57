"""The four access paths end to end on the generator's mixed fleet, through the CLI as an operator runs it.

Inventory groups every app under its real customer whichever identity read it; plan marks each app
with its path and puts only direct and delegated updates in waves; apply writes exactly those; the
rest wait for their customers. Nothing ever crosses tenants (the emulator's counter stays 0).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import Fleet, make_fleet, run_cli

pytestmark = pytest.mark.integration

MIX = "tenants=4,subscriptions=2,apps=3,access=direct:1,delegated:1,publisher:1,locked:1"
PATHS = {"direct": "direct", "delegated": "delegated", "publisher": "publisher", "locked": "customer-run"}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path_factory.mktemp("paths"), generate=MIX, page_size=4)


def customers(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Emulator tenant id (lower) -> its fleet entry."""
    return {t["id"].lower(): t for t in fleet.emulator.fleet()["tenants"]}


def owner_of(fleet: Fleet) -> dict[str, str]:
    """App id (lower) -> the tenant id (lower) whose subscription holds it."""
    sub_owner = {s.lower(): t for t, c in customers(fleet).items() for s in c["subscriptions"]}
    return {
        a["id"].lower(): sub_owner[a["id"].split("/")[2].lower()]
        for a in fleet.emulator.fleet()["applications"]
    }


def test_inventory_groups_apps_under_their_customers_with_their_paths(mixed: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "snapshot.json"
    result = run_cli("inventory", "-c", str(mixed.config_path), "--snapshot", str(out))
    assert result.code == 0, result.stderr
    snapshot = json.loads(out.read_text(encoding="utf-8"))
    owners, tenants = owner_of(mixed), customers(mixed)
    assert {a["id"].lower() for a in snapshot["apps"]} == set(owners)
    for app in snapshot["apps"]:
        tenant = owners[app["id"].lower()]
        assert app["tenant_id"].lower() == tenant
        assert app["path"] == PATHS[tenants[tenant]["access"]]
        assert app["deny_assignment"] is not None or app["lock_level"] == "None"
    assert all(t["error"] is None for t in snapshot["tenants"])
    assert {t["display_name"] for t in snapshot["tenants"]} == {c["name"] for c in tenants.values()}
    assert mixed.emulator.stats()["cross_tenant_attempts"] == 0


def test_plan_marks_paths_and_apply_writes_only_direct_and_delegated(mixed: Fleet, tmp_path: Path) -> None:
    v2 = mixed.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    plan_path, journal = tmp_path / "plan.json", tmp_path / "journal.db"
    config = str(mixed.config_path)
    planned = run_cli("plan", "-c", config, "--target-definition", v2, "-o", str(plan_path))
    assert planned.code == 0, planned.stderr
    plan = read_plan(plan_path)
    updates = [i for i in plan.items if i.decision == "update"]
    assert {i.path for i in updates} == {"direct", "delegated", "publisher", "customer-run"}
    in_waves = {a.lower() for w in plan.waves for a in w.app_ids}
    assert in_waves == {i.app_id.lower() for i in updates if i.path in ("direct", "delegated")}

    applied = run_cli("apply", str(plan_path), "-c", config, "--journal", str(journal), "--yes")
    assert applied.code == 0, applied.stderr + applied.stdout
    status = run_cli("status", "--journal", str(journal), "--format", "json")
    assert status.code == 0, status.stderr
    doc = json.loads(status.stdout)
    states = {a["app_id"].lower(): a["state"] for a in doc["apps"]}
    for item in updates:
        expected = "succeeded" if item.path in ("direct", "delegated") else "awaiting-customer"
        assert states[item.app_id.lower()] == expected, item.app_id
    assert doc["state"] == "waiting"
    page = run_cli("status", "--journal", str(journal), "--format", "html")
    assert page.code == 0 and "awaiting-customer" in page.stdout, page.stderr
    writes = mixed.emulator.stats()["writes"]
    written = {key.lower() for key in writes}
    assert written == {i.app_id.lower() for i in updates if i.path in ("direct", "delegated")}
    assert mixed.emulator.stats()["cross_tenant_attempts"] == 0


def test_doctor_reports_each_customers_path_and_what_it_can_do(mixed: Fleet) -> None:
    result = run_cli("doctor", "-c", str(mixed.config_path), "--format", "json")
    assert result.code == 0, result.stderr
    doc = {d["tenant_id"].lower(): d for d in json.loads(result.stdout)}
    for tenant_id, tenant in customers(mixed).items():
        found = doc[tenant_id]
        assert found["path"] == PATHS[tenant["access"]]
        assert found["proposed_path"] == PATHS[tenant["access"]]
        checks = {c["name"]: c["status"] for c in found["checks"]}
        assert checks["applications"] == "ok" and checks["deny assignments"] == "ok"
        assert checks["write access"] == ("ok" if found["path"] in ("direct", "delegated") else "skipped")
    table = run_cli("doctor", "-c", str(mixed.config_path))
    assert "roles/lighthouse-onboarding.json" in table.stdout and "orchestrator handoff" in table.stdout
    assert mixed.emulator.stats()["cross_tenant_attempts"] == 0
