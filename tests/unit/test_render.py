"""Review output: Markdown for pull requests (risks before tenants, collapsible tenants), table, JSON."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.models import (
    ActionChange,
    Decision,
    Definition,
    Plan,
    PlanItem,
    PlanOptions,
    Risk,
    Severity,
    Target,
    Wave,
)
from orchestrator.planning.planfile import read_plan, seal
from orchestrator.render.plan_review import render_json, render_markdown, render_table, summary_line

EXAMPLE = Path(__file__).resolve().parents[2] / "plans" / "examples" / "example-plan.json"
DEF_ID = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Solutions/applicationDefinitions/app-v2"


def _item(name: str, tenant: str, decision: Decision, **fields: object) -> PlanItem:
    values: dict[str, object] = {
        "app_id": f"/subscriptions/s/resourceGroups/r/providers/Microsoft.Solutions/applications/{name}",
        "app_name": name,
        "tenant_id": f"id-{tenant}",
        "tenant_name": tenant,
        "subscription_id": "s",
        "resource_group": "r",
        "kind": "ServiceCatalog",
        "decision": decision,
        "reason": f"reason for {name}",
        "fingerprint": "sha256:0",
    }
    values.update(fields)
    return PlanItem.model_validate(values)


@pytest.fixture
def plan() -> Plan:
    items = (
        _item(
            "a1",
            "Alpha <Ltd>",
            Decision.UPDATE,
            wave=0,
            change=ActionChange(
                actions_added=("Microsoft.Web/sites/write",), data_actions_removed=("D/x|y",)
            ),
            risks=(
                Risk(
                    code="widens-write",
                    severity=Severity.HIGH,
                    message="allows writes: `Microsoft.Web/sites/write`",
                ),
                Risk(code="widens-data", severity=Severity.MEDIUM, message="allows data actions"),
                Risk(code="widens-authorization", severity=Severity.LOW, message="low one"),
            ),
        ),
        _item("a2", "Alpha <Ltd>", Decision.SKIP, reason="provisioning state is Failed | not Succeeded"),
        _item("b1", "Beta", Decision.UPDATE, wave=1),
        _item("b2", "Beta", Decision.UPDATE, wave=1),
        _item("b3", "Beta", Decision.CURRENT),
        _item("b4", "Beta", Decision.DRIFTED),
    )
    return seal(
        Plan(
            tool_version="1.2.3",
            created_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
            target=Target(
                name="app-v2", definition_id=DEF_ID, definition=Definition(id=DEF_ID, lock_level="ReadOnly")
            ),
            options=PlanOptions(),
            items=items,
            waves=(
                Wave(index=0, name="canary", app_ids=(items[0].app_id,)),
                Wave(index=1, name="wave-1", app_ids=(items[2].app_id, items[3].app_id)),
            ),
            notes=("tenant Gamma (g) was not fully read: throttled",),
        )
    )


def test_markdown_first_lines_are_the_change_summary(plan: Plan) -> None:
    lines = render_markdown(plan).splitlines()
    assert lines[0] == "## Rollout plan: app-v2"
    assert lines[2].startswith("3 apps in 2 tenants move to service catalog: ")
    assert "; 3 other apps stay as they are. 2 updates change no exclusion" in lines[2]
    assert lines[4] == "### No longer denied"
    assert lines[6:9] == [
        "| Action | Apps | Tenants |",
        "| --- | ---: | --- |",
        "| `Microsoft.Web/sites/write` | 1 | 1: Alpha &lt;Ltd&gt; |",
    ]
    assert lines[10] == "### Denied from now on"
    assert lines[14] == "| `D/x\\|y` (data) | 1 | 1: Alpha &lt;Ltd&gt; |"


def test_markdown_order_change_risks_held_plan_notes_tenants(plan: Plan) -> None:
    md = render_markdown(plan)
    assert f"`{plan.digest}`" in md  # whole, never cut
    assert f"`service catalog: {DEF_ID}` (lock level ReadOnly)" in md
    assert "| 6 | 2 | 3 | 1 | 1 | 1 |" in md  # apps, tenants, update, current, drifted, skip
    assert "canary (1) → wave-1 (2)" in md
    order = [
        md.index(h)
        for h in (
            "### No longer denied",
            "### Denied from now on",
            "### Risks, by kind",
            "### Not updated, by reason",
            "### The plan",
            "### Notes",
            "### Tenants",
        )
    ]
    assert order == sorted(order)
    risk_section = md[md.index("### Risks") : md.index("### Not updated")]
    # High before medium, grouped by kind with counts; low ones only named.
    assert risk_section.index("`widens-write`") < risk_section.index("`widens-data`")
    assert "| high | `widens-write` | 1 | 1 | allows writes: `Microsoft.Web/sites/write` | a1 |" in md
    assert "widens-authorization" not in risk_section.split("Also")[0]
    assert "Also low-severity: `widens-authorization` on 1 app" in risk_section
    held = md[md.index("### Not updated") : md.index("### The plan")]
    assert "| current | 1 | 1 | reason for b3 | b3 |" in held
    assert "| skip | 1 | 1 | provisioning state is Failed \\| not Succeeded | a2 |" in held
    assert "- tenant Gamma (g) was not fully read: throttled" in md


def test_markdown_groups_identical_risks_into_one_row(plan: Plan) -> None:
    risk = Risk(code="principals-change", severity=Severity.HIGH, message="excluded principals change")
    items = tuple(
        i.model_copy(update={"risks": (risk,)}) if i.decision == Decision.UPDATE else i for i in plan.items
    )
    md = render_markdown(plan.model_copy(update={"items": items}))
    rows = [line for line in md.splitlines() if line.startswith("| high | `principals-change`")]
    assert rows == ["| high | `principals-change` | 3 | 2 | excluded principals change | a1, b1, b2 |"]


def test_markdown_skipped_apps_show_no_change(plan: Plan) -> None:
    skipped = plan.items[1].model_copy(
        update={
            "change": ActionChange(actions_added=("Microsoft.Skipped/x/action",)),
            "risks": (Risk(code="widens-write", severity=Severity.HIGH, message="would widen"),),
        }
    )
    md = render_markdown(plan.model_copy(update={"items": (plan.items[0], skipped, *plan.items[2:])}))
    assert "Microsoft.Skipped/x/action" not in md and "would widen" not in md


def test_markdown_names_tenants_that_could_not_be_read(plan: Plan) -> None:
    md = render_markdown(plan.model_copy(update={"incomplete_tenants": ("Gamma",)}))
    first = md.split("### No longer denied")[0]
    assert "Incomplete: 1 tenant could not be read (Gamma)" in first and "--allow-incomplete" in first
    assert "| unread | ? | 1 | tenant could not be read" in md
    assert "- **Gamma**: could not be read" in md


def test_markdown_without_risks_says_so(plan: Plan) -> None:
    quiet = plan.model_copy(update={"items": tuple(i.model_copy(update={"risks": ()}) for i in plan.items)})
    md = render_markdown(quiet)
    assert "No high or medium risks" in md
    assert "| Severity |" not in md


def test_summary_line(plan: Plan) -> None:
    line = summary_line(plan)
    assert "\n" not in line
    assert line.startswith(
        "plan app-v2: 6 apps in 2 tenants: 3 update in 2 waves, 1 current, 1 drifted, 1 skip"
    )
    assert "risks: 1 high, 1 medium" in line and "1 note" in line and plan.digest[:19] in line


def test_table_leads_with_the_change_then_risks_then_apps(plan: Plan) -> None:
    sink = io.StringIO()
    render_table(plan, Console(file=sink, width=200, color_system=None))
    text = sink.getvalue()
    assert text.index("No longer denied") < text.index("Denied from now on") < text.index("Risks, by kind")
    assert text.index("Risks") < text.index("Not updated, by reason") < text.index("Apps by tenant")
    assert plan.digest in text
    assert text.index("widens-write") < text.index("widens-data") < text.index("widens-authorization")
    assert "Microsoft.Web/sites/write" in text and "note: tenant Gamma" in text
    for name in ("a1", "a2", "b1", "b2", "b3", "b4"):
        assert f" {name} " in text


def test_table_limit_summarises_the_rest(plan: Plan) -> None:
    sink = io.StringIO()
    render_table(plan, Console(file=sink, width=200, color_system=None), limit=2)
    text = sink.getvalue()
    apps_section = text[text.index("Apps by tenant") :]
    assert " b4 " not in apps_section and "4 more apps" in apps_section


def test_table_groups_updates_by_change_and_the_rest_by_reason(plan: Plan) -> None:
    sink = io.StringIO()
    render_table(plan, Console(file=sink, width=200, color_system=None), apps=False)
    text = sink.getvalue()
    assert "No longer denied" in text and "Not updated, by reason" in text and "Per tenant" in text
    assert "Apps by tenant" not in text and "orchestrator show PLAN" in text
    for item in plan.items:
        if item.decision == "update":
            for action in item.change.actions_added:
                assert action in text


def test_json_round_trips(plan: Plan) -> None:
    assert Plan.model_validate(json.loads(render_json(plan))) == plan


def test_example_plan_renders() -> None:
    example = read_plan(EXAMPLE)
    md = render_markdown(example)
    assert "`tightens`" in md and md.index("### Risks") < md.index("### Tenants")
    assert md.index("### No longer denied") < md.index("### Risks")
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action" in md
