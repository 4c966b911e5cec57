"""Every way a rollout goes wrong has a next step, and the tool names it (through the CLI, on the emulator).

halt → fix → `resume --retry-failed`; rollback → re-apply (refused with what to do, then `--new-run`);
a completed run re-applied; Ctrl-C → `resume`; a new run of a finished plan finds its apps `current`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import EXIT_HALTED, EXIT_PARTIAL
from orchestrator.models import AppState, Decision, RunState
from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import REPO, Fleet, make_fleet
from tests.integration.test_apply import (
    TIME_SCALE,
    apply_args,
    apply_cli,
    assert_no_overlapping_writes,
    journal_view,
    plan_for,
    read_only_tenants,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def quick_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path, time_scale=TIME_SCALE, operation_seconds=30)


def _cli(fleet: Fleet, journal: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return apply_cli(*args, "-c", str(fleet.config_path), "--journal", str(journal), "--yes")


def _writable_tenant(fleet: Fleet) -> str:
    return str(next(t["id"] for t in fleet.customer_tenants() if t["publisher_access"] == "full"))


def test_halt_fix_retry_failed_finishes_the_run(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, plan = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    broken = _writable_tenant(quick_fleet)
    secret_file = quick_fleet.config_path.parent / "secrets" / f"{broken}.secret"
    good_secret = secret_file.read_text(encoding="utf-8")
    quick_fleet.break_secret(broken)

    halted = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "0"))
    assert halted.returncode == EXIT_HALTED, halted.stderr[-2000:]
    run_id = journal_view(journal).run_id
    assert f"orchestrator resume {run_id} --retry-failed" in halted.stderr

    # Resuming without asking for the failed apps to be retried halts again, and says how to retry.
    again = _cli(quick_fleet, journal, "resume", run_id)
    assert again.returncode == EXIT_HALTED
    assert "--retry-failed" in again.stderr

    secret_file.write_text(good_secret, encoding="utf-8")  # the cause, fixed
    blocked = read_only_tenants(quick_fleet)
    retried = _cli(quick_fleet, journal, "resume", run_id, "--retry-failed", "--failure-tolerance", "100%")
    view = journal_view(journal, run_id)
    assert view.state == RunState.COMPLETED, retried.stderr[-2000:]
    assert retried.returncode == (EXIT_PARTIAL if blocked else 0)
    updates = {i.app_id for i in plan.items if i.decision == Decision.UPDATE}
    for app in view.apps:
        if app.app_id in updates:
            want = AppState.FAILED if app.tenant_id in blocked else AppState.SUCCEEDED
            assert app.state == want, (app.app_name, app.state, app.error_message)
    mine = [a for a in view.apps if a.tenant_id == broken and a.app_id in updates]
    assert mine and all(a.state == AppState.SUCCEEDED for a in mine)
    stats = assert_no_overlapping_writes(quick_fleet)
    assert all(n == 1 for n in stats["writes_per_app"].values() if n)


def test_retry_failed_stays_within_the_tolerance(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    quick_fleet.break_secret(_writable_tenant(quick_fleet))
    halted = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "0"))
    assert halted.returncode == EXIT_HALTED
    run_id = journal_view(journal).run_id
    # Not fixed: the retry fails again and the same tolerance halts the run again.
    retried = _cli(quick_fleet, journal, "resume", run_id, "--retry-failed")
    assert retried.returncode == EXIT_HALTED, retried.stderr[-2000:]
    assert journal_view(journal, run_id).state == RunState.HALTED


def test_rolled_back_plan_is_not_silently_reapplied(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    applied = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert applied.returncode in (0, EXIT_PARTIAL), applied.stderr[-2000:]
    run_id = journal_view(journal).run_id
    rolled = _cli(quick_fleet, journal, "rollback", run_id)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert "denied again" in rolled.stdout
    writes = dict(quick_fleet.emulator.stats()["writes_per_app"])

    again = apply_cli(*apply_args(quick_fleet, plan_path, journal))
    assert again.returncode == 2, again.stderr[-2000:]
    assert "rolled back" in again.stderr and "--new-run" in again.stderr
    assert "Traceback" not in again.stderr
    assert quick_fleet.emulator.stats()["writes_per_app"] == writes

    fresh = apply_cli(
        *apply_args(quick_fleet, plan_path, journal, "--new-run", "--failure-tolerance", "100%")
    )
    view = journal_view(journal)
    assert view.run_id != run_id, fresh.stderr[-2000:]
    rolled_back = {a.app_id for a in journal_view(journal, run_id).apps if a.state == AppState.ROLLED_BACK}
    assert rolled_back
    assert all(a.state == AppState.SUCCEEDED for a in view.apps if a.app_id in rolled_back)


def test_completed_run_reapplied_says_so_and_stays_completed(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    first = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    run_id = journal_view(journal).run_id
    assert journal_view(journal).state == RunState.COMPLETED, first.stderr[-2000:]
    # Without a terminal, one line per wave as it finishes (not silence until the end).
    assert re.search(r"^wave \S+: done \(\d+ ", first.stderr, re.MULTILINE), first.stderr[-2000:]
    writes = dict(quick_fleet.emulator.stats()["writes_per_app"])

    again = apply_cli(*apply_args(quick_fleet, plan_path, journal))
    assert again.returncode == first.returncode
    assert f"Run {run_id} of this plan already completed" in again.stdout
    if first.returncode == EXIT_PARTIAL:
        assert f"orchestrator resume {run_id} --retry-failed" in again.stderr
    assert journal_view(journal, run_id).state == RunState.COMPLETED
    assert quick_fleet.emulator.stats()["writes_per_app"] == writes

    # Waves go by the names the plan gave them, in status as in the plan.
    by_app = apply_cli("status", run_id, "--by", "app", "--journal", str(journal))
    plan = read_plan(plan_path)
    first_wave = next(a for a in journal_view(journal, run_id).apps if a.wave == 0)
    row = next(line for line in by_app.stdout.splitlines() if f" {first_wave.app_name} " in line)
    assert f" {plan.waves[0].name} " in row

    # A new run of the same plan: the apps the first run moved are simply current.
    new = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--new-run", "--failure-tolerance", "100%"))
    view = journal_view(journal)
    assert view.run_id != run_id, new.stderr[-2000:]
    done = {a.app_id for a in journal_view(journal, run_id).apps if a.state == AppState.SUCCEEDED}
    assert done and all(a.state == AppState.CURRENT for a in view.apps if a.app_id in done)
    assert quick_fleet.emulator.stats()["writes_per_app"] == writes


def _wait_for_state(journal: Path, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            try:
                with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
                    row = conn.execute("SELECT count(*) FROM apps WHERE state = ?", (state,)).fetchone()
                if row and row[0]:
                    return
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    raise AssertionError(f"no app reached {state} in {timeout}s")


@pytest.fixture
def slow_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Operations take 10 emulated minutes (6 s): Ctrl-C lands while writes are in flight."""
    yield from make_fleet(tmp_path, time_scale=TIME_SCALE, operation_seconds=600)


def test_ctrl_c_names_resume_which_reattaches(slow_fleet: Fleet, tmp_path: Path) -> None:
    fleet = slow_fleet
    plan_path, plan = plan_for(fleet, tmp_path)
    journal = tmp_path / "journal.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
    env.update(NO_COLOR="1", COLUMNS="200", ORCHESTRATOR_TIME_SCALE=str(TIME_SCALE))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            *apply_args(fleet, plan_path, journal, "--failure-tolerance", "100%"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_state(journal, "submitted")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    view = journal_view(journal)
    assert view.state == RunState.INTERRUPTED
    assert f"orchestrator resume {view.run_id}" in stderr and "in flight" in stderr
    assert "Traceback" not in stderr
    in_flight = [a for a in view.apps if a.state in (AppState.SUBMITTED, AppState.VERIFYING)]
    assert in_flight

    resumed = _cli(fleet, journal, "resume", view.run_id, "--failure-tolerance", "100%")
    after = journal_view(journal, view.run_id)
    assert after.state == RunState.COMPLETED, resumed.stderr[-2000:]
    states = {a.app_id: a.state for a in after.apps}
    blocked = read_only_tenants(fleet)
    assert all(states[a.app_id] == AppState.SUCCEEDED for a in in_flight if a.tenant_id not in blocked)
    stats = assert_no_overlapping_writes(fleet)
    # Re-attached, never re-sent: one write per app.
    assert all(n == 1 for n in stats["writes_per_app"].values())
    assert any(i.decision == Decision.UPDATE for i in plan.items)


def test_runs_json_and_rollback_by_short_name(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    listed = apply_cli("runs", "--journal", str(journal), "--format", "json")
    runs = json.loads(listed.stdout)
    run_id = runs[0]["run_id"]
    assert runs[0]["kind"] == "apply" and runs[0]["state"] == "completed"
    # A narrow, piped table still shows the whole id.
    narrow = apply_cli("runs", "--journal", str(journal), env={"COLUMNS": "80"})
    assert run_id in narrow.stdout

    done = [a for a in journal_view(journal, run_id).apps if a.state == AppState.SUCCEEDED]
    names = [a.app_name for a in done]
    unique = next(a for a in done if names.count(a.app_name) == 1)
    review = tmp_path / "rollback.json"
    planned = _cli(
        quick_fleet, journal, "rollback", run_id, "--app", unique.app_name, "--plan-out", str(review)
    )
    assert planned.returncode == 0, planned.stderr[-2000:]
    shown = apply_cli("show", str(review), "--format", "markdown")
    assert "Denied from now on" in shown.stdout and "tightens" in shown.stdout
    assert quick_fleet.emulator.stats()["writes_per_app"].get(unique.app_id, 1) == 1
    misapplied = apply_cli(*apply_args(quick_fleet, review, journal))
    assert misapplied.returncode == 2 and f"orchestrator rollback {run_id}" in misapplied.stderr

    rolled = _cli(quick_fleet, journal, "rollback", run_id, "--app", unique.app_name)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    states = {a.app_id: a.state for a in journal_view(journal, run_id).apps}
    assert states[unique.app_id] == AppState.ROLLED_BACK
    unknown = _cli(quick_fleet, journal, "rollback", run_id, "--app", "no-such-app")
    assert unknown.returncode == 2 and "--app" in unknown.stderr
