"""The fleet generator and the derivation rule, without a server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orchestrator.emulator.derive import derive_deny_assignment
from orchestrator.emulator.fleet import V2_EXTRA_ACTION, generate, parse_generate
from orchestrator.emulator.state import State

pytestmark = pytest.mark.integration


def test_generator_is_deterministic_for_a_seed() -> None:
    a, b, c = (generate("tenants=2,subscriptions=2,apps=3", s).to_json() for s in (7, 7, 8))
    assert a == b
    assert a["tenants"] != c["tenants"]


def test_generated_fleet_has_every_kind_of_instance() -> None:
    state = generate("tenants=3,subscriptions=2,apps=4", 1)
    customers = [t for t in state.tenants.values() if t.role == "customer"]
    assert [t.name for t in customers] == ["Contoso 001", "Contoso 002", "Contoso 003"]
    assert [t.ring for t in customers] == ["canary", "default", "default"]
    assert [t.publisher_access for t in customers] == ["full", "full", "read-only"]
    apps = list(state.applications.values())
    assert len(apps) == 24
    kinds = {a["kind"] for a in apps}
    assert kinds == {"ServiceCatalog", "MarketPlace"}
    defs = {d["name"]: d for d in state.definitions.values()}
    v1, v2 = (defs[n]["properties"]["lockingPolicy"]["allowedActions"] for n in ("app-v1", "app-v2"))
    assert v2 == [*v1, V2_EXTRA_ACTION]
    assert defs["app-v1"]["properties"]["lockingPolicy"]["allowedDataActions"]
    assert defs["app-v1-unlocked"]["properties"]["lockLevel"] == "None"
    unlocked = [
        a for a in apps if a["properties"].get("applicationDefinitionId", "").endswith("app-v1-unlocked")
    ]
    assert unlocked
    assert any(a["properties"]["provisioningState"] == "Failed" for a in apps)
    for app in apps:
        mrg = app["properties"]["managedResourceGroupId"]
        assert mrg.split("/")[2] == app["id"].split("/")[2]
        assert mrg.split("/")[-1].startswith(f"mrg-{app['name']}-")
        assert mrg.lower() in state.resource_groups
    system = [d for d in state.deny_assignments.values() if d["properties"]["isSystemProtected"]]
    traps = [d for d in state.deny_assignments.values() if not d["properties"]["isSystemProtected"]]
    assert traps
    assert len(system) == len(apps) - len(unlocked)
    drifted = [
        d
        for d in system
        if "Microsoft.Web/sites/stop/action" in d["properties"]["permissions"][0]["notActions"]
    ]
    assert drifted
    assert {o["version"] for o in state.offers} == {"1.0.0", "2.0.0"}
    assert State.from_json(state.to_json()).to_json() == state.to_json()


def test_parse_generate() -> None:
    assert parse_generate("tenants=3,subscriptions=2,apps=4") == (3, 2, 4)
    assert parse_generate("apps=9") == (1, 1, 9)
    with pytest.raises(ValueError, match="bad --generate"):
        parse_generate("tenants=x")


def test_derivation_rule() -> None:
    app_id = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Solutions/applications/App"
    mrg = "/subscriptions/S/resourceGroups/mrg-app-1"
    common: dict[str, Any] = {
        "app_id": app_id,
        "mrg_id": mrg,
        "allowed_actions": ["a/action"],
        "allowed_data_actions": ["d/read"],
        "excluded_principal_ids": ["p1"],
    }
    ro = derive_deny_assignment(lock_level="ReadOnly", **common)
    assert ro is not None
    assert ro["properties"]["permissions"] == [
        {
            "actions": ["*"],
            "notActions": ["*/read", "a/action"],
            "dataActions": ["*"],
            "notDataActions": ["d/read"],
        }
    ]
    assert ro["name"] == str(uuid.uuid5(uuid.NAMESPACE_URL, app_id.lower()))
    assert ro["id"] == f"{mrg}/providers/Microsoft.Authorization/denyAssignments/{ro['name']}"
    # Like real ones: the app id is in the name, the description is generic.
    assert (
        ro["properties"]["denyAssignmentName"]
        == f"System deny assignment created by managed application {app_id}"
    )
    assert app_id not in ro["properties"]["description"]
    assert ro["properties"]["excludePrincipals"] == [{"id": "p1", "type": "ServicePrincipal"}]
    assert (
        ro["properties"]["isSystemProtected"] is True and ro["properties"]["doNotApplyToChildScopes"] is False
    )
    cnd = derive_deny_assignment(lock_level="CanNotDelete", **common)
    assert cnd is not None
    assert cnd["properties"]["permissions"] == [
        {"actions": ["*/delete"], "notActions": ["a/action"], "dataActions": [], "notDataActions": ["d/read"]}
    ]
    assert derive_deny_assignment(lock_level="None", **common) is None
