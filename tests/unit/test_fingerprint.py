"""The app-state fingerprint: stable under spelling and order, sensitive to what apply relies on."""

from __future__ import annotations

from orchestrator.models import App, DenyAssignment, MarketplacePlan
from orchestrator.planning.fingerprint import describe_difference, fingerprint, summarize

SUB = "11111111-1111-1111-1111-111111111111"
APP_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Solutions/applications/app1"
DEF_ID = f"/subscriptions/{SUB}/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/v1"
MRG = f"/subscriptions/{SUB}/resourceGroups/mrg-app1"


def _app(**changes: object) -> App:
    base = App(
        id=APP_ID,
        name="app1",
        tenant_id="t1",
        subscription_id=SUB,
        resource_group="rg",
        location="westeurope",
        kind="ServiceCatalog",
        managed_resource_group_id=MRG,
        definition_id=DEF_ID,
        provisioning_state="Succeeded",
        deny_assignment=DenyAssignment(
            id="d",
            name="d",
            scope=MRG,
            actions=("*",),
            not_actions=("*/read", "A/b/action"),
            not_data_actions=("X/y",),
        ),
    )
    return base.model_copy(update=changes)


def test_stable_under_case_and_order_and_irrelevant_fields() -> None:
    app = _app()
    respelled = _app(
        id=APP_ID.upper(),
        definition_id=DEF_ID.upper(),
        managed_resource_group_id=MRG.upper(),
        tags={"env": "prod"},
        location="northeurope",
        deny_assignment=DenyAssignment(
            id="other",
            name="other",
            scope=MRG,
            not_actions=("a/B/ACTION", "*/READ", "*/read"),
            not_data_actions=("x/Y",),
        ),
    )
    assert fingerprint(app) == fingerprint(respelled)
    assert fingerprint(app).startswith("sha256:")
    assert describe_difference(summarize(app), respelled) == ""


def test_changes_when_what_apply_relies_on_changes() -> None:
    app = _app()
    deny = app.deny_assignment
    assert deny is not None
    changed = [
        _app(id=APP_ID + "x"),
        _app(definition_id=DEF_ID + "2"),
        _app(provisioning_state="Updating"),
        _app(managed_resource_group_id=MRG + "2"),
        _app(deny_assignment=None),
        _app(deny_assignment=deny.model_copy(update={"not_actions": ("*/read",)})),
        _app(deny_assignment=deny.model_copy(update={"not_data_actions": ()})),
        _app(plan=MarketplacePlan(publisher="p", product="o", name="n", version="1.0.0")),
    ]
    prints = {fingerprint(a) for a in changed}
    assert fingerprint(app) not in prints
    assert len(prints) == len(changed)


def test_describe_difference_says_what_changed() -> None:
    old = summarize(_app())
    new = _app(
        definition_id=DEF_ID.replace("v1", "v2"),
        provisioning_state="Updating",
        deny_assignment=DenyAssignment(id="d", name="d", scope=MRG, not_actions=("*/read", "C/d/action")),
    )
    text = describe_difference(old, new)
    assert "definition" in text and "/v1 → " in text and text.count("/v2") == 1
    assert "provisioning state Succeeded → Updating" in text
    assert "excluded actions +c/d/action -a/b/action" in text
    assert "excluded data actions -x/y" in text
    assert describe_difference(old, _app(deny_assignment=None)).startswith("deny assignment disappeared")
