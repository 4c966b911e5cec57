"""Doctor's and plan's permission checks through the `ArmGateway` protocol, on the in-memory fake.

No HTTP: `tests.fakes.FakeArm` answers ARM's permissions listing per resource group, the token probe
and the listings; what doctor and plan make of them is what these tests check.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from orchestrator.cli.plan_cmd import mark_write_access
from orchestrator.config import FleetConfig
from orchestrator.doctor import FIX_CREDENTIAL, FIX_DELEGATE, FIX_UNCHECKED, FIX_WRITE, Verdict, diagnose
from orchestrator.gateway import ArmError, PermissionSet
from orchestrator.models import App, Snapshot
from tests.fakes import FakeArm

PUBLISHER = "00000000-0000-0000-0000-00000000000a"
CUSTOMER = "00000000-0000-0000-0000-00000000000c"
HOME_SUB = "aaaaaaaa-0000-0000-0000-000000000001"
SUB = "cccccccc-0000-0000-0000-000000000001"
READER = [PermissionSet(actions=("*/read",))]


def _fleet() -> FleetConfig:
    return FleetConfig.model_validate(
        {
            "identities": [{"name": "pub", "tenant_id": PUBLISHER, "credential": {"kind": "azure_cli"}}],
            "customers": [
                {"id": PUBLISHER, "name": "home", "identity": "pub", "path": "direct"},
                {"id": CUSTOMER, "name": "contoso", "identity": "pub", "path": "delegated"},
            ],
        }
    )


def _app(tenant: str, sub: str, rg: str, n: int, path: str = "direct") -> App:
    return App(
        id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Solutions/applications/app{n}",
        name=f"app{n}",
        tenant_id=tenant,
        subscription_id=sub,
        resource_group=rg,
        location="westeurope",
        kind="ServiceCatalog",
        managed_resource_group_id=f"/subscriptions/{sub}/resourceGroups/mrg-{n}",
        provisioning_state="Succeeded",
        path=path,
    )


def _arm() -> FakeArm:
    arm = FakeArm()
    arm.add_app(_app(PUBLISHER, HOME_SUB, "rg-home", 1))
    arm.add_app(_app(CUSTOMER, SUB, "rg-1", 2, "delegated"))
    arm.add_app(_app(CUSTOMER, SUB, "rg-2", 3, "delegated"))
    return arm


def test_doctor_finds_every_tenant_ready_when_arm_grants_everything() -> None:
    arm = _arm()
    home, contoso = asyncio.run(diagnose(arm, _fleet(), broken={}))
    assert (home.verdict, home.proposed_path, home.apps) == (Verdict.READY, "direct", 1)
    assert (contoso.verdict, contoso.proposed_path, contoso.apps) == (Verdict.READY, "delegated", 2)
    checks = {c.name: c for c in contoso.checks}
    assert checks["token"].detail == "secret credential issued an ARM token"
    assert checks["write access"].detail == "2 apps in 2 resource groups writable"
    # One permissions listing per resource group holding an app.
    assert {k for k in arm.reads if k.startswith("permissions:")} == {
        f"permissions:{HOME_SUB}/rg-home",
        f"permissions:{SUB}/rg-1",
        f"permissions:{SUB}/rg-2",
    }


def test_doctor_read_only_resource_group_proposes_the_publisher_path_with_the_lighthouse_fix() -> None:
    arm = _arm()
    arm.permissions[(SUB, "rg-2")] = READER
    arm.permissions[(HOME_SUB, "rg-home")] = READER
    home, contoso = asyncio.run(diagnose(arm, _fleet(), broken={}))
    assert contoso.verdict == Verdict.READ_ONLY and contoso.not_writable == (f"{SUB}/rg-2",)
    write = next(c for c in contoso.checks if c.name == "write access")
    assert write.status == "failed" and "refused for 1 of 2 apps" in write.detail
    assert write.fix == FIX_DELEGATE and contoso.proposed_path == "publisher"
    # In the identity's home tenant no delegation helps: the role fix, and the customer-run path.
    home_write = next(c for c in home.checks if c.name == "write access")
    assert home_write.fix == FIX_WRITE and home.proposed_path == "customer-run"
    access = {(a.subscription_id, a.resource_group): a for a in contoso.access}
    assert access[(SUB, "rg-2")].missing == ("Microsoft.Solutions/applications/write",)


def test_doctor_unchecked_when_arm_refuses_the_permissions_listing() -> None:
    arm = _arm()
    refused = ArmError("list permissions on resource group rg-1: HTTP 403 AuthorizationFailed", status=403)
    arm.permissions[(SUB, "rg-1")] = refused
    _, contoso = asyncio.run(diagnose(arm, _fleet(), broken={}))
    write = next(c for c in contoso.checks if c.name == "write access")
    assert contoso.verdict == Verdict.UNCHECKED and write.fix == FIX_UNCHECKED
    assert contoso.not_checked == (f"{SUB}/rg-1",) and "HTTP 403" in write.detail


def test_doctor_stops_at_a_failed_token_and_at_a_broken_credential() -> None:
    arm = _arm()
    arm.token_errors[CUSTOMER] = ArmError("get a token: authentication failed", code="AuthenticationFailed")
    home, contoso = asyncio.run(diagnose(arm, _fleet(), broken={}))
    assert home.verdict == Verdict.READY
    assert contoso.verdict == Verdict.UNREACHABLE and [c.name for c in contoso.checks] == ["token"]
    assert not any(SUB in key for key in arm.reads)  # nothing read in the customer's subscription
    results = asyncio.run(diagnose(FakeArm(), _fleet(), broken={"pub": "secret_env X is not set"}))
    for result in results:
        (check,) = result.checks
        assert (check.name, check.fix, result.verdict) == ("credential", FIX_CREDENTIAL, Verdict.UNREACHABLE)


def test_plan_marks_apps_it_could_never_write_from_the_permissions_listing() -> None:
    arm = _arm()
    arm.permissions[(SUB, "rg-1")] = READER
    arm.permissions[(SUB, "rg-2")] = ArmError("HTTP 403 AuthorizationFailed", status=403)
    by_id = _app(CUSTOMER, SUB, "rg-3", 4, "publisher")  # never written by apply: not checked
    snapshot = Snapshot(
        taken_at=datetime(2026, 1, 1, tzinfo=UTC), tenants=(), apps=(*arm.apps.values(), by_id)
    )
    marked = {a.name: a.writable for a in asyncio.run(mark_write_access(snapshot, arm)).apps}
    assert marked == {"app1": True, "app2": False, "app3": None, "app4": None}
    assert f"permissions:{SUB}/rg-3" not in arm.reads
