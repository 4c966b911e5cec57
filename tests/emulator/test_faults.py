"""Injected faults, seen through the SDKs' own retries and pollers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient
from azure.mgmt.managedapplications import types as wire
from azure.mgmt.managedapplications.aio import ManagedApplicationsMgmtClient as AioManagedAppsClient

from orchestrator.emulator.faults import load_rules, parse_rules
from orchestrator.emulator.testing import EmulatorHandle
from tests.emulator.conftest import (
    Tenant,
    aio_credential,
    app_body,
    client_kwargs,
    present,
    sync_client,
    tenant_of,
)

pytestmark = pytest.mark.integration
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _client(emu: EmulatorHandle, tenant: Tenant) -> ManagedApplicationsMgmtClient:
    return sync_client(ManagedApplicationsMgmtClient, emu, tenant, tenant.subscriptions[0])


def _first_app(client: ManagedApplicationsMgmtClient, kind: str = "ServiceCatalog") -> Any:
    return next(
        a
        for a in client.applications.list_by_resource_group("rg-managedapps")
        if a.kind == kind
        and a.provisioning_state == "Succeeded"
        and (kind == "MarketPlace" or a.application_definition_id.endswith("/app-v1"))
    )


def _v2_body(app: Any, fleet: dict[str, Any]) -> wire.Application:
    return app_body(
        {
            "kind": app.kind,
            "location": app.location,
            "properties": {
                "managedResourceGroupId": app.managed_resource_group_id,
                "applicationDefinitionId": fleet["publisher"]["definitions"]["app-v2"],
            },
        }
    )


def _not_actions(emu: EmulatorHandle, tenant: Tenant, app: Any) -> list[str]:
    client = sync_client(AuthorizationManagementClient, emu, tenant, tenant.subscriptions[0])
    mrg = app.managed_resource_group_id.split("/")[-1]
    deny = [d for d in client.deny_assignments.list_for_resource_group(mrg) if d.is_system_protected]
    return list(deny[0].permissions[0].not_actions)


@pytest.mark.parametrize("action", ["429", "500", "503", "reset"])
def test_transport_faults_are_retried_by_the_sdk(
    emulator: EmulatorHandle, fleet: dict[str, Any], action: str
) -> None:
    tenant = tenant_of(emulator, fleet)
    client = _client(emulator, tenant)
    app = _first_app(client)
    emulator.set_faults([{"kind": "read", "action": action, "first": 2}])
    got = client.applications.get("rg-managedapps", app.name)
    assert got is not None and got.id == app.id
    stats = emulator.stats()
    assert stats["faults_injected"][action] == 2
    if action != "reset":
        assert stats["requests"][f"read {action}"] == 2
    else:
        assert stats["requests"]["read reset"] == 2


async def test_reset_and_429_are_retried_by_the_aio_sdk(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = tenant_of(emulator, fleet)
    emulator.set_faults(
        [{"kind": "list", "action": "reset", "first": 1}, {"kind": "list", "action": "429", "first": 2}]
    )
    async with (
        aio_credential(emulator, tenant) as cred,
        AioManagedAppsClient(cred, tenant.subscriptions[0], **client_kwargs(emulator)) as c,
    ):
        apps = [a async for a in c.applications.list_by_subscription()]
    assert len(apps) == 7
    assert emulator.stats()["faults_injected"] == {"reset": 1, "429": 2}


def test_slow_and_poll_faults(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    client = _client(emulator, tenant)
    app = _first_app(client)
    emulator.set_faults(
        [{"kind": "poll", "action": "503", "first": 1}, {"kind": "read", "action": "slow", "delay_ms": 50}]
    )
    result = client.applications.begin_create_or_update(
        "rg-managedapps", app.name, _v2_body(app, fleet)
    ).result()
    assert result.provisioning_state == "Succeeded"
    stats = emulator.stats()
    assert stats["faults_injected"]["503"] == 1
    assert stats["faults_injected"]["slow"] >= 1


@pytest.mark.parametrize(
    ("action", "code"),
    [("fail_transient", "InternalServerError"), ("fail_permanent", "ApplicationDefinitionInvalid")],
)
def test_failed_operations(emulator: EmulatorHandle, fleet: dict[str, Any], action: str, code: str) -> None:
    tenant = tenant_of(emulator, fleet)
    client = _client(emulator, tenant)
    app = _first_app(client)
    before = _not_actions(emulator, tenant, app)
    emulator.set_faults([{"kind": "write", "action": action, "first": 1, "app": app.name}])
    poller = client.applications.begin_create_or_update("rg-managedapps", app.name, _v2_body(app, fleet))
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    error = present(info.value.error)
    assert error.code == code
    if action == "fail_transient":
        assert "transient" in present(error.message)
    after = present(client.applications.get("rg-managedapps", app.name))
    assert after.provisioning_state == "Failed"
    assert present(after.application_definition_id).endswith("/app-v1")  # the failed write did not stick
    assert _not_actions(emulator, tenant, app) == before
    # first=1: the retry succeeds.
    result = client.applications.begin_create_or_update(
        "rg-managedapps", app.name, _v2_body(app, fleet)
    ).result()
    assert result.provisioning_state == "Succeeded"
    assert KV in _not_actions(emulator, tenant, app)


def test_deny_assignment_converges_late(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    client = _client(emulator, tenant)
    app = _first_app(client)
    emulator.set_faults(
        [{"kind": "write", "action": "deny_delay", "deny_delay": 100}]
    )  # 0.5 s at scale 0.005
    client.applications.begin_create_or_update("rg-managedapps", app.name, _v2_body(app, fleet)).result()
    assert KV not in _not_actions(emulator, tenant, app)  # succeeded, but the deny has not converged yet
    deadline = time.monotonic() + 10
    while KV not in _not_actions(emulator, tenant, app):
        assert time.monotonic() < deadline, "deny assignment never converged"
        time.sleep(0.05)


def test_app_pattern_and_token_faults(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    client = _client(emulator, tenant)
    names = [present(a.name) for a in client.applications.list_by_resource_group("rg-managedapps")]
    emulator.set_faults(
        [
            {"kind": "read", "action": "500", "app": names[0]},
            {"kind": "token", "action": "500", "first": 1},
        ]
    )
    assert client.applications.get("rg-managedapps", names[1]) is not None
    with pytest.raises(HttpResponseError) as info:
        client.applications.get("rg-managedapps", names[0])
    assert info.value.status_code == 500
    # A fresh credential meets the token fault once and retries through it.
    fresh = sync_client(ManagedApplicationsMgmtClient, emulator, tenant, tenant.subscriptions[0])
    assert fresh.applications.get("rg-managedapps", names[1]) is not None
    assert emulator.stats()["requests"]["token 500"] == 1


def test_probability_is_seeded(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    token_client = _client(emulator, tenant)
    app = _first_app(token_client)
    counts = []
    for _ in range(2):
        emulator.set_faults([{"kind": "read", "action": "slow", "probability": 0.5, "delay_ms": 1}])
        for _ in range(20):
            token_client.applications.get("rg-managedapps", app.name)
        counts.append(emulator.stats()["faults"][0]["seen"])
        counts.append(emulator.stats()["faults_injected"].get("slow", 0))
        emulator.reset()
    assert counts[0] == counts[2] == 20
    assert counts[1] == counts[3] and 0 < counts[1] < 20


def test_fault_files_json_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "faults.toml"
    toml.write_text('[[rules]]\nkind = "write"\naction = "fail_transient"\nfirst = 2\napp = "ma-001-*"\n')
    rules = load_rules(toml)
    assert (rules[0].kind, rules[0].action, rules[0].first, rules[0].app) == (
        "write",
        "fail_transient",
        2,
        "ma-001-*",
    )
    js = tmp_path / "faults.json"
    js.write_text('{"rules": [{"kind": "read", "action": "429", "probability": 0.1, "retry_after": 2}]}')
    assert load_rules(js)[0].retry_after == 2
    with pytest.raises(ValueError, match="action"):
        parse_rules([{"kind": "read", "action": "explode"}])
    with pytest.raises(ValueError, match="unknown keys"):
        parse_rules([{"kind": "read", "action": "500", "typo": 1}])
