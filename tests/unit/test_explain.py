"""`who_denies`: wildcard-aware, case-insensitive, grouped by tenant, honest about unread tenants."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.models import App, DenyAssignment, MarketplacePlan, Snapshot, TenantInventory
from orchestrator.planning.explain import action_warning, denying_patterns, who_denies

READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def deny(
    not_actions: tuple[str, ...] = (), *, lock: str = "ReadOnly", not_data: tuple[str, ...] = ()
) -> DenyAssignment:
    actions: tuple[str, ...]
    data: tuple[str, ...]
    if lock == "ReadOnly":
        actions, data, not_actions = ("*",), ("*",), ("*/read", *not_actions)
    else:
        actions, data = ("*/delete",), ()
    return DenyAssignment(
        id="/x/denyAssignments/1",
        name="1",
        scope="/subscriptions/s/resourceGroups/mrg",
        actions=actions,
        not_actions=not_actions,
        data_actions=data,
        not_data_actions=not_data,
        is_system_protected=True,
    )


def app(name: str, tenant: str, assignment: DenyAssignment | None, *, plan: bool = False) -> App:
    return App(
        id=f"/subscriptions/s-{tenant}/resourceGroups/rg/providers/Microsoft.Solutions/applications/{name}",
        name=name,
        tenant_id=tenant,
        subscription_id=f"s-{tenant}",
        resource_group="rg",
        location="westeurope",
        kind="MarketPlace" if plan else "ServiceCatalog",
        managed_resource_group_id=f"/subscriptions/s-{tenant}/resourceGroups/mrg-{name}",
        definition_id=None
        if plan
        else "/subscriptions/p/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/d",
        plan=MarketplacePlan(publisher="pub", product="prod", name="std", version="1.0.0") if plan else None,
        provisioning_state="Succeeded",
        deny_assignment=assignment,
    )


def snapshot(apps: list[App], errors: dict[str, str] | None = None) -> Snapshot:
    tenants = sorted({a.tenant_id for a in apps} | set(errors or {}))
    return Snapshot(
        taken_at=datetime(2026, 1, 1, tzinfo=UTC),
        tenants=tuple(
            TenantInventory(
                tenant_id=t, display_name=f"Tenant {t}", ring="default", error=(errors or {}).get(t)
            )
            for t in tenants
        ),
        apps=tuple(apps),
    )


def test_readonly_without_the_exclusion_denies_and_with_it_does_not() -> None:
    snap = snapshot(
        [
            app("old", "t1", deny()),
            app("new", "t1", deny(("Microsoft.KeyVault/vaults/secrets/readMetadata/action",))),
            app("other", "t2", deny()),
        ]
    )
    result = who_denies(snap, READ_METADATA)
    assert [(t.tenant_id, [d.app_name for d in t.denying], t.apps_total) for t in result.tenants] == [
        ("t1", ["old"], 2),
        ("t2", ["other"], 1),
    ]
    assert result.denying_count == 2
    assert result.tenants[0].denying[0].denied_by == ("*",)


def test_a_wildcard_exclusion_and_case_differences_count() -> None:
    snap = snapshot([app("a", "t1", deny(("microsoft.keyvault/vaults/secrets/*",)))])
    assert who_denies(snap, READ_METADATA).tenants == ()
    assert who_denies(snap, READ_METADATA.upper()).tenants == ()


def test_reads_are_excluded_by_readonly_and_cannotdelete_only_denies_deletes() -> None:
    snap = snapshot([app("ro", "t1", deny()), app("cnd", "t1", deny(lock="CanNotDelete"))])
    assert who_denies(snap, "Microsoft.Web/sites/read").tenants == ()
    names = [d.app_name for d in who_denies(snap, "Microsoft.Web/sites/delete").tenants[0].denying]
    assert names == ["cnd", "ro"]
    assert [d.app_name for d in who_denies(snap, "Microsoft.Web/sites/write").tenants[0].denying] == ["ro"]


def test_data_actions_use_the_data_lists() -> None:
    blob = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    snap = snapshot(
        [
            app("plain", "t1", deny()),
            app("allowed", "t1", deny(not_data=(blob,))),
            app("cnd", "t1", deny(lock="CanNotDelete")),
        ]
    )
    result = who_denies(snap, blob, data=True)
    assert [d.app_name for d in result.tenants[0].denying] == ["plain"]
    # The same string as a control-plane action: ReadOnly excludes */read.
    assert who_denies(snap, blob, data=False).tenants == ()


def test_apps_without_a_deny_assignment_never_deny() -> None:
    assert who_denies(snapshot([app("none", "t1", None)]), "*/delete").tenants == ()


def test_a_pattern_question_lists_apps_denying_part_of_it() -> None:
    snap = snapshot(
        [
            app("all-secrets", "t1", deny(("Microsoft.KeyVault/vaults/secrets/*",))),
            app("metadata-only", "t1", deny((READ_METADATA,))),
        ]
    )
    result = who_denies(snap, "Microsoft.KeyVault/vaults/secrets/*")
    assert [d.app_name for d in result.tenants[0].denying] == ["metadata-only"]


def test_an_unread_tenant_is_reported_so_the_answer_is_not_mistaken_for_complete() -> None:
    snap = snapshot([app("a", "t1", deny((READ_METADATA,)))], errors={"t9": "authentication failed"})
    result = who_denies(snap, READ_METADATA)
    assert result.incomplete
    assert [(t.tenant_id, t.error, t.denying) for t in result.tenants] == [
        ("t9", "authentication failed", ())
    ]


def test_marketplace_apps_carry_their_plan_version() -> None:
    result = who_denies(snapshot([app("m", "t1", deny(), plan=True)]), READ_METADATA)
    denial = result.tenants[0].denying[0]
    assert (denial.kind, denial.plan_version, denial.definition_id) == ("MarketPlace", "1.0.0", None)


def test_denying_patterns_names_every_matching_pattern() -> None:
    assignment = deny(lock="CanNotDelete").model_copy(update={"actions": ("*/delete", "Microsoft.Web/*")})
    assert denying_patterns(assignment, "Microsoft.Web/sites/delete", data=False) == (
        "*/delete",
        "Microsoft.Web/*",
    )


def test_unknown_actions_get_a_warning() -> None:
    snap = snapshot([app("old", "t1", deny()), app("new", "t1", deny((READ_METADATA,)))])
    bogus = action_warning(snap, "bogus")
    assert bogus is not None and "not an operation name" in bogus and "provider namespace" in bogus
    typo = action_warning(snap, "Microsoft.KeyVault/vaults/secrets/readMetdata/action")
    assert typo is not None and f"did you mean {READ_METADATA}?" in typo
    verb = action_warning(snap, "Microsoft.KeyVault/vaults/secrets/readMetadata/actoin")
    assert verb is not None and "not an operation verb" in verb and f"did you mean {READ_METADATA}?" in verb
    assert action_warning(snap, "Contoso.Widgets/gadgets/read") is None  # well formed: no guessing
    assert action_warning(snap, "Microsoft.Web/sites/restart/action", also_known=["x"]) is None
    assert action_warning(snap, READ_METADATA) is None
    assert action_warning(snap, "Microsoft.KeyVault/vaults/read") is None  # a known provider
