"""Reading the fleet from Azure for `inventory`, `plan` and `explain`: a progress bar on a terminal, the
sources the apps came from, and the tenants that could not be read (not a command module)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from orchestrator.cli import _common, options
from orchestrator.config import FleetConfig
from orchestrator.errors import EXIT_PARTIAL
from orchestrator.inventory import (
    InventoryProgress,
    ProgressCallback,
    Source,
    choose_source,
    collect_snapshot,
)
from orchestrator.models import Snapshot

if TYPE_CHECKING:
    from orchestrator.arm import AzureGateway


def report_sources(snapshot: Snapshot) -> None:
    """Where the apps came from, and each registry entry that could not be read (with its cause)."""
    if "registry" not in snapshot.sources:
        return
    counts = ", ".join(f"{n} from {name}" for name, n in snapshot.sources.items())
    _common.err_console.print(f"sources: {counts}", highlight=False, markup=False)
    for miss in snapshot.registry_misses:
        line = f"registry entry {miss.app_id} not read: {miss.cause}"
        _common.err_console.print(line, highlight=False, markup=False, soft_wrap=True)


def read_fleet(
    fleet: FleetConfig,
    config_path: Path,
    *,
    concurrency: int | None,
    then: Callable[[Snapshot, AzureGateway], Awaitable[Snapshot]] | None = None,
    source: Source | None = None,
    journal_path: Path,
) -> Snapshot:
    """Inventory the fleet with the real SDK, showing a progress bar when stderr is a terminal.

    `then` runs on the snapshot with the same gateway (same tokens and connections) before it closes.
    `source`/`journal_path`: the one choice of sources (`choose_source`) for every command.
    """
    limit = concurrency or fleet.concurrency.global_limit
    chosen, registry = choose_source(source, journal_path)

    async def run(progress: ProgressCallback | None) -> Snapshot:
        async with options.open_gateway(fleet, config_path) as gateway:
            snapshot = await collect_snapshot(
                fleet,
                gateway,
                concurrency=limit,
                per_tenant=max(2, limit // 2) if limit else None,
                progress=progress,
                source=chosen,
                registry=registry,
            )
            return await then(snapshot, gateway) if then is not None else snapshot

    with _progress_bar() as progress:
        return options.run_async(run(progress))


@contextmanager
def _progress_bar() -> Iterator[ProgressCallback | None]:
    console = _common.err_console
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("inventory"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("subscriptions · {task.fields[apps]} apps · {task.fields[tenants]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("inventory", total=None, apps=0, tenants="")

        def update(p: InventoryProgress) -> None:
            bar.update(
                task,
                total=p.subscriptions_total or None,
                completed=p.subscriptions_done,
                apps=p.apps,
                tenants=f"{p.tenants_done}/{p.tenants_total} tenants",
            )

        yield update


def exit_for_failures(snapshot: Snapshot) -> None:
    """Print each tenant that could not be (fully) read, then exit 3 when there is any."""
    failed = [t for t in snapshot.tenants if t.error]
    if snapshot.registry_misses and not failed:
        _common.err_console.print(
            f"{len(snapshot.registry_misses)} registry entries could not be read", highlight=False
        )
        raise typer.Exit(EXIT_PARTIAL)
    for tenant in failed:
        _common.err_console.print(
            Text.assemble(
                (f"tenant {tenant.display_name}", "bold yellow"), f" ({tenant.tenant_id}): {tenant.error}"
            ),
            highlight=False,
            soft_wrap=True,
        )
    if failed:
        _common.err_console.print(
            f"{len(failed)} of {len(snapshot.tenants)} tenants could not be fully read", highlight=False
        )
        raise typer.Exit(EXIT_PARTIAL)
