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
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.models import Decision, Plan, PlanItem, Risk, Severity

SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
DECISION_ORDER = (Decision.UPDATE, Decision.CURRENT, Decision.DRIFTED, Decision.SKIP)
_DECISION_STYLE = {
    Decision.UPDATE: "bold cyan",
    Decision.CURRENT: "green",
    Decision.DRIFTED: "bold magenta",
    Decision.SKIP: "dim",
}
_DECISIONS = frozenset(d.value for d in Decision)
_SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "dim"}


# --- shared views ------------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _moves_to(plan: Plan) -> str:
    return plan.target.moves_to


def _target_text(plan: Plan) -> str:
    return f"{_moves_to(plan)} (lock level {plan.target.definition.lock_level})"


def _decision_counts(items: Iterable[PlanItem]) -> Counter[Decision]:
    return Counter(i.decision for i in items)


def _review_risks(plan: Plan, severities: Sequence[Severity]) -> list[tuple[Risk, PlanItem]]:
    """(risk, item) pairs of the given severities, most severe first, then by code, tenant and app."""
    rows = [(r, i) for i in plan.items for r in i.risks if r.severity in severities]
    rows.sort(
        key=lambda ri: (
            SEVERITY_ORDER[ri[0].severity],
            ri[0].code,
            ri[1].tenant_name.casefold(),
            ri[1].app_name,
        )
    )
    return rows


def _by_tenant(items: Iterable[PlanItem]) -> dict[tuple[str, str], list[PlanItem]]:
    # Items come from the planner already ordered by tenant name; keep that order.
    groups: dict[tuple[str, str], list[PlanItem]] = defaultdict(list)
    for item in items:
        groups[(item.tenant_name, item.tenant_id)].append(item)
    return dict(groups)


def _wave_names(plan: Plan) -> dict[int, str]:
    return {w.index: w.name for w in plan.waves}


def _tenant_summary(items: Sequence[PlanItem]) -> str:
    counts = _decision_counts(items)
    parts = [_plural(counts[Decision.UPDATE], "update")]
    parts += [f"{counts[d]} {d.value}" for d in DECISION_ORDER[1:] if counts[d]]
    return ", ".join(parts)


@dataclass(frozen=True)
class ActionRow:
    """One action (or data action) the plan stops or starts denying, and where."""

    action: str
    data: bool
    apps: int
    tenants: tuple[str, ...]  # tenant names, sorted

    @property
    def label(self) -> str:
        return f"{self.action} (data)" if self.data else self.action


@dataclass(frozen=True)
class RiskGroup:
    severity: Severity
    code: str
    apps: int
    tenants: int
    message: str  # the wording the apps share, or the first one and how many others differ
    examples: tuple[str, ...]  # app names


@dataclass(frozen=True)
class HeldGroup:
    """Apps the plan does not update, grouped by decision and the shared part of the reason."""

    decision: str  # a Decision value, or "unread" for a tenant that could not be read
    reason: str
    apps: int | None  # None: unknown (the tenant could not be read)
    tenants: int
    examples: tuple[str, ...]


def _action_rows(updates: Sequence[PlanItem], pick: str) -> list[ActionRow]:
    found: dict[tuple[str, bool], tuple[str, set[str], set[str]]] = {}
    for item in updates:
        change = item.change
        pairs = (
            (change.actions_added, change.data_actions_added)
            if pick == "added"
            else (change.actions_removed, change.data_actions_removed)
        )
        for data, actions in ((False, pairs[0]), (True, pairs[1])):
            for action in actions:
                key = (action.casefold(), data)
                _, apps, tenants = found.setdefault(key, (action, set(), set()))
                apps.add(item.app_id.casefold())
                tenants.add(item.tenant_name or item.tenant_id)
    rows = [
        ActionRow(shown, data, len(apps), tuple(sorted(tenants, key=str.casefold)))
        for (_, data), (shown, apps, tenants) in found.items()
    ]
    return sorted(rows, key=lambda r: (-r.apps, r.data, r.action.casefold()))


def change_summary(plan: Plan) -> tuple[list[ActionRow], list[ActionRow]]:
    """(no longer denied, denied from now on), over the apps the plan updates only.

    An exclusion added to the deny assignment is an action no longer denied; one removed is denied
    from now on.
    """
    updates = [i for i in plan.items if i.decision == Decision.UPDATE]
    return _action_rows(updates, "added"), _action_rows(updates, "removed")


def risk_groups(plan: Plan, severities: Sequence[Severity]) -> list[RiskGroup]:
    """The risks of the updates, one row per (severity, kind), most severe and most apps first."""
    groups: dict[tuple[Severity, str], list[tuple[Risk, PlanItem]]] = defaultdict(list)
    for item in plan.items:
        if item.decision != Decision.UPDATE:
            continue
        for risk in item.risks:
            if risk.severity in severities:
                groups[(risk.severity, risk.code)].append((risk, item))
    out = []
    for (severity, code), pairs in groups.items():
        wordings = list(dict.fromkeys(r.message for r, _ in pairs))
        message = wordings[0] + (
            f" (and {len(wordings) - 1} other wording{'s' if len(wordings) > 2 else ''})"
            if len(wordings) > 1
            else ""
        )
        out.append(
            RiskGroup(
                severity=severity,
                code=code,
                apps=len({i.app_id.casefold() for _, i in pairs}),
                tenants=len({i.tenant_id.casefold() for _, i in pairs}),
                message=message,
                examples=tuple(dict.fromkeys(i.app_name for _, i in pairs)),
            )
        )
    return sorted(out, key=lambda g: (SEVERITY_ORDER[g.severity], -g.apps, g.code))


def held_groups(plan: Plan) -> list[HeldGroup]:
    """What is not updated and why: one row per decision and shared reason, then unread tenants."""
    held: dict[tuple[Decision, str], list[PlanItem]] = defaultdict(list)
    for item in plan.items:
        if item.decision != Decision.UPDATE:
            held[(item.decision, reason_summary(item.reason))].append(item)
    rows = [
        HeldGroup(
            decision=decision.value,
            reason=reason,
            apps=len(items),
            tenants=len({i.tenant_id.casefold() for i in items}),
            examples=tuple(i.app_name for i in items),
        )
        for (decision, reason), items in sorted(
            held.items(), key=lambda kv: (DECISION_ORDER.index(kv[0][0]), -len(kv[1]), kv[0][1])
        )
    ]
    if plan.incomplete_tenants:
        rows.append(
            HeldGroup(
                decision="unread",
                reason="tenant could not be read: its apps are not in this plan",
                apps=None,
                tenants=len(plan.incomplete_tenants),
                examples=plan.incomplete_tenants,
            )
        )
    return rows


def lead_sentence(plan: Plan) -> str:
    """The one sentence a reviewer reads first: how many apps in how many tenants move to what."""
    updates = [i for i in plan.items if i.decision == Decision.UPDATE]
    tenants = len({i.tenant_id.casefold() for i in updates})
    held = len(plan.items) - len(updates)
    text = (
        f"{_plural(len(updates), 'app')} in {_plural(tenants, 'tenant')} move to {_moves_to(plan)}"
        if updates
        else "Nothing is updated"
    )
    text += f"; {held} other app{'' if held == 1 else 's'} stay as they are." if held else "."
    unchanged = sum(1 for i in updates if i.change.empty)
    if unchanged:
        text += f" {_plural(unchanged, 'update')} change no exclusion (the deny assignment is re-applied)."
    if plan.incomplete_tenants:
        text += (
            f" Incomplete: {_plural(len(plan.incomplete_tenants), 'tenant')} could not be read "
            f"({', '.join(plan.incomplete_tenants)}); apply refuses this plan without --allow-incomplete."
        )
    return text


def examples(names: Sequence[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", … {len(names) - limit} more" if len(names) > limit else "")


def _short_digest(plan: Plan) -> str:
    return plan.digest[:19] + "…" if plan.digest else "unsealed"


def summary_line(plan: Plan) -> str:
    """One line for `orchestrator plan` to print after writing the file."""
    counts = _decision_counts(plan.items)
    tenants = len({i.tenant_id.casefold() for i in plan.items})
    high = sum(1 for i in plan.items for r in i.risks if r.severity == Severity.HIGH)
    medium = sum(1 for i in plan.items for r in i.risks if r.severity == Severity.MEDIUM)
    waves = f" in {_plural(len(plan.waves), 'wave')}" if plan.waves else ""
    risks = f"; risks: {high} high, {medium} medium" if high or medium else "; no high or medium risks"
    notes = f"; {_plural(len(plan.notes), 'note')}" if plan.notes else ""
    return (
        f"plan {plan.target.name}: {_plural(len(plan.items), 'app')} in {_plural(tenants, 'tenant')}: "
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
    counts = _decision_counts(plan.items)
    tenants = _by_tenant(plan.items)
    waves = _wave_names(plan)
    out: list[str] = [f"## Rollout plan: {_md(plan.target.name)}", "", *markdown_change_summary(plan)]
    out += ["### Risks, by kind", ""]
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
        described = ", ".join(f"`{g.code}` on {_plural(g.apps, 'app')}" for g in low)
        out += ["", f"Also low-severity: {described} (see the tenants below)."]
    out += ["", "### Not updated, by reason", ""]
    held = held_groups(plan)
    if held:
        out += ["| Decision | Apps | Tenants | Reason | For example |", "| --- | ---: | ---: | --- | --- |"]
        out += [
            f"| {g.decision} | {'?' if g.apps is None else g.apps} | {g.tenants} | {_md(g.reason)} "
            f"| {_md(examples(g.examples))} |"
            for g in held
        ]
    else:
        out.append("Every app in the plan is updated.")
    out += [
        "",
        "### The plan",
        "",
        f"- **Target:** `{_moves_to(plan)}` (lock level {plan.target.definition.lock_level})",
        f"- **Digest** (sign against this): `{plan.digest or 'unsealed'}`",
        f"- **Created:** {plan.created_at.isoformat()} by orchestrator {_md(plan.tool_version)}",
    ]
    if plan.waves:
        out.append("- **Waves:** " + " → ".join(f"{_md(w.name)} ({len(w.app_ids)})" for w in plan.waves))
    out += [
        "",
        "| Apps | Tenants | Update | Current | Drifted | Skip |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {len(plan.items)} | {len(tenants)} | {counts[Decision.UPDATE]} | {counts[Decision.CURRENT]} "
        f"| {counts[Decision.DRIFTED]} | {counts[Decision.SKIP]} |",
    ]
    if plan.notes:
        out += ["", "### Notes", ""]
        out += [f"- {_md(note)}" for note in plan.notes]
    out += ["", "### Tenants", ""]
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
    for name in plan.incomplete_tenants:
        out.append(f"- **{_md(name)}**: could not be read; its apps are not in this plan.")
    return "\n".join(out).rstrip("\n") + "\n"


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


def reason_summary(reason: str) -> str:
    """The part of a reason that many apps share: up to its first detail (':' or ' (')."""
    cut = [i for i in (reason.find(":"), reason.find(" (")) if i > 0]
    return reason[: min(cut)] if cut else reason


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
    waves = _wave_names(plan)
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
    tenants = _by_tenant(plan.items)
    waves = _wave_names(plan)
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
        str(len(tenants)),
        *(Text(str(counts[d]), style=_DECISION_STYLE[d]) for d in DECISION_ORDER),
    )
    console.print(summary)
    for note in plan.notes:
        console.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)
    _render_tenants(plan, console)
    if not apps:
        hint = "Every app with its reason: `orchestrator show PLAN` (or --format markdown|html)."
        console.print(Text(hint, style="dim"))
        return

    table = Table(title="Apps by tenant", title_justify="left", show_lines=False)
    for column in ("tenant", "app", "decision", "wave", "no longer denied", "denied from now on", "reason"):
        table.add_column(column, overflow="fold")
    shown = 0
    for (tenant_name, _), items in tenants.items():
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
        console.print(
            Text(
                f"… {len(plan.items) - shown} more apps: see `orchestrator show PLAN --format markdown`",
                style="dim",
            )
        )
