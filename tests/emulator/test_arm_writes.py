"""Application writes: LROs to completion, 409 while busy, validation, access, deny re-derivation."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient
from azure.mgmt.managedapplications import types as wire
from azure.mgmt.managedapplications.aio import ManagedApplicationsMgmtClient as AioManagedAppsClient

from orchestrator.emulator.testing import EmulatorHandle
from tests.emulator import conftest as kit

pytestmark = pytest.mark.integration
API = "api-version=2023-12-01-preview"
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _apps(emu: EmulatorHandle, tenant: kit.Tenant) -> list[dict[str, Any]]:
    token = kit.token_for(emu, tenant)
    out: list[dict[str, Any]] = []
    for sub in tenant.subscriptions:
        _, _, body = kit.raw(
            emu, "GET", f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?{API}", token
        )
        while True:
            out += body["value"]
            if "nextLink" not in body:
                break
            _, _, body = kit.raw(emu, "GET", body["nextLink"], token)
    return out


def _pick(
    emu: EmulatorHandle, fleet: dict[str, Any], tenant: kit.Tenant, kind: str, definition: str = "app-v1"
) -> dict[str, Any]:
    def_id = fleet["publisher"]["definitions"][definition].lower()
    for app in _apps(emu, tenant):
        if app["kind"] != kind or app["properties"]["provisioningState"] != "Succeeded":
            continue
        if kind == "MarketPlace" or app["properties"].get("applicationDefinitionId", "").lower() == def_id:
            return app
    raise AssertionError(f"no {kind} app on {definition}")


def _system_deny(emu: EmulatorHandle, tenant: kit.Tenant, app: dict[str, Any]) -> list[Any]:
    sub = app["id"].split("/")[2]
    mrg = app["properties"]["managedResourceGroupId"].split("/")[-1]
    client = kit.sync_client(AuthorizationManagementClient, emu, tenant, sub)
    return [d for d in client.deny_assignments.list_for_resource_group(mrg) if d.is_system_protected]


def _expected_not_actions(fleet: dict[str, Any], version: str) -> list[str]:
    plan = next(p for p in fleet["publisher"]["marketplace_plans"] if p["version"] == version)
    return ["*/read", *plan["allowedActions"]]


def _put_body(app: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "kind": app["kind"],
        "location": app["location"],
        "properties": {
            "managedResourceGroupId": app["properties"]["managedResourceGroupId"],
            "parameters": app["properties"].get("parameters", {}),
        },
    }
    if app["kind"] == "MarketPlace":
        body["plan"] = dict(app["plan"])
    else:
        body["properties"]["applicationDefinitionId"] = app["properties"]["applicationDefinitionId"]
    body.update(changes)
    return body


async def test_put_to_v2_completes_and_rederives_the_deny_assignment(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    before = _system_deny(emulator, tenant, app)
    assert len(before) == 1
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    body = _put_body(app)
    body["properties"]["applicationDefinitionId"] = fleet["publisher"]["definitions"]["app-v2"]
    async with (
        kit.aio_credential(emulator, tenant) as cred,
        AioManagedAppsClient(cred, sub, **kit.client_kwargs(emulator)) as c,
    ):
        poller = await c.applications.begin_create_or_update(rg, app["name"], kit.app_body(body))
        during = await c.applications.get(rg, app["name"])
        assert kit.present(during).provisioning_state in ("Accepted", "Updating")
        result = await poller.result()
    assert result.provisioning_state == "Succeeded"
    assert result.application_definition_id.lower() == fleet["publisher"]["definitions"]["app-v2"].lower()
    after = _system_deny(emulator, tenant, app)
    assert len(after) == 1
    deny = after[0]
    perm = deny.permissions[0]
    assert perm.actions == ["*"]
    assert perm.not_actions == _expected_not_actions(fleet, "2.0.0")
    assert KV in perm.not_actions
    assert perm.data_actions == ["*"]
    assert perm.not_data_actions == fleet["publisher"]["marketplace_plans"][1]["allowedDataActions"]
    assert deny.name == str(uuid.uuid5(uuid.NAMESPACE_URL, app["id"].lower()))
    assert deny.deny_assignment_name == f"System deny assignment created by managed application {app['id']}"
    assert deny.scope == app["properties"]["managedResourceGroupId"]
    assert deny.do_not_apply_to_child_scopes is False
    assert [(p.id, p.type) for p in deny.principals] == [
        ("00000000-0000-0000-0000-000000000000", "SystemDefined")
    ]
    assert [p.type for p in deny.exclude_principals] == ["ServicePrincipal"]
    writes = emulator.stats()["writes"][app["id"].lower()]
    assert [w["conflict"] for w in writes] == [False]
    assert writes[0]["end"] is not None and writes[0]["end"] >= writes[0]["start"]


def test_marketplace_patch_to_plan_2_sync(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "MarketPlace")
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    result = client.applications.begin_update(
        rg, app["name"], kit.patch_body({"plan": {**app["plan"], "version": "2.0.0"}})
    ).result()
    assert result.provisioning_state == "Succeeded"
    assert kit.present(result.plan).version == "2.0.0"
    deny = _system_deny(emulator, tenant, app)[0]
    assert deny.permissions[0].not_actions == _expected_not_actions(fleet, "2.0.0")


def test_write_during_an_operation_is_409_and_counted(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    emulator.set_time_scale(0.02)  # 2.4 s operations: room for the conflicting write
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    token = kit.token_for(emulator, tenant)
    url = f"{app['id']}?{API}"
    status, headers, body = kit.raw(emulator, "PUT", url, token, _put_body(app))
    assert status == 200
    assert body["properties"]["provisioningState"] == "Accepted"
    lowered = {k.lower(): v for k, v in headers.items()}
    assert "/operationStatuses/" in lowered["azure-asyncoperation"]
    assert "retry-after-ms" in lowered or "retry-after" in lowered
    for method, payload in (("PUT", _put_body(app)), ("PATCH", {"tags": {"a": "b"}}), ("DELETE", None)):
        status, _, body = kit.raw(emulator, method, url, token, payload)
        assert status == 409, (method, body)
        assert body["error"]["code"] == "AnotherOperationInProgress"
    status, _, body = kit.raw(emulator, "POST", f"{app['id']}/refreshPermissions?{API}", token)
    assert status == 409
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    with pytest.raises(HttpResponseError) as info:
        client.applications.begin_update(rg, app["name"], kit.patch_body({"tags": {"x": "y"}}))
    assert info.value.status_code == 409
    status, _, op = kit.raw(emulator, "GET", lowered["azure-asyncoperation"], token)
    assert status == 200 and op["status"] in ("Accepted", "Running")
    stats = emulator.stats()
    assert stats["conflicting_writes"] == 5
    assert stats["max_concurrent_ops_per_app"][app["id"]] == 1
    # Accepted writes never overlap; conflicting ones are recorded and flagged.
    records = stats["writes"][app["id"].lower()]
    accepted = [r for r in records if not r["conflict"]]
    assert len(accepted) == 1 and len(records) == 6


def test_put_validation_like_arm(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    market = _pick(emulator, fleet, tenant, "MarketPlace")
    token = kit.token_for(emulator, tenant)
    url = f"{app['id']}?{API}"
    cases: list[tuple[dict[str, Any], str]] = []
    no_kind = _put_body(app)
    del no_kind["kind"]
    cases.append((no_kind, "InvalidApplicationKind"))
    no_location = _put_body(app)
    del no_location["location"]
    cases.append((no_location, "LocationRequired"))
    cases.append((_put_body(app, location="australiaeast"), "InvalidResourceLocation"))
    moved = _put_body(app)
    moved["properties"]["managedResourceGroupId"] = app["properties"]["managedResourceGroupId"] + "x"
    cases.append((moved, "ManagedResourceGroupIdCannotBeChanged"))
    bad_def = _put_body(app)
    bad_def["properties"]["applicationDefinitionId"] += "-missing"
    cases.append((bad_def, "ApplicationDefinitionNotFound"))
    for body, code in cases:
        status, _, err = kit.raw(emulator, "PUT", url, token, body)
        assert (status, err["error"]["code"]) == (400, code)
    bad_plan = _put_body(market)
    bad_plan["plan"]["version"] = "9.9.9"
    status, _, err = kit.raw(emulator, "PUT", f"{market['id']}?{API}", token, bad_plan)
    assert (status, err["error"]["code"]) == (400, "InvalidMarketplacePlan")
    assert emulator.stats()["operations_in_flight"] == 0


def test_read_only_tenant_gets_403_on_writes(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = kit.tenant_of(emulator, fleet, len(fleet["tenants"]) - 1)
    assert tenant.raw["publisher_access"] == "read-only"
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    assert client.applications.get(rg, app["name"]) is not None  # reads are fine
    with pytest.raises(HttpResponseError) as info:
        client.applications.begin_create_or_update(rg, app["name"], kit.app_body(_put_body(app)))
    assert info.value.status_code == 403
    error = kit.present(info.value.error)
    assert error.code == "AuthorizationFailed"
    assert "Microsoft.Solutions/applications/write" in kit.present(error.message)
    assert app["name"] in kit.present(error.message)  # the scope is named


def test_unlocked_definition_removes_the_system_deny_and_back(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    body = _put_body(app)
    body["properties"]["applicationDefinitionId"] = fleet["publisher"]["definitions"]["app-v1-unlocked"]
    client.applications.begin_create_or_update(rg, app["name"], kit.app_body(body)).result()
    assert _system_deny(emulator, tenant, app) == []
    body["properties"]["applicationDefinitionId"] = fleet["publisher"]["definitions"]["app-v1"]
    client.applications.begin_create_or_update(rg, app["name"], kit.app_body(body)).result()
    assert _system_deny(emulator, tenant, app)[0].permissions[0].not_actions == _expected_not_actions(
        fleet, "1.0.0"
    )


def test_refresh_permissions_repairs_a_drifted_deny(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    expected = _expected_not_actions(fleet, "1.0.0")
    drifted = None
    for app in _apps(emulator, tenant):
        denies = _system_deny(emulator, tenant, app)
        if app["kind"] == "ServiceCatalog" and denies and denies[0].permissions[0].not_actions != expected:
            drifted = app
            break
    assert drifted is not None, "the generated fleet has drifted deny assignments"
    sub, rg = drifted["id"].split("/")[2], drifted["id"].split("/")[4]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    assert client.applications.begin_refresh_permissions(rg, drifted["name"]).result() is None
    assert _system_deny(emulator, tenant, drifted)[0].permissions[0].not_actions == expected
    assert kit.present(client.applications.get(rg, drifted["name"])).provisioning_state == "Succeeded"


def test_create_and_delete_an_application(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    sub = tenant.subscriptions[0]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    mrg = f"/subscriptions/{sub}/resourceGroups/mrg-newapp-abc123"
    body = {
        "kind": "ServiceCatalog",
        "location": "eastus",
        "properties": {
            "managedResourceGroupId": mrg,
            "applicationDefinitionId": fleet["publisher"]["definitions"]["app-v2"],
        },
    }
    poller = client.applications.begin_create_or_update("rg-managedapps", "newapp", kit.app_body(body))
    created = poller.result()
    assert created.provisioning_state == "Succeeded"
    app = {"id": created.id, "properties": {"managedResourceGroupId": mrg}}
    assert _system_deny(emulator, tenant, app)[0].permissions[0].not_actions == _expected_not_actions(
        fleet, "2.0.0"
    )
    client.applications.begin_delete("rg-managedapps", "newapp").result()
    assert client.applications.get("rg-managedapps", "newapp") is None  # this SDK maps 404 to None
    token = kit.token_for(emulator, tenant)
    status, _, err = kit.raw(emulator, "GET", f"{created.id}?{API}", token)
    assert (status, err["error"]["code"]) == (404, "ResourceNotFound")


def test_definition_writes_need_the_publisher_tenant(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    publisher = kit.publisher_of(emulator, fleet)
    pub_sub = fleet["publisher"]["subscription_id"]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, publisher, pub_sub)
    v3 = {
        "location": "eastus",
        "properties": {
            "lockLevel": "CanNotDelete",
            "authorizations": [{"principalId": str(uuid.uuid4()), "roleDefinitionId": str(uuid.uuid4())}],
            "lockingPolicy": {
                "allowedActions": ["Microsoft.Web/sites/restart/action"],
                "allowedDataActions": [],
            },
        },
    }
    created = client.application_definitions.create_or_update(
        "rg-publisher", "app-v3", cast(wire.ApplicationDefinition, v3)
    )
    assert created.lock_level == "CanNotDelete"
    customer = kit.tenant_of(emulator, fleet)
    status, _, err = kit.raw(emulator, "PUT", f"{created.id}?{API}", kit.token_for(emulator, customer), v3)
    assert (status, err["error"]["code"]) == (401, "InvalidAuthenticationTokenTenant")
    # CanNotDelete derivation on an app moved to the new definition.
    app = _pick(emulator, fleet, customer, "ServiceCatalog")
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    mclient = kit.sync_client(ManagedApplicationsMgmtClient, emulator, customer, sub)
    body = _put_body(app)
    body["properties"]["applicationDefinitionId"] = created.id
    mclient.applications.begin_create_or_update(rg, app["name"], kit.app_body(body)).result()
    perm = _system_deny(emulator, customer, app)[0].permissions[0]
    assert (perm.actions, perm.not_actions, perm.data_actions) == (
        ["*/delete"],
        ["Microsoft.Web/sites/restart/action"],
        [],
    )


def test_generated_fleet_has_failed_apps(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    states = {
        a["properties"]["provisioningState"]
        for t in range(len(fleet["tenants"]))
        for a in _apps(emulator, kit.tenant_of(emulator, fleet, t))
    }
    assert {"Succeeded", "Failed"} <= states


async def test_concurrent_writes_never_overlap(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    """Many simultaneous writes to one app: exactly one is accepted, the rest get 409."""
    import asyncio

    import aiohttp

    from tests.emulator.conftest import ssl_context

    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    token = kit.token_for(emulator, tenant)
    url = f"{emulator.url}{app['id'].lstrip('/')}?{API}"
    connector = aiohttp.TCPConnector(ssl=ssl_context(emulator))
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {token}"}) as s:

        async def put() -> int:
            async with s.put(url, json=_put_body(app)) as resp:
                return resp.status

        statuses = await asyncio.gather(*(put() for _ in range(12)))
    assert sorted(statuses) == [200] + [409] * 11
    stats = emulator.stats()
    assert stats["conflicting_writes"] == 11
    assert stats["max_concurrent_ops_per_app"][app["id"]] == 1


def test_list_allowed_upgrade_plans(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "MarketPlace")
    sub, rg = app["id"].split("/")[2], app["id"].split("/")[4]
    client = kit.sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    plans = client.applications.list_allowed_upgrade_plans(rg, app["name"])
    assert [(p.product, p.name, p.version) for p in kit.present(plans.value)] == [
        ("contoso-app", "standard", "2.0.0")
    ]


@pytest.mark.parametrize("action", ["drop_response", "drop_mid_body"])
def test_dropped_answers_apply_the_write_first(
    emulator: EmulatorHandle, fleet: dict[str, Any], action: str
) -> None:
    import http.client
    import urllib.error

    emulator.set_time_scale(0.02)
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    token = kit.token_for(emulator, tenant)
    emulator.set_faults([{"kind": "write", "action": action, "first": 1}])
    body = _put_body(app)
    body["properties"]["applicationDefinitionId"] = fleet["publisher"]["definitions"]["app-v2"]
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError, OSError)):
        kit.raw(emulator, "PUT", f"{app['id']}?{API}", token, body)
    # The write landed although its answer was lost: the operation runs, the app shows the new id.
    _, _, now = kit.raw(emulator, "GET", f"{app['id']}?{API}", token)
    assert now["properties"]["provisioningState"] in ("Accepted", "Updating")
    assert now["properties"]["applicationDefinitionId"].lower().endswith("/app-v2")
    stats = emulator.stats()
    assert stats["writes_per_app"][app["id"]] == 1
    assert stats["requests"][f"write 200 {action}"] == 1 and stats["faults_injected"][action] == 1


def test_a_write_repeated_after_its_success_is_counted(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    import time

    emulator.set_time_scale(0.001)  # 0.12 s operations
    tenant = kit.tenant_of(emulator, fleet)
    app = _pick(emulator, fleet, tenant, "ServiceCatalog")
    token = kit.token_for(emulator, tenant)
    v2 = _put_body(app)
    v2["properties"]["applicationDefinitionId"] = fleet["publisher"]["definitions"]["app-v2"]
    url = f"{app['id']}?{API}"

    def settle() -> None:
        for _ in range(200):
            if kit.raw(emulator, "GET", url, token)[2]["properties"]["provisioningState"] == "Succeeded":
                return
            time.sleep(0.02)
        raise AssertionError("the operation did not end")

    for body in (v2, v2, _put_body(app), v2):  # v2, v2 again (repeat), back to v1, v2 (not a repeat)
        assert kit.raw(emulator, "PUT", url, token, body)[0] == 200
        settle()
    stats = emulator.stats()
    assert stats["writes_after_success"] == 1
    assert stats["writes_after_success_per_app"] == {app["id"]: 1}
    assert stats["writes_per_app"][app["id"]] == 4
