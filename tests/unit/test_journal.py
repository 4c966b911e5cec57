"""The journal: schema, durability settings, transitions with their events, and refusing bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.errors import JournalError
from orchestrator.journal import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    BeforeState,
    Journal,
    NewApp,
    Transition,
)
from orchestrator.models import AppState, MarketplacePlan, RunState


def _apps() -> list[NewApp]:
    one = {"tenant_id": "t1", "tenant_name": "Tenant One", "subscription_id": "s1"}
    two = {"tenant_id": "t2", "tenant_name": "Tenant Two", "subscription_id": "s2"}
    return [
        NewApp(app_id="/subscriptions/s1/a1", app_name="a1", wave=0, **one),
        NewApp(app_id="/subscriptions/s2/a2", app_name="a2", wave=1, **two),
        NewApp(
            app_id="/subscriptions/s2/a3",
            app_name="a3",
            wave=None,
            state=AppState.SKIPPED,
            error_message="already current",
            **two,
        ),
    ]


def _new_run(journal: Journal, digest: str = "sha256:abc") -> str:
    return journal.create_run(
        kind="apply",
        plan_digest=digest,
        plan_path="plan.json",
        target_name="v2",
        apps=_apps(),
        wave_names={0: "canary", 1: "rest"},
    )


def test_new_journal_uses_wal_full_sync_and_marks_itself(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.db"
    with Journal(path):
        pass
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "apps", "events"} <= tables
    conn.close()
    journal = Journal(path)
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    journal.close()


def test_create_run_records_every_app_and_an_event_each(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        run_id = _new_run(journal)
        view = journal.run_view(run_id)
        assert view.state == RunState.RUNNING
        assert view.kind == "apply"
        assert [a.state for a in view.apps] == [AppState.PENDING, AppState.PENDING, AppState.SKIPPED]
        assert view.apps[2].error_message == "already current"
        assert view.apps[2].finished_at is not None
        events = journal.events(run_id)
        assert [e.app_id for e in events if e.app_id] == [a.app_id for a in _apps()]


def test_transitions_update_the_row_and_append_events(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    before = BeforeState(
        definition_id=None,
        plan=MarketplacePlan(publisher="p", product="o", name="gold", version="1.0.0"),
        not_actions=("Microsoft.Web/sites/read",),
        not_data_actions=(),
        had_deny_assignment=True,
    )
    app = "/subscriptions/s1/a1"
    with Journal(path) as journal:
        run_id = _new_run(journal)
        journal.record(Transition(run_id, app, AppState.SUBMITTED, attempts=1, before=before))
        journal.record(
            Transition(
                run_id,
                app,
                AppState.SUBMITTED,
                operation_url="https://arm/op/1",
                resume_token='{"op": 1}',
                request_id="req-1",
            )
        )
        journal.record(Transition(run_id, app, AppState.FAILED, error_code="Conflict", error_message="busy"))
    # Reopen: everything was committed.
    with Journal(path) as journal:
        (rec, *_) = journal.apps(run_id)
        assert rec.state == AppState.FAILED
        assert rec.attempts == 1
        assert rec.operation_url == "https://arm/op/1"
        assert rec.resume_token == '{"op": 1}'
        assert rec.request_id == "req-1"
        assert rec.error_code == "Conflict"
        assert rec.before == before
        states = [e.state for e in journal.events(run_id, app)]
        assert states == ["pending", "submitted", "submitted", "failed"]
        (submitted,) = [e for e in journal.events(run_id, app) if e.operation_url]
        assert submitted.request_id == "req-1"
        assert submitted.tenant_id == "t1" and submitted.subscription_id == "s1"
        view = journal.run_view(run_id)
        assert view.apps[0].started_at is not None and view.apps[0].finished_at is not None


def test_success_clears_the_error_and_clear_operation_drops_the_token(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        run_id = _new_run(journal)
        app = "/subscriptions/s1/a1"
        journal.record(Transition(run_id, app, AppState.SUBMITTED, resume_token="tok", error_code="X"))
        journal.record(Transition(run_id, app, AppState.SUCCEEDED, clear_operation=True))
        (rec, *_) = journal.apps(run_id)
        assert rec.error_code is None and rec.resume_token is None and rec.operation_url is None


def test_runs_latest_and_counts(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        assert journal.latest_run() is None
        first = _new_run(journal, "d1")
        second = _new_run(journal, "d2")
        third = _new_run(journal, "d1")
        journal.set_run_state(first, RunState.HALTED)
        assert journal.latest_run_for("d1") == third
        assert journal.latest_run_for("d2") == second
        assert journal.latest_run_for("nope") is None
        assert journal.latest_run() == third
        runs = journal.runs()
        assert [r.run_id for r in runs] == [third, second, first]
        assert runs[2].state == RunState.HALTED
        assert runs[0].counts == {"pending": 2, "skipped": 1}


def test_unknown_run_is_one_clear_error(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal, pytest.raises(JournalError, match="no run 'x'"):
        journal.run_view("x")


def test_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_text("hello, not sqlite\n" * 100)
    with pytest.raises(JournalError, match=r"j\.db: not a journal"):
        Journal(path)
    assert path.read_text() == "hello, not sqlite\n" * 100


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (x)")
    conn.execute("INSERT INTO runs VALUES (1)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not an orchestrator journal"):
        Journal(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT x FROM runs").fetchall() == [(1,)]
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as journal:
        run_id = _new_run(journal)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer orchestrator"):
        Journal(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    conn.commit()
    conn.close()
    with Journal(path) as journal:
        assert journal.run_view(run_id).run_id == run_id


def test_wave_names_are_journaled_with_the_run(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        run_id = _new_run(journal)
        assert journal.run_view(run_id).wave_names == {0: "canary", 1: "rest"}


def test_a_journal_from_before_wave_names_is_brought_forward(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as journal:
        old = _new_run(journal)
    # What schema version 1 left: no waves table.
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE waves")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with Journal(path) as journal:
        assert journal.run_view(old).wave_names == {}  # status falls back to the run's plan file
        new = _new_run(journal, digest="sha256:def")
        assert journal.run_view(new).wave_names == {0: "canary", 1: "rest"}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()


def test_damaged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as journal:
        for _ in range(20):
            _new_run(journal)
    # Let the WAL reach the main file, then scribble over a page in the middle.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    data[4096:8192] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=r"j\.db: damaged"):
        Journal(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        Journal(tmp_path)


def test_one_writer_process_at_a_time(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "j.db"
    with Journal(path) as journal, journal.exclusive():
        # Another process cannot take the lock while this one holds it.
        probe = (
            "import sys; from pathlib import Path; from orchestrator.journal import Journal\n"
            "from orchestrator.errors import JournalError\n"
            f"j = Journal(Path({str(path)!r}))\n"
            "try:\n"
            "    with j.exclusive(): print('got it')\n"
            "except JournalError as e: print(e)\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        assert "another orchestrator process" in out and str(path) in out
    with Journal(path) as journal, journal.exclusive():
        pass  # released on exit


def test_writer_active_tells_a_live_run_from_an_interrupted_one(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        assert not journal.writer_active()  # no writer has ever run
        with journal.exclusive():
            assert journal.writer_active()
        assert not journal.writer_active()  # released (as the OS does when a writer is killed)


def test_status_shows_a_running_run_without_a_writer_as_interrupted(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli import app

    path = tmp_path / "j.db"
    with Journal(path) as journal:
        run_id = _new_run(journal)
        assert journal.run(run_id).state == RunState.RUNNING
    result = CliRunner().invoke(app, ["status", run_id, "--journal", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"state": "interrupted"' in result.output
    with Journal(path) as journal, journal.exclusive():
        live = CliRunner().invoke(app, ["status", run_id, "--journal", str(path), "--format", "json"])
    assert '"state": "running"' in live.output


def test_a_later_rollback_keeps_when_the_upgrade_finished(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    with Journal(tmp_path / "j.db", now=lambda: clock[0]) as journal:
        run_id = _new_run(journal)
        app = "/subscriptions/s1/a1"
        journal.record(Transition(run_id, app, AppState.SUCCEEDED))
        finished = journal.run_view(run_id).apps[0].finished_at
        clock[0] += timedelta(days=2)
        journal.record(Transition(run_id, app, AppState.ROLLED_BACK))
        after = journal.run_view(run_id).apps[0]
        # The run report's timeline ends this app's bar when its upgrade did, not two days later.
        assert after.state == AppState.ROLLED_BACK and after.finished_at == finished


def test_one_row_mapping_serves_the_executor_and_the_status_report(tmp_path: Path) -> None:
    from orchestrator.journal import AppRecord
    from orchestrator.models import AppStatusView

    with Journal(tmp_path / "j.db") as journal:
        run_id = _new_run(journal)
        app = "/subscriptions/s1/a1"
        journal.record(
            Transition(run_id, app, AppState.SUBMITTED, resume_token="op-token", operation_url="u")
        )
        (record, *_) = journal.apps(run_id)
        view = journal.run_view(run_id)
    # The executor's record is the report's row: the same fields, read by the same mapping.
    assert isinstance(record, AppStatusView) and isinstance(record, AppRecord)
    assert record.model_dump(include=set(AppStatusView.model_fields)) == view.model_dump()["apps"][0]
    assert record.started_at is not None and record.resume_token == "op-token"
    # What only the executor needs stays out of what status renders (JSON included).
    body = view.model_dump_json()
    assert "op-token" not in body and "resume_token" not in body and "before" not in body
    assert set(view.model_dump()["apps"][0]) == set(AppStatusView.model_fields)
