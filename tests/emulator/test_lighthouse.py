"""Cross-tenant access the emulator models: Lighthouse delegations and the publisher's reads by id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.emulator.fleet import parse_access, parse_generate
from orchestrator.emulator.testing import EmulatorHandle, run_emulator
from tests.emulator.conftest import Tenant, publisher_of, raw, token_for

pytestmark = pytest.mark.integration
MIX = "tenants=4,subscriptions=2,apps=2,access=direct:1,delegated:1,publisher:1,locked:1"
APPS = "api-version=2023-12-01-preview"
SUBS = "api-version=2022-12-01"
DENY = "api-version=2022-04-01"


@pytest.fixture(scope="module")
def mixed() -> Iterator[EmulatorHandle]:
    with run_emulator(generate=MIX, page_size=50, time_scale=0.005) as emu:
        yield emu


def by_access(emu: EmulatorHandle) -> dict[str, dict[str, Any]]:
    return {t["access"]: t for t in emu.fleet()["tenants"]}


def apps_of(emu: EmulatorHandle, tenant: dict[str, Any]) -> list[dict[str, Any]]:
    subs = {s.lower() for s in tenant["subscriptions"]}
    return [a for a in emu.fleet()["applications"] if a["id"].split("/")[2].lower() in subs]


def test_access_mix_syntax() -> None:
    assert parse_access(MIX) == ["direct", "delegated", "publisher", "locked"]
    assert parse_generate("subscriptions=2,access=direct:2,delegated:3,apps=4") == (5, 2, 4)
    assert parse_access("tenants=3") == []
    with pytest.raises(ValueError, match="adds up to 2"):
        parse_generate("tenants=3,access=direct:1,locked:1")
    with pytest.raises(ValueError, match="access part"):
        parse_access("access=teleport:1")


def test_subscriptions_list_for_the_managing_tenant_shows_delegations(mixed: EmulatorHandle) -> None:
    pub = publisher_of(mixed, mixed.fleet())
    status, _, body = raw(mixed, "GET", f"subscriptions?{SUBS}", token_for(mixed, pub))
    assert status == 200
    tenants = by_access(mixed)
    listed = {s["subscriptionId"]: s for s in body["value"]}
    for kind in ("delegated", "locked"):
        for sub in tenants[kind]["subscriptions"]:
            assert listed[sub]["tenantId"] == tenants[kind]["id"]
            assert listed[sub]["managedByTenants"] == [{"tenantId": pub.id}]
    for kind in ("direct", "publisher"):
        assert not set(tenants[kind]["subscriptions"]) & set(listed)
    own = listed[mixed.fleet()["publisher"]["subscription_id"]]
    assert (own["tenantId"], own["managedByTenants"]) == (pub.id, [])


def test_delegated_role_allows_app_writes_and_reader_role_names_the_missing_action(
    mixed: EmulatorHandle,
) -> None:
    pub = publisher_of(mixed, mixed.fleet())
    token = token_for(mixed, pub)
    tenants = by_access(mixed)
    app = apps_of(mixed, tenants["delegated"])[0]
    status, _, body = raw(mixed, "GET", f"{app['id']}?{APPS}", token)
    assert status == 200
    status, _, _ = raw(mixed, "PATCH", f"{app['id']}?{APPS}", token, {"tags": {"k": "v"}})
    assert status == 202
    locked = apps_of(mixed, tenants["locked"])[0]
    status, _, body = raw(mixed, "GET", f"{locked['id']}?{APPS}", token)
    assert status == 200 and body["properties"]["managementMode"] == "Unmanaged"
    status, _, body = raw(mixed, "PATCH", f"{locked['id']}?{APPS}", token, {"tags": {"k": "v"}})
    assert (status, body["error"]["code"]) == (403, "AuthorizationFailed")
    assert "Microsoft.Solutions/applications/write" in body["error"]["message"]
    sub = tenants["delegated"]["subscriptions"][0]
    status, _, body = raw(
        mixed,
        "GET",
        f"subscriptions/{sub}/providers/Microsoft.ManagedServices/registrationAssignments?"
        "api-version=2022-10-01",
        token,
    )
    assert status == 200 and body["value"][0]["type"] == "Microsoft.ManagedServices/registrationAssignments"
    assert mixed.stats()["cross_tenant_attempts"] == 0


def test_publisher_reads_app_by_id_and_its_mrg_but_not_the_subscription(mixed: EmulatorHandle) -> None:
    pub = publisher_of(mixed, mixed.fleet())
    token = token_for(mixed, pub)
    tenants = by_access(mixed)
    app = apps_of(mixed, tenants["publisher"])[0]
    status, _, body = raw(mixed, "GET", f"{app['id']}?{APPS}", token)
    assert status == 200 and body["properties"]["publisherTenantId"] == pub.id
    status, _, body = raw(
        mixed, "GET", f"{app['mrg']}/providers/Microsoft.Authorization/denyAssignments?{DENY}", token
    )
    assert status == 200
    assert mixed.stats()["cross_tenant_attempts"] == 0
    # No write, no listing of the subscription.
    status, _, body = raw(mixed, "PATCH", f"{app['id']}?{APPS}", token, {"tags": {"k": "v"}})
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenTenant")
    sub = tenants["publisher"]["subscriptions"][0]
    status, _, body = raw(
        mixed, "GET", f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?{APPS}", token
    )
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenTenant")
    assert mixed.stats()["cross_tenant_attempts"] == 2


def test_the_customers_own_credential_is_exposed_to_play_the_customer(mixed: EmulatorHandle) -> None:
    tenant = by_access(mixed)["publisher"]
    cred = mixed.customer_credential(tenant["id"])
    customer = Tenant(tenant["id"], tenant["name"], cred["client_id"], cred["client_secret"], [], tenant)
    app = apps_of(mixed, tenant)[0]
    status, _, _ = raw(
        mixed, "PATCH", f"{app['id']}?{APPS}", token_for(mixed, customer), {"tags": {"k": "v"}}
    )
    assert status == 202
