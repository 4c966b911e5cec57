"""What a reviewer reads first about a plan, computed once for every format (terminal, Markdown, HTML).

The change (which actions are no longer denied and which are denied from now on, on how many apps and
tenants), the risks grouped by kind with counts, what is not updated and why, and the lead sentence.
Only `update` items count towards a change or a risk: skipped, current and drifted apps are not written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.models import Decision, Plan, PlanItem, Risk, Severity

SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
DECISION_ORDER = (Decision.UPDATE, Decision.CURRENT, Decision.DRIFTED, Decision.SKIP)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
        f"{plural(len(updates), 'app')} in {plural(tenants, 'tenant')} move to {plan.target.moves_to}"
        if updates
        else "Nothing is updated"
    )
    text += f"; {held} other app{'' if held == 1 else 's'} stay as they are." if held else "."
    unchanged = sum(1 for i in updates if i.change.empty)
    if unchanged:
        text += f" {plural(unchanged, 'update')} change no exclusion (the deny assignment is re-applied)."
    if plan.incomplete_tenants:
        text += (
            f" Incomplete: {plural(len(plan.incomplete_tenants), 'tenant')} could not be read "
            f"({', '.join(plan.incomplete_tenants)}); apply refuses this plan without --allow-incomplete."
        )
    return text


def examples(names: Sequence[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", … {len(names) - limit} more" if len(names) > limit else "")


def reason_summary(reason: str) -> str:
    """The part of a reason that many apps share: up to its first detail (':' or ' (')."""
    cut = [i for i in (reason.find(":"), reason.find(" (")) if i > 0]
    return reason[: min(cut)] if cut else reason
