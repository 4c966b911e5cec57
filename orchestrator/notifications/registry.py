"""The registry of instances, built from notification events, kept in the journal's SQLite file.

Own tables (`notification_*`), the journal's durability rules: WAL, `synchronous=FULL`, one
`BEGIN IMMEDIATE` transaction per batch, committed before the receiver answers 200. The file is opened
through `Journal` first, so a foreign, damaged or newer file is refused exactly as the journal refuses it.

Events are stored once per (app, type, state, eventTime): Azure re-sends until it gets a 200, so a
duplicate is answered 200 and changes nothing. An instance's state follows the event with the latest
`eventTime`, whatever order events arrive in.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import JournalError
from orchestrator.journal import Journal
from orchestrator.journal.migrate import connect, load_migrations, migrate
from orchestrator.models import MarketplacePlan
from orchestrator.notifications.schema import Notification, event_body, iso

MIGRATIONS = load_migrations("orchestrator.notifications", "registry.sql")
SCHEMA_VERSION = len(MIGRATIONS)


class RegistryError(JournalError):
    """The registry cannot be opened, read or written (names the file)."""


@dataclass(frozen=True)
class Instance:
    """One managed application as the events describe it."""

    app_id: str
    kind: str
    subscription_id: str
    definition_id: str | None
    plan: MarketplacePlan | None
    version_time: datetime | None  # eventTime of the Succeeded event the version comes from
    tenant_id: str | None  # the customer tenant, once a confirmation read it with that tenant's identity
    last_event_type: str
    last_state: str
    last_event_time: datetime
    first_seen: datetime  # earliest eventTime
    last_seen: datetime  # latest eventTime
    deleted: bool
    error_code: str | None
    error_message: str | None
    events: int

    @property
    def version(self) -> str:
        if self.plan is not None:
            return f"{self.plan.publisher}/{self.plan.product}/{self.plan.name}@{self.plan.version}"
        return self.definition_id or ""


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: Notification
    received_at: datetime
    confirm_outcome: str | None
    confirm_detail: str | None


def fold(current: Instance | None, event: Notification) -> Instance:
    """The instance after one more (new, not duplicate) event. Pure; order-independent by eventTime."""
    t = event.event_time
    succeeded_write = event.event_type in ("PUT", "PATCH") and event.provisioning_state == "Succeeded"
    if current is None:
        return Instance(
            app_id=event.application_id,
            kind=event.kind,
            subscription_id=event.subscription_id,
            definition_id=event.definition_id,
            plan=event.plan,
            version_time=t if succeeded_write else None,
            tenant_id=None,
            last_event_type=event.event_type,
            last_state=event.provisioning_state,
            last_event_time=t,
            first_seen=t,
            last_seen=t,
            deleted=event.event_type == "DELETE" and event.provisioning_state == "Deleted",
            error_code=event.error_code,
            error_message=event.error_message,
            events=1,
        )
    new = replace(
        current,
        first_seen=min(current.first_seen, t),
        last_seen=max(current.last_seen, t),
        events=current.events + 1,
    )
    # The version is what the latest Succeeded write says; before any, whatever an event carried.
    if succeeded_write and (new.version_time is None or t >= new.version_time):
        new = replace(
            new, definition_id=event.definition_id, plan=event.plan, version_time=t, kind=event.kind
        )
    elif new.version_time is None and new.definition_id is None and new.plan is None:
        new = replace(new, definition_id=event.definition_id, plan=event.plan, kind=event.kind)
    if t >= current.last_event_time:
        new = replace(
            new,
            app_id=event.application_id,
            last_event_type=event.event_type,
            last_state=event.provisioning_state,
            last_event_time=t,
            deleted=event.event_type == "DELETE" and event.provisioning_state == "Deleted",
            error_code=event.error_code,
            error_message=event.error_message,
        )
    return new


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _plan_json(plan: MarketplacePlan | None) -> str | None:
    return json.dumps(plan.model_dump(), sort_keys=True) if plan is not None else None


def _instance(row: sqlite3.Row) -> Instance:
    first_seen, last_seen, last_time = (
        _parse(row["first_seen"]),
        _parse(row["last_seen"]),
        _parse(row["last_event_time"]),
    )
    assert first_seen is not None and last_seen is not None and last_time is not None
    return Instance(
        app_id=row["app_id"],
        kind=row["kind"],
        subscription_id=row["subscription_id"],
        definition_id=row["definition_id"],
        plan=MarketplacePlan(**json.loads(row["plan"])) if row["plan"] else None,
        version_time=_parse(row["version_time"]),
        tenant_id=row["tenant_id"],
        last_event_type=row["last_event_type"],
        last_state=row["last_state"],
        last_event_time=last_time,
        first_seen=first_seen,
        last_seen=last_seen,
        deleted=bool(row["deleted"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        events=row["events"],
    )


def _event_of(body: str) -> Notification:
    from orchestrator.notifications.schema import parse_event

    return parse_event(body.encode())


def _version(conn: sqlite3.Connection) -> int:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'notification_meta'").fetchone():
        return 0
    row = conn.execute("SELECT value FROM notification_meta WHERE key = 'schema'").fetchone()
    return int(row[0]) if row else 0


def _mark_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO notification_meta (key, value) VALUES ('schema', :version)",
        {"version": str(version)},
    )


class Registry:
    """The notification tables of one journal file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = path
        self._now = now
        self._lock = threading.Lock()
        Journal(path).close()  # creates the journal or refuses a file that is not one
        try:
            self._conn = connect(path)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            migrate(
                self._conn,
                MIGRATIONS,
                read_version=_version,
                write_version=_mark_version,
                too_new=self._too_new,
            )
        except sqlite3.Error as exc:
            raise self._fail(f"cannot open the notification registry: {exc}") from None

    @classmethod
    def existing(cls, path: Path) -> Registry | None:
        """The registry in `path` if the file holds one (for readers that must not create it)."""
        if not path.is_file() or path.stat().st_size == 0:
            return None
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'notification_instances'"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            found = None  # let Journal name the problem when someone opens it for real
        return cls(path) if found else None

    def _fail(self, problem: str) -> RegistryError:
        return RegistryError(f"{self.path}: {problem}")

    def _too_new(self, version: int) -> RegistryError:
        return self._fail(
            f"notification registry written by a newer orchestrator (schema {version}, this "
            f"version knows up to {SCHEMA_VERSION}); upgrade the orchestrator"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------

    def record(self, event: Notification) -> bool:
        """Store one event; False when it was a duplicate."""
        return self.record_many([event])[0]

    def record_many(self, events: Sequence[Notification]) -> list[bool]:
        """Store a batch in one transaction (durable when this returns). True per event that was new."""
        received = iso(self._now())
        results: list[bool] = []
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for event in events:
                        results.append(self._store(conn, event, received))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._fail(f"cannot store notification events: {exc}") from None
        return results

    def _store(self, conn: sqlite3.Connection, event: Notification, received: str) -> bool:
        key, etype, state, etime = event.dedup_key
        cursor = conn.execute(
            "INSERT OR IGNORE INTO notification_events (app_key, app_id, event_type, provisioning_state,"
            " event_time, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, event.application_id, etype, state, etime, received, json.dumps(event_body(event))),
        )
        if cursor.rowcount == 0:
            return False
        row = conn.execute("SELECT * FROM notification_instances WHERE app_key = ?", (key,)).fetchone()
        inst = fold(_instance(row) if row is not None else None, event)
        conn.execute(
            "INSERT OR REPLACE INTO notification_instances (app_key, app_id, kind, subscription_id,"
            " definition_id, plan, version_time, tenant_id, last_event_type, last_state, last_event_time,"
            " first_seen, last_seen, deleted, error_code, error_message, events)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                inst.app_id,
                inst.kind,
                inst.subscription_id,
                inst.definition_id,
                _plan_json(inst.plan),
                iso(inst.version_time) if inst.version_time else None,
                inst.tenant_id,
                inst.last_event_type,
                inst.last_state,
                iso(inst.last_event_time),
                iso(inst.first_seen),
                iso(inst.last_seen),
                int(inst.deleted),
                inst.error_code,
                inst.error_message,
                inst.events,
            ),
        )
        return True

    def record_confirmation(
        self, event: Notification, outcome: str, detail: str, tenant_id: str | None = None
    ) -> None:
        """What reading the app back by id said about an event (and, if known, its customer tenant)."""
        key, etype, state, etime = event.dedup_key
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "UPDATE notification_events SET confirm_outcome = ?, confirm_detail = ?, confirmed_at = ?"
                    " WHERE app_key = ? AND event_type = ? AND provisioning_state = ? AND event_time = ?",
                    (outcome, detail, iso(self._now()), key, etype, state, etime),
                )
                if tenant_id is not None:
                    self._conn.execute(
                        "UPDATE notification_instances SET tenant_id = ? WHERE app_key = ?", (tenant_id, key)
                    )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise self._fail(f"cannot record a confirmation: {exc}") from None

    # --- reading ---------------------------------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._fail(f"cannot read the notification registry: {exc}") from None

    def instances(self, *, include_deleted: bool = True) -> list[Instance]:
        rows = self._rows("SELECT * FROM notification_instances ORDER BY app_key")
        return [i for i in map(_instance, rows) if include_deleted or not i.deleted]

    def instance(self, app_id: str) -> Instance | None:
        rows = self._rows("SELECT * FROM notification_instances WHERE app_key = ?", (app_id.lower(),))
        return _instance(rows[0]) if rows else None

    def events(self, app_id: str | None = None, *, after_seq: int = 0) -> list[StoredEvent]:
        """Events in eventTime order (per app), or every event after a sequence number in arrival order."""
        if app_id is not None:
            rows = self._rows(
                "SELECT * FROM notification_events WHERE app_key = ? AND seq > ? ORDER BY event_time, seq",
                (app_id.lower(), after_seq),
            )
        else:
            rows = self._rows("SELECT * FROM notification_events WHERE seq > ? ORDER BY seq", (after_seq,))
        return [
            StoredEvent(
                seq=r["seq"],
                event=_event_of(r["body"]),
                received_at=_parse(r["received_at"]) or datetime.min.replace(tzinfo=UTC),
                confirm_outcome=r["confirm_outcome"],
                confirm_detail=r["confirm_detail"],
            )
            for r in rows
        ]

    def last_seq(self) -> int:
        rows = self._rows("SELECT COALESCE(MAX(seq), 0) FROM notification_events")
        return int(rows[0][0])

    def count_events(self) -> int:
        return int(self._rows("SELECT count(*) FROM notification_events")[0][0])
