"""Doctor's judgement, without a server: permission evaluation, write-access verdicts, worst-of."""

from __future__ import annotations

from orchestrator.arm.permissions import (
    APPLICATIONS_WRITE,
    PermissionSet,
    ResourceGroupAccess,
    holds,
)
from orchestrator.doctor import FIX_UNCHECKED, FIX_WRITE, Check, TenantDiagnosis, Verdict, _write_check, worst
from orchestrator.models import App

SUB_A = "aaaaaaaa-0000-0000-0000-000000000001"
SUB_B = "bbbbbbbb-0000-0000-0000-000000000002"


def _app(sub: str, rg: str, n: int) -> App:
    return App(
        id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Solutions/applications/app{n}",
        name=f"app{n}",
        tenant_id="t",
        subscription_id=sub,
        resource_group=rg,
        location="westeurope",
        kind="ServiceCatalog",
        managed_resource_group_id=f"/subscriptions/{sub}/resourceGroups/mrg-{n}",
        provisioning_state="Succeeded",
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
