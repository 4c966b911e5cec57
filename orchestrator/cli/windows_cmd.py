"""`orchestrator windows`: each tenant's next maintenance windows, and whether one is open now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from orchestrator.cli import _common, options
from orchestrator.config import FleetConfig, MaintenanceConfig
from orchestrator.planning.windows import DEFAULT_NEED, WindowSpan, describe_window, is_open, next_windows


def windows(
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    count: int = typer.Option(3, "--count", "-n", min=1, max=50, help="Windows to list per tenant."),
    need_minutes: int = typer.Option(
        int(DEFAULT_NEED.total_seconds() // 60),
        "--need",
        min=0,
        help="Minutes a window must stay open for an update to start (as apply --respect-windows).",
    ),
) -> None:
    """Show each tenant's next maintenance windows, in its time zone and in UTC."""
    fleet = options.load_fleet(config)
    now = datetime.now(UTC)
    _common.console.print(render_windows(fleet, now, count=count, need=timedelta(minutes=need_minutes)))


def render_windows(fleet: FleetConfig, now: datetime, *, count: int, need: timedelta) -> Group:
    """Per tenant: a line saying whether it is open now and why, then a table of its next windows."""
    parts: list[RenderableType] = [
        Text(f"Maintenance windows at {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC, need {_minutes(need)}")
    ]
    for tenant in fleet.customer_list:
        maint = fleet.maintenance_for(tenant)
        decision = is_open(maint, now, need=need)
        heading = Text()
        heading.append(f"\n{tenant.display_name}", style="bold")
        heading.append(f" {tenant.id}  " if tenant.name else "  ", style="dim")
        heading.append("open" if decision.open else "closed", style="green" if decision.open else "yellow")
        heading.append(f": {decision.reason}")
        heading.append(f"\n  configured: {_configured(maint)}", style="dim")
        parts.append(heading)
        # Without windows or blackouts the one span runs to the search horizon: nothing to list.
        if not (maint.windows or maint.blackout_dates):
            continue
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
        table.add_column("Local", no_wrap=True)
        table.add_column("UTC", no_wrap=True)
        table.add_column("Length", justify="right", no_wrap=True)
        for span in next_windows(maint, now, count):
            table.add_row(_local(span), _utc(span), _length(span.duration))
        parts.append(Padding(table, (0, 0, 0, 2)))
    return Group(*parts)


def _configured(maint: MaintenanceConfig) -> str:
    text = "; ".join(describe_window(w) for w in maint.windows) or "no windows (always open)"
    if maint.blackout_dates:
        text += "; blackout " + ", ".join(d.isoformat() for d in sorted(maint.blackout_dates))
    return text


def _local(span: WindowSpan) -> str:
    start, end = span.start_local, span.end_local
    end_text = _end(start, end) + f" {end:%Z}"
    start_zone = f" {start:%Z}" if start.tzname() != end.tzname() else ""
    return f"{start:%a %Y-%m-%d %H:%M}{start_zone} → {end_text}"


def _utc(span: WindowSpan) -> str:
    return f"{span.start_utc:%a %m-%d %H:%M} → {_end(span.start_utc, span.end_utc)}"


def _end(start: datetime, end: datetime) -> str:
    if end.date() == start.date():
        return f"{end:%H:%M}"
    return f"{end:%a %H:%M}" if end - start < timedelta(days=6) else f"{end:%Y-%m-%d %H:%M}"


def _length(delta: timedelta) -> str:
    hours, rest = divmod(int(delta.total_seconds()) // 60, 60)
    return f"{hours}h{rest:02d}" if rest else f"{hours}h"


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"
