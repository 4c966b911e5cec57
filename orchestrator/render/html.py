"""Self-contained HTML pages for a plan and for a run: for people who will not read JSON.

One file each, inline CSS and inline SVG, no script and no resource fetched at view time, so a page
can be mailed, attached to a change ticket or opened offline. Every value from a plan or journal is
escaped: app and tenant names come from customers' subscriptions and are not trusted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
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
from orchestrator.render.plan_review import (
    change_summary,
    examples,
    held_groups,
    lead_sentence,
    risk_groups,
)
from orchestrator.untrusted import html_text

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
_SEVERITY_ORDER: dict[str, int] = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
# No network at view time: the page may fetch nothing; only its own inline style applies.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_PROBLEM_STATES = (AppState.FAILED, AppState.UNVERIFIED, AppState.STALE, AppState.HALTED)

_CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --panel:#ffffff; --bg:#f8fafc; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:#0f172a; color:#f8fafc; padding:20px 32px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .meta { color:#cbd5e1; font-size:13px; }
header .meta { display:flex; flex-wrap:wrap; gap:4px 20px; }
header .meta b { overflow-wrap:anywhere; }
main { padding:24px 32px 40px; max-width:1280px; }
h2 { font-size:16px; margin:28px 0 10px; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 16px;
  min-width:120px; border-top:4px solid var(--accent,#94a3b8); }
.card .n { font-size:26px; font-weight:650; }
.card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
table { border-collapse:collapse; width:100%; background:var(--panel); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.04em;
  background:#f1f5f9; }
.tablewrap { border:1px solid var(--line); border-radius:8px; overflow:hidden; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; color:#fff; font-size:12px;
  font-weight:600; white-space:nowrap; }
.notes { background:#fffbeb; border:1px solid #fcd34d; border-radius:8px; padding:10px 16px; }
.notes li { margin:2px 0; }
.ok { color:#166534; }
.grid .tenant { display:grid; grid-template-columns:260px 1fr; gap:12px; padding:8px 0;
  border-bottom:1px solid var(--line); align-items:start; }
.grid .tenant:last-child { border-bottom:0; }
.grid .name { font-weight:600; overflow-wrap:anywhere; }
.grid .sub { color:var(--muted); font-size:12px; }
.cells { display:flex; flex-wrap:wrap; gap:3px; padding-top:3px; }
.cell { width:14px; height:14px; border-radius:3px; display:inline-block; }
.legend { display:flex; flex-wrap:wrap; gap:14px; color:var(--muted); font-size:12px; margin:0 0 8px; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:5px;
  vertical-align:-2px; }
.bar { display:flex; height:10px; border-radius:5px; overflow:hidden; background:var(--line);
  margin-top:6px; }
.add { color:#166534; } .rem { color:#b91c1c; }
details { background:var(--panel); border:1px solid var(--line); border-radius:8px; margin:6px 0; }
details summary { cursor:pointer; padding:8px 12px; font-weight:600; }
details table { border-top:1px solid var(--line); }
svg text { font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif; }
.digest { user-select:all; overflow-wrap:anywhere; font-size:13px; }
h3 { font-size:14px; margin:14px 0 6px; }
footer { color:var(--muted); font-size:12px; padding:0 32px 24px; }
"""


def render_plan_html(plan: Plan) -> str:
    """A reviewer's page for a saved plan: counts, risks, the per-tenant grid, waves and every change."""
    decisions = Counter(item.decision.value for item in plan.items)
    tenants = _tenants_of(plan.items)
    cards = [
        _card("apps", len(plan.items), "#0f172a"),
        _card("tenants", len(tenants), "#0f172a"),
        *(_card(d.value, decisions.get(d.value, 0), DECISION_COLOURS[d]) for d in Decision),
    ]
    target = plan.target
    to = target.moves_to
    meta = {
        "target": target.name,
        "moves to": to,
        "created": _when(plan.created_at),
        "digest": plan.digest or "unsaved",
        "tool": plan.tool_version,
    }
    body = [
        _section("What changes", _plan_change(plan)),
        _section("Risks, by kind", _plan_risks(plan)),
        _section("Not updated, by reason", _plan_held(plan)),
        _section(
            "Summary",
            f'<div class="cards">{"".join(cards)}</div>'
            f'<p>Digest (sign against this): <code class="digest">{_e(plan.digest or "unsealed")}</code></p>',
        ),
        _notes(plan.notes),
        _section(
            "Tenants",
            _legend(DECISION_COLOURS)
            + _grid(
                tenants,
                colour=lambda item: DECISION_COLOURS.get(item.decision.value, "#94a3b8"),
                label=lambda item: item.decision.value,
                tip=lambda item: f"{item.app_name}: {item.decision.value} ({item.reason})",
            ),
        ),
        _section("Waves", _plan_waves(plan)),
        _section("Every app", _plan_items_by_tenant(tenants, plan)),
    ]
    return _page(f"Rollout plan: {target.name}", meta, body)


def render_run_html(run: RunView, *, wave_names: Mapping[int, str] | None = None) -> str:
    """An operator's page for a run: counts by state, problems, the per-tenant grid, the waves over time."""
    names = dict(wave_names or {})
    states = Counter(a.state.value for a in run.apps)
    tenants = _tenants_of(run.apps)
    cards = [_card("apps", len(run.apps), "#0f172a"), _card("tenants", len(tenants), "#0f172a")]
    cards += [
        _card(s.value.replace("_", " "), states[s.value], STATE_COLOURS[s])
        for s in AppState
        if states[s.value]
    ]
    state_badge = _badge(run.state.value, RUN_STATE_COLOURS.get(run.state.value, "#475569"))
    meta = {
        "run": run.run_id,
        "kind": run.kind,
        "target": run.target_name,
        "started": _when(run.started_at),
        "updated": _when(run.updated_at),
        "plan": run.plan_digest,
    }
    if run.plan_path:
        meta["plan file"] = run.plan_path
    body = [
        _section("Summary", f'<p>Run state {state_badge}</p><div class="cards">{"".join(cards)}</div>'),
        _section("Problems", _run_problems(run.apps)),
        _section(
            "Tenants",
            _legend(STATE_COLOURS)
            + _grid(
                tenants,
                colour=lambda a: STATE_COLOURS.get(a.state.value, "#94a3b8"),
                label=lambda a: a.state.value,
                tip=lambda a: (
                    f"{a.app_name}: {a.state.value}" + (f" ({a.error_code})" if a.error_code else "")
                ),
            ),
        ),
        _section("Waves over time", _timeline(run, names)),
        _section("Every app", _run_apps_by_tenant(tenants, names)),
    ]
    return _page(f"Rollout run {run.run_id}: {run.target_name}", meta, body)


# ---- plan sections -------------------------------------------------------------------------------


def _plan_change(plan: Plan) -> str:
    """The lead sentence, then what is no longer denied and what is denied from now on."""
    no_longer, from_now_on = change_summary(plan)
    parts = [f"<p><b>{_e(lead_sentence(plan))}</b></p>"]
    for title, rows, css, none in (
        ("No longer denied", no_longer, "add", "No action stops being denied."),
        ("Denied from now on", from_now_on, "rem", "No action becomes denied."),
    ):
        if not rows:
            parts.append(f"<h3>{_e(title)}</h3><p class='sub'>{_e(none)}</p>")
            continue
        body = "".join(
            f"<tr><td class='{css} mono'>{_e(r.label)}</td><td>{r.apps}</td>"
            f"<td>{len(r.tenants)}: {_e(', '.join(r.tenants))}</td></tr>"
            for r in rows
        )
        parts.append(
            f"<h3>{_e(title)}</h3>"
            '<div class="tablewrap"><table><thead><tr><th>Action</th><th>Apps</th><th>Tenants</th></tr>'
            f"</thead><tbody>{body}</tbody></table></div>"
        )
    return "".join(parts)


def _plan_risks(plan: Plan) -> str:
    groups = risk_groups(plan, (Severity.HIGH, Severity.MEDIUM, Severity.LOW))
    if not groups:
        return '<p class="ok">No risks: nothing widens writes or deletes, adds wildcards or tightens.</p>'
    body = "".join(
        "<tr>"
        f"<td>{_badge(g.severity.value, SEVERITY_COLOURS.get(g.severity, '#64748b'))}</td>"
        f"<td><code>{_e(g.code)}</code></td><td>{g.apps}</td><td>{g.tenants}</td>"
        f"<td>{_e(g.message)}</td><td>{_e(examples(g.examples))}</td>"
        "</tr>"
        for g in groups
    )
    return (
        '<div class="tablewrap"><table><thead><tr><th>Severity</th><th>Risk</th><th>Apps</th><th>Tenants</th>'
        f"<th>What it means</th><th>For example</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _plan_held(plan: Plan) -> str:
    groups = held_groups(plan)
    if not groups:
        return "<p>Every app in the plan is updated.</p>"
    body = "".join(
        "<tr>"
        f"<td>{_badge(g.decision, DECISION_COLOURS.get(g.decision, '#dc2626'))}</td>"
        f"<td>{'?' if g.apps is None else g.apps}</td><td>{g.tenants}</td>"
        f"<td>{_e(g.reason)}</td><td>{_e(examples(g.examples))}</td>"
        "</tr>"
        for g in groups
    )
    return (
        '<div class="tablewrap"><table><thead><tr><th>Decision</th><th>Apps</th><th>Tenants</th>'
        f"<th>Reason</th><th>For example</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _plan_waves(plan: Plan) -> str:
    if not plan.waves:
        return "<p>No waves: nothing to update.</p>"
    by_id = {item.app_id: item for item in plan.items}
    total = max(1, sum(len(w.app_ids) for w in plan.waves))
    rows = []
    for wave in plan.waves:
        apps = [by_id[a] for a in wave.app_ids if a in by_id]
        tenant_count = len({a.tenant_id.lower() for a in apps})
        risky = sum(1 for a in apps if a.risks)
        width = 100 * len(wave.app_ids) / total
        rows.append(
            f"<tr><td>{wave.index}</td><td>{_e(wave.name)}</td><td>{len(wave.app_ids)}</td><td>{tenant_count}</td>"
            f"<td>{risky}</td><td style='width:40%'><div class='bar'><span style='width:{width:.1f}%;"
            f"background:{DECISION_COLOURS[Decision.UPDATE]}'></span></div></td></tr>"
        )
    return (
        '<div class="tablewrap"><table><thead><tr><th>#</th><th>Wave</th><th>Apps</th><th>Tenants</th>'
        f"<th>With risks</th><th>Share</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _plan_items_by_tenant(tenants: Mapping[tuple[str, str], list[PlanItem]], plan: Plan) -> str:
    wave_names = {w.index: w.name for w in plan.waves}
    parts = []
    for (_, tenant_name), items in tenants.items():
        counts = Counter(i.decision.value for i in items)
        summary = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
        rows = "".join(
            "<tr>"
            f"<td>{_e(i.app_name)}<div class='sub mono'>{_e(i.subscription_id)} / "
            f"{_e(i.resource_group)}</div></td>"
            f"<td>{_badge(i.decision.value, DECISION_COLOURS.get(i.decision.value, '#94a3b8'))}</td>"
            f"<td>{_e(wave_names.get(i.wave, '') if i.wave is not None else '')}</td>"
            f"<td>{_e(i.reason)}</td><td>{_changes(i)}</td>"
            "</tr>"
            for i in items
        )
        parts.append(
            f"<details><summary>{_e(tenant_name)} <span class='sub'>({_e(summary)})</span></summary>"
            "<table><thead><tr><th>App</th><th>Decision</th><th>Wave</th><th>Reason</th>"
            f"<th>Excluded actions</th></tr></thead><tbody>{rows}</tbody></table></details>"
        )
    return "".join(parts) or "<p>The plan has no apps.</p>"


def _changes(item: PlanItem) -> str:
    if item.decision != Decision.UPDATE:  # not written: no change to show
        return "<span class='sub'>not updated</span>"
    change = item.change
    lines = [f"<div class='add mono'>+ {_e(a)}</div>" for a in change.actions_added]
    lines += [f"<div class='rem mono'>− {_e(a)}</div>" for a in change.actions_removed]
    lines += [
        f"<div class='add mono'>+ {_e(a)} <span class='sub'>(data)</span></div>"
        for a in change.data_actions_added
    ]
    lines += [
        f"<div class='rem mono'>− {_e(a)} <span class='sub'>(data)</span></div>"
        for a in change.data_actions_removed
    ]
    return "".join(lines) or "<span class='sub'>no change</span>"


# ---- run sections --------------------------------------------------------------------------------


def _run_problems(apps: Sequence[AppStatusView]) -> str:
    problems = [a for a in apps if a.state in _PROBLEM_STATES]
    if not problems:
        waiting = sum(1 for a in apps if a.state == AppState.PENDING)
        extra = f" {waiting} app(s) still pending." if waiting else ""
        return f'<p class="ok">No failed, unverified, stale or halted apps.{_e(extra)}</p>'
    problems.sort(key=lambda a: (_PROBLEM_STATES.index(a.state), a.tenant_name, a.app_name))
    rows = "".join(
        "<tr>"
        f"<td>{_badge(a.state.value, STATE_COLOURS[a.state])}</td>"
        f"<td>{_e(a.app_name)}</td><td>{_e(a.tenant_name)}</td>"
        f"<td><code>{_e(a.error_code or '')}</code></td><td>{_e(a.error_message or '')}</td>"
        f"<td class='mono'>{_e(a.request_id or '')}</td><td>{a.attempts}</td>"
        "</tr>"
        for a in problems
    )
    return (
        '<div class="tablewrap"><table><thead><tr><th>State</th><th>App</th><th>Tenant</th><th>Code</th>'
        "<th>Message</th><th>Request id</th><th>Attempts</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _run_apps_by_tenant(
    tenants: Mapping[tuple[str, str], list[AppStatusView]], names: Mapping[int, str]
) -> str:
    parts = []
    for (_, tenant_name), apps in tenants.items():
        counts = Counter(a.state.value for a in apps)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        rows = "".join(
            "<tr>"
            f"<td>{_e(a.app_name)}<div class='sub mono'>{_e(a.subscription_id)}</div></td>"
            f"<td>{_badge(a.state.value, STATE_COLOURS.get(a.state.value, '#94a3b8'))}</td>"
            f"<td>{_e(_wave_label(a.wave, names))}</td><td>{a.attempts}</td>"
            f"<td>{_when(a.started_at)}</td><td>{_when(a.finished_at)}</td>"
            f"<td>{_e(' '.join(x for x in (a.error_code, a.error_message) if x))}</td>"
            "</tr>"
            for a in apps
        )
        parts.append(
            f"<details><summary>{_e(tenant_name)} <span class='sub'>({_e(summary)})</span></summary>"
            "<table><thead><tr><th>App</th><th>State</th><th>Wave</th><th>Attempts</th><th>Started</th>"
            f"<th>Finished</th><th>Error</th></tr></thead><tbody>{rows}</tbody></table></details>"
        )
    return "".join(parts) or "<p>The run has no apps.</p>"


_TL_LEFT = 120  # room for wave labels
_TL_WIDTH = 1100
_TL_BAR = 6
_TL_GAP = 2
_TL_MAX_LANES = 16  # per wave; more concurrent apps than this share the last lane


def _timeline(run: RunView, names: Mapping[int, str]) -> str:
    """A Gantt-like SVG: one band per wave, each app a bar from first submit to its terminal state."""
    timed = [a for a in run.apps if a.started_at is not None]
    if not timed:
        return "<p>No app has started yet.</p>"
    t0 = min(_utc(a.started_at) for a in timed if a.started_at)
    ends = [_bar_end(a, run) for a in timed]
    t1 = max([*ends, t0 + timedelta(seconds=1)])
    span = (t1 - t0).total_seconds()
    plot = _TL_WIDTH - _TL_LEFT - 20

    def x(moment: datetime) -> float:
        return _TL_LEFT + plot * (_utc(moment) - t0).total_seconds() / span

    waves: dict[int | None, list[AppStatusView]] = defaultdict(list)
    for app in timed:
        waves[app.wave].append(app)
    shapes: list[str] = []
    y = 28
    for wave in sorted(waves, key=lambda w: (w is None, w if w is not None else 0)):
        apps = sorted(waves[wave], key=lambda a: (_utc(a.started_at) if a.started_at else t0, a.app_name))
        lanes: list[datetime] = []  # end of the last bar in each lane
        bars: list[str] = []
        for app in apps:
            start = _utc(app.started_at) if app.started_at else t0
            end = max(_bar_end(app, run), start)
            lane = next((i for i, free in enumerate(lanes) if free <= start), None)
            if lane is None:
                lane = len(lanes) if len(lanes) < _TL_MAX_LANES else _TL_MAX_LANES - 1
                if lane == len(lanes):
                    lanes.append(end)
            lanes[lane] = max(lanes[lane], end)
            bx = x(start)
            bw = max(2.0, x(end) - bx)
            title = f"{app.app_name} ({app.tenant_name}): {app.state.value}, {_duration(end - start)}"
            bars.append(
                f'<rect x="{bx:.1f}" y="{y + 4 + lane * (_TL_BAR + _TL_GAP)}" width="{bw:.1f}" '
                f'height="{_TL_BAR}" rx="2" fill="{STATE_COLOURS.get(app.state.value, "#94a3b8")}">'
                f"<title>{_e(title)}</title></rect>"
            )
        height = 8 + len(lanes) * (_TL_BAR + _TL_GAP)
        first = min(_utc(a.started_at) for a in apps if a.started_at)
        last = max(_bar_end(a, run) for a in apps)
        shapes.append(
            f'<rect x="{_TL_LEFT}" y="{y}" width="{plot}" height="{height}" fill="#f1f5f9" rx="4"/>'
            f'<text x="{_TL_LEFT - 10}" y="{y + height / 2 + 1:.1f}" text-anchor="end" font-size="12" '
            f'font-weight="600" fill="#0f172a">{_e(_wave_label(wave, names))}</text>'
            f'<text x="{_TL_LEFT - 10}" y="{y + height / 2 + 14:.1f}" text-anchor="end" font-size="10" '
            f'fill="#64748b">{len(apps)} apps · {_e(_duration(last - first))}</text>'
        )
        shapes.extend(bars)
        y += height + 14
    axis = _axis(t0, span, y)
    total_height = y + 30
    return (
        f'<div class="panel"><svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        f'viewBox="0 0 {_TL_WIDTH} {total_height}" aria-label="Waves over time">'
        f"{axis}{''.join(shapes)}</svg>"
        f'<div class="sub">Each bar is one app, from its first submit to its final state; '
        f"time in UTC from {_e(_when(t0))}, {_e(_duration(t1 - t0))} in all.</div></div>"
    )


def _bar_end(app: AppStatusView, run: RunView) -> datetime:
    """Where an app's bar ends: its terminal time, or the run's last update while still in flight."""
    if app.finished_at is not None:
        return _utc(app.finished_at)
    if app.state in TERMINAL_APP_STATES or app.state == AppState.HALTED:
        return _utc(app.updated_at or run.updated_at)
    return _utc(run.updated_at)


def _axis(t0: datetime, span: float, bottom: int) -> str:
    step = _tick_step(span)
    ticks = []
    offset = 0.0
    while offset <= span + 1e-9:
        moment = t0 + timedelta(seconds=offset)
        px = _TL_LEFT + (_TL_WIDTH - _TL_LEFT - 20) * offset / span
        label = moment.strftime("%H:%M:%S") if step < 60 else moment.strftime("%H:%M")
        if span >= 2 * 86400:
            label = moment.strftime("%m-%d %H:%M")
        ticks.append(
            f'<line x1="{px:.1f}" y1="20" x2="{px:.1f}" y2="{bottom}" stroke="#e2e8f0"/>'
            f'<text x="{px:.1f}" y="14" text-anchor="middle" font-size="10" fill="#64748b">{_e(label)}</text>'
        )
        offset += step
    return "".join(ticks)


def _tick_step(span: float) -> float:
    """A readable tick spacing giving about 6 to 12 ticks."""
    for step in (
        0.1,
        0.2,
        0.5,
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        10800,
        21600,
        43200,
    ):
        if span / step <= 12:
            return step
    return 86400.0 * max(1, round(span / 86400 / 10))


# ---- shared pieces -------------------------------------------------------------------------------


_Row = TypeVar("_Row", PlanItem, AppStatusView)


def _tenants_of(items: Iterable[_Row]) -> dict[tuple[str, str], list[_Row]]:
    grouped: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for item in items:
        grouped[(item.tenant_id.lower(), item.tenant_name or item.tenant_id)].append(item)
    return dict(sorted(grouped.items(), key=lambda kv: (kv[0][1].lower(), kv[0][0])))


def _grid(
    tenants: Mapping[tuple[str, str], list[_Row]],
    *,
    colour: Callable[[_Row], str],
    label: Callable[[_Row], str],
    tip: Callable[[_Row], str],
) -> str:
    """One row per tenant: its name and counts, then one coloured square per app (hover for details)."""
    rows = []
    for (tenant_id, tenant_name), items in tenants.items():
        counts = Counter(label(i) for i in items)
        summary = " · ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        cells = "".join(
            f'<span class="cell" style="background:{colour(i)}" title="{_e(tip(i))}"></span>'
            for i in sorted(items, key=lambda i: (label(i), i.app_name))
        )
        rows.append(
            f'<div class="tenant"><div><div class="name">{_e(tenant_name)}</div>'
            f'<div class="sub mono">{_e(tenant_id)}</div><div class="sub">{_e(summary)}</div></div>'
            f'<div class="cells">{cells}</div></div>'
        )
    return f'<div class="panel grid">{"".join(rows)}</div>' if rows else "<p>No tenants.</p>"


def _legend(colours: Mapping[str, str]) -> str:
    keys = "".join(
        f'<span><i style="background:{c}"></i>{_e(str(k).replace("_", " "))}</span>'
        for k, c in colours.items()
    )
    return f'<div class="legend">{keys}</div>'


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<h2>Notes</h2><div class="notes"><ul>{items}</ul></div>'


def _card(label: str, number: int, accent: str) -> str:
    return (
        f'<div class="card" style="--accent:{accent}"><div class="n">{number}</div>'
        f'<div class="l">{_e(label.replace("_", " "))}</div></div>'
    )


def _badge(text: str, colour: str) -> str:
    return f'<span class="badge" style="background:{colour}">{_e(text.replace("_", " "))}</span>'


def _section(title: str, content: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{content}</section>"


def _page(title: str, meta: Mapping[str, str], body: Sequence[str]) -> str:
    facts = "".join(f"<span>{_e(k)}: <b>{_e(v)}</b></span>" for k, v in meta.items())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><div class="meta">{facts}</div></header>'
        f"<main>{''.join(body)}</main>"
        f"<footer>Generated by managedapp-orchestrator at {_e(_when(datetime.now(UTC)))}.</footer>"
        "</body></html>\n"
    )


def _wave_label(wave: int | None, names: Mapping[int, str]) -> str:
    if wave is None:
        return "no wave"
    return names.get(wave) or f"wave {wave}"


def _when(moment: datetime | None) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _utc(moment: datetime) -> datetime:
    # The journal stores UTC; a naive value is taken as UTC rather than the viewer's local time.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _e(text: str) -> str:
    return html_text(text)
