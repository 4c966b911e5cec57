"""The apply/status commands' own logic: plan-vs-config check, exit codes, flags, display, bad journals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.apply_cmd import _check_plan_against_config, _exit_code, _LiveDisplay, _settings
from orchestrator.config import FleetConfig
from orchestrator.errors import EXIT_HALTED, EXIT_PARTIAL, InputError, PlanFileError
from orchestrator.executor import Progress
from orchestrator.models import AppState, AppStatusView, RunState, RunView
from tests.unit.test_engine import fleet, make_plan

REPO = Path(__file__).resolve().parents[2]


def fleet_config(*tenants: str) -> FleetConfig:
    return FleetConfig.model_validate(
        {"tenants": [{"id": t, "credential": {"kind": "azure_cli"}} for t in tenants]}
    )


def test_a_plan_for_tenants_not_in_the_config_is_refused() -> None:
    _, apps = fleet(4, tenants=2)
    plan = make_plan(apps)
    _check_plan_against_config(plan, "plan.json", fleet_config("tenant-0", "TENANT-1"), Path("fleet.toml"))
    with pytest.raises(PlanFileError, match=r"plan\.json: tenant tenant-1 is not in fleet\.toml"):
        _check_plan_against_config(plan, "plan.json", fleet_config("tenant-0"), Path("fleet.toml"))


def test_flags_are_checked_with_one_line_naming_the_flag() -> None:
    config = fleet_config("t")
    with pytest.raises(InputError, match="--failure-tolerance"):
        _settings(
            config, concurrency=None, per_subscription=None, failure_tolerance="lots", wave=None, bake=0
        )
    with pytest.raises(InputError, match="--concurrency"):
        _settings(config, concurrency=0, per_subscription=None, failure_tolerance="0", wave=None, bake=0)
    with pytest.raises(InputError, match="--bake"):
        _settings(config, concurrency=None, per_subscription=None, failure_tolerance="0", wave=None, bake=-1)
    settings = _settings(
        config, concurrency=None, per_subscription=None, failure_tolerance="10%", wave=1, bake=5
    )
    assert settings.concurrency == config.concurrency.global_limit
    assert settings.failure_tolerance.percent == 10
    assert settings.only_wave == 1 and settings.window_gate is None


def test_time_scale_and_crash_hook_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = fleet_config("t")
    monkeypatch.setenv("ORCHESTRATOR_TIME_SCALE", "0.5")
    monkeypatch.setenv("ORCHESTRATOR_TEST_CRASH_AT", "after-submit:3")
    settings = _settings(
        config, concurrency=None, per_subscription=None, failure_tolerance="0", wave=None, bake=0
    )
    assert settings.verify_retry.initial_seconds == pytest.approx(1.0)
    assert settings.crash_at is not None and settings.crash_at.nth == 3
    monkeypatch.setenv("ORCHESTRATOR_TEST_CRASH_AT", "sometime")
    with pytest.raises(InputError, match="ORCHESTRATOR_TEST_CRASH_AT"):
        _settings(config, concurrency=None, per_subscription=None, failure_tolerance="0", wave=None, bake=0)


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


def test_exit_codes_say_what_happened() -> None:
    assert _exit_code(_view([AppState.SUCCEEDED, AppState.SKIPPED])) == 0
    assert _exit_code(_view([AppState.SUCCEEDED, AppState.FAILED])) == EXIT_PARTIAL
    assert _exit_code(_view([AppState.STALE])) == EXIT_PARTIAL
    assert _exit_code(_view([AppState.FAILED, AppState.PENDING], RunState.HALTED)) == EXIT_HALTED


def test_live_display_counts_finished_apps_per_wave_and_tenant() -> None:
    view = _view([AppState.PENDING, AppState.PENDING, AppState.SUCCEEDED], RunState.RUNNING)
    display = _LiveDisplay(view, {0: "canary"})
    (key,) = display.tasks
    assert key == (0, "T")
    task = display.progress.tasks[0]
    assert task.total == 3 and task.completed == 1
    display(Progress("r", 0, "canary", "t", "T", "a0", AppState.SUBMITTED))
    display(Progress("r", 0, "canary", "t", "T", "a1", AppState.FAILED, "boom"))
    task = display.progress.tasks[0]
    assert task.completed == 2
    assert "submitted=1" in task.fields["detail"]


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
