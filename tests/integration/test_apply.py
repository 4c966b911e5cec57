"""`orchestrator apply / resume / rollback / status` against the HTTPS emulator, through the real SDK.

Each test runs the CLI in a subprocess, as an operator (or a scheduler) would, and checks the outcome
three ways: the exit code, the journal, and the emulator's own counters of what it was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.arm import AzureGateway
from orchestrator.errors import EXIT_HALTED, EXIT_PARTIAL
from orchestrator.journal import Journal
from orchestrator.models import AppState, Decision, Plan, RunState
from orchestrator.planning.derive import match_system_deny_assignment
from tests.integration.conftest import REPO, Fleet, make_fleet
from tests.integration.plans import make_plan_file

pytestmark = pytest.mark.integration

READ_METADATA = "microsoft.keyvault/vaults/secrets/readmetadata/action"
TIME_SCALE = 0.01


def apply_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
    base.update(NO_COLOR="1", COLUMNS="200", ORCHESTRATOR_TIME_SCALE=str(TIME_SCALE))
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=base,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def quick_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """3 customer tenants × 2 subscriptions × 4 apps; operations take 30 emulated seconds (0.3 s)."""
    yield from make_fleet(tmp_path, time_scale=TIME_SCALE, operation_seconds=30)


def v2_of(fleet: Fleet) -> str:
    return str(fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"])


def v1_of(fleet: Fleet) -> str:
    return str(fleet.emulator.fleet()["publisher"]["definitions"]["app-v1"])


def read_only_tenants(fleet: Fleet) -> set[str]:
    return {t["id"] for t in fleet.customer_tenants() if t["publisher_access"] == "read-only"}


def plan_for(fleet: Fleet, tmp_path: Path) -> tuple[Path, Plan]:
    path = tmp_path / "plan.json"
    plan = make_plan_file(fleet.config_path, v2_of(fleet), path)
    assert any(i.decision == Decision.UPDATE for i in plan.items)
    return path, plan


def apply_args(fleet: Fleet, plan: Path, journal: Path, *extra: str) -> list[str]:
    return ["apply", str(plan), "-c", str(fleet.config_path), "--journal", str(journal), "--yes", *extra]


def journal_view(journal: Path, run_id: str | None = None) -> Any:
    with Journal(journal) as j:
        rid = run_id or j.latest_run()
        assert rid is not None
        return j.run_view(rid)


def deny_exclusions(fleet: Fleet, apps: list[Any]) -> dict[str, set[str]]:
    """The notActions of each app's system deny assignment, read live through the real gateway."""
    config = fleet.config

    async def read() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        async with AzureGateway(config) as gw:
            for entry in apps:
                app = await gw.get_application(entry.tenant_id, entry.app_id)
                assert app is not None
                das = await gw.list_deny_assignments_at(entry.tenant_id, app.managed_resource_group_id)
                da = match_system_deny_assignment(app.id, app.managed_resource_group_id, das).found
                out[entry.app_id] = {a.lower() for a in (da.not_actions if da else ())}
        return out

    return asyncio.run(read())


def assert_no_overlapping_writes(fleet: Fleet) -> dict[str, Any]:
    stats = fleet.emulator.stats()
    assert stats["conflicting_writes"] == 0
    assert all(n <= 1 for n in stats["max_concurrent_ops_per_app"].values())
    return stats


def test_apply_upgrades_verifies_and_reports_per_tenant(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, plan = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "state" / "journal.db"
    result = apply_cli(
        *apply_args(
            quick_fleet,
            plan_path,
            journal,
            "--failure-tolerance",
            "100%",
            "--log-format",
            "json",
            "--log-level",
            "info",
        )
    )
    blocked = read_only_tenants(quick_fleet)
    # The read-only tenant's apps fail (403): a partial success, said by the exit code.
    assert result.returncode == EXIT_PARTIAL, result.stderr[-2000:]
    view = journal_view(journal)
    assert view.state == RunState.COMPLETED
    updates = {i.app_id for i in plan.items if i.decision == Decision.UPDATE}
    by_id = {a.app_id: a for a in view.apps}
    assert set(by_id) == {i.app_id for i in plan.items}  # the journal accounts for every app
    for app_id in updates:
        app = by_id[app_id]
        if app.tenant_id in blocked:
            assert app.state == AppState.FAILED and app.error_code == "AuthorizationFailed"
        else:
            assert app.state == AppState.SUCCEEDED, (app.app_name, app.error_message)
    succeeded = [a for a in updates if by_id[a].state == AppState.SUCCEEDED]
    assert succeeded
    # The incident is fixed where it was planned: readMetadata is no longer denied.
    for app_id, exclusions in deny_exclusions(quick_fleet, [by_id[a] for a in succeeded]).items():
        assert READ_METADATA in exclusions, app_id
    stats = assert_no_overlapping_writes(quick_fleet)
    assert all(stats["writes_per_app"].get(a, 0) == 1 for a in succeeded)
    # Every JSON log line about an app carries the run, tenant, subscription and app; no secret leaks.
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    about_apps = [line for line in lines if "app" in line]
    assert about_apps
    assert all({"run_id", "tenant", "subscription", "app", "request_id"} <= set(line) for line in about_apps)
    for secret in quick_fleet.secrets():
        assert secret not in result.stderr and secret not in result.stdout
    with sqlite3.connect(journal) as conn:
        dump = "\n".join(conn.iterdump())
    for secret in quick_fleet.secrets():
        assert secret not in dump

    status = apply_cli("status", "--journal", str(journal), "--format", "json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["run_id"] == view.run_id
    assert sum(body["counts"].values()) == len(plan.items)
    table = apply_cli("status", "--journal", str(journal))
    assert "Contoso 001" in table.stdout and "AuthorizationFailed" in table.stdout
    runs = apply_cli("runs", "--journal", str(journal))
    assert view.run_id in runs.stdout

    # Applying the same plan again continues the same run and writes nothing.
    again = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert again.returncode == EXIT_PARTIAL
    assert journal_view(journal).run_id == view.run_id
    assert quick_fleet.emulator.stats()["writes_per_app"] == stats["writes_per_app"]


def test_faults_every_app_ends_succeeded_or_failed_with_a_cause(tmp_path: Path) -> None:
    faults: list[dict[str, Any]] = [
        {"kind": "any", "action": "429", "probability": 0.08, "retry_after": 2},
        {"kind": "read", "action": "500", "probability": 0.05},
        {"kind": "poll", "action": "503", "probability": 0.05},
        {"kind": "list", "action": "reset", "probability": 0.05},
        {"kind": "write", "action": "reset", "first": 2},
        {"kind": "write", "action": "429", "first": 2, "retry_after": 1},
        {"kind": "write", "action": "fail_transient", "first": 3},
        {"kind": "write", "action": "fail_permanent", "app": "ma-002-01-*"},
        {"kind": "write", "action": "deny_delay", "deny_delay": 60, "probability": 0.5},
    ]
    for fleet in make_fleet(tmp_path, time_scale=TIME_SCALE, operation_seconds=30):
        plan_path, plan = plan_for(fleet, tmp_path)
        fleet.emulator.set_faults(faults)
        journal = tmp_path / "journal.db"
        result = apply_cli(*apply_args(fleet, plan_path, journal, "--failure-tolerance", "100%"))
        assert result.returncode in (0, EXIT_PARTIAL), result.stderr[-3000:]
        view = journal_view(journal)
        updates = {i.app_id for i in plan.items if i.decision == Decision.UPDATE}
        assert {a.app_id for a in view.apps} == {i.app_id for i in plan.items}
        for app in view.apps:
            if app.app_id not in updates:
                continue
            assert app.state in (AppState.SUCCEEDED, AppState.FAILED), (
                app.app_name,
                app.state,
                app.error_message,
            )
            if app.state == AppState.FAILED:
                assert app.error_code and app.error_message
        failed = {a.app_name for a in view.apps if a.state == AppState.FAILED}
        assert any(name.startswith("ma-002-01-") for name in failed)  # the permanent failures
        assert any(a.state == AppState.SUCCEEDED for a in view.apps)
        stats = assert_no_overlapping_writes(fleet)
        assert stats["faults_injected"]
        writes = sum(stats["writes_per_app"].values())
        permanent = [
            a
            for a in view.apps
            if a.state == AppState.FAILED and a.error_code == "ApplicationDefinitionInvalid"
        ]
        for app in permanent:
            assert stats["writes_per_app"][app.app_id] == 1  # a permanent failure is not retried
        assert writes <= len(updates) + 3 + 1  # only the 3 transient failures were written again


@pytest.mark.parametrize("crash_at", ["before-submit:2", "after-submit:3", "verifying:2"])
def test_crash_and_resume_converges_without_double_writes(
    quick_fleet: Fleet, tmp_path: Path, crash_at: str
) -> None:
    plan_path, plan = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    crashed = apply_cli(
        *apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"),
        env={"ORCHESTRATOR_TEST_CRASH_AT": crash_at},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    mid = journal_view(journal)
    point = crash_at.split(":")[0]
    expected_state = {"before-submit": "submitted", "after-submit": "submitted", "verifying": "verifying"}[
        point
    ]
    assert any(a.state.value == expected_state for a in mid.apps)
    succeeded_before = {a.app_id for a in mid.apps if a.state == AppState.SUCCEEDED}
    with Journal(journal) as j:
        tokens = [r.resume_token for r in j.apps(mid.run_id) if r.resume_token]
    if point == "after-submit":
        assert tokens  # the operation was journaled as soon as ARM accepted the write
    for token in tokens:  # a resume token carries where to poll, never a credential
        decoded = base64.b64decode(token).decode("utf-8", "replace").lower()
        assert '"authorization"' not in decoded and "bearer " not in decoded
        assert all(secret.lower() not in decoded for secret in quick_fleet.secrets())

    resumed = apply_cli(
        "resume",
        mid.run_id,
        "-c",
        str(quick_fleet.config_path),
        "--journal",
        str(journal),
        "--yes",
        "--failure-tolerance",
        "100%",
    )
    assert resumed.returncode == EXIT_PARTIAL, resumed.stderr[-2000:]
    view = journal_view(journal, mid.run_id)
    blocked = read_only_tenants(quick_fleet)
    for app in view.apps:
        item = next(i for i in plan.items if i.app_id == app.app_id)
        if item.decision != Decision.UPDATE:
            continue
        want = AppState.FAILED if app.tenant_id in blocked else AppState.SUCCEEDED
        assert app.state == want, (app.app_name, app.state, app.error_message)
    stats = assert_no_overlapping_writes(quick_fleet)
    for app in view.apps:
        if app.state == AppState.SUCCEEDED:
            # One write each: the crash never caused a second, and resume never re-wrote a success.
            assert stats["writes_per_app"][app.app_id] == 1, app.app_name
    for app_id in succeeded_before:
        with Journal(journal) as j:
            states = [e.state for e in j.events(mid.run_id, app_id)]
        assert states[-1] == "succeeded" and states.count("succeeded") == 1


def test_failure_tolerance_halts_the_rollout(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    quick_fleet.emulator.set_faults([{"kind": "write", "action": "fail_permanent"}])
    journal = tmp_path / "journal.db"
    result = apply_cli(
        *apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "0", "--concurrency", "1")
    )
    assert result.returncode == EXIT_HALTED, result.stderr[-2000:]
    assert "halted" in result.stderr
    view = journal_view(journal)
    assert view.state == RunState.HALTED
    assert sum(1 for a in view.apps if a.state == AppState.FAILED) == 1
    later = [a for a in view.apps if a.wave is not None and a.wave > 0]
    assert later and all(a.state == AppState.PENDING for a in later)
    assert sum(quick_fleet.emulator.stats()["writes_per_app"].values()) == 1


def test_stale_plan_is_refused_per_app(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    # Before it is applied, another plan's run leaves the same apps Failed (their operations failed).
    other_path = tmp_path / "other.json"
    make_plan_file(quick_fleet.config_path, v2_of(quick_fleet), other_path, steps=("100%",))
    journal = tmp_path / "journal.db"
    quick_fleet.emulator.set_faults([{"kind": "write", "action": "fail_permanent"}])
    first = apply_cli(*apply_args(quick_fleet, other_path, journal, "--failure-tolerance", "100%"))
    assert first.returncode == EXIT_PARTIAL, first.stderr[-2000:]
    blocked = read_only_tenants(quick_fleet)  # their writes are refused: nothing changes there
    changed = {
        a.app_id
        for a in journal_view(journal).apps
        if a.state == AppState.FAILED and a.attempts and a.tenant_id not in blocked
    }
    assert changed
    quick_fleet.emulator.set_faults([])
    writes = quick_fleet.emulator.stats()["writes_per_app"]
    second = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert second.returncode == EXIT_PARTIAL
    view = journal_view(journal)
    stale = {a.app_id: a for a in view.apps if a.state == AppState.STALE}
    assert changed <= set(stale)
    assert all("changed since planning" in (a.error_message or "") for a in stale.values())
    assert all(quick_fleet.emulator.stats()["writes_per_app"].get(a, 0) == writes.get(a, 0) for a in changed)


def test_modified_plan_is_refused_before_anything_happens(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    body = json.loads(plan_path.read_text())
    body["items"][0]["reason"] = "edited after review"
    plan_path.write_text(json.dumps(body))
    journal = tmp_path / "journal.db"
    result = apply_cli(*apply_args(quick_fleet, plan_path, journal))
    assert result.returncode == 2
    assert str(plan_path) in result.stderr and "Traceback" not in result.stderr
    assert not journal.exists()
    assert quick_fleet.emulator.stats()["writes_per_app"] == {}


def test_wrong_tenant_credential_fails_that_tenant_only(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    broken = next(t["id"] for t in quick_fleet.customer_tenants() if t["publisher_access"] == "full")
    quick_fleet.break_secret(broken)
    journal = tmp_path / "journal.db"
    result = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert result.returncode == EXIT_PARTIAL, result.stderr[-2000:]
    view = journal_view(journal)
    mine = [a for a in view.apps if a.tenant_id == broken and a.wave is not None]
    assert mine and all(a.state == AppState.FAILED for a in mine)
    assert all("authentication" in (a.error_message or "").lower() for a in mine)
    others = [a for a in view.apps if a.tenant_id != broken and a.state == AppState.SUCCEEDED]
    assert others
    assert "not-the-secret" not in result.stderr


def test_no_confirmation_without_a_terminal(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    args = [a for a in apply_args(quick_fleet, plan_path, tmp_path / "j.db") if a != "--yes"]
    result = apply_cli(*args)
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert quick_fleet.emulator.stats()["writes_per_app"] == {}


def test_rollback_restores_the_previous_definition(quick_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, plan = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    applied = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert applied.returncode == EXIT_PARTIAL
    run = journal_view(journal)
    done = [a for a in run.apps if a.state == AppState.SUCCEEDED]
    service_catalog = {i.app_id for i in plan.items if i.to_definition_id}
    chosen = [a for a in done if a.app_id in service_catalog][:2]
    assert len(chosen) == 2
    args = ["rollback", run.run_id, "-c", str(quick_fleet.config_path), "--journal", str(journal), "--yes"]
    for app in chosen:
        args += ["--app", app.app_id]
    rolled = apply_cli(*args)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    back = journal_view(journal)
    assert back.kind == "rollback" and {a.state for a in back.apps} == {AppState.SUCCEEDED}
    after = journal_view(journal, run.run_id)
    states = {a.app_id: a.state for a in after.apps}
    assert all(states[a.app_id] == AppState.ROLLED_BACK for a in chosen)
    for app_id, exclusions in deny_exclusions(quick_fleet, chosen).items():
        assert READ_METADATA not in exclusions, app_id
    apps = {a["id"].lower(): a for a in quick_fleet.emulator.state()["applications"]}
    v1 = v1_of(quick_fleet).lower()
    for app in chosen:
        assert apps[app.app_id.lower()]["properties"]["applicationDefinitionId"].lower() == v1
    assert_no_overlapping_writes(quick_fleet)


def _add_system_deny(state: dict[str, Any], mrg: str, name: str, display: str) -> None:
    state["deny_assignments"].append(
        {
            "id": f"{mrg}/providers/Microsoft.Authorization/denyAssignments/{name}",
            "name": name,
            "type": "Microsoft.Authorization/denyAssignments",
            "properties": {
                "denyAssignmentName": display,
                "description": "Created by Blueprint or the platform.",
                "permissions": [
                    {"actions": ["*/delete"], "notActions": [], "dataActions": [], "notDataActions": []}
                ],
                "scope": mrg,
                "doNotApplyToChildScopes": False,
                "principals": [{"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}],
                "excludePrincipals": [],
                "isSystemProtected": True,
            },
        }
    )


def test_two_system_deny_assignments_naming_one_app_are_reported_never_rewritten(
    quick_fleet: Fleet, tmp_path: Path
) -> None:
    """A second system-protected deny assignment naming the app: drifted with the reason, no write.
    A Blueprint lock (system-protected, naming no app) beside another app's: that app is unaffected."""
    emulator = quick_fleet.emulator
    state = emulator.state()
    for tenant in state["tenants"]:
        tenant["client_secret"] = emulator.secret_for(tenant["id"])
    writable = {t["id"] for t in quick_fleet.customer_tenants()} - read_only_tenants(quick_fleet)
    subs = {s["id"] for s in state["subscriptions"] if s["tenant_id"] in writable}
    v1 = v1_of(quick_fleet).lower()
    apps = [
        a
        for a in state["applications"]
        if a["id"].split("/")[2] in subs
        and str(a["properties"].get("applicationDefinitionId", "")).lower() == v1
        and a["properties"]["provisioningState"] == "Succeeded"
    ]
    doubled, beside_blueprint = apps[0], apps[1]
    twin = f"System deny assignment created by managed application {doubled['id']}"
    _add_system_deny(state, doubled["properties"]["managedResourceGroupId"], "twin", twin)
    _add_system_deny(state, beside_blueprint["properties"]["managedResourceGroupId"], "bp", "Blueprint lock")
    emulator.load_state(state)

    plan_path, plan = plan_for(quick_fleet, tmp_path)
    items = {i.app_id.lower(): i for i in plan.items}
    reported = items[doubled["id"].lower()]
    assert reported.decision == Decision.DRIFTED
    assert "2 system-protected deny assignments on its managed resource group name it" in reported.reason
    assert items[beside_blueprint["id"].lower()].decision == Decision.UPDATE

    journal = tmp_path / "state" / "journal.db"
    result = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert result.returncode in (0, EXIT_PARTIAL), result.stderr[-2000:]
    by_id = {a.app_id.lower(): a for a in journal_view(journal).apps}
    assert by_id[beside_blueprint["id"].lower()].state == AppState.SUCCEEDED
    assert by_id[doubled["id"].lower()].state == AppState.DRIFTED  # as planned: not written
    written = {k.lower() for k in emulator.stats()["writes_per_app"]}
    assert beside_blueprint["id"].lower() in written and doubled["id"].lower() not in written


def test_rollback_killed_right_after_a_success_leaves_both_runs_consistent(
    quick_fleet: Fleet, tmp_path: Path
) -> None:
    plan_path, _ = plan_for(quick_fleet, tmp_path)
    journal = tmp_path / "journal.db"
    applied = apply_cli(*apply_args(quick_fleet, plan_path, journal, "--failure-tolerance", "100%"))
    assert applied.returncode == EXIT_PARTIAL, applied.stderr[-2000:]
    parent = journal_view(journal)
    args = ["rollback", parent.run_id, "-c", str(quick_fleet.config_path), "--journal", str(journal), "--yes"]
    # Killed at the fault point where an older version committed the parent's mark separately.
    killed = apply_cli(*args, "--concurrency", "1", env={"ORCHESTRATOR_TEST_CRASH_AT": "succeeded:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    def consistent() -> tuple[set[str], str]:
        with Journal(journal) as j:
            rollback = next(r for r in j.runs() if r.kind == "rollback")
            back = {a.app_id for a in j.apps(rollback.run_id) if a.state == AppState.SUCCEEDED}
            marked = {a.app_id for a in j.apps(parent.run_id) if a.state == AppState.ROLLED_BACK}
        assert back == marked  # every rollback success is marked in the parent, and nothing else
        return back, rollback.run_id

    done, rollback_id = consistent()
    assert len(done) == 2
    resumed = apply_cli(
        "resume", rollback_id, "-c", str(quick_fleet.config_path), "--journal", str(journal), "--yes"
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    done, _ = consistent()
    assert done == {a.app_id for a in parent.apps if a.state == AppState.SUCCEEDED}
    assert_no_overlapping_writes(quick_fleet)
