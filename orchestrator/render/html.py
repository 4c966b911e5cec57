"""Self-contained HTML pages for a plan and for a run: for people who will not read JSON.

One file each, inline CSS and inline SVG, no script and no resource fetched at view time, so a page
can be mailed, attached to a change ticket or opened offline. This module shapes the facts; the
templates in render/templates lay them out, and `templating` escapes every value they print (app and
tenant names come from customers' subscriptions and are not trusted). The page's generation time is
given by the caller: the same input renders to the same bytes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from orchestrator.models import (
    TERMINAL_APP_STATES,
    AppState,
    AppStatusView,
    Decision,
    Plan,
    PlanItem,
    RunState,
    RunView,
    Severity,
)
from orchestrator.render.plan_facts import (
    change_summary,
    examples,
    held_groups,
    lead_sentence,
    risk_groups,
)
from orchestrator.render.templating import template, utc, when

DECISION_COLOURS: dict[str, str] = {
    Decision.UPDATE: "#2563eb",
    Decision.CURRENT: "#16a34a",
    Decision.DRIFTED: "#ea580c",
    Decision.SKIP: "#94a3b8",
}
STATE_COLOURS: dict[str, str] = {
    AppState.PENDING: "#cbd5e1",
    AppState.SUBMITTED: "#60a5fa",
    AppState.VERIFYING: "#a78bfa",
    AppState.SUCCEEDED: "#16a34a",
    AppState.UNVERIFIED: "#d97706",
    AppState.FAILED: "#dc2626",
    AppState.STALE: "#ea580c",
    AppState.SKIPPED: "#94a3b8",
    AppState.CURRENT: "#86efac",
    AppState.DRIFTED: "#c084fc",
    AppState.HALTED: "#475569",
    AppState.ROLLED_BACK: "#0891b2",
    AppState.AWAITING_CUSTOMER: "#7c3aed",
}
RUN_STATE_COLOURS: dict[str, str] = {
    RunState.RUNNING: "#2563eb",
    RunState.COMPLETED: "#16a34a",
    RunState.HALTED: "#dc2626",
    RunState.WAITING: "#d97706",
    RunState.INTERRUPTED: "#475569",
}
SEVERITY_COLOURS: dict[str, str] = {
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#d97706",
    Severity.LOW: "#64748b",
}
_PROBLEM_STATES = (AppState.FAILED, AppState.UNVERIFIED, AppState.STALE, AppState.HALTED)

_Row = TypeVar("_Row", PlanItem, AppStatusView)


@dataclass(frozen=True)
class _TenantRow:
    """One tenant in the grid: its name and counts, then one coloured square per app."""

    tenant_id: str
    name: str
    summary: str
    cells: tuple[tuple[str, str], ...]  # (colour, tooltip)


@dataclass(frozen=True)
class _Bar:
    x: float
    y: int
    width: float
    colour: str
    title: str


@dataclass(frozen=True)
class _Band:
    """One wave in the timeline: its label, size and time taken, and its apps' bars."""

    y: int
    height: int
    label: str
    apps: int
    took: str
    bars: tuple[_Bar, ...]


@dataclass(frozen=True)
class _Timeline:
    width: int
    left: int
    plot: int
    bar: int
    height: int
    bottom: int
    ticks: tuple[tuple[float, str], ...]  # (x, label)
    bands: tuple[_Band, ...]
    start: str
    took: str


def render_plan_html(plan: Plan, *, generated_at: datetime) -> str:
    """A reviewer's page for a saved plan: counts, risks, the per-tenant grid, waves and every change."""
    decisions = Counter(item.decision.value for item in plan.items)
    tenants = _tenants_of(plan.items)
    cards = [
        ("apps", len(plan.items), "#0f172a"),
        ("tenants", len(tenants), "#0f172a"),
        *((d.value, decisions.get(d.value, 0), DECISION_COLOURS[d]) for d in Decision),
    ]
    no_longer, from_now_on = change_summary(plan)
    return template("plan.html").render(
        title=f"Rollout plan: {plan.target.name}",
        meta={
            "target": plan.target.name,
            "moves to": plan.target.moves_to,
            "created": when(plan.created_at),
            "digest": plan.digest or "unsaved",
            "tool": plan.tool_version,
        },
        generated_at=generated_at,
        plan=plan,
        lead=lead_sentence(plan),
        changes=(
            ("No longer denied", no_longer, "add", "No action stops being denied."),
            ("Denied from now on", from_now_on, "rem", "No action becomes denied."),
        ),
        risks=risk_groups(plan, (Severity.HIGH, Severity.MEDIUM, Severity.LOW)),
        held=held_groups(plan),
        examples=examples,
        cards=cards,
        legend=DECISION_COLOURS,
        grid=_grid(
            tenants,
            colour=lambda item: DECISION_COLOURS.get(item.decision.value, "#94a3b8"),
            label=lambda item: item.decision.value,
            tip=lambda item: f"{item.app_name}: {item.decision.value} ({item.reason})",
        ),
        waves=_plan_waves(plan),
        tenants=_by_tenant(tenants, lambda i: i.decision.value),
        wave_names=plan.wave_names(),
        colours=DECISION_COLOURS,
        severity_colours=SEVERITY_COLOURS,
        update=Decision.UPDATE,
    )


def render_run_html(
    run: RunView, *, generated_at: datetime, wave_names: Mapping[int, str] | None = None
) -> str:
    """An operator's page for a run: counts by state, problems, the per-tenant grid, the waves over time."""
    names = dict(wave_names or {})
    states = Counter(a.state.value for a in run.apps)
    tenants = _tenants_of(run.apps)
    cards = [("apps", len(run.apps), "#0f172a"), ("tenants", len(tenants), "#0f172a")]
    cards += [(s.value, states[s.value], STATE_COLOURS[s]) for s in AppState if states[s.value]]
    meta = {
        "run": run.run_id,
        "kind": run.kind,
        "target": run.target_name,
        "started": when(run.started_at),
        "updated": when(run.updated_at),
        "plan": run.plan_digest,
    }
    if run.plan_path:
        meta["plan file"] = run.plan_path
    problems = sorted(
        (a for a in run.apps if a.state in _PROBLEM_STATES),
        key=lambda a: (_PROBLEM_STATES.index(a.state), a.tenant_name, a.app_name),
    )
    return template("run.html").render(
        title=f"Rollout run {run.run_id}: {run.target_name}",
        meta=meta,
        generated_at=generated_at,
        run_state=(run.state.value, RUN_STATE_COLOURS.get(run.state.value, "#475569")),
        cards=cards,
        problems=problems,
        pending=sum(1 for a in run.apps if a.state == AppState.PENDING),
        legend=STATE_COLOURS,
        grid=_grid(
            tenants,
            colour=lambda a: STATE_COLOURS.get(a.state.value, "#94a3b8"),
            label=lambda a: a.state.value,
            tip=lambda a: f"{a.app_name}: {a.state.value}" + (f" ({a.error_code})" if a.error_code else ""),
        ),
        timeline=_timeline(run, names),
        tenants=_by_tenant(tenants, lambda a: a.state.value),
        wave_label=lambda wave: _wave_label(wave, names),
        colours=STATE_COLOURS,
    )


# ---- shaping the facts ----------------------------------------------------------------------------


def _plan_waves(plan: Plan) -> list[tuple[int, str, int, int, int, float]]:
    """(index, name, apps, tenants, apps with risks, share of all waved apps in %) per wave."""
    by_id = {item.app_id: item for item in plan.items}
    total = max(1, sum(len(w.app_ids) for w in plan.waves))
    rows = []
    for wave in plan.waves:
        apps = [by_id[a] for a in wave.app_ids if a in by_id]
        tenant_count = len({a.tenant_id.lower() for a in apps})
        risky = sum(1 for a in apps if a.risks)
        rows.append(
            (wave.index, wave.name, len(wave.app_ids), tenant_count, risky, 100 * len(wave.app_ids) / total)
        )
    return rows


def _tenants_of(items: Iterable[_Row]) -> dict[tuple[str, str], list[_Row]]:
    grouped: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for item in items:
        grouped[(item.tenant_id.lower(), item.tenant_name or item.tenant_id)].append(item)
    return dict(sorted(grouped.items(), key=lambda kv: (kv[0][1].lower(), kv[0][0])))


def _by_tenant(
    tenants: Mapping[tuple[str, str], list[_Row]], label: Callable[[_Row], str]
) -> list[tuple[str, str, list[_Row]]]:
    """(tenant name, "n label, ..." counts, rows) per tenant, for the "Every app" blocks."""
    return [(name, _counts(rows, label, ", "), rows) for (_, name), rows in tenants.items()]


def _counts(rows: Iterable[_Row], label: Callable[[_Row], str], separator: str) -> str:
    """ "3 failed, 5 succeeded": how many rows carry each label, labels in order."""
    counts = Counter(label(r) for r in rows)
    return separator.join(f"{n} {k}" for k, n in sorted(counts.items()))


def _grid(
    tenants: Mapping[tuple[str, str], list[_Row]],
    *,
    colour: Callable[[_Row], str],
    label: Callable[[_Row], str],
    tip: Callable[[_Row], str],
) -> list[_TenantRow]:
    rows = []
    for (tenant_id, tenant_name), items in tenants.items():
        cells = tuple((colour(i), tip(i)) for i in sorted(items, key=lambda i: (label(i), i.app_name)))
        rows.append(_TenantRow(tenant_id, tenant_name, _counts(items, label, " · "), cells))
    return rows


# ---- the timeline ---------------------------------------------------------------------------------

_TL_LEFT = 120  # room for wave labels
_TL_WIDTH = 1100
_TL_PLOT = _TL_WIDTH - _TL_LEFT - 20
_TL_BAR = 6
_TL_GAP = 2
_TL_MAX_LANES = 16  # per wave; more concurrent apps than this share the last lane
# Readable tick spacings in seconds, then minutes: the first giving at most 12 ticks is used.
_TICK_STEPS = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    *(60 * m for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720)),
)


def _timeline(run: RunView, names: Mapping[int, str]) -> _Timeline | None:
    """A Gantt-like chart: one band per wave, each app a bar from first submit to its terminal state."""
    timed = [a for a in run.apps if a.started_at is not None]
    if not timed:
        return None
    t0 = min(utc(a.started_at) for a in timed if a.started_at)
    t1 = max([*(_bar_end(a, run) for a in timed), t0 + timedelta(seconds=1)])
    span = (t1 - t0).total_seconds()
    waves: dict[int | None, list[AppStatusView]] = defaultdict(list)
    for app in timed:
        waves[app.wave].append(app)
    bands: list[_Band] = []
    y = 28
    for wave in sorted(waves, key=lambda w: (w is None, w if w is not None else 0)):
        band = _band(waves[wave], _wave_label(wave, names), y, run, t0, span)
        bands.append(band)
        y += band.height + 14
    return _Timeline(
        width=_TL_WIDTH,
        left=_TL_LEFT,
        plot=_TL_PLOT,
        bar=_TL_BAR,
        height=y + 30,
        bottom=y,
        ticks=_ticks(t0, span),
        bands=tuple(bands),
        start=when(t0),
        took=_duration(t1 - t0),
    )


def _band(
    apps: Sequence[AppStatusView], label: str, y: int, run: RunView, t0: datetime, span: float
) -> _Band:
    """One wave's bars, packed into lanes so that bars in one lane never overlap."""

    def x(moment: datetime) -> float:
        return _TL_LEFT + _TL_PLOT * (utc(moment) - t0).total_seconds() / span

    ordered = sorted(apps, key=lambda a: (utc(a.started_at) if a.started_at else t0, a.app_name))
    lanes: list[datetime] = []  # end of the last bar in each lane
    bars: list[_Bar] = []
    for app in ordered:
        start = utc(app.started_at) if app.started_at else t0
        end = max(_bar_end(app, run), start)
        lane = next((i for i, free in enumerate(lanes) if free <= start), None)
        if lane is None:
            lane = len(lanes) if len(lanes) < _TL_MAX_LANES else _TL_MAX_LANES - 1
            if lane == len(lanes):
                lanes.append(end)
        lanes[lane] = max(lanes[lane], end)
        title = f"{app.app_name} ({app.tenant_name}): {app.state.value}, {_duration(end - start)}"
        colour = STATE_COLOURS.get(app.state.value, "#94a3b8")
        top = y + 4 + lane * (_TL_BAR + _TL_GAP)
        bars.append(_Bar(x(start), top, max(2.0, x(end) - x(start)), colour, title))
    first = min(utc(a.started_at) for a in ordered if a.started_at)
    last = max(_bar_end(a, run) for a in ordered)
    height = 8 + len(lanes) * (_TL_BAR + _TL_GAP)
    return _Band(y, height, label, len(ordered), _duration(last - first), tuple(bars))


def _bar_end(app: AppStatusView, run: RunView) -> datetime:
    """Where an app's bar ends: its terminal time, or the run's last update while still in flight."""
    if app.finished_at is not None:
        return utc(app.finished_at)
    if app.state in TERMINAL_APP_STATES or app.state == AppState.HALTED:
        return utc(app.updated_at or run.updated_at)
    return utc(run.updated_at)


def _ticks(t0: datetime, span: float) -> tuple[tuple[float, str], ...]:
    step = next((s for s in _TICK_STEPS if span / s <= 12), None) or 86400.0 * max(
        1, round(span / 86400 / 10)
    )
    ticks = []
    offset = 0.0
    while offset <= span + 1e-9:
        moment = t0 + timedelta(seconds=offset)
        label = moment.strftime("%H:%M:%S") if step < 60 else moment.strftime("%H:%M")
        if span >= 2 * 86400:
            label = moment.strftime("%m-%d %H:%M")
        ticks.append((_TL_LEFT + _TL_PLOT * offset / span, label))
        offset += step
    return tuple(ticks)


def _wave_label(wave: int | None, names: Mapping[int, str]) -> str:
    if wave is None:
        return "no wave"
    return names.get(wave) or f"wave {wave}"


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
