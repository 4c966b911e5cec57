"""`orchestrator explain --action ACTION`: which apps deny that action right now, grouped by tenant."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli import _common, options
from orchestrator.cli.inventory_cmd import exit_for_failures, read_fleet
from orchestrator.explain import WhoDenies, who_denies
from orchestrator.inventory import load_snapshot

ExplainFormat = Literal["table", "json"]


def register(app: typer.Typer) -> None:
    @app.command()
    def explain(
        action: str = typer.Option(
            ...,
            "--action",
            "-a",
            help="The operation, e.g. Microsoft.KeyVault/vaults/secrets/readMetadata/action.",
        ),
        data: bool = typer.Option(
            False, "--data", help="ACTION is a data action (dataActions/notDataActions)."
        ),
        config: Path = options.config_option(),
        fmt: ExplainFormat = options.format_option("table"),
        snapshot_in: Path | None = typer.Option(
            None, "--snapshot", help="Answer from a saved inventory snapshot instead of reading Azure now."
        ),
        concurrency: int | None = typer.Option(
            None, "--concurrency", min=1, max=1024, help="Concurrent ARM calls."
        ),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        """Which applications' deny assignments block ACTION now (wildcards and case taken into account)."""
        options.setup_logging(log_format, log_level)
        if not action.strip():
            raise typer.BadParameter("give an action", param_hint="--action")
        if snapshot_in is not None:
            snapshot = load_snapshot(snapshot_in)
        else:
            snapshot = read_fleet(options.load_fleet(config), config, concurrency=concurrency)
        result = who_denies(snapshot, action.strip(), data=data)
        text = render_json(result) if fmt == "json" else render_table(result)
        _common.console.file.write(text)
        exit_for_failures(snapshot)


def render_json(result: WhoDenies) -> str:
    doc = result.model_dump(mode="json")
    doc["denying_count"] = result.denying_count
    doc["incomplete"] = result.incomplete
    return json.dumps(doc, indent=2) + "\n"


def render_table(result: WhoDenies) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=max(_common.console.width, 140), no_color=True, highlight=False)
    kind = "data action" if result.data else "action"
    denying_tenants = sum(1 for t in result.tenants if t.denying)
    console.print(
        f"{result.denying_count} apps in {denying_tenants} tenants deny {kind} {result.action}",
        soft_wrap=True,
    )
    for tenant in result.tenants:
        head = (
            f"\n{tenant.tenant_name} ({tenant.tenant_id}): {len(tenant.denying)} of {tenant.apps_total} apps"
        )
        if tenant.error:
            head += f" — not fully read, the answer may be incomplete: {tenant.error}"
        console.print(head, soft_wrap=True)
        if not tenant.denying:
            continue
        table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 2, 0, 0))
        for title in ("  App", "Subscription", "Resource group", "Kind", "Definition / plan", "Denied by"):
            table.add_column(title, overflow="fold")
        for d in tenant.denying:
            target = (
                f"plan {d.plan_version}" if d.plan_version else (d.definition_id or "").rsplit("/", 1)[-1]
            )
            table.add_row(
                "  " + d.app_name, d.subscription_id, d.resource_group, d.kind, target, ", ".join(d.denied_by)
            )
        console.print(table)
    return buffer.getvalue()
