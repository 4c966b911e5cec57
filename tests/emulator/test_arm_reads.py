"""ARM reads through the real SDK clients over HTTPS: subscriptions, applications, definitions,
deny assignments, permissions; paging, api-versions, case-insensitive paths, envelopes, schemas."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.aio import AuthorizationManagementClient as AioAuthorizationClient
from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient
from azure.mgmt.managedapplications.aio import ManagedApplicationsMgmtClient as AioManagedAppsClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
from azure.mgmt.resource.subscriptions.aio import SubscriptionClient as AioSubscriptionClient

from orchestrator.emulator.testing import EmulatorHandle
from tests.emulator.conftest import (
    PAGE_SIZE,
    aio_credential,
    client_kwargs,
    present,
    publisher_of,
    raw,
    signed_in,
    sync_client,
    tenant_of,
    token_for,
)
from tests.emulator.specs import COMMON, DENY, SOLUTIONS, validate

pytestmark = pytest.mark.integration
SOLUTIONS_API = "api-version=2023-12-01-preview"


def test_subscriptions_only_the_token_tenant_sync_and_paged(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = tenant_of(emulator, fleet)
    client = sync_client(SubscriptionClient, emulator, tenant)
    subs = list(client.subscriptions.list())
    assert sorted(present(s.subscription_id) for s in subs) == sorted(tenant.subscriptions)
    assert len(subs) > PAGE_SIZE  # so the nextLink was followed
    assert all(s.tenant_id == tenant.id for s in subs)
    one = client.subscriptions.get(tenant.subscriptions[0])
    assert present(one.display_name).startswith(tenant.name)
    tenants = list(client.tenants.list())
    assert [t.tenant_id for t in tenants] == [tenant.id]


async def test_subscriptions_aio(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet, 1)
    async with (
        aio_credential(emulator, tenant) as cred,
        AioSubscriptionClient(cred, **client_kwargs(emulator)) as c,
    ):
        subs = [present(s.subscription_id) async for s in c.subscriptions.list()]
    assert sorted(subs) == sorted(tenant.subscriptions)


def test_applications_list_get_sync(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    sub = tenant.subscriptions[0]
    client = sync_client(ManagedApplicationsMgmtClient, emulator, tenant, sub)
    apps = list(client.applications.list_by_subscription())
    assert len(apps) == 7
    by_rg = list(client.applications.list_by_resource_group("rg-managedapps"))
    assert [a.id for a in by_rg] == [a.id for a in apps]
    got = client.applications.get_by_id(present(apps[0].id))
    assert got is not None and got.id == apps[0].id
    assert {a.kind for a in apps} == {"ServiceCatalog", "MarketPlace"}
    market = next(a for a in apps if a.kind == "MarketPlace")
    plan = present(market.plan)
    assert plan.publisher == "contoso-isv" and plan.version == "1.0.0"


async def test_applications_aio_paging_and_definitions(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = tenant_of(emulator, fleet)
    sub = tenant.subscriptions[1]
    async with (
        aio_credential(emulator, tenant) as cred,
        AioManagedAppsClient(cred, sub, **client_kwargs(emulator)) as c,
    ):
        apps = [a async for a in c.applications.list_by_subscription()]
        assert len(apps) == 7
        app = await c.applications.get("rg-managedapps", present(apps[3].name))
        assert app is not None and app.managed_resource_group_id.split("/")[-1].startswith(f"mrg-{app.name}-")
    # Any authenticated token may read a definition in the publisher's subscription
    # (documented simplification).
    pub_sub = fleet["publisher"]["subscription_id"]
    async with (
        aio_credential(emulator, tenant) as cred,
        AioManagedAppsClient(cred, pub_sub, **client_kwargs(emulator)) as c,
    ):
        definition = await c.application_definitions.get("rg-publisher", "app-v2")
        assert definition is not None
        assert (
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
            in definition.locking_policy.allowed_actions
        )


def test_next_link_is_absolute_https_with_api_version_and_skip_token(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    status, _, body = raw(
        emulator,
        "GET",
        f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?{SOLUTIONS_API}",
        token,
    )
    assert status == 200
    assert len(body["value"]) == PAGE_SIZE
    link = urlsplit(body["nextLink"])
    assert body["nextLink"].startswith(emulator.url)
    assert link.scheme == "https"
    query = parse_qs(link.query)
    assert query["api-version"] == ["2023-12-01-preview"] and query["$skiptoken"]
    validate(SOLUTIONS, "ApplicationListResult", body)
    seen = [a["id"] for a in body["value"]]
    while "nextLink" in body:
        status, _, body = raw(emulator, "GET", body["nextLink"], token)
        seen += [a["id"] for a in body["value"]]
    assert len(seen) == len(set(seen)) == 7


def test_paths_are_case_insensitive(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    token = token_for(emulator, tenant)
    app_id = next(a["id"] for a in fleet["applications"] if a["id"].split("/")[2] == tenant.subscriptions[0])
    lower = app_id.replace("resourceGroups", "resourcegroups").replace(
        "Microsoft.Solutions", "microsoft.solutions"
    )
    upper = app_id.replace("resourceGroups", "RESOURCEGROUPS").replace("/applications/", "/Applications/")
    for path in (app_id, lower, upper):
        status, _, body = raw(emulator, "GET", f"{path}?{SOLUTIONS_API}", token)
        assert status == 200, body
        assert body["id"] == app_id  # ARM answers with the stored casing
        validate(SOLUTIONS, "Application", body)


def test_api_version_is_required_and_checked(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    path = f"subscriptions/{sub}/providers/Microsoft.Solutions/applications"
    status, _, body = raw(emulator, "GET", path, token)
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, _, body = raw(emulator, "GET", f"{path}?api-version=2017-09-01", token)
    assert status == 400 and body["error"]["code"] == "NoRegisteredProviderFound"
    validate(COMMON, "ErrorResponse", body)
    status, _, body = raw(emulator, "GET", f"{path}?api-version=2021-07-01", token)
    assert status == 200
    status, _, body = raw(emulator, "GET", "subscriptions?api-version=1999-01-01", token)
    assert status == 400 and body["error"]["code"] == "InvalidApiVersionParameter"


def test_missing_application_unknown_route_and_headers(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    _tenant, token, sub = signed_in(emulator, fleet)
    path = (
        f"subscriptions/{sub}/resourceGroups/rg-managedapps/providers/Microsoft.Solutions/applications/nope"
    )
    status, headers, body = raw(
        emulator,
        "GET",
        f"{path}?{SOLUTIONS_API}",
        token,
        headers={"x-ms-correlation-request-id": "corr-123", "x-ms-client-request-id": "client-456"},
    )
    assert status == 404
    assert body == {
        "error": {
            "code": "ResourceNotFound",
            "message": body["error"]["message"],
            "details": [],
            "additionalInfo": [],
        }
    }
    assert "nope" in body["error"]["message"]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-ms-correlation-request-id"] == "corr-123"
    assert lowered["x-ms-client-request-id"] == "client-456"
    assert lowered["x-ms-request-id"]
    status, headers, body = raw(
        emulator, "GET", f"subscriptions/{sub}/providers/Microsoft.Foo/bars?{SOLUTIONS_API}", token
    )
    assert status == 404 and body["error"]["code"] == "InvalidResourceType"
    assert "x-ms-request-id" in {k.lower() for k in headers}


def _app_of(fleet: dict[str, Any], deny: Any) -> str:
    """The id of the application whose managed resource group the deny assignment sits on."""
    apps = [a for a in fleet["applications"] if a["mrg"].lower() == deny.scope.lower()]
    assert len(apps) == 1
    return str(apps[0]["id"])


def test_deny_assignments_every_list_form_sync(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    sub = tenant.subscriptions[0]
    client = sync_client(AuthorizationManagementClient, emulator, tenant, sub)
    everything = list(client.deny_assignments.list())
    assert len(everything) > PAGE_SIZE
    system = [d for d in everything if d.is_system_protected]
    traps = [d for d in everything if not d.is_system_protected]
    assert system and traps  # the generated fleet has user-created deny assignments as a trap
    da = system[0]
    mrg = da.scope.split("/")[4]
    in_rg = list(client.deny_assignments.list_for_resource_group(mrg))
    assert da.id in [d.id for d in in_rg]
    assert all(d.scope.lower() == da.scope.lower() for d in in_rg)
    at_scope = list(client.deny_assignments.list_for_scope(da.scope, filter="atScope()"))
    assert {d.id for d in at_scope} == {d.id for d in in_rg}
    # Like real ones, the system deny assignment's name carries the application id.
    assert (
        da.deny_assignment_name
        == f"System deny assignment created by managed application {_app_of(fleet, da)}"
    )
    named = list(client.deny_assignments.list(filter=f"denyAssignmentName eq '{da.deny_assignment_name}'"))
    assert [d.id for d in named] == [da.id]
    by_principal = list(
        client.deny_assignments.list(filter="principalId eq '00000000-0000-0000-0000-000000000000'")
    )
    assert len(by_principal) == len(everything)
    # Resource scope below the MRG: assignments at the MRG apply to it (scope "above").
    for_resource = list(
        client.deny_assignments.list_for_resource(
            mrg, "Microsoft.Web", "", "sites", "func1", filter="atScope()"
        )
    )
    assert {d.id for d in for_resource} == {d.id for d in in_rg}
    got = client.deny_assignments.get(da.scope, da.name)
    assert got.id == da.id
    assert client.deny_assignments.get_by_id(da.id).name == da.name
    assert got.principals[0].id == "00000000-0000-0000-0000-000000000000"
    assert got.exclude_principals[0].type == "ServicePrincipal"


async def test_deny_assignments_aio_and_schema(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet, 1)
    sub = tenant.subscriptions[0]
    async with (
        aio_credential(emulator, tenant) as cred,
        AioAuthorizationClient(cred, sub, **client_kwargs(emulator)) as c,
    ):
        items = [d async for d in c.deny_assignments.list()]
    assert items
    token = token_for(emulator, tenant)
    status, _, body = raw(
        emulator,
        "GET",
        f"subscriptions/{sub}/providers/Microsoft.Authorization/denyAssignments?api-version=2022-04-01",
        token,
    )
    assert status == 200
    validate(DENY, "DenyAssignmentListResult", body)
    status, _, one = raw(emulator, "GET", f"{body['value'][0]['id']}?api-version=2022-04-01", token)
    assert status == 200
    validate(DENY, "DenyAssignment", one)


def test_permissions_reflect_publisher_access(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    full = tenant_of(emulator, fleet, 0)
    read_only = tenant_of(emulator, fleet, len(fleet["tenants"]) - 1)
    assert read_only.raw["publisher_access"] == "read-only"
    for tenant, actions in ((full, ["*"]), (read_only, ["*/read"])):
        client = sync_client(AuthorizationManagementClient, emulator, tenant, tenant.subscriptions[0])
        perms = list(client.permissions.list_for_resource_group("rg-managedapps"))
        assert [p.actions for p in perms] == [actions]
        assert perms[0].data_actions == []


def test_definitions_list_by_publisher(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    publisher = publisher_of(emulator, fleet)
    pub_sub = fleet["publisher"]["subscription_id"]
    client = sync_client(ManagedApplicationsMgmtClient, emulator, publisher, pub_sub)
    names = sorted(
        present(d.name) for d in client.application_definitions.list_by_resource_group("rg-publisher")
    )
    assert names == ["app-v1", "app-v1-unlocked", "app-v2"]
    token = token_for(emulator, publisher)
    status, _, body = raw(
        emulator, "GET", f"{fleet['publisher']['definitions']['app-v1']}?{SOLUTIONS_API}", token
    )
    assert status == 200
    validate(SOLUTIONS, "ApplicationDefinition", body)
