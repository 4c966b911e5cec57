"""--confirm: each stored event is checked by reading the app by id with the real SDK, and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.arm import AzureGateway
from orchestrator.notifications.confirm import Confirmer
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import parse_event
from tests.integration.conftest import Fleet
from tests.notifications.events import body

pytestmark = pytest.mark.integration


async def test_confirmation_reads_the_app_with_the_owning_tenant(fleet: Fleet, tmp_path: Path) -> None:
    apps = fleet.emulator.fleet()["applications"]
    state = {a["id"].lower(): a for a in fleet.emulator.state()["applications"]}
    live = next(a for a in apps if state[a["id"].lower()]["properties"]["provisioningState"] == "Succeeded")
    gone = live["id"].rsplit("/", 1)[0] + "/no-such-app"
    events = [
        parse_event(json.dumps(body(app=live["id"], state="Succeeded")).encode()),
        parse_event(json.dumps(body(app=live["id"], state="Failed", seconds=5)).encode()),
        parse_event(json.dumps(body(app=gone, event_type="DELETE", state="Deleted")).encode()),
        parse_event(json.dumps(body(app=gone, state="Succeeded", seconds=1)).encode()),
    ]
    with Registry(tmp_path / "journal.db") as registry:
        registry.record_many(events)
        async with AzureGateway(fleet.config) as gateway:
            confirm = Confirmer(fleet.config, gateway, registry)
            for event in events:
                await confirm(event)
        outcomes = {
            (s.event.application_id, s.event.provisioning_state): (s.confirm_outcome, s.confirm_detail)
            for s in registry.events()
        }
        inst = registry.instance(live["id"])
    assert outcomes[(live["id"], "Succeeded")] == ("confirmed", "ARM says provisioningState Succeeded")
    assert outcomes[(live["id"], "Failed")] == ("differs", "ARM says provisioningState Succeeded")
    assert outcomes[(gone, "Deleted")][0] == "confirmed"
    assert outcomes[(gone, "Succeeded")][0] == "not-found"
    sub = live["id"].split("/")[2]
    owner = next(t["id"] for t in fleet.emulator.fleet()["tenants"] if sub in t["subscriptions"])
    assert inst is not None and inst.tenant_id == owner
    assert fleet.emulator.stats()["cross_tenant_attempts"] == 0
