"""Tenant isolation and token checks, counted on the admin surface."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient

from orchestrator.emulator.testing import EmulatorHandle, run_emulator
from tests.emulator.conftest import raw, sync_client, sync_credential, tenant_of, token_for

pytestmark = pytest.mark.integration
API = "api-version=2023-12-01-preview"


def test_token_for_tenant_a_is_refused_on_tenant_b(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    a, b = tenant_of(emulator, fleet, 0), tenant_of(emulator, fleet, 1)
    client = sync_client(ManagedApplicationsMgmtClient, emulator, a, b.subscriptions[0])
    with pytest.raises(ClientAuthenticationError) as info:
        list(client.applications.list_by_subscription())
    assert info.value.status_code == 401
    status, headers, body = raw(
        emulator,
        "GET",
        f"subscriptions/{b.subscriptions[0]}/providers/Microsoft.Solutions/applications?{API}",
        token_for(emulator, a),
    )
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenTenant")
    www = {k.lower(): v for k, v in headers.items()}["www-authenticate"]
    assert www.startswith("Bearer authorization_uri=") and b.id in www
    status, _, body = raw(
        emulator, "GET", f"subscriptions/{b.subscriptions[0]}?api-version=2022-12-01", token_for(emulator, a)
    )
    assert status == 401
    assert emulator.stats()["cross_tenant_attempts"] >= 2


def test_missing_and_garbage_tokens(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    sub = fleet["tenants"][0]["subscriptions"][0]
    path = f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?{API}"
    for token in (None, "garbage", "a.b.c"):
        status, headers, body = raw(emulator, "GET", path, token)
        assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
        assert "www-authenticate" in {k.lower() for k in headers}
    assert emulator.stats()["unauthenticated_attempts"] == 3


def test_expired_token_is_refused() -> None:
    with run_emulator(generate="tenants=1,subscriptions=1,apps=1", token_lifetime=1) as emu:
        fleet = emu.fleet()
        tenant = tenant_of(emu, fleet)
        token = token_for(emu, tenant)
        time.sleep(1.1)
        status, _, body = raw(emu, "GET", "subscriptions?api-version=2022-12-01", token)
        assert (status, body["error"]["code"]) == (401, "ExpiredAuthenticationToken")
        assert emu.stats()["expired_token_attempts"] == 1


def test_wrong_audience_is_refused(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    token = sync_credential(emulator, tenant).get_token("https://vault.azure.net/.default").token
    status, _, body = raw(emulator, "GET", "subscriptions?api-version=2022-12-01", token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenAudience")
