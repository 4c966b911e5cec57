"""Review output for a plan: a terminal table, Markdown for a pull request, JSON for tools, one summary line.

Every format (and the HTML page) leads with the change a reviewer signs off: which actions are no longer
denied and which are denied from now on, on how many apps and tenants; then the risks grouped by kind
with counts; then what is not updated, by reason; then the plan's facts (full digest) and per-app detail.
Only `update` items show a change: skipped, current and drifted apps are not written.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.models import Decision, Plan, PlanItem, Severity
from orchestrator.render.plan_facts import (
    DECISION_ORDER,
    ActionRow,
    change_summary,
    examples,
    held_groups,
    lead_sentence,
    plural,
    risk_groups,
)

_DECISION_STYLE = {
    Decision.UPDATE: "bold cyan",
    Decision.CURRENT: "green",
    Decision.DRIFTED: "bold magenta",
    Decision.SKIP: "dim",
}
_DECISIONS = frozenset(d.value for d in Decision)
_SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "dim"}


# --- shared views ------------------------------------------------------------------------------------


def _target_text(plan: Plan) -> str:
    return f"{plan.target.moves_to} (lock level {plan.target.definition.lock_level})"


def _decision_counts(items: Iterable[PlanItem]) -> Counter[Decision]:
    return Counter(i.decision for i in items)


def _by_tenant(items: Iterable[PlanItem]) -> dict[tuple[str, str], list[PlanItem]]:
    # Items come from the planner already ordered by tenant name; keep that order.
    groups: dict[tuple[str, str], list[PlanItem]] = defaultdict(list)
    for item in items:
        groups[(item.tenant_name, item.tenant_id)].append(item)
    return dict(groups)


def _tenant_summary(items: Sequence[PlanItem]) -> str:
    counts = _decision_counts(items)
    parts = [plural(counts[Decision.UPDATE], "update")]
    parts += [f"{counts[d]} {d.value}" for d in DECISION_ORDER[1:] if counts[d]]
    return ", ".join(parts)


def _short_digest(plan: Plan) -> str:
    return plan.digest[:19] + "…" if plan.digest else "unsealed"


def summary_line(plan: Plan) -> str:
    """One line for `orchestrator plan` to print after writing the file."""
    counts = _decision_counts(plan.items)
    tenants = len({i.tenant_id.casefold() for i in plan.items})
    high = sum(1 for i in plan.items for r in i.risks if r.severity == Severity.HIGH)
    medium = sum(1 for i in plan.items for r in i.risks if r.severity == Severity.MEDIUM)
    waves = f" in {plural(len(plan.waves), 'wave')}" if plan.waves else ""
    risks = f"; risks: {high} high, {medium} medium" if high or medium else "; no high or medium risks"
    notes = f"; {plural(len(plan.notes), 'note')}" if plan.notes else ""
    return (
        f"plan {plan.target.name}: {plural(len(plan.items), 'app')} in {plural(tenants, 'tenant')}: "
        f"{counts[Decision.UPDATE]} update{waves}, {counts[Decision.CURRENT]} current, "
        f"{counts[Decision.DRIFTED]} drifted, {counts[Decision.SKIP]} skip{risks}{notes}; "
        f"digest {_short_digest(plan)}"
    )


# --- JSON ----------------------------------------------------------------------------------------------


def render_json(plan: Plan) -> str:
    """The plan as pretty-printed JSON (the same document `write_plan` stores)."""
    return json.dumps(plan.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


# --- Markdown --------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell (no pipes, no raw HTML, one line)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _md_code(patterns: Iterable[str], suffix: str = "") -> list[str]:
    return [f"`{p.replace('`', '')}`{suffix}".replace("|", "\\|") for p in patterns]


def _md_changes(item: PlanItem) -> tuple[str, str]:
    if item.decision != Decision.UPDATE:  # not written: no change to show
        return "", ""
    change = item.change
    added = _md_code(change.actions_added) + _md_code(change.data_actions_added, " (data)")
    removed = _md_code(change.actions_removed) + _md_code(change.data_actions_removed, " (data)")
    return "<br>".join(added), "<br>".join(removed)


def _md_actions(title: str, rows: Sequence[ActionRow], none: str) -> list[str]:
    out = [f"### {title}", ""]
    if not rows:
        return [*out, none, ""]
    out += ["| Action | Apps | Tenants |", "| --- | ---: | --- |"]
    out += [
        f"| {_md_code([r.action], ' (data)' if r.data else '')[0]} | {r.apps} "
        f"| {len(r.tenants)}: {_md(examples(r.tenants, 5))} |"
        for r in rows
    ]
    return [*out, ""]


def markdown_change_summary(plan: Plan) -> list[str]:
    """The lines a reviewer reads first: the lead sentence, then what is no longer / newly denied."""
    no_longer, from_now_on = change_summary(plan)
    return [
        _md(lead_sentence(plan)),
        "",
        *_md_actions("No longer denied", no_longer, "No action stops being denied."),
        *_md_actions("Denied from now on", from_now_on, "No action becomes denied."),
    ]


def render_markdown(plan: Plan) -> str:
    """Markdown for a pull request: the change first, risks by kind, what is not updated and why, the
    plan's facts, notes, then each tenant in a collapsible block."""
    out = [f"## Rollout plan: {_md(plan.target.name)}", "", *markdown_change_summary(plan)]
    out += [*_md_risks(plan), *_md_held(plan), *_md_facts(plan), *_md_tenants(plan)]
    return "\n".join(out).rstrip("\n") + "\n"


def _md_risks(plan: Plan) -> list[str]:
    out = ["### Risks, by kind", ""]
    risks = risk_groups(plan, (Severity.HIGH, Severity.MEDIUM))
    if risks:
        out += [
            "| Severity | Risk | Apps | Tenants | What it means | For example |",
            "| --- | --- | ---: | ---: | --- | --- |",
        ]
        out += [
            f"| {g.severity.value} | `{g.code}` | {g.apps} | {g.tenants} | {_md(g.message)} "
            f"| {_md(examples(g.examples))} |"
            for g in risks
        ]
    else:
        out.append("No high or medium risks: nothing widens writes, deletes or authorization, adds broad")
        out.append("wildcards or tightens an exclusion.")
    low = risk_groups(plan, (Severity.LOW,))
    if low:
        described = ", ".join(f"`{g.code}` on {plural(g.apps, 'app')}" for g in low)
        out += ["", f"Also low-severity: {described} (see the tenants below)."]
    return out


def _md_held(plan: Plan) -> list[str]:
    out = ["", "### Not updated, by reason", ""]
    held = held_groups(plan)
    if not held:
        return [*out, "Every app in the plan is updated."]
    out += ["| Decision | Apps | Tenants | Reason | For example |", "| --- | ---: | ---: | --- | --- |"]
    return out + [
        f"| {g.decision} | {'?' if g.apps is None else g.apps} | {g.tenants} | {_md(g.reason)} "
        f"| {_md(examples(g.examples))} |"
        for g in held
    ]


def _md_facts(plan: Plan) -> list[str]:
    """The plan's target, digest, creation, waves and counts; then its notes."""
    counts = _decision_counts(plan.items)
    out = [
        "",
        "### The plan",
        "",
        f"- **Target:** `{plan.target.moves_to}` (lock level {plan.target.definition.lock_level})",
        f"- **Digest** (sign against this): `{plan.digest or 'unsealed'}`",
        f"- **Created:** {plan.created_at.isoformat()} by orchestrator {_md(plan.tool_version)}",
    ]
    if plan.waves:
        out.append("- **Waves:** " + " → ".join(f"{_md(w.name)} ({len(w.app_ids)})" for w in plan.waves))
    out += [
        "",
        "| Apps | Tenants | Update | Current | Drifted | Skip |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {len(plan.items)} | {len(_by_tenant(plan.items))} | {counts[Decision.UPDATE]} "
        f"| {counts[Decision.CURRENT]} | {counts[Decision.DRIFTED]} | {counts[Decision.SKIP]} |",
    ]
    if plan.notes:
        out += ["", "### Notes", ""]
        out += [f"- {_md(note)}" for note in plan.notes]
    return out


def _md_tenants(plan: Plan) -> list[str]:
    """Each tenant in a collapsible block, one row per app; then the tenants that could not be read."""
    tenants = _by_tenant(plan.items)
    waves = plan.wave_names()
    out = ["", "### Tenants", ""]
    if not tenants and not plan.incomplete_tenants:
        out.append("The plan has no apps.")
    for (tenant_name, tenant_id), items in tenants.items():
        out += [
            f"<details><summary>{html.escape(tenant_name)} ({_tenant_summary(items)})</summary>",
            "",
            f"Tenant `{_md(tenant_id)}`",
            "",
            "| App | Decision | Wave | No longer denied | Denied from now on | Risks | Reason |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for item in items:
            added, removed = _md_changes(item)
            wave = waves.get(item.wave, "") if item.wave is not None else ""
            item_risks = (
                ", ".join(f"`{r.code}` ({r.severity.value})" for r in item.risks)
                if item.decision == Decision.UPDATE
                else ""
            )
            out.append(
                f"| {_md(item.app_name)} | {item.decision.value} | {_md(wave)} | {added} | {removed} "
                f"| {item_risks} | {_md(item.reason)} |"
            )
        out += ["", "</details>", ""]
    out += [
        f"- **{_md(name)}**: could not be read; its apps are not in this plan."
        for name in plan.incomplete_tenants
    ]
    return out


# --- terminal table ------------------------------------------------------------------------------------


def _changes_text(item: PlanItem) -> tuple[Text, Text]:
    if item.decision != Decision.UPDATE:  # not written: no change to show
        return Text(), Text()
    change = item.change
    added = Text("\n".join([*change.actions_added, *(f"{a} (data)" for a in change.data_actions_added)]))
    removed = Text(
        "\n".join([*change.actions_removed, *(f"{a} (data)" for a in change.data_actions_removed)])
    )
    added.stylize("green")
    removed.stylize("red")
    return added, removed


def _actions_table(title: str, rows: Sequence[ActionRow], style: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("action", overflow="fold", style=style)
    table.add_column("apps", justify="right")
    table.add_column("tenants", overflow="fold")
    for row in rows:
        table.add_row(row.label, str(row.apps), f"{len(row.tenants)}: {examples(row.tenants, 5)}")
    return table


def render_change(plan: Plan, console: Console) -> None:
    """What a reviewer reads first on a terminal: the change, risks by kind, and what is not updated."""
    console.print(Text(f"Rollout plan: {plan.target.name}", style="bold"), soft_wrap=True)
    console.print(Text(lead_sentence(plan)), soft_wrap=True)
    no_longer, from_now_on = change_summary(plan)
    for title, rows, style, none in (
        ("No longer denied", no_longer, "green", "No action stops being denied."),
        ("Denied from now on", from_now_on, "red", "No action becomes denied."),
    ):
        if rows:
            console.print(_actions_table(title, rows, style))
        else:
            console.print(Text(f"{title}: none. {none}", style="dim"))

    risks = risk_groups(plan, (Severity.HIGH, Severity.MEDIUM, Severity.LOW))
    if risks:
        table = Table(title="Risks, by kind", title_justify="left")
        for column in ("severity", "risk", "apps", "tenants", "what it means", "for example"):
            table.add_column(
                column, overflow="fold", justify="right" if column in ("apps", "tenants") else "left"
            )
        for group in risks:
            table.add_row(
                Text(group.severity.value, style=_SEVERITY_STYLE[group.severity]),
                group.code,
                str(group.apps),
                str(group.tenants),
                group.message,
                examples(group.examples),
            )
        console.print(table)
    else:
        console.print(Text("No risks flagged.", style="green"))

    held = held_groups(plan)
    if held:
        table = Table(title="Not updated, by reason", title_justify="left")
        for column in ("decision", "apps", "tenants", "reason", "for example"):
            table.add_column(column, overflow="fold")
        for kept in held:
            style = (
                _DECISION_STYLE.get(Decision(kept.decision), "")
                if kept.decision in _DECISIONS
                else "bold red"
            )
            table.add_row(
                Text(kept.decision, style=style),
                "?" if kept.apps is None else str(kept.apps),
                str(kept.tenants),
                kept.reason,
                examples(kept.examples),
            )
        console.print(table)


def _render_tenants(plan: Plan, console: Console) -> None:
    tenants = _by_tenant(plan.items)
    waves = plan.wave_names()
    table = Table(title="Per tenant", title_justify="left")
    for column in ("tenant", *(d.value for d in DECISION_ORDER), "waves"):
        table.add_column(column, overflow="fold")
    for (tenant_name, _), items in tenants.items():
        counts = _decision_counts(items)
        in_waves = sorted({i.wave for i in items if i.wave is not None})
        table.add_row(
            tenant_name,
            *(Text(str(counts[d]) if counts[d] else "·", style=_DECISION_STYLE[d]) for d in DECISION_ORDER),
            ", ".join(waves.get(w, str(w)) for w in in_waves),
        )
    for name in plan.incomplete_tenants:
        unknown = [Text("?", style="bold red")] * len(DECISION_ORDER)
        table.add_row(
            name, *unknown, Text("could not be read: its apps are not in this plan", style="bold red")
        )
    console.print(table)


def render_table(plan: Plan, console: Console, *, apps: bool = True, limit: int | None = None) -> None:
    """Print the plan for a terminal: the change, risks by kind, what is not updated; then the plan's
    facts (full digest), notes, per-tenant counts, and (with `apps`) one row per app.

    `limit` caps the per-app rows (the rest is summarised); risks are always printed in full.
    """
    counts = _decision_counts(plan.items)
    render_change(plan, console)
    header = [
        f"target  {_target_text(plan)}",
        f"digest  {plan.digest or 'unsealed'}",
        f"created {plan.created_at.isoformat()} by orchestrator {plan.tool_version}",
    ]
    if plan.waves:
        header.append("waves   " + " → ".join(f"{w.name} ({len(w.app_ids)})" for w in plan.waves))
    for line in header:  # long ids stay whole so they can be copied
        console.print(Text(line), soft_wrap=True)

    summary = Table(title="Decisions", title_justify="left")
    for column in ("apps", "tenants", *(d.value for d in DECISION_ORDER)):
        summary.add_column(column, justify="right")
    summary.add_row(
        str(len(plan.items)),
        str(len(_by_tenant(plan.items))),
        *(Text(str(counts[d]), style=_DECISION_STYLE[d]) for d in DECISION_ORDER),
    )
    console.print(summary)
    for note in plan.notes:
        console.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)
    _render_tenants(plan, console)
    if apps:
        _render_apps(plan, console, limit)
    else:
        hint = "Every app with its reason: `orchestrator show PLAN` (or --format markdown|html)."
        console.print(Text(hint, style="dim"))


def _render_apps(plan: Plan, console: Console, limit: int | None) -> None:
    """One row per app, tenant by tenant, at most `limit` of them (then how many more there are)."""
    waves = plan.wave_names()
    table = Table(title="Apps by tenant", title_justify="left", show_lines=False)
    for column in ("tenant", "app", "decision", "wave", "no longer denied", "denied from now on", "reason"):
        table.add_column(column, overflow="fold")
    shown = 0
    for (tenant_name, _), items in _by_tenant(plan.items).items():
        for index, item in enumerate(items):
            if limit is not None and shown >= limit:
                break
            added, removed = _changes_text(item)
            table.add_row(
                tenant_name if index == 0 else "",
                item.app_name,
                Text(item.decision.value, style=_DECISION_STYLE[item.decision]),
                waves.get(item.wave, "") if item.wave is not None else "",
                added,
                removed,
                item.reason,
                end_section=index == len(items) - 1,
            )
            shown += 1
    console.print(table)
    if limit is not None and len(plan.items) > shown:
        more = f"… {len(plan.items) - shown} more apps: see `orchestrator show PLAN --format markdown`"
        console.print(Text(more, style="dim"))
