"""The durable record of every run: SQLite (WAL, synchronous=FULL) with runs, per-app state and events.

Every state change is one transaction: the app's row is updated and an event appended together, so
the event log always explains the current state. A commit returns only once SQLite has synced it,
which is what lets the executor promise "journaled before the next call to Azure".

The file is ours only if it says so (`PRAGMA application_id`); anything else (a foreign database, a
newer schema, a damaged file) is refused with a `JournalError` naming the file, and never rewritten.
Once open, a failing disk (I/O error, disk full) is `JournalUnavailable`: not bad input, and what was
committed before it stays committed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import JournalError, JournalUnavailable
from orchestrator.journal import lock, writes
from orchestrator.journal.migrate import connect, load_migrations, migrate, transaction
from orchestrator.journal.paths import ENV_VAR
from orchestrator.journal.records import (
    AppRecord,
    Event,
    NewApp,
    RunSummary,
    Transition,
    app_record,
    event,
    iso,
    new_run_id,
    run_summary,
)
from orchestrator.models import AppState, RunState, RunView

# "MAOJ" (managed-app orchestrator journal): marks the file as ours.
APPLICATION_ID = 0x4D414F4A

MIGRATIONS = load_migrations("orchestrator.journal", "schema.sql")
SCHEMA_VERSION = len(MIGRATIONS)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _mark_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={int(version)}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Journal:
    """One journal file. Thread-safe: a lock serialises use of the one connection."""

    def __init__(self, path: Path, *, now: Callable[[], datetime] = _utcnow, create: bool = True) -> None:
        """Open the journal at `path`; with `create=False` (every command but `apply`) a missing
        journal is an error and nothing is created, neither the file nor its folder."""
        self.path = path
        self._now = now
        self._lock = threading.Lock()
        self._conn = self._open(path, create)

    # --- opening ---------------------------------------------------------------------------------

    def _fail(self, problem: str) -> JournalError:
        return JournalError(f"{self.path}: {problem}")

    def _check_file(self, path: Path, create: bool) -> bool:
        """Whether a journal file exists already; refuses what cannot be one before SQLite opens it."""
        existing = path.exists() and path.stat().st_size > 0
        if path.exists() and path.is_dir():
            raise self._fail("is a directory, not a journal file")
        if path.exists() and not path.is_file():
            raise self._fail("not a regular file (a device, FIFO or socket), not a journal")
        if not existing and not create:
            raise self._fail(
                f"no journal here yet (`orchestrator apply` creates one; give --journal or ${ENV_VAR})"
            )
        # No header read through a file of our own: closing any descriptor of the file drops every
        # POSIX lock this process holds on it, the other connections' (the registry's) included, and
        # another process could then delete the WAL under them. SQLite itself says SQLITE_NOTADB.
        if not existing:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._fail(f"cannot create its folder: {exc.strerror or exc}") from None
        return existing

    def _open(self, path: Path, create: bool) -> sqlite3.Connection:
        existing = self._check_file(path, create)
        try:
            conn = connect(path)
        except sqlite3.Error as exc:
            raise self._fail(f"cannot open: {exc}") from None
        try:
            self._check_and_migrate(conn, existing)
        except JournalError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise self._fail("not a journal (not an SQLite database)") from None
            raise self._fail(f"damaged or unreadable journal: {exc}") from None
        return conn

    def _check_and_migrate(self, conn: sqlite3.Connection, existing: bool) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = _user_version(conn)
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (tables or version or app_id):
            raise self._fail(
                "not an orchestrator journal (a different SQLite database); refusing to touch it"
            )
        if version > SCHEMA_VERSION:  # refused before anything (even WAL mode) is written
            raise self._too_new(version)
        if existing:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise self._fail(f"damaged journal: {problems[0]}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise self._fail(f"cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(
            conn, MIGRATIONS, read_version=_user_version, write_version=_mark_version, too_new=self._too_new
        )

    def _too_new(self, version: int) -> JournalError:
        return self._fail(
            f"written by a newer orchestrator (journal schema {version}, this version knows up to "
            f"{SCHEMA_VERSION}); upgrade the orchestrator"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the journal's writer lock (see `journal.lock`): one writing process per journal."""
        return lock.exclusive(self.path)

    def writer_active(self) -> bool:
        """Whether a process holds the writer lock now. A run recorded as `running` while no process
        holds it was interrupted (e.g. killed) and waits for `apply` or `resume` to continue it."""
        return lock.writer_active(self.path)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- errors once open ------------------------------------------------------------------------

    def _sqlite_failed(self, doing: str, exc: sqlite3.Error) -> JournalError | JournalUnavailable:
        """What an SQLite error while reading or writing an open journal is: the disk or the file
        being unavailable (I/O error, full, locked too long) is not bad input; anything else says
        the file is not what it should be."""
        if isinstance(exc, sqlite3.OperationalError):
            return JournalUnavailable(
                f"{self.path}: cannot {doing}: {_one_line(exc)} (what was journaled before is kept; "
                "fix the disk, then `orchestrator resume`)"
            )
        return self._fail(f"cannot {doing}: {_one_line(exc)}")

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, work: Callable[[sqlite3.Connection], None]) -> None:
        with self._lock:
            try:
                with transaction(self._conn) as conn:
                    work(conn)
            except sqlite3.Error as exc:
                raise self._sqlite_failed("write", exc) from None

    def create_run(
        self,
        *,
        kind: str,
        plan_digest: str,
        plan_path: str | None,
        target_name: str,
        apps: Sequence[NewApp],
        wave_names: Mapping[int, str],
        parent_run_id: str | None = None,
    ) -> str:
        now = self._now()
        run_id = new_run_id(now)

        def work(conn: sqlite3.Connection) -> None:
            writes.insert_run(
                conn,
                run_id=run_id,
                stamp=iso(now),
                kind=kind,
                plan_digest=plan_digest,
                plan_path=plan_path,
                target_name=target_name,
                parent_run_id=parent_run_id,
                apps=apps,
                wave_names=wave_names,
            )

        self._write(work)
        return run_id

    def set_run_state(self, run_id: str, state: RunState, message: str | None = None) -> None:
        stamp = iso(self._now())
        self._write(
            lambda conn: writes.set_run_state(conn, run_id=run_id, stamp=stamp, state=state, message=message)
        )

    def record(self, transition: Transition) -> None:
        self.record_many([transition])

    def record_many(self, transitions: Iterable[Transition]) -> None:
        """Commit several transitions in one transaction (group commit: one sync for many apps)."""
        batch = list(transitions)
        if not batch:
            return
        stamp = iso(self._now())

        def work(conn: sqlite3.Connection) -> None:
            for t in batch:
                writes.apply_transition(conn, stamp, t)
            for run_id in dict.fromkeys(t.run_id for t in batch):
                writes.touch_run(conn, run_id=run_id, stamp=stamp)

        self._write(work)

    def repair_rollbacks(self) -> list[tuple[str, str]]:
        """Mark `rolled_back` in its parent run every app a rollback run succeeded on while the parent
        still says `succeeded`; returns the (parent run, app) pairs repaired, all in one transaction.

        Versions before the two marks shared a transaction committed the rollback's success first; a
        crash before the second commit left the parent claiming the app is upgraded, and resume skips
        terminal apps, so nothing else would ever correct it.
        """
        found: list[tuple[str, str, str]] = []
        stamp = iso(self._now())

        def work(conn: sqlite3.Connection) -> None:
            found.extend(
                conn.execute(
                    "SELECT r.parent_run_id, a.app_id, r.run_id FROM runs r"
                    " JOIN apps a ON a.run_id = r.run_id"
                    " JOIN apps p ON p.run_id = r.parent_run_id AND p.app_id = a.app_id"
                    " WHERE r.kind = 'rollback' AND a.state = :succeeded AND p.state = :succeeded",
                    {"succeeded": AppState.SUCCEEDED},
                ).fetchall()
            )
            for parent, app_id, rollback in found:
                message = f"rolled back by run {rollback} (repaired: the mark was lost)"
                writes.apply_transition(
                    conn, stamp, Transition(parent, app_id, AppState.ROLLED_BACK, message=message)
                )

        self._write(work)
        return [(parent, app_id) for parent, app_id, _ in found]

    # --- reading ---------------------------------------------------------------------------------

    def _read(self, sql: str, params: dict[str, Any] | None = None) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params or {})
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                raise self._sqlite_failed("read", exc) from None

    def runs(self) -> list[RunSummary]:
        """Every run, newest first, with per-state app counts."""
        rows = self._read("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC")
        counts: dict[str, dict[str, int]] = {}
        for row in self._read("SELECT run_id, state, count(*) AS n FROM apps GROUP BY run_id, state"):
            counts.setdefault(row["run_id"], {})[row["state"]] = row["n"]
        return [run_summary(row, counts.get(row["run_id"], {})) for row in rows]

    def run(self, run_id: str) -> RunSummary:
        rows = self._read("SELECT * FROM runs WHERE run_id = :run_id", {"run_id": run_id})
        if not rows:
            raise self._fail(f"no run {run_id!r} in this journal")
        counts = self._read(
            "SELECT state, count(*) AS n FROM apps WHERE run_id = :run_id GROUP BY state", {"run_id": run_id}
        )
        return run_summary(rows[0], {r["state"]: r["n"] for r in counts})

    def latest_run_for(self, plan_digest: str, kind: str = "apply") -> str | None:
        rows = self._read(
            "SELECT run_id FROM runs WHERE plan_digest = :digest AND kind = :kind"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1",
            {"digest": plan_digest, "kind": kind},
        )
        return str(rows[0]["run_id"]) if rows else None

    def latest_run(self) -> str | None:
        rows = self._read("SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1")
        return str(rows[0]["run_id"]) if rows else None

    def apps(self, run_id: str, *, in_waves: bool = False) -> list[AppRecord]:
        """The run's apps in plan order; `in_waves`: only those in a wave (the ones a run works on)."""
        self.run(run_id)  # names the run when it does not exist
        return list(self._app_records(run_id, in_waves=in_waves))

    def _app_records(self, run_id: str, *, in_waves: bool = False) -> Iterator[AppRecord]:
        waves = " AND wave IS NOT NULL" if in_waves else ""
        rows = self._read(
            f"SELECT * FROM apps WHERE run_id = :run_id{waves} ORDER BY position",  # noqa: S608 - fixed text
            {"run_id": run_id},
        )
        return map(app_record, rows)

    def events(self, run_id: str, app_id: str | None = None) -> list[Event]:
        where = "run_id = :run_id" + (" AND app_id = :app_id" if app_id is not None else "")
        rows = self._read(
            f"SELECT * FROM events WHERE {where} ORDER BY seq",  # noqa: S608 - fixed text
            {"run_id": run_id, "app_id": app_id},
        )
        return [event(row) for row in rows]

    def run_view(self, run_id: str) -> RunView:
        summary = self.run(run_id)
        waves = self._read("SELECT wave, name FROM waves WHERE run_id = :run_id", {"run_id": run_id})
        names = {int(row["wave"]): str(row["name"]) for row in waves}
        return summary.view(tuple(self._app_records(run_id)), names)
