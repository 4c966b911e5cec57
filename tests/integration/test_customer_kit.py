"""Customer-run kits played by their customers with the stock Azure CLI, then verified.

The generated update.sh runs twice (the second run changes nothing), refuses another customer's
subscription, and `verify` ends with every customer-run app succeeded. The CLI comes from
tests/azure_cli.py (installed once into its own cached venv); skipped only when it cannot be installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.planning.planfile import read_plan
from tests import azure_cli
from tests.integration.azcli import find_az, sign_in_as_customer
from tests.integration.conftest import Fleet, make_fleet, run_cli

# The first run installs the CLI (minutes, once per machine).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(azure_cli.INSTALL_TIMEOUT * 2 + 600)]
MIX = "tenants=3,subscriptions=1,apps=3,access=delegated:1,publisher:1,locked:1"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path_factory.mktemp("kits"), generate=MIX, seed=3)


def release_target(fleet: Fleet, path: Path) -> Path:
    """Service catalog apps to app-v2 and marketplace apps to plan version 2.0.0 (as the demo does)."""
    publisher: dict[str, Any] = fleet.emulator.fleet()["publisher"]
    v2 = next(p for p in publisher["marketplace_plans"] if p["version"] == "2.0.0")
    path.write_text(
        "\n".join(
            [
                'name = "release 2"',
                f'definition_id = "{publisher["definitions"]["app-v2"]}"',
                f'lock_level = "{v2["lockLevel"]}"',
                f"allowed_actions = {json.dumps(v2['allowedActions'])}",
                f"allowed_data_actions = {json.dumps(v2['allowedDataActions'])}",
                "[plan]",
                *(f'{k} = "{v2[k]}"' for k in ("publisher", "product", "name", "version")),
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def test_kits_run_twice_by_their_customers_then_verify(mixed: Fleet, tmp_path: Path) -> None:
    az, why = find_az(tmp_path / "bin")
    if az is None:
        pytest.skip(f"the stock Azure CLI cannot be installed here: {why}")
    config, journal = str(mixed.config_path), str(tmp_path / "journal.db")
    plan_path = tmp_path / "plan.json"
    target = release_target(mixed, tmp_path / "release.toml")
    assert run_cli("plan", "-c", config, "--target", str(target), "-o", str(plan_path)).code == 0
    plan = read_plan(plan_path)
    by_customer = [
        i for i in plan.items if i.decision == "update" and i.path in ("publisher", "customer-run")
    ]
    assert {i.kind for i in by_customer} == {"ServiceCatalog", "MarketPlace"}
    applied = run_cli("apply", str(plan_path), "-c", config, "--journal", journal, "--yes")
    assert applied.code == 0, applied.stderr
    kits = tmp_path / "kits"
    handed = run_cli("handoff", str(plan_path), "--out", str(kits), "--journal", journal)
    assert handed.code == 0, handed.stderr
    folders = {p.name: p for p in kits.iterdir()}
    tenants = {i.tenant_id for i in by_customer}
    assert len(folders) == len(tenants)

    writes_before = {k: len(v) for k, v in mixed.emulator.stats()["writes"].items()}
    for n, tenant_id in enumerate(sorted(tenants)):
        folder = next(p for p in folders.values() if tenant_id[:8] in p.name)
        cli = sign_in_as_customer(az, mixed.emulator, tenant_id, tmp_path / f"az-{n}")
        first = cli.script(folder / "update.sh")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "provisioningState Succeeded" in first.stdout
        again = cli.script(folder / "update.sh")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "updating" not in again.stdout and again.stdout.count("already on") == sum(
            1 for i in by_customer if i.tenant_id == tenant_id
        )
        check = cli.script(folder / "update.sh", "--check")
        assert check.returncode == 0, check.stdout
    writes = mixed.emulator.stats()["writes"]
    # One write per customer-run app: the second run of each kit wrote nothing.
    new = {k: len(v) - writes_before.get(k, 0) for k, v in writes.items() if len(v) > writes_before.get(k, 0)}
    assert sorted(new) == sorted(i.app_id.lower() for i in by_customer) and set(new.values()) == {1}

    # A kit refuses a subscription its signed-in customer cannot reach: the delegated customer runs it.
    other = next(t for t in mixed.customer_tenants() if t["id"] not in tenants)
    stranger = sign_in_as_customer(az, mixed.emulator, other["id"], tmp_path / "az-stranger")
    refused = stranger.script(next(iter(folders.values())) / "update.sh")
    assert refused.returncode == 1 and "refusing" in refused.stderr
    assert mixed.emulator.stats()["writes"] == writes

    verified = run_cli("verify", "-c", config, "--journal", journal)
    assert verified.code == 0, verified.stdout + verified.stderr
    status = json.loads(run_cli("status", "--journal", journal, "--format", "json").stdout)
    states = {a["app_id"].lower(): a["state"] for a in status["apps"]}
    assert {states[i.app_id.lower()] for i in by_customer} == {"succeeded"}
    updates = [i for i in plan.items if i.decision == "update"]
    assert {states[i.app_id.lower()] for i in updates} == {"succeeded"} and status["state"] == "completed"
    assert mixed.emulator.stats()["cross_tenant_attempts"] == 0
