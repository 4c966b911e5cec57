"""`orchestrator doctor` and `writable_resource_groups` through the real SDK against the emulator.

The emulator's generated fleet gives the publisher full access in every customer tenant except the
last, where it may only read (ARM's permissions listing says `*/read`, and writes get 403).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.arm import AzureGateway
from orchestrator.arm.permissions import writable_resource_groups
from orchestrator.config import load_config
from tests.integration.conftest import Fleet, run_cli

pytestmark = pytest.mark.integration


def _access(fleet: Fleet) -> dict[str, str]:
    return {t["id"]: t["publisher_access"] for t in fleet.emulator.fleet()["tenants"]}


def _doctor_json(config: Path) -> tuple[int, list[dict[str, Any]], str]:
    result = run_cli("doctor", "--config", str(config), "--format", "json")
    return result.code, json.loads(result.stdout), result.stdout + result.stderr


def test_doctor_tells_ready_from_read_only_tenants(fleet: Fleet) -> None:
    access = _access(fleet)
    assert "read-only" in access.values() and "full" in access.values()
    code, doc, output = _doctor_json(fleet.config_path)
    assert code == 3  # not every tenant is ready
    verdicts = {t["tenant_id"]: t["verdict"] for t in doc}
    # Customers as the emulator grants them; the publisher's own tenant (no instances) is ready.
    expected = {tid: "ready" if a == "full" else "read-only" for tid, a in access.items()}
    assert {tid: v for tid, v in verdicts.items() if tid in access} == expected
    assert {v for tid, v in verdicts.items() if tid not in access} == {"ready"}

    apps = fleet.emulator.state()["applications"]
    for tenant in doc:
        checks = {c["name"]: c for c in tenant["checks"]}
        assert checks["token"]["status"] == "ok"
        assert checks["subscriptions"]["status"] == "ok"
        assert checks["applications"]["status"] == "ok" and checks["deny assignments"]["status"] == "ok"
        subs = set(tenant["subscriptions"])
        mine = [a for a in apps if a["id"].split("/")[2] in subs]
        assert tenant["apps"] == len(mine)
        if tenant["verdict"] == "read-only":
            groups = {f"{a['id'].split('/')[2]}/{a['id'].split('/')[4]}".lower() for a in mine}
            assert set(tenant["not_writable"]) == groups
            assert checks["write access"]["status"] == "failed"
            assert "Lighthouse" in checks["write access"]["fix"]
        elif mine:
            assert checks["write access"]["status"] == "ok" and tenant["not_writable"] == []
        else:  # the publisher's own tenant holds no instances
            assert checks["write access"]["status"] == "skipped"
    for secret in fleet.secrets():
        assert secret not in output


def test_doctor_table_names_the_verdict_and_the_fix(fleet: Fleet) -> None:
    result = run_cli("doctor", "--config", str(fleet.config_path))
    assert result.code == 3, result.stderr
    assert "read-only" in result.stdout and "ready" in result.stdout
    assert "What to do" in result.stdout and "roles/orchestrator-operator.json" in result.stdout
    tenants = load_config(fleet.config_path).tenants
    read_only = sum(1 for a in _access(fleet).values() if a != "full")
    assert f"{len(tenants) - read_only} of {len(tenants)} tenants ready." in result.stdout


def test_doctor_exits_0_when_every_tenant_is_ready(fleet: Fleet, tmp_path: Path) -> None:
    read_only = next(tid for tid, a in _access(fleet).items() if a == "read-only")
    text = fleet.config_path.read_text(encoding="utf-8")
    blocks = text.split("[[tenants]]")
    kept = [b for b in blocks[1:] if read_only not in b]
    assert len(kept) == len(blocks) - 2
    config = fleet.config_path.parent / "ready-only.toml"
    config.write_text("[[tenants]]".join([blocks[0], *kept]), encoding="utf-8")
    code, doc, _ = _doctor_json(config)
    assert code == 0
    assert {t["verdict"] for t in doc} == {"ready"}


def test_doctor_reports_unreachable_tenants_with_the_cause(fleet: Fleet) -> None:
    customers = [t["id"] for t in fleet.customer_tenants()]
    wrong_secret, missing_file = customers[0], customers[1]
    fleet.break_secret(wrong_secret)
    (fleet.config_path.parent / "secrets" / f"{missing_file}.secret").unlink()
    code, doc, output = _doctor_json(fleet.config_path)
    assert code == 3
    by_id = {t["tenant_id"]: t for t in doc}

    token = by_id[wrong_secret]
    assert token["verdict"] == "unreachable"
    [check] = token["checks"]
    assert check["name"] == "token" and check["status"] == "failed"
    assert "authentication failed" in check["detail"]
    assert "credential" in check["fix"]

    config = by_id[missing_file]
    assert config["verdict"] == "unreachable"
    [check] = config["checks"]
    assert check["name"] == "credential" and "secret_file" in check["detail"]
    # The other tenants are still diagnosed: one tenant's problem never hides the rest.
    assert {t["verdict"] for tid, t in by_id.items() if tid not in (wrong_secret, missing_file)} <= {
        "ready",
        "read-only",
    }
    assert "not-the-secret" not in output


async def test_writable_resource_groups_per_tenant(fleet: Fleet) -> None:
    config = load_config(fleet.config_path)
    access = _access(fleet)
    async with AzureGateway(config) as gateway:
        for tenant in fleet.customer_tenants():
            tid = tenant["id"]
            apps = [a for sub in tenant["subscriptions"] for a in await gateway.list_applications(tid, sub)]
            assert apps
            groups = [(a.subscription_id.upper(), a.resource_group.upper()) for a in apps]
            result = await writable_resource_groups(gateway, tid, groups)
            assert set(result) == {(s.lower(), rg.lower()) for s, rg in groups}  # deduplicated, lower-cased
            expected = access[tid] == "full"
            for rg_access in result.values():
                assert rg_access.error is None
                assert rg_access.can_write is expected
                assert rg_access.can_read is True and rg_access.can_read_deny_assignments is True
                assert rg_access.missing == (() if expected else ("Microsoft.Solutions/applications/write",))
