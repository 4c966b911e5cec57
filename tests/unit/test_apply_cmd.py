"""The apply/status commands' own logic: plan-vs-config check, exit codes, flags, display, bad journals."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.cli._progress import LiveDisplay
from orchestrator.cli._run import (
    check_plan_against_config,
    executor_settings,
    exit_code,
    resolve_apps,
    resolve_wave,
)
from orchestrator.config import FleetConfig
from orchestrator.errors import EXIT_HALTED, EXIT_PARTIAL, InputError, PlanFileError
from orchestrator.executor import Progress
from orchestrator.models import AppState, AppStatusView, RunState, RunView
from orchestrator.render.status import next_step
from tests.unit.test_engine import fleet, make_plan

REPO = Path(__file__).resolve().parents[2]


def fleet_config(*tenants: str) -> FleetConfig:
    return FleetConfig.model_validate(
        {"tenants": [{"id": t, "credential": {"kind": "azure_cli"}} for t in tenants]}
    )


T0 = "00000000-0000-0000-0000-00000000000a"
T1 = "00000000-0000-0000-0000-00000000000b"
T = "00000000-0000-0000-0000-00000000000c"


def test_a_plan_for_tenants_not_in_the_config_is_refused() -> None:
    _, apps = fleet(4, tenants=2)
    guids = {"tenant-0": T0, "tenant-1": T1}  # tenant ids are GUIDs in a config
    plan = make_plan([a.model_copy(update={"tenant_id": guids[a.tenant_id]}) for a in apps])
    check_plan_against_config(plan, "plan.json", fleet_config(T0, T1.upper()), Path("fleet.toml"))
    with pytest.raises(PlanFileError, match=rf"plan\.json: tenant {T1} is not in fleet\.toml"):
        check_plan_against_config(plan, "plan.json", fleet_config(T0), Path("fleet.toml"))


def test_flags_are_checked_with_one_line_naming_the_flag() -> None:
    config = fleet_config(T)
    with pytest.raises(InputError, match="--failure-tolerance"):
        executor_settings(
            config, concurrency=None, per_subscription=None, failure_tolerance="lots", wave=None, bake=0
        )
    with pytest.raises(InputError, match="--concurrency"):
        executor_settings(
            config, concurrency=0, per_subscription=None, failure_tolerance="0", wave=None, bake=0
        )
    with pytest.raises(InputError, match="--bake"):
        executor_settings(
            config, concurrency=None, per_subscription=None, failure_tolerance="0", wave=None, bake=-1
        )
    settings = executor_settings(
        config, concurrency=None, per_subscription=None, failure_tolerance="10%", wave=1, bake=5
    )
    assert settings.concurrency == config.concurrency.global_limit
    assert settings.failure_tolerance.percent == 10
    assert settings.only_wave == 1 and settings.window_gate is None


def test_time_scale_comes_from_its_option_and_the_crash_hook_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = fleet_config(T)
    monkeypatch.setenv("ORCHESTRATOR_TEST_CRASH_AT", "after-submit:3")
    settings = executor_settings(
        config,
        concurrency=None,
        per_subscription=None,
        failure_tolerance="0",
        wave=None,
        bake=0,
        time_scale=0.5,
    )
    assert settings.verify_retry.initial_seconds == pytest.approx(1.0)
    assert settings.crash_at is not None and settings.crash_at.nth == 3
    monkeypatch.setenv("ORCHESTRATOR_TEST_CRASH_AT", "sometime")
    with pytest.raises(InputError, match="ORCHESTRATOR_TEST_CRASH_AT"):
        executor_settings(
            config, concurrency=None, per_subscription=None, failure_tolerance="0", wave=None, bake=0
        )


def _view(states: list[AppState], run_state: RunState = RunState.COMPLETED) -> RunView:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return RunView(
        run_id="r",
        kind="apply",
        plan_digest="d",
        target_name="t",
        state=run_state,
        started_at=now,
        updated_at=now,
        apps=tuple(
            AppStatusView(
                app_id=f"a{i}",
                app_name=f"a{i}",
                tenant_id="t",
                tenant_name="T",
                subscription_id="s",
                wave=0,
                state=s,
            )
            for i, s in enumerate(states)
        ),
    )


@pytest.mark.parametrize("command", ["apply", "resume", "rollback"])
def test_the_time_scale_option_is_set_from_the_environment_and_checked(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli import app

    monkeypatch.chdir(tmp_path)
    argument = "plan.json" if command == "apply" else "20260101T020000Z-1a2b3c"
    result = CliRunner().invoke(app, [command, argument], env={"ORCHESTRATOR_TIME_SCALE": "0"})
    assert result.exit_code == 2
    assert "--time-scale" in result.output and "ORCHESTRATOR_TIME_SCALE" in result.output


def test_the_journal_is_the_flag_else_the_environment_else_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_JOURNAL", raising=False)

    def refused(args: list[str], journal_env: str) -> str:
        result = CliRunner().invoke(app, ["runs", *args], env={"ORCHESTRATOR_JOURNAL": journal_env})
        return str(result.exception)  # the JournalError main() prints as one line

    assert refused(["--journal", "a.db"], "b.db").startswith("a.db: no journal here yet")
    assert refused([], "b.db").startswith("b.db: no journal here yet")
    assert refused([], "").startswith(f"{Path('.state/journal.db')}: no journal here yet")


def test_exit_codes_say_what_happened() -> None:
    assert exit_code(_view([AppState.SUCCEEDED, AppState.SKIPPED])) == 0
    assert exit_code(_view([AppState.SUCCEEDED, AppState.FAILED])) == EXIT_PARTIAL
    assert exit_code(_view([AppState.STALE])) == EXIT_PARTIAL
    assert exit_code(_view([AppState.FAILED, AppState.PENDING], RunState.HALTED)) == EXIT_HALTED


def test_live_display_counts_finished_apps_per_wave_and_tenant() -> None:
    view = _view([AppState.PENDING, AppState.PENDING, AppState.SUCCEEDED], RunState.RUNNING)
    display = LiveDisplay(view, {0: "canary"})
    (key,) = display.tasks
    assert key == (0, "T")
    task = display.progress.tasks[0]
    assert task.total == 3 and task.completed == 1
    display(Progress("r", 0, "canary", "t", "T", "a0", AppState.SUBMITTED))
    display(Progress("r", 0, "canary", "t", "T", "a1", AppState.FAILED, "boom"))
    task = display.progress.tasks[0]
    assert task.completed == 2
    assert "submitted=1" in task.fields["detail"]


def test_wave_lines_say_each_wave_once_when_its_last_app_finishes(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli._progress import WaveLines

    view = _view([AppState.PENDING, AppState.PENDING, AppState.SUCCEEDED], RunState.RUNNING)
    lines = WaveLines(view, {0: "canary"})
    lines(Progress("r", 0, "canary", "t", "T", "a0", AppState.SUCCEEDED))
    lines(Progress("r", 0, "canary", "t", "T", "a1", AppState.SUBMITTED))
    lines(Progress("r", 0, "canary", "t", "T", "a9", AppState.FAILED))  # not shown: ignored
    assert "done" not in capsys.readouterr().err
    lines(Progress("r", 0, "canary", "t", "T", "a1", AppState.FAILED))
    lines(Progress("r", 0, "canary", "t", "T", "a1", AppState.FAILED))  # once only
    err = capsys.readouterr().err
    assert err.count("wave canary: done (1 failed, 2 succeeded)") == 1


@pytest.mark.parametrize("content", [b"not a database at all", b"SQLite format 3\x00" + b"\x00" * 200])
def test_status_on_a_bad_journal_is_one_line_exit_2(tmp_path: Path, content: bytes) -> None:
    journal = tmp_path / "journal.db"
    journal.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", "--journal", str(journal)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2
    assert str(journal) in result.stderr
    assert "Traceback" not in result.stderr
    assert journal.read_bytes() == content  # never rewritten


def test_status_without_a_journal_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", "--journal", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2 and "no journal here yet" in result.stderr
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("fmt", ["table", "html"])
def test_status_names_waves_from_the_journal_without_the_plan(tmp_path: Path, fmt: str) -> None:
    # The plan file is gone: the names can only come from the journal (reading a 10,000-app plan for
    # them cost status 1.6 s and 100 MB).
    from orchestrator.journal import Journal, NewApp

    path = tmp_path / "journal.db"
    with Journal(path) as journal:
        run_id = journal.create_run(
            kind="apply",
            plan_digest="sha256:abc",
            plan_path=str(tmp_path / "gone.json"),
            target_name="v2",
            apps=[
                NewApp(
                    app_id=f"/subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/a{w}",
                    app_name=f"a{w}",
                    tenant_id=T,
                    tenant_name="Contoso",
                    subscription_id="s",
                    wave=w,
                )
                for w in (0, 1)
            ],
            wave_names={0: "first-ring", 1: "second-ring"},
        )
    argv = ["status", run_id, "--journal", str(path), "--by", "app", "--format", fmt]
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "first-ring" in result.stdout and "second-ring" in result.stdout


def test_wave_is_chosen_by_name_or_index() -> None:
    _, apps = fleet(4, tenants=2)
    plan = make_plan(apps)
    names = {w.name: w.index for w in plan.waves}
    for name, index in names.items():
        assert resolve_wave(plan, name) == index
        assert resolve_wave(plan, name.upper()) == index
        assert resolve_wave(plan, str(index)) == index
    assert resolve_wave(plan, None) is None
    with pytest.raises(InputError, match=r"--wave 'nope': the plan has no such wave \(waves: "):
        resolve_wave(plan, "nope")


def test_app_is_chosen_by_name_group_and_name_or_id() -> None:
    view = _view([AppState.SUCCEEDED, AppState.SUCCEEDED, AppState.SUCCEEDED])
    ids = [
        "/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.Solutions/applications/web",
        "/subscriptions/s1/resourceGroups/rg-b/providers/Microsoft.Solutions/applications/web",
        "/subscriptions/s1/resourceGroups/rg-b/providers/Microsoft.Solutions/applications/api",
    ]
    view = view.model_copy(
        update={
            "apps": tuple(
                a.model_copy(update={"app_id": i, "app_name": i.rsplit("/", 1)[-1]})
                for a, i in zip(view.apps, ids, strict=True)
            )
        }
    )
    assert resolve_apps(view, None) is None
    assert resolve_apps(view, ["api"]) == [ids[2]]
    assert resolve_apps(view, ["RG-A/web"]) == [ids[0]]
    assert resolve_apps(view, [ids[1].upper()]) == [ids[1]]
    with pytest.raises(
        InputError, match=r"--app 'web': 2 apps have that name; give group/name: rg-a/web, rg-b/web"
    ):
        resolve_apps(view, ["web"])
    with pytest.raises(InputError, match=r"--app 'db': run r has no such app"):
        resolve_apps(view, ["db"])


def test_every_stop_names_the_command_that_continues() -> None:
    halted = next_step(_view([AppState.FAILED, AppState.PENDING], RunState.HALTED))
    assert halted is not None and "`orchestrator resume r --retry-failed`" in halted and "1 failed" in halted
    waiting = next_step(_view([AppState.PENDING], RunState.WAITING))
    assert waiting is not None and "--respect-windows" in waiting
    interrupted = next_step(_view([AppState.SUBMITTED], RunState.INTERRUPTED))
    assert interrupted is not None and "`orchestrator resume r`" in interrupted
    done = next_step(_view([AppState.SUCCEEDED, AppState.FAILED, AppState.STALE]))
    assert done is not None and "--retry-failed" in done and "new plan" in done
    assert next_step(_view([AppState.SUCCEEDED, AppState.CURRENT, AppState.SKIPPED])) is None


def test_every_option_has_help_and_the_run_commands_list_exit_codes() -> None:
    import typer.core
    import typer.main

    from orchestrator.cli import app

    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    ctx = typer.Context(root)
    found = {name: root.get_command(ctx, name) for name in root.list_commands(ctx)}
    commands = {name: command for name, command in found.items() if command is not None}
    assert commands and commands.keys() == found.keys()
    for name, command in commands.items():
        for sub_name, sub in (getattr(command, "commands", None) or {name: command}).items():
            for param in sub.params:
                if param.param_type_name == "option":
                    assert getattr(param, "help", None), f"{name} {sub_name} {param.name}"
    for name in ("apply", "resume", "rollback"):
        epilog = commands[name].epilog or ""
        for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130 "):
            assert code in epilog, (name, code)


def test_an_error_line_is_never_rich_markup() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from orchestrator.cli._common import fail; fail('target.toml: [plan] is bad', 2)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: target.toml: [plan] is bad"


def test_the_collector_tuned_for_a_run_is_restored_after_it() -> None:
    import gc

    from orchestrator.cli._run import _collector_for_a_long_run

    before = gc.get_threshold()
    with pytest.raises(RuntimeError), _collector_for_a_long_run():
        assert gc.get_threshold()[0] == 10 * before[0]
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_report_after_a_run_does_not_read_the_plan_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding wave names re-reads and digest-checks the whole plan: at 10,000 apps that was the peak
    # of a run's memory, for a per-tenant table that has no wave column.
    from orchestrator.cli import _run
    from orchestrator.executor import runs

    def no_plan_reads(*_: object) -> None:
        raise AssertionError("the report read the plan")

    monkeypatch.setattr(runs, "intact_plan", no_plan_reads)
    out = io.StringIO()
    monkeypatch.setattr(_run, "console", Console(file=out, width=120))
    view = _view([AppState.SUCCEEDED, AppState.FAILED]).model_copy(update={"plan_path": str(tmp_path)})
    _run.report(view)
    assert "Per tenant" in out.getvalue() and "failed" in out.getvalue()
