"""The emulator sends the documented events to a running receiver (a real process, killed mid-stream
and restarted); after the fleet is announced and one rollout runs, the registry holds every app with
the version the emulator has, and no event is lost. And `inventory --source registry` finds the apps
of customers whose subscriptions cannot be listed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator.fleet import generate
from orchestrator.notifications.registry import Registry
from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import REPO, Fleet, make_fleet, run_cli
from tests.integration.notify import SECRET, Receiver, settled

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path, time_scale=0.01)


def _version(app: dict[str, Any]) -> str:
    if app.get("plan"):
        p = app["plan"]
        return f"{p['publisher']}/{p['product']}/{p['name']}@{p['version']}"
    return str(app["properties"]["applicationDefinitionId"])


def test_registry_follows_the_fleet_through_a_rollout_and_a_killed_receiver(
    fleet: Fleet, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    receiver = Receiver(tmp_path, journal)
    receiver.start()
    announced = fleet.emulator.set_notification_endpoint(receiver.endpoint, announce=True)
    assert announced > 0

    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    plan = tmp_path / "plan.json"
    planned = run_cli("plan", "-c", str(fleet.config_path), "--target-definition", v2, "-o", str(plan))
    assert planned.code == 0, planned.stderr
    apply = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "apply", str(plan), "-c", str(fleet.config_path),
         "--journal", str(journal), "--yes"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # Kill the receiver while the rollout's events are arriving; bring it back a little later.
    deadline = time.monotonic() + 60
    while fleet.emulator.stats()["notifications"]["delivered"] <= announced:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    receiver.kill()
    while fleet.emulator.stats()["notifications"]["answers"].get("unreachable", 0) < 3:
        assert time.monotonic() < deadline, "no event was sent while the receiver was down"
        time.sleep(0.05)
    receiver.start()
    _, err = apply.communicate(timeout=240)
    assert apply.returncode == 0, err.decode()

    stats = settled(fleet.emulator)
    assert stats["retries"] > 0 and stats["gave_up"] == 0 and stats["rejected"] == 0
    assert stats["delivered"] == stats["events"]
    assert receiver.stop() == 0

    state = fleet.emulator.state()
    with Registry(journal) as registry:
        assert registry.count_events() == stats["events"]  # every event, once
        instances = {i.app_id.lower(): i for i in registry.instances()}
    apps = {a["id"].lower(): a for a in state["applications"]}
    assert set(instances) == set(apps)
    for key, app in apps.items():
        inst = instances[key]
        assert inst.version == _version(app), key
        assert inst.kind.lower() == app["kind"].lower() and not inst.deleted
        assert inst.last_state == app["properties"]["provisioningState"], key
    assert any(i.definition_id == v2 for i in instances.values())

    shown = run_cli("notifications", "show", next(iter(apps.values()))["id"], "--journal", str(journal),
                    "-f", "json")  # fmt: skip
    assert shown.code == 0, shown.stderr
    assert json.loads(shown.stdout)["events"]
    exported = run_cli("notifications", "export", "--journal", str(journal), "-f", "csv")
    assert exported.code == 0 and len(exported.stdout.strip().splitlines()) == len(apps) + 1
    # The secret is in no log line the receiver wrote, and not in the journal's file.
    assert SECRET not in receiver.log.read_text()
    assert SECRET.encode() not in journal.read_bytes()


def test_inventory_from_the_registry_finds_apps_no_identity_can_list(tmp_path: Path) -> None:
    state = generate("tenants=3,subscriptions=2,apps=3", 1)
    for tenant in state.tenants.values():
        if tenant.role != "publisher":
            tenant.publisher_access = "by-id"  # roles on resource groups only: no subscription listing
    fleet_file = tmp_path / "fleet.json"
    state.save(fleet_file)
    journal = tmp_path / ".state" / "journal.db"  # the default journal of a command run in tmp_path
    for fleet in make_fleet(tmp_path, fleet=fleet_file, time_scale=0.01):
        receiver = Receiver(tmp_path, journal)
        receiver.start()
        try:
            fleet.emulator.set_notification_endpoint(receiver.endpoint, announce=True)
            settled(fleet.emulator)
        finally:
            assert receiver.stop() == 0
        every = {a["id"].lower() for a in fleet.emulator.fleet()["applications"]}
        config = str(fleet.config_path)

        inventory = ("inventory", "-c", config, "-f", "json", "--journal", str(journal))
        listed = run_cli(*inventory, "--source", "arm")
        assert listed.code == 3 and "AuthorizationFailed" in listed.stderr
        assert json.loads(listed.stdout)["apps"] == []

        result = run_cli(*inventory, "--source", "registry")
        assert result.code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert {a["id"].lower() for a in doc["apps"]} == every
        assert doc["sources"] == {"arm": 0, "registry": len(every)} and doc["registry_misses"] == []
        assert all(a["excluded_actions"] for a in doc["apps"])  # deny assignments read at each MRG
        assert f"{len(every)} from registry" in result.stderr

        both = run_cli(*inventory)  # default: both, since the journal holds a registry
        assert both.code == 3  # the listings still fail, and say so
        assert {a["id"].lower() for a in json.loads(both.stdout)["apps"]} == every

        # plan makes the same choice of sources: it plans every app the registry knows.
        v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
        plan = tmp_path / "plan.json"
        planned = run_cli("plan", "-c", config, "--target-definition", v2, "-o", str(plan), cwd=tmp_path)
        assert planned.code == 3, planned.stderr  # the listings fail, as for inventory
        assert {i.app_id.lower() for i in read_plan(plan).items} == every
