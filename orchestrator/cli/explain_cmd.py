"""`orchestrator explain --action ACTION`: which apps deny that action right now, grouped by tenant."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli import _common, _fleet, options
from orchestrator.inventory import load_snapshot
from orchestrator.models import Decision, Plan, PlanItem
from orchestrator.planning.explain import WhoDenies, action_warning, who_denies
from orchestrator.planning.planfile import read_plan
from orchestrator.render.plan_facts import reason_summary

ExplainFormat = Literal["table", "json"]


def explain(
    action: str = typer.Option(
        ...,
        "--action",
        "-a",
        help="The operation, e.g. Microsoft.KeyVault/vaults/secrets/readMetadata/action.",
    ),
    data: bool = typer.Option(False, "--data", help="ACTION is a data action (dataActions/notDataActions)."),
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    fmt: Annotated[ExplainFormat, options.FORMAT] = "table",
    snapshot_in: Path | None = typer.Option(
        None, "--snapshot", help="Answer from a saved inventory snapshot instead of reading Azure now."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=1024, help="Concurrent ARM calls."
    ),
    plan_file: Path | None = typer.Option(
        None,
        "--plan",
        help="Also say, per app, what this plan decided: did the apps it updated stop denying ACTION?",
    ),
    journal_path: options.RegistryJournal = options.DEFAULT_JOURNAL,
    log_format: options.LogFormat = "console",
    log_level: options.LogLevel = "warning",
) -> None:
    """Which applications' deny assignments block ACTION now (wildcards and case taken into account)."""
    options.setup_logging(log_format, log_level)
    if not action.strip():
        raise typer.BadParameter("give an action", param_hint="--action")
    plan = read_plan(plan_file) if plan_file is not None else None
    if snapshot_in is not None:
        snapshot = load_snapshot(snapshot_in)
    else:
        snapshot = _fleet.read_fleet(
            options.load_fleet(config), config, concurrency=concurrency, journal_path=journal_path
        )
    result = who_denies(snapshot, action.strip(), data=data)
    targeted = () if plan is None else plan.target.definition.allowed_actions
    if plan is not None and data:
        targeted = plan.target.definition.allowed_data_actions
    warning = action_warning(snapshot, action.strip(), data=data, also_known=targeted)
    if warning is not None:
        _common.err_console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    decisions = _plan_decisions(plan)
    json_text = fmt == "json"
    text = render_json(result, decisions, warning) if json_text else render_table(result, decisions)
    _common.emit(text, json=json_text)
    _fleet.exit_for_failures(snapshot)


def _plan_decisions(plan: Plan | None) -> dict[str, PlanItem] | None:
    return {i.app_id.lower(): i for i in plan.items} if plan is not None else None


def _decision_text(item: PlanItem | None) -> str:
    if item is None:
        return "not in the plan"
    if item.decision == Decision.UPDATE:
        return item.decision.value
    return f"{item.decision.value}: {reason_summary(item.reason)}"


def _planned_still_denying(result: WhoDenies, decisions: dict[str, PlanItem]) -> tuple[int, int]:
    """(apps the plan updates that still deny, apps the plan updates)."""
    planned = sum(1 for i in decisions.values() if i.decision == Decision.UPDATE)
    still = sum(
        1
        for t in result.tenants
        for d in t.denying
        if (item := decisions.get(d.app_id.lower())) is not None and item.decision == Decision.UPDATE
    )
    return still, planned


def render_json(
    result: WhoDenies, decisions: dict[str, PlanItem] | None = None, warning: str | None = None
) -> str:
    doc = result.model_dump(mode="json")
    doc["warning"] = warning
    doc["denying_count"] = result.denying_count
    doc["incomplete"] = result.incomplete
    if decisions is not None:
        still, planned = _planned_still_denying(result, decisions)
        doc["plan"] = {"updated_apps": planned, "updated_apps_still_denying": still}
        for tenant in doc["tenants"]:
            for denial in tenant["denying"]:
                item = decisions.get(denial["app_id"].lower())
                denial["plan_decision"] = item.decision.value if item else None
                denial["plan_reason"] = item.reason if item else None
    return json.dumps(doc, indent=2) + "\n"


def render_table(result: WhoDenies, decisions: dict[str, PlanItem] | None = None) -> str:
    buffer = io.StringIO()
    console = _common.SafeConsole(file=buffer, width=_common.wide(140), no_color=True, highlight=False)
    kind = "data action" if result.data else "action"
    denying_tenants = sum(1 for t in result.tenants if t.denying)
    console.print(
        f"{result.denying_count} apps in {denying_tenants} tenants deny {kind} {result.action}",
        soft_wrap=True,
    )
    if decisions is not None:
        still, planned = _planned_still_denying(result, decisions)
        console.print(
            f"of the {planned} apps the plan updates, {still} still deny it"
            + (" (not applied yet, or not converged: see `orchestrator status`)" if still else ""),
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
        titles = ["  App", "Subscription", "Resource group", "Kind", "Definition / plan", "Denied by"]
        for title in titles + (["Plan"] if decisions is not None else []):
            table.add_column(title, overflow="fold")
        for d in tenant.denying:
            target = (
                f"plan {d.plan_version}" if d.plan_version else (d.definition_id or "").rsplit("/", 1)[-1]
            )
            row = [
                "  " + d.app_name,
                d.subscription_id[:8] + "…",
                d.resource_group,
                d.kind,
                target,
                ", ".join(d.denied_by),
            ]
            if decisions is not None:
                row.append(_decision_text(decisions.get(d.app_id.lower())))
            table.add_row(*row)
        console.print(table)
    return buffer.getvalue()
