"""What the journal stores and hands out, and the one mapping from each table's rows to them.

An app's row is read one way: `app_record` makes an `AppRecord`, which *is* the status report's
`AppStatusView` (same fields, same types) plus what the executor needs to continue the app.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from orchestrator.models import AppState, AppStatusView, MarketplacePlan, RunState, RunView

RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")


def new_run_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def iso(value: datetime) -> str:
    """How the journal writes a time: UTC, microseconds, with its offset (sorts as text)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class BeforeState:
    """What an app was on before this run wrote to it: what a rollback puts back."""

    definition_id: str | None
    plan: MarketplacePlan | None
    not_actions: tuple[str, ...]
    not_data_actions: tuple[str, ...]
    had_deny_assignment: bool


class NewApp(AppStatusView):
    """One app as it enters a run (its status row, before anything happened, and what it was on)."""

    state: AppState = AppState.PENDING
    before: BeforeState | None = None

    @classmethod
    def entering(cls, app: AppStatusView, *, wave: int | None) -> NewApp:
        """An app of another run (e.g. the one a rollback undoes) entering a new one: who and where
        it is, none of its progress."""
        return cls(**{name: getattr(app, name) for name in _IDENTITY}, wave=wave)


_IDENTITY = ("app_id", "app_name", "tenant_id", "tenant_name", "subscription_id")


class AppRecord(AppStatusView):
    """An app's row in a run: what the status report shows, and what the executor needs to continue."""

    run_id: str
    operation_url: str | None = None
    resume_token: str | None = None
    before: BeforeState | None = None
    after_fingerprint: str | None = None


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

    def view(self, apps: tuple[AppStatusView, ...], wave_names: dict[int, str]) -> RunView:
        """The run as status, reports and the HTML page render it."""
        shared = RunView.model_fields.keys() - {"started_at", "apps", "wave_names"}
        return RunView(
            **{name: getattr(self, name) for name in shared},
            started_at=self.created_at,
            apps=apps,
            wave_names=wave_names,
        )


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


# --- rows -> records (the one mapping per table; columns and fields share their names) ----------


def run_summary(row: sqlite3.Row, counts: dict[str, int]) -> RunSummary:
    values = _times({name: row[name] for name in _RUN_COLUMNS}, "created_at", "updated_at")
    return RunSummary(**values | {"state": RunState(row["state"]), "counts": dict(counts)})


def app_record(row: sqlite3.Row) -> AppRecord:
    """The app row as a record (pydantic turns the stored state into an `AppState`)."""
    values = _times({name: row[name] for name in _APP_COLUMNS}, "updated_at", "started_at", "finished_at")
    return AppRecord.model_validate(values | {"before": _before(row)})


def event(row: sqlite3.Row) -> Event:
    return Event(**_times({name: row[name] for name in _EVENT_COLUMNS}, "at"))


def _times(values: dict[str, Any], *names: str) -> dict[str, Any]:
    """`values` with the named columns read back as the datetimes the journal wrote (see `iso`)."""
    for name in names:
        values[name] = datetime.fromisoformat(values[name]) if values[name] else None
    return values


# The columns each mapper reads: the record's fields (the `before_*` columns make one field).
_RUN_COLUMNS = tuple(f.name for f in fields(RunSummary) if f.name != "counts")
_APP_COLUMNS = tuple(name for name in AppRecord.model_fields if name != "before")
_EVENT_COLUMNS = tuple(f.name for f in fields(Event))


def _before(row: sqlite3.Row) -> BeforeState | None:
    if row["before_had_deny"] is None:
        return None
    plan_json = row["before_plan"]
    return BeforeState(
        definition_id=row["before_definition_id"],
        plan=MarketplacePlan.model_validate_json(plan_json) if plan_json else None,
        not_actions=tuple(json.loads(row["before_not_actions"] or "[]")),
        not_data_actions=tuple(json.loads(row["before_not_data_actions"] or "[]")),
        had_deny_assignment=bool(row["before_had_deny"]),
    )


def before_columns(before: BeforeState) -> dict[str, object]:
    """The `before_*` columns of an app row (the inverse of the mapping above)."""
    return {
        "before_definition_id": before.definition_id,
        "before_plan": before.plan.model_dump_json() if before.plan else None,
        "before_not_actions": json.dumps(list(before.not_actions)),
        "before_not_data_actions": json.dumps(list(before.not_data_actions)),
        "before_had_deny": int(before.had_deny_assignment),
    }
