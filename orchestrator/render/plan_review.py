"""Review output for a plan: a terminal table, Markdown for a pull request, JSON for tools, one summary line.

Every format puts what a reviewer must not miss first: the counts, then the risks (high and medium,
each with the app and tenant), then plan-level notes, then the apps per tenant.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

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
    change = item.change
    added = _md_code(change.actions_added) + _md_code(change.data_actions_added, " (data)")
    removed = _md_code(change.actions_removed) + _md_code(change.data_actions_removed, " (data)")
    return "<br>".join(added), "<br>".join(removed)


def render_markdown(plan: Plan) -> str:
    """Markdown for a pull request: counts, risks first, notes, then each tenant in a collapsible block."""
    counts = _decision_counts(plan.items)
    tenants = _by_tenant(plan.items)
    waves = _wave_names(plan)
    out: list[str] = [
        f"## Rollout plan: {_md(plan.target.name)}",
        "",
        f"- **Target:** `{_moves_to(plan)}` (lock level {plan.target.definition.lock_level})",
        f"- **Digest:** `{plan.digest or 'unsealed'}`",
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
        "",
        "### Risks",
        "",
    ]
    risks = _review_risks(plan, (Severity.HIGH, Severity.MEDIUM))
    if risks:
        totals = Counter((r.severity, r.code) for r, _ in risks)
        out.append(
            ", ".join(
                f"**{n}× {sev.value}** `{code}`"
                for (sev, code), n in sorted(
                    totals.items(), key=lambda kv: (SEVERITY_ORDER[kv[0][0]], kv[0][1])
                )
            )
        )
        out += ["", "| Severity | Risk | Tenant | App | What it means |", "| --- | --- | --- | --- | --- |"]
        out += [
            f"| {r.severity.value} | `{r.code}` | {_md(i.tenant_name)} | {_md(i.app_name)} "
            f"| {_md(r.message)} |"
            for r, i in risks
        ]
    else:
        out.append("No high or medium risks: nothing widens writes, deletes or authorization, adds broad")
        out.append("wildcards or tightens an exclusion.")
    low = _review_risks(plan, (Severity.LOW,))
    if low:
        out += ["", f"Also {_plural(len(low), 'low-severity risk')} (see the tenants below)."]
    if plan.notes:
        out += ["", "### Notes", ""]
        out += [f"- {_md(note)}" for note in plan.notes]
    out += ["", "### Tenants", ""]
    if not tenants:
        out.append("The plan has no apps.")
    for (tenant_name, tenant_id), items in tenants.items():
        out += [
            f"<details><summary>{html.escape(tenant_name)} ({_tenant_summary(items)})</summary>",
            "",
            f"Tenant `{_md(tenant_id)}`",
            "",
            "| App | Decision | Wave | Exclusions added | Exclusions removed | Risks | Reason |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for item in items:
            added, removed = _md_changes(item)
            wave = waves.get(item.wave, "") if item.wave is not None else ""
            item_risks = ", ".join(f"`{r.code}` ({r.severity.value})" for r in item.risks)
            out.append(
                f"| {_md(item.app_name)} | {item.decision.value} | {_md(wave)} | {added} | {removed} "
                f"| {item_risks} | {_md(item.reason)} |"
            )
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --- terminal table ------------------------------------------------------------------------------------


def _changes_text(item: PlanItem) -> tuple[Text, Text]:
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


def _sample_names(items: Sequence[PlanItem], limit: int = 3) -> str:
    names = [i.app_name for i in items[:limit]]
    return ", ".join(names) + (f", … {len(items) - limit} more" if len(items) > limit else "")


def _render_groups(plan: Plan, console: Console) -> None:
    """What a reviewer reads first on a terminal: the distinct changes, tenants, and why not."""
    changes: dict[tuple[tuple[str, ...], ...], list[PlanItem]] = defaultdict(list)
    for item in plan.items:
        if item.decision == Decision.UPDATE:
            c = item.change
            key = (c.actions_added, c.actions_removed, c.data_actions_added, c.data_actions_removed)
            changes[key].append(item)
    if changes:
        table = Table(title="What changes (updates, grouped by change)", title_justify="left")
        table.add_column("apps", justify="right")
        table.add_column("tenants", justify="right")
        table.add_column("change to the deny assignment's exclusions", overflow="fold")
        for (added, removed, data_added, data_removed), items in sorted(
            changes.items(), key=lambda kv: -len(kv[1])
        ):
            lines = Text()
            for action in added:
                lines.append(f"+ {action}\n", style="green")
            for action in data_added:
                lines.append(f"+ {action} (data)\n", style="green")
            for action in removed:
                lines.append(f"- {action}\n", style="red")
            for action in data_removed:
                lines.append(f"- {action} (data)\n", style="red")
            if not lines.plain:
                lines.append("(none: re-apply to repair the deny assignment)", style="dim")
            lines.rstrip()
            table.add_row(str(len(items)), str(len({i.tenant_id for i in items})), lines)
        console.print(table)

    held: dict[tuple[Decision, str], list[PlanItem]] = defaultdict(list)
    for item in plan.items:
        if item.decision != Decision.UPDATE:
            held[(item.decision, reason_summary(item.reason))].append(item)
    if held:
        table = Table(title="Not updated, by reason", title_justify="left")
        for column in ("decision", "apps", "reason", "for example"):
            table.add_column(column, overflow="fold")
        for (decision, reason), items in sorted(held.items(), key=lambda kv: (kv[0][0].value, -len(kv[1]))):
            table.add_row(
                Text(decision.value, style=_DECISION_STYLE[decision]),
                str(len(items)),
                reason,
                _sample_names(items),
            )
        console.print(table)

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
    console.print(table)


def render_table(plan: Plan, console: Console, *, apps: bool = True, limit: int | None = None) -> None:
    """Print the plan for a terminal: counts, risks first, notes, the grouped changes and reasons,
    per-tenant counts, then (with `apps`) one row per app.

    `limit` caps the per-app rows (the rest is summarised); risks are always printed in full.
    """
    counts = _decision_counts(plan.items)
    tenants = _by_tenant(plan.items)
    waves = _wave_names(plan)
    header = [
        f"target  {_target_text(plan)}",
        f"digest  {plan.digest or 'unsealed'}",
        f"created {plan.created_at.isoformat()} by orchestrator {plan.tool_version}",
    ]
    if plan.waves:
        header.append("waves   " + " → ".join(f"{w.name} ({len(w.app_ids)})" for w in plan.waves))
    console.print(Text(f"Rollout plan: {plan.target.name}", style="bold"))
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

    risks = _review_risks(plan, (Severity.HIGH, Severity.MEDIUM, Severity.LOW))
    if risks:
        table = Table(title="Risks", title_justify="left")
        for column in ("severity", "risk", "tenant", "app", "what it means"):
            table.add_column(column, overflow="fold")
        for risk, item in risks:
            table.add_row(
                Text(risk.severity.value, style=_SEVERITY_STYLE[risk.severity]),
                risk.code,
                item.tenant_name,
                item.app_name,
                risk.message,
            )
        console.print(table)
    else:
        console.print(Text("No risks flagged.", style="green"))
    for note in plan.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    _render_groups(plan, console)
    if not apps:
        hint = "Every app with its reason: `orchestrator show PLAN` (or --format markdown|html)."
        console.print(Text(hint, style="dim"))
        return

    table = Table(title="Apps by tenant", title_justify="left", show_lines=False)
    for column in ("tenant", "app", "decision", "wave", "added", "removed", "reason"):
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
