"""A disk that fails under an open journal: not bad input (exit 1, not 2), one line, nothing lost."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError, JournalError, JournalUnavailable
from orchestrator.journal import Journal, NewApp, Transition
from orchestrator.models import AppState

A1, A2 = "/subscriptions/s1/a1", "/subscriptions/s1/a2"


class FailingDisk:
    """The journal's connection, until `fail` says a statement hits a failing disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.fail: Callable[[str], sqlite3.Error | None] = lambda _sql: None

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        error = self.fail(sql)
        if error is not None:
            raise error
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[Journal, FailingDisk, str]]:
    journal = Journal(tmp_path / "j.db")
    run_id = journal.create_run(
        kind="apply",
        plan_digest="sha256:abc",
        plan_path="plan.json",
        target_name="v2",
        apps=[
            NewApp(
                app_id=app_id,
                app_name=app_id[-2:],
                tenant_id="t1",
                tenant_name="T1",
                subscription_id="s1",
                wave=0,
            )
            for app_id in (A1, A2)
        ],
        wave_names={0: "all"},
    )
    journal.record(Transition(run_id, A1, AppState.SUBMITTED, attempts=1, operation_url="https://arm/op/1"))
    disk = FailingDisk(journal._conn)
    journal._conn = disk  # type: ignore[assignment]
    yield journal, disk, run_id
    journal._conn = disk.conn
    journal.close()


def _assert_kept(path: Path, run_id: str) -> None:
    """Reopened: what was committed before the failure is there, and nothing of the failed write."""
    with Journal(path, create=False) as again:
        apps = {a.app_id: a for a in again.apps(run_id)}
        assert apps[A1].state == AppState.SUBMITTED and apps[A1].operation_url == "https://arm/op/1"
        assert apps[A2].state == AppState.PENDING
        assert [e.state for e in again.events(run_id, A1)] == ["pending", "submitted"]
        assert len(again.events(run_id)) == 4  # two apps planned, the run created, one submit


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        ("UPDATE apps", sqlite3.OperationalError("disk I/O error")),
        ("INSERT INTO events", sqlite3.OperationalError("database or disk is full")),
        ("COMMIT", sqlite3.OperationalError("disk I/O error")),
    ],
)
def test_a_disk_failing_mid_run_is_journal_unavailable_and_loses_nothing(
    journal: tuple[Journal, FailingDisk, str], failing: str, error: sqlite3.Error
) -> None:
    j, disk, run_id = journal
    disk.fail = lambda sql: error if sql.startswith(failing) else None
    with pytest.raises(JournalUnavailable) as caught:
        j.record_many(
            [
                Transition(run_id, A1, AppState.SUCCEEDED),
                Transition(run_id, A2, AppState.SUBMITTED, attempts=1),
            ]
        )
    assert not isinstance(caught.value, InputError) and caught.value.exit_code == 1
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{j.path}: cannot write: ")
    assert str(error) in message and "resume" in message
    assert not disk.conn.in_transaction  # rolled back, not left half-written
    disk.fail = lambda _sql: None
    _assert_kept(j.path, run_id)


def test_a_failing_rollback_does_not_hide_the_disk_error(journal: tuple[Journal, FailingDisk, str]) -> None:
    j, disk, run_id = journal
    disk.fail = lambda sql: (
        sqlite3.OperationalError("disk I/O error") if sql.startswith(("UPDATE", "ROLLBACK")) else None
    )
    with pytest.raises(JournalUnavailable, match="disk I/O error"):
        j.set_run_state(run_id, j.run(run_id).state)
    disk.fail = lambda _sql: None
    disk.conn.execute("ROLLBACK")  # what SQLite does itself when the connection closes
    _assert_kept(j.path, run_id)


def test_a_disk_failing_on_a_read_is_journal_unavailable(journal: tuple[Journal, FailingDisk, str]) -> None:
    j, disk, run_id = journal
    disk.fail = lambda sql: sqlite3.OperationalError("disk I/O error") if sql.startswith("SELECT") else None
    with pytest.raises(JournalUnavailable, match=r"cannot read: disk I/O error"):
        j.run_view(run_id)


def test_a_damaged_file_found_mid_run_stays_a_journal_error(
    journal: tuple[Journal, FailingDisk, str],
) -> None:
    j, disk, run_id = journal
    disk.fail = lambda sql: (
        sqlite3.DatabaseError("database disk image is malformed") if sql.startswith("UPDATE") else None
    )
    with pytest.raises(JournalError, match="cannot write: database disk image is malformed") as caught:
        j.record(Transition(run_id, A1, AppState.SUCCEEDED))
    assert caught.value.exit_code == 2
    disk.fail = lambda _sql: None
    _assert_kept(j.path, run_id)


async def test_the_engine_stops_on_a_failing_disk_and_azure_saw_only_journaled_writes(tmp_path: Path) -> None:
    from orchestrator.executor import run_plan
    from tests.unit.test_engine import fleet, make_plan, no_sleep, settings

    arm, apps = fleet(12)
    path = tmp_path / "journal.db"
    with Journal(path) as j:
        disk = FailingDisk(j._conn)
        j._conn = disk  # type: ignore[assignment]
        commits = {"n": 0}

        def fail_after_some(sql: str) -> sqlite3.Error | None:
            if sql == "COMMIT":
                commits["n"] += 1
            return (
                sqlite3.OperationalError("disk I/O error") if commits["n"] > 4 and sql == "COMMIT" else None
            )

        disk.fail = fail_after_some
        with pytest.raises(JournalUnavailable, match="disk I/O error"):
            await run_plan(make_plan(apps), arm, j, settings(), sleep=no_sleep)
        j._conn = disk.conn
    with Journal(path, create=False) as again:
        (summary,) = again.runs()
        records = {r.app_id.lower(): r for r in again.apps(summary.run_id)}
    # No app was marked failed for the journal's fault, and every app Azure was asked to write is
    # journaled as at least submitted (so resume re-reads it rather than writing blind).
    assert all(r.state != AppState.FAILED for r in records.values())
    written = [app_id for app_id, n in arm.writes.items() if n]
    assert written and all(records[app_id].state != AppState.PENDING for app_id in written)
