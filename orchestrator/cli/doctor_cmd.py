"""`orchestrator doctor`: per tenant, does the identity hold what inventory, plan and apply need."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.cli import _common, options
from orchestrator.doctor import Check, TenantDiagnosis, Verdict, diagnose_fleet
from orchestrator.errors import EXIT_PARTIAL

VERDICT_STYLES = {
    Verdict.READY: "bold green",
    Verdict.UNCHECKED: "bold yellow",
    Verdict.READ_ONLY: "bold yellow",
    Verdict.CANNOT_READ: "bold red",
    Verdict.UNREACHABLE: "bold red",
}
_MARKS = {"ok": ("✓", "green"), "failed": ("✗", "red"), "unchecked": ("?", "yellow"), "skipped": ("–", "dim")}


def doctor(
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    fmt: Annotated[Literal["table", "json"], options.FORMAT] = "table",
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=64, help="ARM calls at once."),
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """Check each tenant's access: token, subscriptions, reads, and write access for apply.

    Exit code 0 when every tenant is ready, 3 otherwise.
    """
    options.setup_logging(log_format, log_level)
    fleet = options.load_fleet(config)
    results = options.run_async(diagnose_fleet(fleet, concurrency=concurrency))
    if fmt == "json":
        typer.echo(json.dumps([as_dict(r) for r in results], indent=2))
    else:
        _common.SafeConsole(width=_common.wide(120)).print(render_doctor(results))
    if any(r.verdict != Verdict.READY for r in results):
        raise typer.Exit(EXIT_PARTIAL)


def render_doctor(results: list[TenantDiagnosis]) -> Group:
    table = Table(title="Access per customer", title_justify="left", show_lines=True)
    table.add_column("Tenant", overflow="fold", max_width=28)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Checks", overflow="fold")
    for result in results:
        name = Text(result.tenant_name, style="bold")
        if result.tenant_name != result.tenant_id:  # the full id is in --format json
            name.append(f"\n{result.tenant_id[:8]}…", style="dim")
        name.append(f"\npath: {result.path}", style="dim")
        if result.identity and result.identity != result.tenant_id:
            name.append(f" via {result.identity}", style="dim")
        if result.proposed_path and result.proposed_path != result.path:
            name.append(f"\nproposed: {result.proposed_path}", style="yellow")
        # A ready tenant takes one line (a fleet has many); the others show every check in full.
        checks = _summary(result.checks) if result.verdict == Verdict.READY else _checks(result.checks)
        table.add_row(name, Text(result.verdict.value, style=VERDICT_STYLES[result.verdict]), checks)
    parts: list[RenderableType] = [table]
    fixes = [r for r in results if r.verdict != Verdict.READY]
    if fixes:
        parts.append(Text("\nWhat to do", style="bold"))
        for result in fixes:
            for check in result.checks:
                if check.status in ("failed", "unchecked") and check.fix:
                    line = Text(f"• {result.tenant_name} ({check.name}): ", style="bold")
                    line.append(check.fix)
                    parts.append(line)
            if result.not_writable:
                parts.append(Text("  not writable: " + ", ".join(result.not_writable), style="dim"))
    kits = [r for r in results if r.path in ("publisher", "customer-run")]
    if kits:
        parts.append(Text("\nCustomers who run their own updates", style="bold"))
        for result in kits:
            line = Text(f"• {result.tenant_name} ({result.path}): ", style="bold")
            line.append(
                "apply never writes here; `orchestrator handoff PLAN --out DIR` makes the customer's kit and "
                "`orchestrator verify` confirms it. For apply to write instead, the customer deploys "
                "roles/lighthouse-onboarding.json and the path becomes delegated."
            )
            parts.append(line)
    ready = sum(1 for r in results if r.verdict == Verdict.READY)
    parts.append(Text(f"\n{ready} of {len(results)} tenants ready.", style="bold"))
    return Group(*parts)


def _summary(checks: tuple[Check, ...]) -> Text:
    text = Text()
    for check in checks:
        mark, style = _MARKS[check.status]
        text.append(f"{mark} ", style=style)
        text.append(f"{check.name}  ")
    return text


def _checks(checks: tuple[Check, ...]) -> Text:
    text = Text()
    for i, check in enumerate(checks):
        mark, style = _MARKS[check.status]
        if i:
            text.append("\n")
        text.append(f"{mark} ", style=style)
        text.append(f"{check.name}: ", style="bold")
        text.append(check.detail)
    return text


def as_dict(result: TenantDiagnosis) -> dict[str, object]:
    return {
        "tenant_id": result.tenant_id,
        "tenant_name": result.tenant_name,
        "verdict": result.verdict.value,
        "path": result.path,
        "identity": result.identity,
        "proposed_path": result.proposed_path or None,
        "subscriptions": list(result.subscriptions),
        "apps": result.apps,
        "not_writable": list(result.not_writable),
        "not_checked": list(result.not_checked),
        "checks": [
            {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix or None}
            for c in result.checks
        ],
    }
