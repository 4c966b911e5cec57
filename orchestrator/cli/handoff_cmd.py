"""`orchestrator handoff` (customer-run kits) and `orchestrator verify` (confirm what customers did)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from orchestrator import __version__
from orchestrator.cli import _common, options
from orchestrator.cli.apply_cmd import journal_option
from orchestrator.errors import InputError, JournalError
from orchestrator.handoff import Kit, KitError, build_kits
from orchestrator.journal import Journal, Transition, resolve_path
from orchestrator.models import AppState, Plan, RunState
from orchestrator.planning.planfile import read_plan
from orchestrator.verify import KIT_MADE, VerifyResult, verify_run


def write_kit(kit: Kit, out: Path) -> Path:
    """Write one customer's folder whole: into a temporary sibling, then renamed over the old one."""
    final = out / kit.folder
    tmp = out / f".{kit.folder}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, text in kit.files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (tmp / "update.sh").chmod(0o755)
    (tmp / "update.ps1").chmod(0o755)
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    return final


def _run_for(journal: Journal, plan: Plan, plan_path: Path) -> str:
    """The plan's run (the one apply continues), created with every app's starting state if none yet."""
    from orchestrator.executor.work import plan_work

    existing = journal.latest_run_for(plan.digest)
    if existing is not None:
        return existing
    rows, _ = plan_work(plan)
    run_id = journal.create_run(
        kind="apply",
        plan_digest=plan.digest,
        plan_path=str(plan_path),
        target_name=plan.target.name,
        apps=rows,
    )
    journal.set_run_state(run_id, RunState.WAITING, "customer kits made; apply writes the other apps")
    return run_id


def _verify_lines(result: VerifyResult) -> Table:
    table = Table(title="Verified", title_justify="left")
    table.add_column("state")
    table.add_column("apps", justify="right")
    for state, count in sorted(result.counts.items()):
        table.add_row(Text(state), str(count))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def handoff(
        plan_path: Path = typer.Argument(..., metavar="PLAN", help="A reviewed plan file."),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Folder for the kits (one sub-folder per customer)."
        ),
        journal_path: Path | None = journal_option(),
    ) -> None:
        """Write an update kit for every customer that makes its own updates (publisher, customer-run).

        One folder per customer: README (.md, .html), update.sh, update.ps1, ARM templates, SHA256SUMS.

        Their apps show as awaiting-customer in `status` until `orchestrator verify` finds them done.
        """
        plan = read_plan(plan_path)
        made_at = datetime.now(UTC)
        try:
            kits = build_kits(plan, made_at=made_at, tool_version=__version__)
        except KitError as exc:
            raise InputError(f"{plan_path}: {exc}") from None
        if not kits:
            _common.console.print("No customer-run updates in this plan: nothing to hand off.")
            return
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out {out}: {exc.strerror or exc}") from None
        with Journal(resolve_path(journal_path)) as journal, journal.exclusive():
            run_id = _run_for(journal, plan, plan_path)
            states = {a.app_id.lower(): a.state for a in journal.run_view(run_id).apps}
            table = Table(title=f"Kits in {out} (run {run_id})", title_justify="left")
            for column in ("customer", "tenant", "apps", "folder"):
                table.add_column(column)
            transitions = []
            for kit in kits:
                folder = write_kit(kit, out)
                table.add_row(
                    Text(kit.tenant_name), Text(kit.tenant_id), str(len(kit.items)), Text(str(folder))
                )
                when = f"{made_at:%Y-%m-%d %H:%M}Z"
                for item in kit.items:
                    if states.get(item.app_id.lower()) == AppState.AWAITING_CUSTOMER:
                        transitions.append(
                            Transition(
                                run_id=run_id,
                                app_id=item.app_id,
                                state=AppState.AWAITING_CUSTOMER,
                                error_code=KIT_MADE,
                                error_message=f"kit made {when}: {folder}",
                                message="handoff",
                            )
                        )
            journal.record_many(transitions)
        _common.console.print(table)
        _common.console.print(
            "Send each folder to its customer; `orchestrator verify` confirms their updates.", highlight=False
        )

    @app.command()
    def verify(
        run_id: str | None = typer.Argument(None, metavar="[RUN]", help="A run id; default the latest run."),
        config: Path = options.config_option(),
        journal_path: Path | None = journal_option(),
    ) -> None:
        """Check the apps waiting for their customers: succeeded, failed (with the cause) or still waiting.

        Succeeded means on the target and its deny assignment as planned.
        """
        result = refresh(run_id, config, journal_path)
        _common.console.print(_verify_lines(result))
        for app_id, why in sorted(result.unreadable.items()):
            _common.console.print(Text(f"not verified: {app_id}: {why}"))
        waiting = result.counts.get(AppState.AWAITING_CUSTOMER.value, 0)
        _common.console.print(
            Text(f"run {result.run_state.value}; {waiting} app(s) still awaiting their customers")
        )
        # Non-zero when this verify found a customer's update failed (not for earlier apply failures).
        raise typer.Exit(1 if AppState.FAILED in result.changed.values() else 0)


def refresh(run_id: str | None, config: Path, journal_path: Path | None) -> VerifyResult:
    """`verify` and `status --refresh`: re-read the run's customer-run apps and journal the outcome."""
    fleet = options.load_fleet(config)
    path = resolve_path(journal_path)
    if not path.exists():
        raise JournalError(f"{path}: no journal here yet (run `orchestrator handoff` or `apply` first)")
    with Journal(path) as journal, journal.exclusive():
        chosen = run_id or journal.latest_run()
        if chosen is None:
            raise JournalError(f"{path}: the journal has no runs yet")
        view = journal.run_view(chosen)
        if not view.plan_path:
            raise InputError(f"run {chosen}: no plan file recorded; cannot verify")
        plan = read_plan(Path(view.plan_path))
        if plan.digest != view.plan_digest:
            raise InputError(f"{view.plan_path}: not the plan run {chosen} was made from (digest differs)")

        async def work() -> VerifyResult:
            async with options.open_gateway(fleet, config) as gateway:
                return await verify_run(journal, chosen, plan, gateway)

        return options.run_async(work())
