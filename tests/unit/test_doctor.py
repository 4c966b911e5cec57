"""Doctor's judgement, without a server: permission evaluation, write-access verdicts, worst-of; and
doctor's and plan's permission checks through the `ArmGateway` protocol on the in-memory fake
(`tests.fakes.FakeArm` answers ARM's permissions listing per resource group, the token probe and the
listings)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from orchestrator.arm.permissions import (
    APPLICATIONS_WRITE,
    PermissionSet,
    ResourceGroupAccess,
    holds,
)
from orchestrator.cli.plan_cmd import mark_write_access
from orchestrator.config import FleetConfig
from orchestrator.doctor import (
    FIX_CREDENTIAL,
    FIX_DELEGATE,
    FIX_UNCHECKED,
    FIX_WRITE,
    Check,
    TenantDiagnosis,
    Verdict,
    _write_check,
    diagnose,
    worst,
)
from orchestrator.errors import ArmError
from orchestrator.models import App, Snapshot
from tests.fakes import FakeArm

SUB_A = "aaaaaaaa-0000-0000-0000-000000000001"
SUB_B = "bbbbbbbb-0000-0000-0000-000000000002"


def _app(sub: str, rg: str, n: int, tenant: str = "t", path: str = "direct") -> App:
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


def test_holds_follows_azure_rbac_semantics() -> None:
    owner = PermissionSet(actions=("*",))
    reader = PermissionSet(actions=("*/read",))
    contributor = PermissionSet(actions=("*",), not_actions=("Microsoft.Authorization/*/Write",))
    assert holds([owner], APPLICATIONS_WRITE)
    assert not holds([reader], APPLICATIONS_WRITE)
    assert holds([reader], "Microsoft.Solutions/applications/read")
    assert holds([PermissionSet(actions=("microsoft.solutions/applications/*",))], APPLICATIONS_WRITE)
    assert not holds([contributor], "Microsoft.Authorization/roleAssignments/write")
    # notActions subtract within one entry only; another role assignment can still grant the action.
    no_solutions = PermissionSet(actions=("*",), not_actions=("Microsoft.Solutions/*",))
    assert not holds([no_solutions], APPLICATIONS_WRITE)
    assert holds([no_solutions, PermissionSet(actions=(APPLICATIONS_WRITE,))], APPLICATIONS_WRITE)
    assert not holds([], APPLICATIONS_WRITE)


def _access(sub: str, rg: str, write: bool | None, error: str | None = None) -> ResourceGroupAccess:
    return ResourceGroupAccess(sub, rg, write, write, write, error=error)


def test_write_check_ready_when_every_group_is_writable() -> None:
    apps = [_app(SUB_A, "rg-1", 1), _app(SUB_A, "RG-1", 2), _app(SUB_B, "rg-2", 3)]
    access = {(SUB_A, "rg-1"): _access(SUB_A, "rg-1", True), (SUB_B, "rg-2"): _access(SUB_B, "rg-2", True)}
    check, denied, unknown = _write_check(apps, access)
    assert check.status == "ok" and denied == () and unknown == ()
    assert check.detail == "3 apps in 2 resource groups writable"


def test_write_check_read_only_names_groups_and_the_lighthouse_fix() -> None:
    apps = [_app(SUB_A, "rg-1", 1), _app(SUB_A, "rg-1", 2), _app(SUB_B, "rg-2", 3)]
    access = {(SUB_A, "rg-1"): _access(SUB_A, "rg-1", False), (SUB_B, "rg-2"): _access(SUB_B, "rg-2", True)}
    check, denied, unknown = _write_check(apps, access)
    assert check.status == "failed" and check.verdict == Verdict.READ_ONLY and check.fix == FIX_WRITE
    assert denied == (f"{SUB_A}/rg-1",) and unknown == ()
    assert "refused for 2 of 3 apps" in check.detail
    assert "Azure Lighthouse" in check.fix and "roles/orchestrator-operator.json" in check.fix


def test_write_check_unchecked_when_the_listing_was_refused() -> None:
    apps = [_app(SUB_A, "rg-1", 1)]
    error = "list permissions on resource group rg-1: HTTP 403 AuthorizationFailed: no permissions/read"
    check, denied, unknown = _write_check(apps, {(SUB_A, "rg-1"): _access(SUB_A, "rg-1", None, error)})
    assert check.status == "unchecked" and check.verdict == Verdict.UNCHECKED and check.fix == FIX_UNCHECKED
    assert denied == () and unknown == (f"{SUB_A}/rg-1",)
    assert "HTTP 403" in check.detail
    assert "Microsoft.Authorization/permissions/read" in check.fix


def test_verdict_is_the_worst_finding() -> None:
    assert worst([]) == Verdict.READY
    assert worst([Verdict.UNCHECKED, Verdict.READ_ONLY]) == Verdict.READ_ONLY
    assert worst([Verdict.READ_ONLY, Verdict.UNREACHABLE, Verdict.CANNOT_READ]) == Verdict.UNREACHABLE
    checks = (
        Check("token", "ok", "fine"),
        Check("deny assignments", "failed", "403", "grant it", Verdict.CANNOT_READ),
        Check("write access", "failed", "refused", FIX_WRITE, Verdict.READ_ONLY),
        Check("other", "skipped", "n/a", "", Verdict.UNREACHABLE),  # skipped findings do not count
    )
    assert TenantDiagnosis("t", "T", checks).verdict == Verdict.CANNOT_READ
    assert TenantDiagnosis("t", "T", (Check("token", "ok", "fine"),)).verdict == Verdict.READY


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


def _arm() -> FakeArm:
    arm = FakeArm()
    arm.add_app(_app(HOME_SUB, "rg-home", 1, PUBLISHER))
    arm.add_app(_app(SUB, "rg-1", 2, CUSTOMER, "delegated"))
    arm.add_app(_app(SUB, "rg-2", 3, CUSTOMER, "delegated"))
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
    by_id = _app(SUB, "rg-3", 4, CUSTOMER, "publisher")  # never written by apply: not checked
    snapshot = Snapshot(
        taken_at=datetime(2026, 1, 1, tzinfo=UTC), tenants=(), apps=(*arm.apps.values(), by_id)
    )
    marked = {a.name: a.writable for a in asyncio.run(mark_write_access(snapshot, arm)).apps}
    assert marked == {"app1": True, "app2": False, "app3": None, "app4": None}
    assert f"permissions:{SUB}/rg-3" not in arm.reads
