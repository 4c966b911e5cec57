"""Two products in one fleet: a target for one never plans or writes the other's instances.

The generator's `products=2` puts a quarter of the app-v1 instances on `monitoring-v1`, a second
service-catalog product published from the same resource group. `plan --target-definition app-v2` (no
lineage written: the name-stem rule) and `--target-definition monitoring-v2` each move only their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import EXIT_PARTIAL
from orchestrator.models import AppState, Decision
from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import Fleet, make_fleet, run_cli
from tests.integration.test_apply import TIME_SCALE, apply_args, apply_cli, journal_view

pytestmark = pytest.mark.integration


@pytest.fixture
def two_products(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(
        tmp_path,
        generate="tenants=3,subscriptions=2,apps=8,products=2",
        time_scale=TIME_SCALE,
        operation_seconds=30,
    )


def _apps_on(fleet: Fleet, definition: str) -> set[str]:
    wanted = fleet.emulator.fleet()["publisher"]["definitions"][definition].lower()
    return {
        a["id"].lower()
        for a in fleet.emulator.state()["applications"]
        if (a["properties"].get("applicationDefinitionId") or "").lower() == wanted
    }


@pytest.mark.parametrize(
    ("target", "ours", "theirs"),
    [("app-v2", "app-v1", "monitoring-v1"), ("monitoring-v2", "monitoring-v1", "app-v1")],
)
def test_a_target_moves_its_own_product_only(
    two_products: Fleet, tmp_path: Path, target: str, ours: str, theirs: str
) -> None:
    fleet = two_products
    definition = fleet.emulator.fleet()["publisher"]["definitions"][target]
    their_apps = _apps_on(fleet, theirs)
    our_apps = _apps_on(fleet, ours)
    assert their_apps and our_apps
    out = tmp_path / "plan.json"
    planned = run_cli(
        "plan", "--config", str(fleet.config_path), "--target-definition", definition, "--out", str(out)
    )
    assert planned.code == 0, planned.stderr[-2000:]
    plan = read_plan(out)
    by_id = {i.app_id.lower(): i for i in plan.items}
    for app_id in their_apps:
        item = by_id[app_id]
        assert item.decision == Decision.SKIP and item.reason.startswith("different product"), item.reason
    updates = {a for a, i in by_id.items() if i.decision == Decision.UPDATE}
    assert updates and updates <= our_apps
    assert "different product" in planned.stdout  # the reviewer sees why

    journal = tmp_path / "journal.db"
    applied = apply_cli(*apply_args(fleet, out, journal, "--failure-tolerance", "100%"))
    assert applied.returncode in (0, EXIT_PARTIAL), applied.stderr[-2000:]
    stats = fleet.emulator.stats()
    written = {a.lower() for a in stats["writes_per_app"]}
    assert written and written <= our_apps
    assert not written & their_apps  # 0 apps of the other product written
    assert _apps_on(fleet, theirs) == their_apps  # and all of them still on their own definition
    view = journal_view(journal)
    assert all(a.state == AppState.SKIPPED for a in view.apps if a.app_id.lower() in their_apps)
    print(
        f"\nlineage ({target}): {len(updates)} of {len(our_apps)} {ours} apps planned, "
        f"{len(their_apps)} {theirs} apps skipped as a different product, "
        f"{len(written & their_apps)} of them written"
    )


def test_target_definition_without_a_version_token_is_refused(two_products: Fleet, tmp_path: Path) -> None:
    from tests.emulator.conftest import publisher_of, raw, token_for

    fleet = two_products
    info = fleet.emulator.fleet()
    v2 = info["publisher"]["definitions"]["app-v2"]
    unversioned = v2.rsplit("/", 1)[0] + "/contoso-app"
    publisher = publisher_of(fleet.emulator, info)
    status, _, _ = raw(
        fleet.emulator,
        "PUT",
        f"{unversioned}?api-version=2023-12-01-preview",
        token_for(fleet.emulator, publisher),
        {"location": "eastus", "properties": {"lockLevel": "ReadOnly"}},
    )
    assert status == 201
    out = tmp_path / "plan.json"
    result = run_cli(
        "plan", "--config", str(fleet.config_path), "--target-definition", unversioned, "--out", str(out)
    )
    assert result.code == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "write a target file" in lines[0] and "`replaces` table" in lines[0], (
        result.stderr
    )
    assert "Traceback" not in result.stderr and not out.exists()
