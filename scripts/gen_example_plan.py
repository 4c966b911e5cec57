#!/usr/bin/env python3
"""Regenerate plans/examples/example-plan.json: a real plan from a small hand-made fleet snapshot.

    .venv/bin/python scripts/gen_example_plan.py

The snapshot shows every decision: updates (one in the canary ring), an app already current, a
re-apply, an update that tightens (a risk), a drifted deny assignment, and skips (still provisioning,
unlocked definition, marketplace instance for a service-catalog target, another product's instance),
plus a tenant that could not be read. The target is plans/examples/target-v2.toml; `now` is fixed so
the output is reproducible (a test checks that).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator import __version__  # noqa: E402
from orchestrator.models import (  # noqa: E402
    App,
    Authorization,
    Definition,
    DenyAssignment,
    MarketplacePlan,
    Plan,
    PlanOptions,
    Snapshot,
    TenantInventory,
    WaveSpec,
)
from orchestrator.planning.planfile import seal, write_plan  # noqa: E402
from orchestrator.planning.planner import build_plan  # noqa: E402
from orchestrator.planning.target import load_target  # noqa: E402

OUT = ROOT / "plans" / "examples" / "example-plan.json"
TARGET_FILE = ROOT / "plans" / "examples" / "target-v2.toml"
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)

PUBLISHER_SUB = "00000000-1111-2222-3333-444444444444"
DEFS = (
    f"/subscriptions/{PUBLISHER_SUB}/resourceGroups/rg-publisher"
    "/providers/Microsoft.Solutions/applicationDefinitions"
)
PRINCIPAL = "5b7c1d2e-3f40-4a51-8b62-7c83d94ea5f6"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
V1_ACTIONS = (
    "Microsoft.Web/sites/restart/action",
    "Microsoft.Web/sites/config/list/action",
    "Microsoft.Insights/diagnosticSettings/write",
)
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
AUTH = (Authorization(principal_id=PRINCIPAL, role_definition_id=OWNER),)

DEF_V1 = Definition(
    id=f"{DEFS}/app-v1",
    lock_level="ReadOnly",
    allowed_actions=V1_ACTIONS,
    allowed_data_actions=(BLOB_READ,),
    authorizations=AUTH,
)
DEF_UNLOCKED = DEF_V1.model_copy(update={"id": f"{DEFS}/app-v1-unlocked", "lock_level": "None"})
# A one-off hotfix that allowed slot swaps; v2 drops it, which the plan must flag as tightening.
SLOTS = "Microsoft.Web/sites/slots/*"
DEF_HOTFIX = DEF_V1.model_copy(
    update={"id": f"{DEFS}/app-v1-hotfix", "allowed_actions": (*V1_ACTIONS, SLOTS)}
)

TENANTS = (
    (
        "a1b2c3d4-0001-4000-8000-000000000001",
        "Fabrikam (canary)",
        "canary",
        "10000000-0000-4000-8000-000000000001",
    ),
    (
        "a1b2c3d4-0002-4000-8000-000000000002",
        "Northwind Traders",
        "main",
        "20000000-0000-4000-8000-000000000002",
    ),
    (
        "a1b2c3d4-0003-4000-8000-000000000003",
        "Woodgrove Bank",
        "main",
        "30000000-0000-4000-8000-000000000003",
    ),
)


def _deny(mrg: str, app_id: str, not_actions: tuple[str, ...], not_data: tuple[str, ...]) -> DenyAssignment:
    return DenyAssignment(
        id=f"{mrg}/providers/Microsoft.Authorization/denyAssignments/{app_id.rsplit('/', 1)[-1]}",
        name="deny",
        scope=mrg,
        deny_assignment_name="System deny assignment created by managed application",
        description=f"Created by managed application '{app_id}'.",
        actions=("*",),
        not_actions=not_actions,
        data_actions=("*",),
        not_data_actions=not_data,
        excluded_principal_ids=(PRINCIPAL,),
        is_system_protected=True,
    )


def _app(tenant: int, name: str, **changes: object) -> App:
    tenant_id, _, _, sub = TENANTS[tenant]
    app_id = f"/subscriptions/{sub}/resourceGroups/rg-managedapps/providers/Microsoft.Solutions/applications/"
    app_id += name
    mrg = f"/subscriptions/{sub}/resourceGroups/mrg-{name}"
    app = App(
        id=app_id,
        name=name,
        tenant_id=tenant_id,
        subscription_id=sub,
        resource_group="rg-managedapps",
        location="westeurope",
        kind="ServiceCatalog",
        managed_resource_group_id=mrg,
        definition_id=DEF_V1.id,
        provisioning_state="Succeeded",
        lock_level="ReadOnly",
        deny_assignment=_deny(mrg, app_id, ("*/read", *V1_ACTIONS), (BLOB_READ,)),
    )
    return app.model_copy(update=changes)


def _with_not_actions(app: App, not_actions: tuple[str, ...]) -> App:
    deny = app.deny_assignment
    assert deny is not None
    return app.model_copy(update={"deny_assignment": deny.model_copy(update={"not_actions": not_actions})})


def snapshot(target_id: str, target_actions: tuple[str, ...]) -> Snapshot:
    on_v2 = _app(2, "wgb-reporting", definition_id=target_id)
    current = _with_not_actions(on_v2, ("*/read", *target_actions))
    drifted_base = _app(2, "wgb-archive")
    apps = (
        _app(0, "fab-portal"),
        _app(1, "nw-orders"),
        _app(1, "nw-inventory"),
        _app(1, "nw-billing", provisioning_state="Updating"),
        _app(
            1,
            "nw-hotfix",
            definition_id=DEF_HOTFIX.id,
            deny_assignment=_deny(
                f"/subscriptions/{TENANTS[1][3]}/resourceGroups/mrg-nw-hotfix",
                f"/subscriptions/{TENANTS[1][3]}/resourceGroups/rg-managedapps/providers/"
                "Microsoft.Solutions/applications/nw-hotfix",
                ("*/read", *V1_ACTIONS, SLOTS),
                (BLOB_READ,),
            ),
        ),
        _app(1, "nw-legacy", definition_id=DEF_UNLOCKED.id, lock_level="None", deny_assignment=None),
        _app(1, "nw-monitoring", definition_id=f"{DEFS}/monitoring-v1"),  # another product: never moved
        _app(2, "wgb-payments"),
        _app(2, "wgb-payments-v2", definition_id=target_id),  # on v2, deny assignment still v1's: re-apply
        current,
        _with_not_actions(drifted_base, ("*/read", V1_ACTIONS[0])),
        _app(
            2,
            "wgb-marketplace",
            kind="MarketPlace",
            definition_id=None,
            lock_level=None,
            plan=MarketplacePlan(
                publisher="contoso-isv", product="contoso-app", name="standard", version="1.0.0"
            ),
        ),
    )
    unreadable = TenantInventory(
        tenant_id="a1b2c3d4-0004-4000-8000-000000000004",
        display_name="Tailspin Toys",
        ring="main",
        error="authentication failed: AADSTS7000215 invalid client secret provided",
    )
    tenants = (
        *(TenantInventory(tenant_id=tid, display_name=name, ring=ring) for tid, name, ring, _ in TENANTS),
        unreadable,
    )
    return Snapshot(
        taken_at=NOW,
        tenants=tenants,
        apps=apps,
        definitions={d.id.lower(): d for d in (DEF_V1, DEF_UNLOCKED, DEF_HOTFIX) if d.id},
    )


def build() -> Plan:
    target = load_target(TARGET_FILE)
    assert target.definition_id is not None
    snap = snapshot(target.definition_id, target.definition.allowed_actions)
    options = PlanOptions(waves=WaveSpec(canary_ring="canary", steps=("1", "100%")))
    plan = build_plan(snap, target, options, tool_version=__version__, now=NOW, rings={})
    return seal(plan)


def main() -> None:
    write_plan(build(), OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
