"""The journal's writes, as SQL inside a transaction the caller holds: a run and its apps, one app's
transition, and the event that explains each change (written in the same transaction as the change)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from orchestrator.errors import JournalError
from orchestrator.journal.records import NewApp, Transition, before_columns
from orchestrator.models import TERMINAL_APP_STATES, AppState, RunState


def append_event(
    conn: sqlite3.Connection,
    *,
    at: str,
    run_id: str,
    state: str,
    tenant_id: str | None = None,
    subscription_id: str | None = None,
    app_id: str | None = None,
    attempt: int | None = None,
    request_id: str | None = None,
    operation_url: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    message: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO events (at, run_id, tenant_id, subscription_id, app_id, state, attempt, request_id,"
        " operation_url, error_code, error_message, message) VALUES (:at, :run_id, :tenant_id,"
        " :subscription_id, :app_id, :state, :attempt, :request_id, :operation_url, :error_code,"
        " :error_message, :message)",
        {
            "at": at,
            "run_id": run_id,
            "tenant_id": tenant_id,
            "subscription_id": subscription_id,
            "app_id": app_id,
            "state": str(state),
            "attempt": attempt,
            "request_id": request_id,
            "operation_url": operation_url,
            "error_code": error_code,
            "error_message": error_message,
            "message": message,
        },
    )


def insert_run(
    conn: sqlite3.Connection,
    *,
    run_id: str,
    stamp: str,
    kind: str,
    plan_digest: str,
    plan_path: str | None,
    target_name: str,
    parent_run_id: str | None,
    apps: Sequence[NewApp],
    wave_names: Mapping[int, str],
) -> None:
    """A new run, `running`, with its apps in plan order and its waves' names; an event for each app
    and for the run."""
    conn.execute(
        "INSERT INTO runs (run_id, kind, plan_digest, plan_path, target_name, parent_run_id, state,"
        " created_at, updated_at) VALUES (:run_id, :kind, :plan_digest, :plan_path, :target_name,"
        " :parent_run_id, :state, :stamp, :stamp)",
        {
            "run_id": run_id,
            "kind": kind,
            "plan_digest": plan_digest,
            "plan_path": plan_path,
            "target_name": target_name,
            "parent_run_id": parent_run_id,
            "state": RunState.RUNNING,
            "stamp": stamp,
        },
    )
    for position, app in enumerate(apps):
        _insert_app(conn, run_id=run_id, stamp=stamp, position=position, app=app)
    conn.executemany(
        "INSERT INTO waves (run_id, wave, name) VALUES (?, ?, ?)",
        [(run_id, wave, name) for wave, name in sorted(wave_names.items())],
    )
    append_event(conn, at=stamp, run_id=run_id, state=RunState.RUNNING, message=f"{kind} run created")


def _insert_app(conn: sqlite3.Connection, *, run_id: str, stamp: str, position: int, app: NewApp) -> None:
    conn.execute(
        "INSERT INTO apps (run_id, app_id, app_name, tenant_id, tenant_name, subscription_id, wave,"
        " position, state, error_message, finished_at, updated_at) VALUES (:run_id, :app_id, :app_name,"
        " :tenant_id, :tenant_name, :subscription_id, :wave, :position, :state, :error_message,"
        " :finished_at, :stamp)",
        {
            "run_id": run_id,
            "app_id": app.app_id,
            "app_name": app.app_name,
            "tenant_id": app.tenant_id,
            "tenant_name": app.tenant_name,
            "subscription_id": app.subscription_id,
            "wave": app.wave,
            "position": position,
            "state": app.state,
            "error_message": app.error_message,
            "finished_at": stamp if app.state in TERMINAL_APP_STATES else None,
            "stamp": stamp,
        },
    )
    if app.before is not None:
        _store_before(conn, run_id, app.app_id, before_columns(app.before))
    append_event(
        conn,
        at=stamp,
        run_id=run_id,
        state=app.state,
        tenant_id=app.tenant_id,
        subscription_id=app.subscription_id,
        app_id=app.app_id,
        attempt=0,
        error_message=app.error_message,
        message="planned",
    )


def _store_before(conn: sqlite3.Connection, run_id: str, app_id: str, columns: dict[str, object]) -> None:
    conn.execute(
        "UPDATE apps SET before_definition_id = :before_definition_id, before_plan = :before_plan,"
        " before_not_actions = :before_not_actions, before_not_data_actions = :before_not_data_actions,"
        " before_had_deny = :before_had_deny WHERE run_id = :run_id AND app_id = :app_id",
        columns | {"run_id": run_id, "app_id": app_id},
    )


def set_run_state(
    conn: sqlite3.Connection, *, run_id: str, stamp: str, state: RunState, message: str | None
) -> None:
    conn.execute(
        "UPDATE runs SET state = :state, updated_at = :stamp WHERE run_id = :run_id",
        {"state": state, "stamp": stamp, "run_id": run_id},
    )
    append_event(conn, at=stamp, run_id=run_id, state=state, message=message)


def touch_run(conn: sqlite3.Connection, *, run_id: str, stamp: str) -> None:
    conn.execute(
        "UPDATE runs SET updated_at = :stamp WHERE run_id = :run_id", {"stamp": stamp, "run_id": run_id}
    )


# Columns a transition sets only when it carries a value (None keeps what is stored).
_KEPT_UNLESS_GIVEN = ("resume_token", "after_fingerprint")


def apply_transition(conn: sqlite3.Connection, stamp: str, t: Transition) -> None:
    """Update the app's row as `t` says (see `Transition` for which fields replace and which keep)
    and append the event that records it."""
    key = {"run_id": t.run_id, "app_id": t.app_id}
    row = conn.execute(
        "SELECT tenant_id, subscription_id, attempts, operation_url, request_id FROM apps"
        " WHERE run_id = :run_id AND app_id = :app_id",
        key,
    ).fetchone()
    if row is None:
        raise JournalError(f"run {t.run_id} has no app {t.app_id}")
    tenant_id, subscription_id, attempts, operation_url, request_id = row
    attempts = t.attempts if t.attempts is not None else attempts
    if t.clear_operation:
        operation_url = None
    values: dict[str, object] = {
        "state": t.state,
        "attempts": attempts,
        "operation_url": t.operation_url if t.operation_url is not None else operation_url,
        "request_id": t.request_id if t.request_id is not None else request_id,
        "error_code": t.error_code,
        "error_message": t.error_message,
        "updated_at": stamp,
    }
    sets = [f"{name} = :{name}" for name in values]
    if t.clear_operation:
        sets.append("resume_token = NULL")
    for name in _KEPT_UNLESS_GIVEN:
        if getattr(t, name) is not None:
            sets.append(f"{name} = :{name}")
            values[name] = getattr(t, name)
    sets.extend(_timeline(t.state))
    values["stamp"] = stamp
    values["finished"] = stamp if t.state in TERMINAL_APP_STATES else None
    sql = f"UPDATE apps SET {', '.join(sets)} WHERE run_id = :run_id AND app_id = :app_id"  # noqa: S608 - fixed columns
    conn.execute(sql, values | key)
    if t.before is not None:
        _store_before(conn, t.run_id, t.app_id, before_columns(t.before))
    append_event(
        conn,
        at=stamp,
        run_id=t.run_id,
        state=t.state,
        tenant_id=tenant_id,
        subscription_id=subscription_id,
        app_id=t.app_id,
        attempt=attempts,
        request_id=t.request_id,
        operation_url=t.operation_url,
        error_code=t.error_code,
        error_message=t.error_message,
        message=t.message,
    )


def _timeline(state: AppState) -> list[str]:
    """The started/finished columns a move to `state` sets (:stamp is now, :finished now or NULL)."""
    sets = ["started_at = coalesce(started_at, :stamp)"] if state == AppState.SUBMITTED else []
    if state == AppState.ROLLED_BACK:
        # A later rollback keeps the time the upgrade finished (the run's timeline stays its own).
        return [*sets, "finished_at = coalesce(finished_at, :finished)"]
    return [*sets, "finished_at = :finished"]
