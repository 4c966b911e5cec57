"""`orchestrator plan`: inventory the fleet, plan the move to a target, write the sealed plan file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from orchestrator import __version__
from orchestrator.cli import _common, _fleet, options
from orchestrator.config import FleetConfig
from orchestrator.errors import ArmError, InputError, TargetError
from orchestrator.inventory import load_snapshot
from orchestrator.models import App, Definition, Plan, PlanOptions, Snapshot, Target, WaveSpec
from orchestrator.planning.actions import diff
from orchestrator.planning.planfile import seal, write_plan
from orchestrator.planning.planner import build_plan
from orchestrator.planning.target import load_target, target_from_definition
from orchestrator.render.plan_review import render_table, summary_line

if TYPE_CHECKING:
    from orchestrator.arm.permissions import ResourceGroupAccess
    from orchestrator.gateway import ArmGateway


class FlagError(InputError):
    pass


def plan(
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    target_file: Path | None = typer.Option(
        None, "--target", "-t", help="Target file (TOML, schema in plans/target.schema.json)."
    ),
    target_definition: str | None = typer.Option(
        None, "--target-definition", help="Service-catalog definition id to read from ARM as the target."
    ),
    waves: str = typer.Option(
        "25%,100%",
        "--waves",
        help="Wave steps after the canary wave: counts or percentages, comma-separated.",
    ),
    canary_ring: str = typer.Option("canary", "--canary-ring", help="Tenants in this ring go first."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the sealed plan file here."),
    snapshot_in: Path | None = typer.Option(
        None, "--snapshot", help="Plan from a saved inventory snapshot instead of reading Azure now."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=1024, help="Concurrent ARM calls."
    ),
    journal_path: options.RegistryJournal = options.DEFAULT_JOURNAL,
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """Plan moving every fitting instance to the target; print the review table and write the plan."""
    options.setup_logging(log_format, log_level)
    if (target_file is None) == (target_definition is None):
        raise FlagError("give exactly one of --target FILE or --target-definition ID")
    steps = tuple(s.strip() for s in waves.split(",") if s.strip())
    if not steps:
        raise FlagError(f"--waves {waves!r}: give at least one step, e.g. '25%,100%'")
    target = load_target(target_file) if target_file is not None else None  # bad file: fail before reading
    fleet = options.load_fleet(config)
    if snapshot_in is not None:
        snapshot = load_snapshot(snapshot_in)
    else:
        snapshot = _fleet.read_fleet(
            fleet, config, concurrency=concurrency, then=mark_write_access, journal_path=journal_path
        )
    live = snapshot_in is None
    target = _resolve_target(fleet, config, snapshot, target, target_file, target_definition, live=live)
    result = make_plan(fleet, snapshot, target, WaveSpec(canary_ring=canary_ring, steps=steps), waves)
    if out is not None:
        write_plan(result, out)
    _report(result, out)
    _fleet.exit_for_failures(snapshot)


def _resolve_target(
    fleet: FleetConfig,
    config: Path,
    snapshot: Snapshot,
    target: Target | None,
    target_file: Path | None,
    target_definition: str | None,
    *,
    live: bool,
) -> Target:
    """The target from its file or from ARM; a file naming a definition is checked against ARM."""
    if target is None:
        assert target_definition is not None
        return target_from_definition(_read_definition(fleet, config, snapshot, target_definition.strip()))
    if target.definition_id and live:
        # The target file names a definition: make sure it exists and is readable before planning
        # updates that would all fail at apply (e.g. an example file's placeholder id).
        in_azure = _read_definition(
            fleet, config, snapshot, target.definition_id, flag=f"--target {target_file}: definition_id"
        )
        _warn_if_different(target, in_azure, target_file)
    return target


def _report(result: Plan, out: Path | None) -> None:
    render_table(result, _common.console, apps=False)
    _common.console.print(summary_line(result), highlight=False, soft_wrap=True)
    if out is not None:
        _common.err_console.print(Text(f"plan written to {out} ({result.digest})"), soft_wrap=True)
    if result.incomplete_tenants:
        _common.err_console.print(
            Text(
                f"warning: the plan is incomplete: {len(result.incomplete_tenants)} tenant(s) could not "
                f"be read ({', '.join(result.incomplete_tenants)}); apply refuses it without "
                "--allow-incomplete. Fix access (`orchestrator doctor`) and plan again.",
                style="yellow",
            ),
            soft_wrap=True,
        )


async def mark_write_access(snapshot: Snapshot, gateway: ArmGateway) -> Snapshot:
    """Record on each app whether apply could write it (one permissions listing per resource group).

    The application resource lives in the customer's resource group, where a publisher has no rights
    by default; the planner turns `writable=False` into a skip the reviewer sees, instead of a failure
    at apply.
    """
    from orchestrator.arm.permissions import writable_resource_groups

    by_tenant: dict[str, list[App]] = {}
    for app in snapshot.apps:
        if app.path in ("direct", "delegated"):  # the others are never written by apply
            by_tenant.setdefault(app.tenant_id, []).append(app)

    async def one(tenant_id: str, apps: list[App]) -> dict[tuple[str, str], ResourceGroupAccess]:
        groups = [(a.subscription_id, a.resource_group) for a in apps]
        return await writable_resource_groups(gateway, tenant_id, groups)

    results = await asyncio.gather(*(one(t, apps) for t, apps in by_tenant.items()))
    access = {key: value for result in results for key, value in result.items()}
    marked = []
    for app in snapshot.apps:
        found = access.get((app.subscription_id.lower(), app.resource_group.lower()))
        marked.append(app.model_copy(update={"writable": found.can_write if found else None}))
    return snapshot.model_copy(update={"apps": tuple(marked)})


def make_plan(
    fleet: FleetConfig, snapshot: Snapshot, target: Target, spec: WaveSpec, waves_flag: str
) -> Plan:
    try:
        plan = build_plan(
            snapshot,
            target,
            PlanOptions(waves=spec),
            tool_version=__version__,
            now=datetime.now(UTC),
            rings={t.id: t.ring for t in fleet.customer_list},
        )
    except ValueError as exc:  # invalid wave steps
        raise FlagError(f"--waves {waves_flag!r}: {exc}") from None
    return seal(plan)


def _warn_if_different(target: Target, in_azure: Definition, target_file: Path | None) -> None:
    """The file's lock level and allowed actions should be what the definition in Azure says: ARM derives
    the deny assignment from the definition, and apply verifies against the file."""
    mine = target.definition
    added, removed = diff(in_azure.allowed_actions, mine.allowed_actions)
    data_added, data_removed = diff(in_azure.allowed_data_actions, mine.allowed_data_actions)
    problems = []
    if mine.lock_level != in_azure.lock_level:
        problems.append(f"lock_level {mine.lock_level} (Azure: {in_azure.lock_level})")
    for label, patterns in (
        ("allowed_actions has", added),
        ("allowed_actions lacks", removed),
        ("allowed_data_actions has", data_added),
        ("allowed_data_actions lacks", data_removed),
    ):
        if patterns:
            problems.append(f"{label} {', '.join(patterns)}")
    if problems:
        _common.err_console.print(
            Text(
                f"warning: --target {target_file}: differs from definition {target.definition_id} in Azure: "
                + "; ".join(problems)
                + " (apply verifies the deny assignment against the file)",
                style="yellow",
            ),
            soft_wrap=True,
        )


def _read_definition(
    fleet: FleetConfig,
    config_path: Path,
    snapshot: Snapshot,
    definition_id: str,
    *,
    flag: str = "--target-definition",
) -> Definition:
    """The target definition: from the snapshot when an app already uses it, else one read from ARM."""
    known = snapshot.definitions.get(definition_id.lower())
    if known is not None:
        return known
    reader = _reader_tenant(fleet, snapshot, definition_id, flag)

    async def read() -> Definition:
        async with options.open_gateway(fleet, config_path) as gateway:
            return await gateway.get_definition(reader, definition_id)

    try:
        return options.run_async(read())
    except ArmError as exc:
        if exc.status == 404:
            raise TargetError(
                f"{flag} {definition_id}: no such application definition in Azure "
                f"(HTTP 404 {exc.code or 'NotFound'}); publish it first, or fix the id"
            ) from None
        raise TargetError(f"{flag} {definition_id}: cannot read it: {exc}") from None


def _reader_tenant(fleet: FleetConfig, snapshot: Snapshot, definition_id: str, flag: str) -> str:
    """The configured tenant owning the definition's subscription (the publisher), else a readable one."""
    parts = definition_id.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise TargetError(f"{flag} {definition_id!r}: not an application definition resource id")
    subscription = parts[1].lower()
    for tenant in snapshot.tenants:
        if any(s.id.lower() == subscription for s in tenant.subscriptions):
            return tenant.tenant_id
    readable = [t.tenant_id for t in snapshot.tenants if not t.error] or [t.id for t in fleet.customer_list]
    return readable[0]
