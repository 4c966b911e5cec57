"""The planner: every decision, skip reason and risk flag, wildcard and case handling, waves, counts."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.errors import TargetError
from orchestrator.models import (
    App,
    Authorization,
    Decision,
    Definition,
    DenyAssignment,
    Lineage,
    LockLevel,
    MarketplacePlan,
    Plan,
    PlanItem,
    PlanOptions,
    Severity,
    Snapshot,
    Target,
    TenantInventory,
    WaveSpec,
)
from orchestrator.planning.planner import build_plan

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SUB = "11111111-1111-1111-1111-111111111111"
DEFS = f"/subscriptions/{SUB}/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions"
V0, V1, V2 = f"{DEFS}/app-v0", f"{DEFS}/app-v1", f"{DEFS}/app-v2"
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
RESTART = "Microsoft.Web/sites/restart/action"
PUBLISHER = "aaaaaaaa-0000-0000-0000-000000000001"
OTHER_PRINCIPAL = "aaaaaaaa-0000-0000-0000-000000000002"
OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
AUTH = (Authorization(principal_id=PUBLISHER, role_definition_id=OWNER_ROLE),)

DEF_V0 = Definition(id=V0, lock_level="None")
DEF_V1 = Definition(id=V1, lock_level="ReadOnly", allowed_actions=(RESTART,), authorizations=AUTH)
DEF_V2 = Definition(id=V2, lock_level="ReadOnly", allowed_actions=(RESTART, KV), authorizations=AUTH)
TARGET_V2 = Target(name="v2", definition_id=V2, definition=DEF_V2)

OFFER = {"publisher": "contoso", "product": "widget-offer", "name": "standard"}
PLAN_1 = MarketplacePlan(**OFFER, version="1.0.0")
PLAN_2 = MarketplacePlan(**OFFER, version="2.0.0")
TARGET_MP = Target(
    name="mp-2.0.0",
    plan=PLAN_2,
    definition=Definition(lock_level="ReadOnly", allowed_actions=(RESTART, KV)),
)


def deny_for(
    lock: LockLevel,
    not_actions: tuple[str, ...],
    not_data: tuple[str, ...] = (),
    principals: tuple[str, ...] = (PUBLISHER,),
    mrg: str = "",
) -> DenyAssignment:
    actions, data = (("*",), ("*",)) if lock == "ReadOnly" else (("*/delete",), ())
    return DenyAssignment(
        id=f"{mrg}/providers/Microsoft.Authorization/denyAssignments/x",
        name="x",
        scope=mrg,
        actions=actions,
        not_actions=not_actions,
        data_actions=data,
        not_data_actions=not_data,
        excluded_principal_ids=principals,
        is_system_protected=True,
    )


DENY_V1 = deny_for("ReadOnly", ("*/read", RESTART))
DENY_V2 = deny_for("ReadOnly", ("*/read", RESTART, KV))


def app(name: str = "app1", tenant: str = "t-main", **fields: Any) -> App:
    values: dict[str, Any] = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Solutions/applications/{name}",
        "name": name,
        "tenant_id": tenant,
        "subscription_id": SUB,
        "resource_group": "rg",
        "location": "westeurope",
        "kind": "ServiceCatalog",
        "managed_resource_group_id": f"/subscriptions/{SUB}/resourceGroups/mrg-{name}",
        "definition_id": V1,
        "provisioning_state": "Succeeded",
        "lock_level": "ReadOnly",
        "deny_assignment": DENY_V1,
    }
    values.update(fields)
    return App(**values)


def mp_app(name: str = "mp1", **fields: Any) -> App:
    base: dict[str, Any] = {"kind": "MarketPlace", "definition_id": None, "plan": PLAN_1, "lock_level": None}
    base.update(fields)
    return app(name, **base)


TENANTS = (
    TenantInventory(tenant_id="t-canary", display_name="Canary Corp", ring="canary"),
    TenantInventory(tenant_id="t-main", display_name="Main Corp", ring="main"),
)


def plan_for(
    apps: list[App],
    target: Target = TARGET_V2,
    *,
    definitions: dict[str, Definition] | None = None,
    tenants: tuple[TenantInventory, ...] = TENANTS,
    options: PlanOptions | None = None,
    rings: dict[str, str] | None = None,
) -> Plan:
    snapshot = Snapshot(
        taken_at=NOW,
        tenants=tenants,
        apps=tuple(apps),
        definitions=definitions if definitions is not None else {V0.lower(): DEF_V0, V1.lower(): DEF_V1},
    )
    return build_plan(
        snapshot, target, options or PlanOptions(), tool_version="test", now=NOW, rings=rings or {}
    )


def only(plan: Plan) -> PlanItem:
    assert len(plan.items) == 1
    return plan.items[0]


def codes(item: PlanItem) -> dict[str, Severity]:
    return {r.code: r.severity for r in item.risks}


# --- decisions ---------------------------------------------------------------------------------------


def test_update_adds_the_new_exclusion_and_records_what_to_verify() -> None:
    item = only(plan_for([app()]))
    assert item.decision == Decision.UPDATE
    assert item.change.actions_added == (KV,)
    assert (
        item.change.actions_removed
        == item.change.data_actions_added
        == item.change.data_actions_removed
        == ()
    )
    assert item.expected_not_actions == ("*/read", RESTART, KV)
    assert item.expected_not_data_actions == ()
    assert item.to_definition_id == V2 and item.from_definition_id == V1
    assert "app-v1 → app-v2" in item.reason
    assert item.risks == ()
    assert item.wave == 0
    assert item.fingerprint.startswith("sha256:")
    assert item.as_read is not None and item.as_read.definition_id == V1.lower()


def test_current_when_on_target_with_the_expected_exclusions() -> None:
    item = only(plan_for([app(definition_id=V2.upper(), deny_assignment=DENY_V2)]))
    assert item.decision == Decision.CURRENT
    assert "already on app-v2" in item.reason
    assert item.wave is None and item.to_definition_id is None and item.expected_not_actions == ()


def test_on_target_but_deny_lacks_the_exclusions_is_a_reapply() -> None:
    item = only(plan_for([app(definition_id=V2)]))
    assert item.decision == Decision.UPDATE
    assert "re-apply" in item.reason and f"lacks excluded actions `{KV}`" in item.reason
    assert item.change.actions_added == (KV,)


def test_on_target_without_any_deny_assignment_is_a_reapply() -> None:
    item = only(plan_for([app(definition_id=V2, deny_assignment=None)]))
    assert item.decision == Decision.UPDATE
    assert "no system deny assignment was found: re-apply" in item.reason


@pytest.mark.parametrize("definition_id", [V2, V1])
def test_an_unidentifiable_deny_assignment_is_reported_never_rewritten(definition_id: str) -> None:
    problem = "2 system-protected deny assignments on its managed resource group name it: a, b"
    the_app = app(definition_id=definition_id, deny_assignment=None, deny_assignment_problem=problem)
    item = only(plan_for([the_app]))
    assert item.decision == Decision.DRIFTED
    assert item.reason == f"its system deny assignment cannot be told apart: {problem}"


def test_on_target_with_other_excluded_principals_is_a_reapply_flagged() -> None:
    deny = deny_for("ReadOnly", ("*/read", RESTART, KV), principals=(OTHER_PRINCIPAL,))
    item = only(plan_for([app(definition_id=V2, deny_assignment=deny)]))
    assert item.decision == Decision.UPDATE
    assert "excluded principals differ" in item.reason
    assert codes(item) == {"principals-change": Severity.HIGH}


@pytest.mark.parametrize(
    ("deny", "reason"),
    [
        (deny_for("ReadOnly", ("*/read",)), f"lacks excluded actions `{RESTART}`"),
        (
            deny_for("ReadOnly", ("*/read", RESTART, "Microsoft.Web/*")),
            "also excludes actions `Microsoft.Web/*`",
        ),
        (deny_for("ReadOnly", ("*/read", RESTART), ("D/x",)), "also excludes data actions `D/x`"),
        (deny_for("CanNotDelete", ("*/read", RESTART)), "lock level CanNotDelete, not ReadOnly"),
        (None, "no system deny assignment found, but app-v1 implies lock level ReadOnly"),
    ],
)
def test_drifted_when_deny_differs_from_its_own_definition(deny: DenyAssignment | None, reason: str) -> None:
    item = only(plan_for([app(deny_assignment=deny)]))
    assert item.decision == Decision.DRIFTED
    assert reason in item.reason
    assert item.wave is None and item.change.empty


@pytest.mark.parametrize(
    ("the_app", "target", "reason"),
    [
        (app(provisioning_state="Updating"), TARGET_V2, "provisioning state is Updating, not Succeeded"),
        (app(provisioning_state="Failed"), TARGET_V2, "provisioning state is Failed"),
        (
            app(),
            TARGET_V2.model_copy(update={"definition": DEF_V2.model_copy(update={"lock_level": "None"})}),
            "the target's lock level is None",
        ),
        (app(definition_id=V0, deny_assignment=None), TARGET_V2, "current lock level is None"),
        (app(definition_id=f"{DEFS}/app-v0-gone"), TARGET_V2, "current definition app-v0-gone is unknown"),
        (mp_app(), TARGET_V2, "the target names no marketplace plan version (for this MarketPlace instance)"),
        (app(kind="SomethingElse"), TARGET_V2, "kind SomethingElse: neither ServiceCatalog nor MarketPlace"),
        (app(definition_id=None), TARGET_V2, "ServiceCatalog instance without an application definition id"),
        (app(), TARGET_MP, "the target names no application definition (for this ServiceCatalog instance)"),
        (mp_app(plan=None), TARGET_MP, "MarketPlace instance without a marketplace plan"),
        (
            mp_app(plan=PLAN_1.model_copy(update={"name": "premium"})),
            TARGET_MP,
            "marketplace plan contoso/widget-offer/premium is not the target's contoso/widget-offer/standard",
        ),
        (
            mp_app(deny_assignment=None),
            TARGET_MP,
            "no system deny assignment found and the current plan version",
        ),
    ],
)
def test_skip_reasons(the_app: App, target: Target, reason: str) -> None:
    item = only(plan_for([the_app], target))
    assert item.decision == Decision.SKIP
    assert reason in item.reason
    assert item.wave is None


# --- marketplace ---------------------------------------------------------------------------------------


def test_marketplace_update_by_plan_version() -> None:
    item = only(plan_for([mp_app()], TARGET_MP))
    assert item.decision == Decision.UPDATE
    assert item.to_plan == PLAN_2 and item.to_definition_id is None and item.from_plan == PLAN_1
    assert item.change.actions_added == (KV,)
    assert "drift not checked" in item.reason


def test_marketplace_offer_matches_case_insensitively_and_current_on_target_version() -> None:
    plan = MarketplacePlan(publisher="CONTOSO", product="Widget-Offer", name="Standard", version="2.0.0")
    item = only(plan_for([mp_app(plan=plan, deny_assignment=DENY_V2)], TARGET_MP))
    assert item.decision == Decision.CURRENT


# --- wildcards and case -----------------------------------------------------------------------------


def test_new_action_inside_an_old_wildcard_is_no_change() -> None:
    old_def = DEF_V1.model_copy(update={"allowed_actions": ("Microsoft.KeyVault/vaults/*",)})
    new_def = DEF_V2.model_copy(update={"allowed_actions": ("Microsoft.KeyVault/vaults/*", KV)})
    deny = deny_for("ReadOnly", ("*/read", "Microsoft.KeyVault/vaults/*"))
    item = only(
        plan_for(
            [app(deny_assignment=deny)],
            TARGET_V2.model_copy(update={"definition": new_def}),
            definitions={V1.lower(): old_def},
        )
    )
    assert item.decision == Decision.UPDATE
    assert item.change.empty
    assert "exclusions unchanged" in item.reason
    assert item.risks == ()


def test_case_of_actions_and_ids_does_not_matter() -> None:
    deny = deny_for("ReadOnly", ("*/READ", RESTART.upper()))
    item = only(plan_for([app(definition_id=V1.upper(), deny_assignment=deny)]))
    assert item.decision == Decision.UPDATE
    assert item.change.actions_added == (KV,) and item.change.actions_removed == ()


# --- risks -------------------------------------------------------------------------------------------


def _target_allowing(
    actions: tuple[str, ...], data: tuple[str, ...] = (), lock: LockLevel = "ReadOnly", **kw: Any
) -> Target:
    definition = DEF_V2.model_copy(
        update={"allowed_actions": actions, "allowed_data_actions": data, "lock_level": lock, **kw}
    )
    return TARGET_V2.model_copy(update={"definition": definition})


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        ((RESTART, KV), {}),
        ((RESTART, "Microsoft.Web/sites/write"), {"widens-write": Severity.HIGH}),
        ((RESTART, "Microsoft.Web/sites/delete"), {"widens-delete": Severity.HIGH}),
        (
            (RESTART, "Microsoft.Authorization/roleAssignments/write"),
            {"widens-write": Severity.HIGH, "widens-authorization": Severity.HIGH},
        ),
        (
            (RESTART, "Microsoft.Authorization/locks/delete"),
            {"widens-delete": Severity.HIGH, "widens-authorization": Severity.HIGH},
        ),
        (
            (RESTART, "Microsoft.Web/*"),
            {
                "widens-write": Severity.HIGH,
                "widens-delete": Severity.HIGH,
                "broad-wildcard": Severity.MEDIUM,
            },
        ),
        (
            (RESTART, "*"),
            {
                "widens-write": Severity.HIGH,
                "widens-delete": Severity.HIGH,
                "widens-authorization": Severity.HIGH,
                "broad-wildcard": Severity.HIGH,
            },
        ),
        (
            (RESTART, "*/action"),
            {"widens-authorization": Severity.HIGH, "broad-wildcard": Severity.HIGH},
        ),
        ((KV,), {"tightens": Severity.HIGH}),
    ],
)
def test_risk_flags(allowed: tuple[str, ...], expected: dict[str, Severity]) -> None:
    item = only(plan_for([app()], _target_allowing(allowed)))
    assert item.decision == Decision.UPDATE
    assert codes(item) == expected


def test_removal_names_what_will_fail() -> None:
    item = only(plan_for([app()], _target_allowing((KV,))))
    assert item.change.actions_removed == (RESTART,)
    (risk,) = item.risks
    assert f"`{RESTART}`" in risk.message and "AuthorizationFailed" in risk.message


@pytest.mark.parametrize(
    ("data", "severity"),
    [
        (("Microsoft.KeyVault/vaults/secrets/getSecret/action",), Severity.MEDIUM),
        (("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",), Severity.HIGH),
        (("Microsoft.Storage/*",), Severity.HIGH),
    ],
)
def test_widens_data(data: tuple[str, ...], severity: Severity) -> None:
    item = only(plan_for([app()], _target_allowing((RESTART, KV), data)))
    assert codes(item) == {"widens-data": severity}
    assert item.change.data_actions_added == data


def test_removed_data_action_tightens() -> None:
    deny = deny_for("ReadOnly", ("*/read", RESTART), ("D/read",))
    v1 = DEF_V1.model_copy(update={"allowed_data_actions": ("D/read",)})
    item = only(plan_for([app(deny_assignment=deny)], definitions={V1.lower(): v1}))
    assert item.change.data_actions_removed == ("D/read",)
    assert codes(item) == {"tightens": Severity.HIGH}


def test_under_can_not_delete_only_deletes_widen() -> None:
    v1 = DEF_V1.model_copy(update={"lock_level": "CanNotDelete"})
    deny = deny_for("CanNotDelete", (RESTART,))
    target = _target_allowing(
        (RESTART, "Microsoft.Web/sites/write", "Microsoft.Web/sites/delete"), lock="CanNotDelete"
    )
    item = only(plan_for([app(deny_assignment=deny)], target, definitions={V1.lower(): v1}))
    assert item.decision == Decision.UPDATE
    # Writes are not denied under CanNotDelete: excluding one changes nothing a reviewer must weigh.
    assert codes(item) == {"widens-delete": Severity.HIGH}


def test_lock_level_change_is_flagged() -> None:
    item = only(plan_for([app()], _target_allowing((RESTART, KV), lock="CanNotDelete")))
    assert codes(item)["lock-level-change"] == Severity.HIGH


def test_principals_change_when_target_authorizations_differ() -> None:
    auth = (Authorization(principal_id=OTHER_PRINCIPAL, role_definition_id=OWNER_ROLE),)
    item = only(plan_for([app()], _target_allowing((RESTART, KV), authorizations=auth)))
    risk = next(r for r in item.risks if r.code == "principals-change")
    assert risk.severity == Severity.HIGH
    assert f"+{OTHER_PRINCIPAL}" in risk.message and f"-{PUBLISHER}" in risk.message


@pytest.mark.parametrize(
    ("version", "downgrade"), [("3.0.0", True), ("2.0.1", True), ("1.9.9", False), ("preview-7", False)]
)
def test_marketplace_downgrade_is_flagged(version: str, downgrade: bool) -> None:
    plan = PLAN_1.model_copy(update={"version": version})
    item = only(plan_for([mp_app(plan=plan, deny_assignment=DENY_V2)], TARGET_MP))
    assert item.decision == Decision.UPDATE
    assert ("downgrade" in codes(item)) is downgrade


def test_principals_unchecked_when_target_lists_no_authorizations() -> None:
    item = only(plan_for([mp_app()], TARGET_MP))
    assert "principals-change" not in codes(item)


# --- the plan as a whole ---------------------------------------------------------------------------------


def _fleet() -> list[App]:
    return [
        app("c1", tenant="t-canary"),
        app("c2", tenant="t-canary", provisioning_state="Updating"),
        *[app(f"m{i}") for i in range(8)],
        app("cur", definition_id=V2, deny_assignment=DENY_V2),
        app("drift", deny_assignment=None),
    ]


def test_waves_counts_and_order() -> None:
    plan = plan_for(_fleet(), options=PlanOptions(waves=WaveSpec(steps=("2", "50%"))))
    assert [(w.name, len(w.app_ids)) for w in plan.waves] == [
        ("canary", 1),
        ("wave-1", 2),
        ("wave-2", 4),
        ("wave-3", 2),
    ]
    updates = [i for i in plan.items if i.decision == Decision.UPDATE]
    assert all(i.wave is not None for i in updates)
    assert all(i.wave is None for i in plan.items if i.decision != Decision.UPDATE)
    assert next(i for i in plan.items if i.app_name == "c1").wave == 0
    for wave in plan.waves:
        assert {i.app_id for i in updates if i.wave == wave.index} == set(wave.app_ids)
    assert plan.counts is not None
    assert (plan.counts.apps, plan.counts.tenants) == (12, 2)
    assert (plan.counts.update, plan.counts.current, plan.counts.drifted, plan.counts.skip) == (9, 1, 1, 1)
    # Items are ordered by tenant name, then subscription, resource group and app name.
    assert [i.tenant_name for i in plan.items][:2] == ["Canary Corp", "Canary Corp"]
    assert plan.created_at == NOW and plan.tool_version == "test" and plan.digest == ""


def test_risk_counts_count_items() -> None:
    plan = plan_for([app("a"), app("b")], _target_allowing((KV,)))
    assert plan.counts is not None and plan.counts.risks == {"tightens": 2}


def test_deterministic_whatever_the_snapshot_order() -> None:
    fleet = _fleet()
    shuffled = fleet[:]
    random.Random(7).shuffle(shuffled)
    assert plan_for(fleet) == plan_for(shuffled)


def test_rings_from_config_override_the_snapshot() -> None:
    plan = plan_for([app("c1", tenant="t-canary"), app("m1")], rings={"T-MAIN": "canary", "t-canary": "late"})
    assert (plan.waves[0].name, plan.waves[0].app_ids) == ("canary", (app("m1").id,))


def test_tenant_errors_become_plan_notes() -> None:
    failed = TenantInventory(
        tenant_id="t-bad", display_name="Bad Corp", ring="main", error="invalid client secret"
    )
    plan = plan_for([app()], tenants=(*TENANTS, failed))
    assert plan.notes == (
        "tenant Bad Corp (t-bad) was not fully read: invalid client secret; "
        "apps not read are not in this plan",
    )


def test_invalid_wave_steps_raise_value_error() -> None:
    with pytest.raises(ValueError, match="invalid wave step 'ten'"):
        plan_for([app()], options=PlanOptions(waves=WaveSpec(steps=("ten",))))


def test_a_target_naming_both_channels_moves_each_kind_its_own_way() -> None:
    both = TARGET_V2.model_copy(update={"plan": TARGET_MP.plan, "name": "release 2"})
    sc, mp = plan_for([app(), mp_app()], both).items
    by_kind = {sc.kind: sc, mp.kind: mp}
    catalog, market = by_kind["ServiceCatalog"], by_kind["MarketPlace"]
    assert catalog.decision == market.decision == Decision.UPDATE
    assert (catalog.to_definition_id, catalog.to_plan) == (V2, None)
    assert (market.to_definition_id, market.to_plan) == (None, TARGET_MP.plan)


def test_target_must_name_a_definition_or_a_plan() -> None:
    with pytest.raises(TargetError, match="a definition id, a marketplace plan, or both"):
        plan_for([app()], Target(name="bad", definition=DEF_V2))


def test_unknown_tenant_uses_its_id_as_name() -> None:
    item = only(plan_for([app(tenant="t-unlisted")]))
    assert item.tenant_name == "t-unlisted"


def test_an_update_the_operator_cannot_write_is_skipped_with_what_it_would_do() -> None:
    item = only(plan_for([app(writable=False)]))
    assert item.decision == Decision.SKIP
    assert item.reason.startswith("no write access to resource group")
    assert "app-v1 → app-v2: +1 excluded action" in item.reason  # what it would do, for the reviewer
    assert item.change.actions_added == (KV,)
    assert item.wave is None


def test_write_access_matters_only_for_updates() -> None:
    assert only(plan_for([app(writable=None)])).decision == Decision.UPDATE
    assert only(plan_for([app(provisioning_state="Failed", writable=False)])).reason.startswith(
        "provisioning state is Failed"
    )


# --- product lineage -------------------------------------------------------------------------------


OTHER_RG = (
    "/subscriptions/pub/resourceGroups/other-publisher/providers/Microsoft.Solutions/applicationDefinitions"
)


@pytest.mark.parametrize(
    ("definition_id", "lineage", "same_product"),
    [
        (V1, None, True),  # a plan made before lineage existed: the default rule
        (V1, Lineage(same_stem=True), True),
        (f"{DEFS}/APP_V1-unlocked", Lineage(same_stem=True), True),  # case and separators
        (f"{DEFS}/app-1.2", Lineage(same_stem=True), True),
        (f"{DEFS}/monitoring-v1", Lineage(same_stem=True), False),
        (f"{DEFS}/application-v1", Lineage(same_stem=True), False),  # a longer name is not the stem
        (f"{DEFS}/app", Lineage(same_stem=True), False),  # no version token
        (f"{OTHER_RG}/app-v1", Lineage(same_stem=True), False),  # same name, another publisher group
        (f"{OTHER_RG}/app-v1", Lineage(definition_ids=(f"{OTHER_RG}/APP-V1",)), True),  # ids: anywhere
        (V1, Lineage(definition_ids=(f"{OTHER_RG}/app-v1",)), False),  # an explicit list is exact
        (f"{DEFS}/legacy-app", Lineage(names=("legacy-*",)), True),
        (f"{OTHER_RG}/legacy-app", Lineage(names=("legacy-*",)), False),  # globs: the target's group
        (V2, Lineage(), True),  # the target's own definition always is
    ],
)
def test_lineage_decides_which_definitions_a_target_replaces(
    definition_id: str, lineage: Lineage | None, same_product: bool
) -> None:
    from orchestrator.planning.lineage import in_lineage

    target = TARGET_V2.model_copy(update={"lineage": lineage})
    assert in_lineage(definition_id, target) is same_product


def test_another_products_instance_is_skipped_as_a_different_product() -> None:
    monitoring = f"{DEFS}/monitoring-v1"
    definitions = {V1.lower(): DEF_V1, monitoring.lower(): DEF_V1.model_copy(update={"id": monitoring})}
    apps = [app(name="ours"), app(name="theirs", definition_id=monitoring)]
    target = TARGET_V2.model_copy(update={"lineage": Lineage(same_stem=True)})
    plan = plan_for(apps, target, definitions=definitions)
    by_name = {i.app_name: i for i in plan.items}
    assert by_name["ours"].decision == Decision.UPDATE
    theirs = by_name["theirs"]
    assert theirs.decision == Decision.SKIP and theirs.reason.startswith("different product")
    assert "monitoring-v1" in theirs.reason and "app-<version>" in theirs.reason
    assert theirs.to_definition_id is None and theirs.wave is None


# --- one rule for "on the target", shared with the engine (planning/checks.py) ------------------------

MP_DENY = deny_for("ReadOnly", ("*/read", RESTART, KV), principals=())


@pytest.mark.parametrize(
    ("before", "now"),
    [
        # Service catalog: the same definition id in other letter case (both agreed already).
        pytest.param(app(), app(definition_id=V2.upper(), deny_assignment=DENY_V2), id="id-case"),
        # Used to differ: the planner ignored surrounding blanks, the engine did not.
        pytest.param(app(), app(definition_id=f" {V2} ", deny_assignment=DENY_V2), id="id-blanks"),
        pytest.param(
            mp_app(),
            mp_app(plan=PLAN_2.model_copy(update={"version": " 2.0.0 "}), deny_assignment=MP_DENY),
            id="version-blanks",
        ),
        # The same offer in other letter case (the planner judged the offer in its fit check).
        pytest.param(
            mp_app(),
            mp_app(plan=PLAN_2.model_copy(update={"product": "Widget-Offer"}), deny_assignment=MP_DENY),
            id="offer-case",
        ),
    ],
)
def test_planner_and_engine_agree_an_app_is_on_the_target(before: App, now: App) -> None:
    """A plan made before the app moved; by apply time it is on the target: both say so."""
    from orchestrator.executor.work import work_item
    from orchestrator.planning.checks import already_there, on_target

    target = TARGET_MP if before.plan is not None else TARGET_V2
    update = only(plan_for([before], target))
    assert update.decision == Decision.UPDATE
    work = work_item(update, wave=0, lock_level=target.definition.lock_level)
    planned_now = only(plan_for([now], target))
    assert planned_now.decision == Decision.CURRENT, planned_now.reason
    assert on_target(now, work)
    assert already_there(now, work)  # the engine records it `current` and writes nothing


@pytest.mark.parametrize(
    ("app_now", "target"),
    [
        pytest.param(app(), TARGET_V2, id="other-definition"),
        pytest.param(mp_app(), TARGET_MP, id="other-version"),
        # Used to differ outside the planner's fit check: the planner compared only the version.
        pytest.param(
            mp_app(plan=PLAN_2.model_copy(update={"name": "premium"})),
            TARGET_MP,
            id="other-offer-same-version",
        ),
        # Used to differ: a service-catalog app without a definition was "on" a target naming none.
        pytest.param(app(definition_id=None), TARGET_MP, id="no-definition-either-side"),
        # A marketplace app is judged by its plan even when it also carries a definition id.
        pytest.param(mp_app(definition_id=V2), TARGET_V2, id="marketplace-by-its-plan"),
    ],
)
def test_one_rule_says_not_on_the_target(app_now: App, target: Target) -> None:
    from orchestrator.planning.checks import on_release

    assert not on_release(app_now, target.definition_id, target.plan)
    item = only(plan_for([app_now], target))
    assert item.decision != Decision.CURRENT
    assert "already on" not in item.reason
