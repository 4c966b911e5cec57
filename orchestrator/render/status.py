"""A run as the operator reads it: the per-tenant or per-app table, its JSON, and the next step.

Depends only on the models and rich; the caller passes the console (the CLI's is a `SafeConsole`).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.models import TERMINAL_APP_STATES, AppState, AppStatusView, RunState, RunView

FAILURE_STATES = (AppState.FAILED, AppState.UNVERIFIED, AppState.STALE)
STATE_ORDER = list(AppState)
MAX_FAILURE_ROWS = 50


def render_table(
    view: RunView, console: Console, *, by: str, wave_names: dict[int, str] | None = None
) -> None:
    """The run's table, per tenant (with its failures and their causes) or per app, on `console`."""
    console.print(
        Text(f"Run {view.run_id} ({view.kind}) → {view.target_name}: ")
        + Text(view.state.value, style="bold"),
        soft_wrap=True,
    )
    if by == "tenant":
        console.print(_per_tenant(view))
        _awaiting_customers(view, console)
        _failures(view, console)
    else:
        console.print(_per_app(view, wave_names or {}))


def _per_tenant(view: RunView) -> Table:
    present = [s for s in STATE_ORDER if any(a.state == s for a in view.apps)]
    table = Table(title="Per tenant", title_justify="left")
    table.add_column("tenant")
    table.add_column("apps", justify="right")
    for state in present:
        table.add_column(state.value, justify="right")
    # Apps that needed more than one attempt: the faults and throttling the rollout absorbed.
    table.add_column("retried", justify="right")
    groups: dict[str, Counter[AppState]] = defaultdict(Counter)
    retried: Counter[str] = Counter()
    for app in view.apps:
        tenant_key = app.tenant_name or app.tenant_id
        groups[tenant_key][app.state] += 1
        retried[tenant_key] += app.attempts > 1
    for tenant in sorted(groups):
        counts = groups[tenant]
        table.add_row(
            tenant,
            str(sum(counts.values())),
            *(str(counts[s] or "") for s in present),
            str(retried[tenant] or ""),
        )
    return table


def _per_app(view: RunView, names: dict[int, str]) -> Table:
    table = Table(title="Per app", title_justify="left")
    for column in ("tenant", "app", "wave", "state", "attempts", "cause"):
        table.add_column(column)
    for app in view.apps:
        message = _cause(app.error_message, app.app_id)
        cause = f"{app.error_code}: {message}" if app.error_code else message
        table.add_row(
            app.tenant_name or app.tenant_id,
            app.app_name,
            "" if app.wave is None else names.get(app.wave, str(app.wave)),
            app.state.value,
            str(app.attempts),
            cause,
        )
    return table


def _failures(view: RunView, console: Console) -> None:
    """The failed, unverified and stale apps, one row per shared cause."""
    problems = [a for a in view.apps if a.state in FAILURE_STATES]
    if not problems:
        return
    table = Table(title="Failures and their causes", title_justify="left", expand=True)
    wide = console.width >= 150  # the request id (for a support case) fits only on a wide terminal
    table.add_column("tenant", max_width=24)
    table.add_column("app", max_width=32)
    table.add_column("state", no_wrap=True)
    table.add_column("code", max_width=28)
    table.add_column("cause", overflow="fold", ratio=1, min_width=30)
    if wide:
        table.add_column("request id", no_wrap=True)
    rows = _failure_rows(problems)
    for first, count, cause in rows[:MAX_FAILURE_ROWS]:
        row = [
            first.tenant_name or first.tenant_id,
            first.app_name + (f" (+{count - 1} more)" if count > 1 else ""),
            first.state.value,
            first.error_code or "",
            cause,
        ]
        table.add_row(*row, *([first.request_id or ""] if wide else []))
    console.print(table)
    if len(rows) > MAX_FAILURE_ROWS:
        console.print(
            f"… and {len(rows) - MAX_FAILURE_ROWS} more (see --by app or --format json)",
            highlight=False,
        )


def _failure_rows(problems: list[AppStatusView]) -> list[tuple[AppStatusView, int, str]]:
    """One row per tenant, state, code and cause: a broken secret fails every app of a tenant the
    same way, and the reader needs the cause once, with how many apps share it."""
    groups: dict[tuple[str, str, str, str], list[AppStatusView]] = defaultdict(list)
    for app in problems:
        cause = _cause(app.error_message, app.app_id)
        key = (app.tenant_name or app.tenant_id, app.state.value, app.error_code or "", cause)
        groups[key].append(app)
    return [(apps[0], len(apps), key[3]) for key, apps in groups.items()]


def _awaiting_customers(view: RunView, console: Console) -> None:
    """Customers whose updates are theirs to make (a kit): how many apps, and when their kit was made."""
    waiting = [a for a in view.apps if a.state == AppState.AWAITING_CUSTOMER]
    if not waiting:
        return
    table = Table(title="Awaiting customers (customer-run kits)", title_justify="left")
    for column in ("customer", "apps", "kit made"):
        table.add_column(column)
    groups: dict[str, list[AppStatusView]] = defaultdict(list)
    for app in waiting:
        groups[app.tenant_name or app.tenant_id].append(app)
    for name in sorted(groups):
        made = [a.updated_at for a in groups[name] if a.error_code == "KitMade" and a.updated_at]
        when = f"{min(made):%Y-%m-%d %H:%M}Z" if made else "no kit yet: orchestrator handoff PLAN --out DIR"
        table.add_row(Text(name), str(len(groups[name])), when)
    console.print(table)


# Entra appends ids for a support case to every error; they are in `--format json` and the journal.
_ENTRA_TRACE = re.compile(r"\s*Trace ID: \S+ Correlation ID: \S+ Timestamp: [\d-]+ [\d:.]+Z?")


def _cause(message: str | None, app_id: str) -> str:
    """The error message without the app's long resource id (the row already names the app) and
    without Entra's trace ids."""
    return _ENTRA_TRACE.sub("", (message or "").replace(app_id, "…"))


def as_json(view: RunView) -> str:
    body = view.model_dump(mode="json")
    body["counts"] = dict(Counter(a.state.value for a in view.apps))
    tenants: dict[str, Counter[str]] = defaultdict(Counter)
    for app in view.apps:
        tenants[app.tenant_id][app.state.value] += 1
    body["tenants"] = {t: dict(c) for t, c in sorted(tenants.items())}
    return json.dumps(body, indent=2)


def next_step(view: RunView) -> str | None:
    """What the operator runs next for this run, in words with the command; None when nothing is left."""
    run = view.run_id
    counts = Counter(a.state for a in view.apps)
    failed = counts[AppState.FAILED] + counts[AppState.UNVERIFIED]
    to_go = sum(1 for a in view.apps if a.state not in TERMINAL_APP_STATES)
    retry = f"`orchestrator resume {run} --retry-failed`"
    if view.state == RunState.HALTED:
        return (
            f"halted: a wave went over its failure tolerance ({failed} failed); {to_go} app(s) stay pending. "
            f"Fix the cause (see the failures above), then {retry} retries the failed apps and goes on "
            "within the same tolerance (a higher --failure-tolerance accepts more failures)."
        )
    if view.state == RunState.WAITING:
        return (
            f"waiting: {to_go} app(s) wait for their maintenance window; run the same command again later "
            f"(or `orchestrator resume {run} --respect-windows`)."
        )
    if to_go:
        return f"{to_go} app(s) still to go: `orchestrator resume {run}` continues the run."
    parts = []
    if failed:
        parts.append(f"{failed} app(s) failed: fix the cause, then {retry}")
    if counts[AppState.STALE]:
        parts.append(
            f"{counts[AppState.STALE]} app(s) changed since planning (stale): make a new plan for them"
        )
    return "; ".join(parts) + "." if parts else None
