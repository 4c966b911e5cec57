"""The durable record of every run: SQLite (WAL, synchronous=FULL) with runs, per-app state and events.

Every state change is one transaction: the app's row is updated and an event appended together, so
the event log always explains the current state. A commit returns only once SQLite has synced it,
which is what lets the executor promise "journaled before the next call to Azure".

The file is ours only if it says so (`PRAGMA application_id`); anything else (a foreign database, a
newer schema, a damaged file) is refused with a `JournalError` naming the file, and never rewritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import JournalError
from orchestrator.models import (
    TERMINAL_APP_STATES,
    AppState,
    AppStatusView,
    MarketplacePlan,
    RunState,
    RunView,
)

DEFAULT_PATH = Path(".state") / "journal.db"
ENV_VAR = "ORCHESTRATOR_JOURNAL"

# "MAOJ" (managed-app orchestrator journal): marks the file as ours.
APPLICATION_ID = 0x4D414F4A

# Forward-only migrations: index i brings the schema from version i to i + 1.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id        TEXT PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (kind IN ('apply', 'rollback')),
        plan_digest   TEXT NOT NULL,
        plan_path     TEXT,
        target_name   TEXT NOT NULL,
        parent_run_id TEXT REFERENCES runs (run_id),
        state         TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX runs_by_digest ON runs (plan_digest, created_at);
    CREATE TABLE apps (
        run_id                  TEXT NOT NULL REFERENCES runs (run_id),
        app_id                  TEXT NOT NULL,
        app_name                TEXT NOT NULL,
        tenant_id               TEXT NOT NULL,
        tenant_name             TEXT NOT NULL,
        subscription_id         TEXT NOT NULL,
        wave                    INTEGER,
        position                INTEGER NOT NULL,
        state                   TEXT NOT NULL,
        attempts                INTEGER NOT NULL DEFAULT 0,
        operation_url           TEXT,
        resume_token            TEXT,
        before_definition_id    TEXT,
        before_plan             TEXT,
        before_not_actions      TEXT,
        before_not_data_actions TEXT,
        before_had_deny         INTEGER,
        after_fingerprint       TEXT,
        error_code              TEXT,
        error_message           TEXT,
        request_id              TEXT,
        started_at              TEXT,
        finished_at             TEXT,
        updated_at              TEXT NOT NULL,
        PRIMARY KEY (run_id, app_id)
    );
    CREATE TABLE events (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        at              TEXT NOT NULL,
        run_id          TEXT NOT NULL,
        tenant_id       TEXT,
        subscription_id TEXT,
        app_id          TEXT,
        state           TEXT NOT NULL,
        attempt         INTEGER,
        request_id      TEXT,
        operation_url   TEXT,
        error_code      TEXT,
        error_message   TEXT,
        message         TEXT
    );
    CREATE INDEX events_by_run ON events (run_id, seq);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True)
class BeforeState:
    """What an app was on before this run wrote to it: what a rollback puts back."""

    definition_id: str | None
    plan: MarketplacePlan | None
    not_actions: tuple[str, ...]
    not_data_actions: tuple[str, ...]
    had_deny_assignment: bool


@dataclass(frozen=True)
class NewApp:
    """One app as it enters a run."""

    app_id: str
    app_name: str
    tenant_id: str
    tenant_name: str
    subscription_id: str
    wave: int | None
    state: AppState = AppState.PENDING
    error_message: str | None = None  # e.g. the plan's reason for a skipped app
    before: BeforeState | None = None


@dataclass(frozen=True)
class AppRecord:
    """An app's row in a run, as the executor needs it to continue."""

    run_id: str
    app_id: str
    app_name: str
    tenant_id: str
    tenant_name: str
    subscription_id: str
    wave: int | None
    state: AppState
    attempts: int
    operation_url: str | None
    resume_token: str | None
    before: BeforeState | None
    after_fingerprint: str | None
    error_code: str | None
    error_message: str | None
    request_id: str | None


@dataclass(frozen=True)
class Transition:
    """One state change of one app. Fields left None keep their stored value, except the error fields,
    which are always replaced (a success clears an earlier error)."""

    run_id: str
    app_id: str
    state: AppState
    attempts: int | None = None
    operation_url: str | None = None
    resume_token: str | None = None
    clear_operation: bool = False
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    before: BeforeState | None = None
    after_fingerprint: str | None = None
    message: str | None = None  # free text for the event log only


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    kind: str
    plan_digest: str
    plan_path: str | None
    target_name: str
    parent_run_id: str | None
    state: RunState
    created_at: datetime
    updated_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    run_id: str
    tenant_id: str | None
    subscription_id: str | None
    app_id: str | None
    state: str
    attempt: int | None
    request_id: str | None
    operation_url: str | None
    error_code: str | None
    error_message: str | None
    message: str | None


def resolve_path(flag: Path | None, env: dict[str, str] | None = None) -> Path:
    """--journal, else $ORCHESTRATOR_JOURNAL, else .state/journal.db."""
    import os

    environ = os.environ if env is None else env
    if flag is not None:
        return flag
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR])
    return DEFAULT_PATH


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")


def new_run_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


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

    def _open(self, path: Path, create: bool) -> sqlite3.Connection:
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
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
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
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (tables or version or app_id):
            raise self._fail(
                "not an orchestrator journal (a different SQLite database); refusing to touch it"
            )
        if version > SCHEMA_VERSION:
            raise self._fail(
                f"written by a newer orchestrator (journal schema {version}, this version knows up to "
                f"{SCHEMA_VERSION}); upgrade the orchestrator"
            )
        if existing:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise self._fail(f"damaged journal: {problems[0]}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise self._fail(f"cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            script = _MIGRATIONS[target - 1]
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in (s.strip() for s in script.split(";")):
                    if statement:
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={target}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the journal's writer lock: one apply/resume/rollback process per journal at a time
        (two would drive the same apps). The OS drops the lock when the process dies, even by SIGKILL."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = lock_path.open("a+")
        except OSError as exc:
            raise self._fail(f"cannot create its lock file {lock_path}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._fail(
                    "another orchestrator process is applying with this journal right now; "
                    "wait for it to finish (or use another journal)"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()

    def writer_active(self) -> bool:
        """Whether a process holds the writer lock now. A run recorded as `running` while no process
        holds it was interrupted (e.g. killed) and waits for `apply` or `resume` to continue it."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = lock_path.open("r")
        except FileNotFoundError:
            return False  # no writer has ever run
        except OSError:
            return True  # cannot tell: do not claim an interruption
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, work: Callable[[sqlite3.Connection], None]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    work(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._fail(f"cannot write: {exc}") from None

    def create_run(
        self,
        *,
        kind: str,
        plan_digest: str,
        plan_path: str | None,
        target_name: str,
        apps: Sequence[NewApp],
        parent_run_id: str | None = None,
    ) -> str:
        now = self._now()
        run_id = new_run_id(now)
        stamp = _iso(now)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO runs (run_id, kind, plan_digest, plan_path, target_name, parent_run_id, state,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    kind,
                    plan_digest,
                    plan_path,
                    target_name,
                    parent_run_id,
                    RunState.RUNNING,
                    stamp,
                    stamp,
                ),
            )
            for position, app in enumerate(apps):
                finished = stamp if app.state in TERMINAL_APP_STATES else None
                conn.execute(
                    "INSERT INTO apps (run_id, app_id, app_name, tenant_id, tenant_name, subscription_id,"
                    " wave, position, state, error_message, finished_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        app.app_id,
                        app.app_name,
                        app.tenant_id,
                        app.tenant_name,
                        app.subscription_id,
                        app.wave,
                        position,
                        app.state,
                        app.error_message,
                        finished,
                        stamp,
                    ),
                )
                if app.before is not None:
                    _store_before(conn, run_id, app.app_id, app.before)
                _append_event(
                    conn,
                    stamp,
                    run_id,
                    app.tenant_id,
                    app.subscription_id,
                    app.app_id,
                    app.state,
                    0,
                    None,
                    None,
                    None,
                    app.error_message,
                    "planned",
                )
            _append_event(
                conn,
                stamp,
                run_id,
                None,
                None,
                None,
                RunState.RUNNING,
                None,
                None,
                None,
                None,
                None,
                f"{kind} run created",
            )

        self._write(work)
        return run_id

    def set_run_state(self, run_id: str, state: RunState, message: str | None = None) -> None:
        stamp = _iso(self._now())

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE runs SET state = ?, updated_at = ? WHERE run_id = ?", (state, stamp, run_id))
            _append_event(conn, stamp, run_id, None, None, None, state, None, None, None, None, None, message)

        self._write(work)

    def record(self, transition: Transition) -> None:
        self.record_many([transition])

    def record_many(self, transitions: Iterable[Transition]) -> None:
        """Commit several transitions in one transaction (group commit: one sync for many apps)."""
        batch = list(transitions)
        if not batch:
            return
        stamp = _iso(self._now())

        def work(conn: sqlite3.Connection) -> None:
            touched: set[str] = set()
            for t in batch:
                _apply_transition(conn, stamp, t)
                touched.add(t.run_id)
            for run_id in touched:
                conn.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", (stamp, run_id))

        self._write(work)

    def repair_rollbacks(self) -> list[tuple[str, str]]:
        """Mark `rolled_back` in its parent run every app a rollback run succeeded on while the parent
        still says `succeeded`; returns the (parent run, app) pairs repaired, all in one transaction.

        Versions before the two marks shared a transaction committed the rollback's success first; a
        crash before the second commit left the parent claiming the app is upgraded, and resume skips
        terminal apps, so nothing else would ever correct it.
        """
        found: list[tuple[str, str, str]] = []
        stamp = _iso(self._now())

        def work(conn: sqlite3.Connection) -> None:
            found.extend(
                conn.execute(
                    "SELECT r.parent_run_id, a.app_id, r.run_id FROM runs r"
                    " JOIN apps a ON a.run_id = r.run_id"
                    " JOIN apps p ON p.run_id = r.parent_run_id AND p.app_id = a.app_id"
                    " WHERE r.kind = 'rollback' AND a.state = ? AND p.state = ?",
                    (AppState.SUCCEEDED, AppState.SUCCEEDED),
                ).fetchall()
            )
            for parent, app_id, rollback in found:
                _apply_transition(
                    conn,
                    stamp,
                    Transition(
                        run_id=parent,
                        app_id=app_id,
                        state=AppState.ROLLED_BACK,
                        message=f"rolled back by run {rollback} (repaired: the mark was lost)",
                    ),
                )

        self._write(work)
        return [(parent, app_id) for parent, app_id, _ in found]

    # --- reading ---------------------------------------------------------------------------------

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                raise self._fail(f"cannot read: {exc}") from None

    def runs(self) -> list[RunSummary]:
        """Every run, newest first, with per-state app counts."""
        rows = self._read("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC")
        counts: dict[str, dict[str, int]] = {}
        for row in self._read("SELECT run_id, state, count(*) AS n FROM apps GROUP BY run_id, state"):
            counts.setdefault(row["run_id"], {})[row["state"]] = row["n"]
        return [_summary(row, counts.get(row["run_id"], {})) for row in rows]

    def run(self, run_id: str) -> RunSummary:
        rows = self._read("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise self._fail(f"no run {run_id!r} in this journal")
        counts = {
            r["state"]: r["n"]
            for r in self._read(
                "SELECT state, count(*) AS n FROM apps WHERE run_id = ? GROUP BY state", (run_id,)
            )
        }
        return _summary(rows[0], counts)

    def latest_run_for(self, plan_digest: str, kind: str = "apply") -> str | None:
        rows = self._read(
            "SELECT run_id FROM runs WHERE plan_digest = ? AND kind = ? ORDER BY created_at DESC, rowid DESC"
            " LIMIT 1",
            (plan_digest, kind),
        )
        return str(rows[0]["run_id"]) if rows else None

    def latest_run(self) -> str | None:
        rows = self._read("SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1")
        return str(rows[0]["run_id"]) if rows else None

    def apps(self, run_id: str) -> list[AppRecord]:
        self.run(run_id)  # names the run when it does not exist
        rows = self._read("SELECT * FROM apps WHERE run_id = ? ORDER BY position", (run_id,))
        return [_record(row) for row in rows]

    def events(self, run_id: str, app_id: str | None = None) -> list[Event]:
        if app_id is None:
            rows = self._read("SELECT * FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        else:
            rows = self._read(
                "SELECT * FROM events WHERE run_id = ? AND app_id = ? ORDER BY seq", (run_id, app_id)
            )
        return [
            Event(
                seq=r["seq"],
                at=datetime.fromisoformat(r["at"]),
                run_id=r["run_id"],
                tenant_id=r["tenant_id"],
                subscription_id=r["subscription_id"],
                app_id=r["app_id"],
                state=r["state"],
                attempt=r["attempt"],
                request_id=r["request_id"],
                operation_url=r["operation_url"],
                error_code=r["error_code"],
                error_message=r["error_message"],
                message=r["message"],
            )
            for r in rows
        ]

    def run_view(self, run_id: str) -> RunView:
        summary = self.run(run_id)
        rows = self._read("SELECT * FROM apps WHERE run_id = ? ORDER BY position", (run_id,))
        apps = tuple(
            AppStatusView(
                app_id=r["app_id"],
                app_name=r["app_name"],
                tenant_id=r["tenant_id"],
                tenant_name=r["tenant_name"],
                subscription_id=r["subscription_id"],
                wave=r["wave"],
                state=AppState(r["state"]),
                attempts=r["attempts"],
                error_code=r["error_code"],
                error_message=r["error_message"],
                request_id=r["request_id"],
                updated_at=_parse(r["updated_at"]),
                started_at=_parse(r["started_at"]),
                finished_at=_parse(r["finished_at"]),
            )
            for r in rows
        )
        return RunView(
            run_id=summary.run_id,
            kind=summary.kind,
            plan_digest=summary.plan_digest,
            plan_path=summary.plan_path,
            target_name=summary.target_name,
            state=summary.state,
            started_at=summary.created_at,
            updated_at=summary.updated_at,
            apps=apps,
        )


def _summary(row: sqlite3.Row, counts: dict[str, int]) -> RunSummary:
    return RunSummary(
        run_id=row["run_id"],
        kind=row["kind"],
        plan_digest=row["plan_digest"],
        plan_path=row["plan_path"],
        target_name=row["target_name"],
        parent_run_id=row["parent_run_id"],
        state=RunState(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        counts=dict(counts),
    )


def _record(row: sqlite3.Row) -> AppRecord:
    before = None
    if row["before_had_deny"] is not None:
        plan_json = row["before_plan"]
        before = BeforeState(
            definition_id=row["before_definition_id"],
            plan=MarketplacePlan.model_validate_json(plan_json) if plan_json else None,
            not_actions=tuple(json.loads(row["before_not_actions"] or "[]")),
            not_data_actions=tuple(json.loads(row["before_not_data_actions"] or "[]")),
            had_deny_assignment=bool(row["before_had_deny"]),
        )
    return AppRecord(
        run_id=row["run_id"],
        app_id=row["app_id"],
        app_name=row["app_name"],
        tenant_id=row["tenant_id"],
        tenant_name=row["tenant_name"],
        subscription_id=row["subscription_id"],
        wave=row["wave"],
        state=AppState(row["state"]),
        attempts=row["attempts"],
        operation_url=row["operation_url"],
        resume_token=row["resume_token"],
        before=before,
        after_fingerprint=row["after_fingerprint"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        request_id=row["request_id"],
    )


def _store_before(conn: sqlite3.Connection, run_id: str, app_id: str, before: BeforeState) -> None:
    conn.execute(
        "UPDATE apps SET before_definition_id = ?, before_plan = ?, before_not_actions = ?,"
        " before_not_data_actions = ?, before_had_deny = ? WHERE run_id = ? AND app_id = ?",
        (
            before.definition_id,
            before.plan.model_dump_json() if before.plan else None,
            json.dumps(list(before.not_actions)),
            json.dumps(list(before.not_data_actions)),
            int(before.had_deny_assignment),
            run_id,
            app_id,
        ),
    )


def _apply_transition(conn: sqlite3.Connection, stamp: str, t: Transition) -> None:
    row = conn.execute(
        "SELECT tenant_id, subscription_id, attempts, operation_url, request_id FROM apps"
        " WHERE run_id = ? AND app_id = ?",
        (t.run_id, t.app_id),
    ).fetchone()
    if row is None:
        raise JournalError(f"run {t.run_id} has no app {t.app_id}")
    tenant_id, subscription_id, attempts, operation_url, request_id = row
    attempts = t.attempts if t.attempts is not None else attempts
    if t.clear_operation:
        operation_url = None
    if t.operation_url is not None:
        operation_url = t.operation_url
    request_id = t.request_id if t.request_id is not None else request_id
    sets = [
        "state = ?",
        "attempts = ?",
        "operation_url = ?",
        "request_id = ?",
        "error_code = ?",
        "error_message = ?",
        "updated_at = ?",
    ]
    params: list[object] = [
        t.state,
        attempts,
        operation_url,
        request_id,
        t.error_code,
        t.error_message,
        stamp,
    ]
    if t.clear_operation:
        sets.append("resume_token = NULL")
    if t.resume_token is not None:
        sets.append("resume_token = ?")
        params.append(t.resume_token)
    if t.after_fingerprint is not None:
        sets.append("after_fingerprint = ?")
        params.append(t.after_fingerprint)
    if t.state == AppState.SUBMITTED:
        sets.append("started_at = coalesce(started_at, ?)")
        params.append(stamp)
    if t.state == AppState.ROLLED_BACK:
        # A later rollback keeps the time the upgrade finished (the run's timeline stays its own).
        sets.append("finished_at = coalesce(finished_at, ?)")
    else:
        sets.append("finished_at = ?")
    params.append(stamp if t.state in TERMINAL_APP_STATES else None)
    sql = f"UPDATE apps SET {', '.join(sets)} WHERE run_id = ? AND app_id = ?"  # noqa: S608 - fixed columns
    conn.execute(sql, (*params, t.run_id, t.app_id))
    if t.before is not None:
        _store_before(conn, t.run_id, t.app_id, t.before)
    _append_event(
        conn,
        stamp,
        t.run_id,
        tenant_id,
        subscription_id,
        t.app_id,
        t.state,
        attempts,
        t.request_id,
        t.operation_url,
        t.error_code,
        t.error_message,
        t.message,
    )


def _append_event(
    conn: sqlite3.Connection,
    stamp: str,
    run_id: str,
    tenant_id: str | None,
    subscription_id: str | None,
    app_id: str | None,
    state: str,
    attempt: int | None,
    request_id: str | None,
    operation_url: str | None,
    error_code: str | None,
    error_message: str | None,
    message: str | None,
) -> None:
    conn.execute(
        "INSERT INTO events (at, run_id, tenant_id, subscription_id, app_id, state, attempt, request_id,"
        " operation_url, error_code, error_message, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            stamp,
            run_id,
            tenant_id,
            subscription_id,
            app_id,
            str(state),
            attempt,
            request_id,
            operation_url,
            error_code,
            error_message,
            message,
        ),
    )
