"""Throttling through token buckets, state persisted across restarts, subprocess mode, admin surface."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.mgmt.managedapplications import ManagedApplicationsMgmtClient

from orchestrator.emulator.testing import EmulatorHandle, run_emulator
from tests.emulator.conftest import (
    app_body,
    patch_body,
    present,
    raw,
    ssl_context,
    sync_client,
    tenant_of,
    token_for,
)

pytestmark = pytest.mark.integration
API = "api-version=2023-12-01-preview"
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


async def test_throttling_then_success_through_sdk_retry() -> None:
    # Time scale 10: reads refill at 2.5/s, so 260 quick reads empty the 250-token bucket.
    with run_emulator(generate="tenants=1,subscriptions=1,apps=2", throttle=True, time_scale=10) as emu:
        fleet = emu.fleet()
        tenant = tenant_of(emu, fleet)
        token = token_for(emu, tenant)
        sub = tenant.subscriptions[0]
        url = f"{emu.url}subscriptions/{sub}/providers/Microsoft.Solutions/applications?{API}"
        statuses: list[int] = []
        throttled: dict[str, str] = {}
        body: dict[str, Any] = {}
        connector = aiohttp.TCPConnector(ssl=ssl_context(emu))
        async with aiohttp.ClientSession(
            connector=connector, headers={"Authorization": f"Bearer {token}"}
        ) as s:
            async with s.get(url) as first:
                assert first.headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
                assert "x-ms-ratelimit-remaining-tenant-reads" in first.headers
            for _ in range(260):
                async with s.get(url) as resp:
                    statuses.append(resp.status)
                    if resp.status == 429 and not throttled:
                        throttled = dict(resp.headers)
                        body = await resp.json()
                    else:
                        await resp.read()
            # Writes have their own bucket: still allowed.
            rg = f"/subscriptions/{sub}/resourceGroups/rg-managedapps"
            app_id = f"{rg}/providers/Microsoft.Solutions/applications"
            async with s.patch(
                f"{emu.url}{app_id.lstrip('/')}/ma-001-01-01?{API}", json={"tags": {"t": "1"}}
            ) as resp:
                assert resp.status == 202
                assert resp.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"
        assert 429 in statuses
        assert body["error"]["code"] == "SubscriptionRequestsThrottled"
        assert "retry-after-ms" in {k.lower() for k in throttled}
        assert throttled["x-ms-ratelimit-remaining-subscription-reads"] == "0"
        # The SDK's own retry policy waits out Retry-After and succeeds.
        client = sync_client(ManagedApplicationsMgmtClient, emu, tenant, sub)
        assert len(list(client.applications.list_by_subscription())) == 2
        assert emu.stats()["throttled_429"] >= 1


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_dir = tmp_path / "ca"
    with run_emulator(
        generate="tenants=1,subscriptions=1,apps=3", state_file=state_file, state_dir=state_dir
    ) as emu:
        fleet = emu.fleet()
        tenant = tenant_of(emu, fleet)
        sub = tenant.subscriptions[0]
        client = sync_client(ManagedApplicationsMgmtClient, emu, tenant, sub)
        app = next(a for a in client.applications.list_by_subscription() if a.kind == "ServiceCatalog")
        name = present(app.name)
        body = app_body(
            {
                "kind": app.kind,
                "location": app.location,
                "properties": {
                    "managedResourceGroupId": app.managed_resource_group_id,
                    "applicationDefinitionId": fleet["publisher"]["definitions"]["app-v2"],
                },
            }
        )
        client.applications.begin_create_or_update("rg-managedapps", name, body).result()
        # Leave a second write in flight at shutdown: it must finish after the restart.
        other = next(present(a.name) for a in client.applications.list_by_subscription() if a.name != name)
        client.applications.begin_update(
            "rg-managedapps", other, patch_body({"tags": {"during": "shutdown"}})
        )
        ca_before = emu.ca_bundle.read_bytes()
    assert state_file.exists()
    with run_emulator(
        generate="tenants=2,subscriptions=1,apps=1", state_file=state_file, state_dir=state_dir
    ) as emu:
        assert emu.ca_bundle.read_bytes() == ca_before  # the CA is made once per state dir
        assert emu.fleet()["tenants"][0]["id"] == tenant.id
        assert len(emu.fleet()["tenants"]) == 1  # loaded, not regenerated
        client = sync_client(ManagedApplicationsMgmtClient, emu, tenant, sub)
        again = present(client.applications.get("rg-managedapps", name))
        assert present(again.application_definition_id).endswith("/app-v2")
        deadline = time.monotonic() + 10
        while present(client.applications.get("rg-managedapps", other)).provisioning_state != "Succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert present(client.applications.get("rg-managedapps", other)).tags == {"during": "shutdown"}


def test_subprocess_mode_and_written_config(tmp_path: Path) -> None:
    from orchestrator.config import ClientSecretCredentialConfig, load_config

    with run_emulator(generate="tenants=2,subscriptions=1,apps=2", subprocess=True) as emu:
        assert emu.pid is not None
        fleet = emu.fleet()
        assert fleet["tenants"][0]["ring"] == "canary" and fleet["tenants"][1]["ring"] == "default"
        path = emu.write_config(tmp_path / "fleet.toml")
        config = load_config(path)
        assert config.cloud.arm == emu.url and config.cloud.authority == emu.url
        assert config.cloud.ca_bundle == emu.ca_bundle.resolve()
        rings = {t.id: t.ring for t in config.tenants}
        assert rings[fleet["publisher"]["id"]] == "publisher"
        assert rings[fleet["tenants"][0]["id"]] == "canary"
        first = config.tenant(fleet["tenants"][0]["id"])
        assert isinstance(first.credential, ClientSecretCredentialConfig)
        secret_file = first.credential.secret_file
        assert secret_file is not None
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert secret_file.read_text() not in path.read_text()
        from azure.identity import ClientSecretCredential

        cred = ClientSecretCredential(
            first.id,
            first.credential.client_id,
            secret_file.read_text(),
            authority=config.cloud.authority,
            disable_instance_discovery=True,
            connection_verify=str(config.cloud.ca_bundle),
        )
        client = ManagedApplicationsMgmtClient(
            cred,
            fleet["tenants"][0]["subscriptions"][0],
            base_url=config.cloud.arm,
            credential_scopes=[config.cloud.scope],
            connection_verify=str(config.cloud.ca_bundle),
        )
        assert len(list(client.applications.list_by_subscription())) == 2


def test_admin_surface(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet)
    secret = tenant.secret
    stats = emulator.stats()
    for key in (
        "requests",
        "requests_total",
        "writes_per_app",
        "max_concurrent_ops_per_app",
        "operations_in_flight",
        "conflicting_writes",
        "cross_tenant_attempts",
        "expired_token_attempts",
        "unauthenticated_attempts",
        "throttled_429",
        "faults_injected",
        "writes",
        "faults",
        "time_scale",
    ):
        assert key in stats
    assert secret not in json.dumps(stats)
    assert secret not in json.dumps(emulator.fleet())
    dump = emulator.state()
    assert secret not in json.dumps(dump)
    assert dump["format"] == "managedapp-emulator-state"
    publisher = fleet["publisher"]
    assert set(publisher["definitions"]) == {"app-v1", "app-v2", "app-v1-unlocked"}
    assert [p["version"] for p in publisher["marketplace_plans"]] == ["1.0.0", "2.0.0"]
    emulator.set_time_scale(0.5)
    assert emulator.stats()["time_scale"] == 0.5
    # Reset puts the fleet back: a deleted app returns.
    token = token_for(emulator, tenant)
    app_id = next(a["id"] for a in fleet["applications"] if a["id"].split("/")[2] == tenant.subscriptions[0])
    emulator.set_time_scale(0.001)
    status, _, _ = raw(emulator, "DELETE", f"{app_id}?{API}", token)
    assert status == 202
    time.sleep(0.3)
    assert raw(emulator, "GET", f"{app_id}?{API}", token)[0] == 404
    emulator.reset()
    assert raw(emulator, "GET", f"{app_id}?{API}", token)[0] == 200
    assert emulator.stats()["time_scale"] == 0.005
