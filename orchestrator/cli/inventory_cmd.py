"""`orchestrator inventory`: every managed application in the fleet with its deny assignment's exclusions."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich import box
from rich.table import Table

from orchestrator.cli import _common, _fleet, options
from orchestrator.errors import InputError
from orchestrator.inventory import (
    Source,
    save_snapshot,
)
from orchestrator.models import App, Snapshot
from orchestrator.planning.derive import implied_lock_level

if TYPE_CHECKING:
    pass

InventoryFormat = Literal["table", "json", "csv"]

COLUMNS = (
    "tenant",
    "subscription",
    "resource_group",
    "app",
    "kind",
    "definition_or_plan",
    "provisioning_state",
    "lock_level",
    "managed_resource_group",
    "excluded_actions",
    "excluded_data_actions",
)


def inventory(
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    fmt: Annotated[InventoryFormat, options.FORMAT] = "table",
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the output here instead of stdout."),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        min=1,
        max=1024,
        help="Limit on concurrent ARM calls (default: the config's global_limit; unset, ARM paces).",
    ),
    snapshot_out: Path | None = typer.Option(
        None, "--snapshot", help="Also save the full snapshot as JSON (for `plan --snapshot`, `explain`)."
    ),
    source: Source | None = typer.Option(
        None,
        "--source",
        help="arm (list each subscription), registry (the notification registry's apps, read by id) "
        "or both. Default: both when the journal holds a notification registry, else arm.",
        show_default=False,
    ),
    journal_path: options.RegistryJournal = options.DEFAULT_JOURNAL,
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """List every managed application: kind, definition or plan, lock level and excluded actions."""
    options.setup_logging(log_format, log_level)
    fleet = options.load_fleet(config)
    snapshot = _fleet.read_fleet(
        fleet, config, concurrency=concurrency, source=source, journal_path=journal_path
    )
    if snapshot_out is not None:
        save_snapshot(snapshot, snapshot_out)
    text = render(snapshot, fmt)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    else:
        _common.emit(text, json=fmt == "json")
    _fleet.report_sources(snapshot)
    _fleet.exit_for_failures(snapshot)


def rows(snapshot: Snapshot) -> list[dict[str, str]]:
    names = {t.tenant_id.lower(): t.display_name for t in snapshot.tenants}
    return [_row(app, names.get(app.tenant_id.lower(), app.tenant_id)) for app in snapshot.apps]


def _row(app: App, tenant_name: str) -> dict[str, str]:
    deny = app.deny_assignment
    if app.plan is not None:
        target = f"{app.plan.publisher}/{app.plan.product}/{app.plan.name}@{app.plan.version}"
    else:
        target = app.definition_id or ""
    return {
        "tenant": tenant_name,
        "subscription": app.subscription_id,
        "resource_group": app.resource_group,
        "app": app.name,
        "kind": app.kind,
        "definition_or_plan": target,
        "provisioning_state": app.provisioning_state,
        # Marketplace plans do not expose their lock level in ARM: read it off the deny assignment.
        "lock_level": app.lock_level or (implied_lock_level(deny) if deny else None) or "",
        "managed_resource_group": app.managed_resource_group_id,
        "excluded_actions": "; ".join(deny.not_actions) if deny else "none",
        "excluded_data_actions": "; ".join(deny.not_data_actions) if deny else "none",
    }


def render(snapshot: Snapshot, fmt: InventoryFormat) -> str:
    table = rows(snapshot)
    if fmt == "json":
        doc = {
            "taken_at": snapshot.taken_at.isoformat(),
            "tenants": [
                {
                    "tenant_id": t.tenant_id,
                    "name": t.display_name,
                    "ring": t.ring,
                    "subscriptions": [s.id for s in t.subscriptions],
                    "error": t.error,
                }
                for t in snapshot.tenants
            ],
            "apps": [
                {"id": app.id, "tenant_id": app.tenant_id, **row}
                for app, row in zip(snapshot.apps, table, strict=True)
            ],
            "sources": snapshot.sources,
            "registry_misses": [m.model_dump() for m in snapshot.registry_misses],
        }
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        return buffer.getvalue()
    return _render_table(snapshot, table)


def _last(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


ExclusionKey = tuple[tuple[str, ...], tuple[str, ...]]


def _exclusions_key(app: App) -> ExclusionKey | None:
    """The deny assignment's (notActions, notDataActions) as a set: case and order do not matter."""
    deny = app.deny_assignment
    if deny is None:
        return None
    return (
        tuple(sorted({a.casefold() for a in deny.not_actions})),
        tuple(sorted({a.casefold() for a in deny.not_data_actions})),
    )


def _label(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _render_table(snapshot: Snapshot, table_rows: list[dict[str, str]]) -> str:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for title in ("Tenant", "Subscription", "App", "Kind", "Definition / plan", "State", "Lock", "Excl."):
        table.add_column(title, overflow="fold")
    ordered = sorted(
        zip(snapshot.apps, table_rows, strict=True),
        key=lambda pair: (pair[1]["tenant"].lower(), pair[1]["subscription"], pair[1]["app"].lower()),
    )
    # A fleet shares a handful of exclusion sets: the table shows a short label, the legend spells
    # each set out once (in the spelling of the first app that has it).
    labels: dict[ExclusionKey, str] = {}
    spelled: dict[ExclusionKey, App] = {}
    counts: dict[ExclusionKey, int] = {}
    for app, row in ordered:
        key = _exclusions_key(app)
        if key is not None:
            labels.setdefault(key, _label(len(labels)))
            spelled.setdefault(key, app)
            counts[key] = counts.get(key, 0) + 1
        version = (
            f"{app.plan.name}@{app.plan.version}" if app.plan is not None else _last(app.definition_id or "")
        )
        table.add_row(
            row["tenant"],
            row["subscription"][:8] + "…",
            row["app"],
            row["kind"],
            version,
            row["provisioning_state"],
            row["lock_level"] or "?",
            labels[key] if key is not None else "none",
        )
    buffer = io.StringIO()
    console = _common.SafeConsole(file=buffer, width=_common.wide(120), no_color=True, highlight=False)
    console.print(table)
    if labels:
        console.print("Excluded from the deny assignment (notActions; data actions marked), by set:")
        for key, label in labels.items():
            deny = spelled[key].deny_assignment
            assert deny is not None
            console.print(f"  {label} ({counts[key]} apps)", highlight=False)
            for action in sorted(deny.not_actions, key=str.casefold):
                console.print(f"      {action}", highlight=False, soft_wrap=True)
            for action in sorted(deny.not_data_actions, key=str.casefold):
                console.print(f"      {action}  (data)", highlight=False, soft_wrap=True)
    failed = sum(1 for t in snapshot.tenants if t.error)
    console.print(
        f"{len(snapshot.apps)} apps in {len(snapshot.tenants) - failed} tenants"
        + (f" ({failed} tenants not fully read)" if failed else "")
        + "; --format json or csv has every field (resource groups, MRGs, full ids)",
        highlight=False,
    )
    return buffer.getvalue()
