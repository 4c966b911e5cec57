"""The registry as JSON or CSV (for tools), and as rows for the terminal."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from orchestrator.notifications.registry import Instance, StoredEvent
from orchestrator.notifications.schema import event_body, iso

COLUMNS = (
    "app_id",
    "kind",
    "subscription_id",
    "tenant_id",
    "version",
    "last_event",
    "last_state",
    "last_event_time",
    "first_seen",
    "last_seen",
    "deleted",
    "error",
    "events",
)


def instance_row(inst: Instance) -> dict[str, Any]:
    return {
        "app_id": inst.app_id,
        "kind": inst.kind,
        "subscription_id": inst.subscription_id,
        "tenant_id": inst.tenant_id or "",
        "version": inst.version,
        "last_event": inst.last_event_type,
        "last_state": inst.last_state,
        "last_event_time": iso(inst.last_event_time),
        "first_seen": iso(inst.first_seen),
        "last_seen": iso(inst.last_seen),
        "deleted": inst.deleted,
        "error": f"{inst.error_code}: {inst.error_message}" if inst.error_code else "",
        "events": inst.events,
    }


def instance_json(inst: Instance) -> dict[str, Any]:
    row = instance_row(inst)
    row.update(
        definition_id=inst.definition_id,
        plan=inst.plan.model_dump() if inst.plan else None,
        tenant_id=inst.tenant_id,
        error_code=inst.error_code,
        error_message=inst.error_message,
    )
    return row


def event_json(stored: StoredEvent) -> dict[str, Any]:
    return {
        "seq": stored.seq,
        "received_at": iso(stored.received_at),
        "event": event_body(stored.event),
        "confirmation": stored.confirm_outcome,
        "confirmation_detail": stored.confirm_detail,
    }


def to_json(instances: Sequence[Instance]) -> str:
    return json.dumps({"instances": [instance_json(i) for i in instances]}, indent=2) + "\n"


def to_csv(instances: Sequence[Instance]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for inst in instances:
        # Leading =,+,-,@ would run as a formula in a spreadsheet: quote them away.
        writer.writerow({k: _cell(v) for k, v in instance_row(inst).items()})
    return buffer.getvalue()


def _cell(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
