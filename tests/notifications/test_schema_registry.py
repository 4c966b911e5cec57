"""The notification schema (pure) and the registry's folding, duplicates, ordering and durability."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.errors import JournalError
from orchestrator.journal import Journal
from orchestrator.notifications.registry import Registry, fold
from orchestrator.notifications.schema import InvalidEvent, parse_event
from tests.notifications.events import DEFINITION, app_id, body, raw


def test_parses_service_catalog_and_marketplace_events() -> None:
    sc = parse_event(raw(state="Succeeded"))
    assert sc.kind == "ServiceCatalog" and sc.definition_id == DEFINITION and sc.event_time.tzinfo is not None
    mp = parse_event(raw(plan_version="2.0.0", state="Failed"))
    assert mp.kind == "MarketPlace" and mp.plan is not None and mp.plan.version == "2.0.0"
    assert mp.error_code == "ApplicationDefinitionInvalid" and mp.resource_usage_id == "usage-1"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (json.dumps({**body(), "eventTime": None}).encode(), "missing field eventTime"),
        (raw(event_type="POST"), "eventType must be PUT, PATCH or DELETE"),
        (raw(event_type="PATCH", state="Accepted"), "provisioningState 'Accepted' is not one of PATCH's"),
        (raw(event_type="DELETE", state="Succeeded"), "is not one of DELETE's"),
        (raw(app="/subscriptions/x/resourceGroups/y/providers/Microsoft.Web/sites/z"), "applicationId"),
        (raw(definition=None), "missing field applicationDefinitionId (service catalog) or plan"),
        (json.dumps({**body(), "eventTime": "yesterday"}).encode(), "eventTime is not an ISO 8601"),
        (json.dumps({**body(), "eventTime": "2026-11-29T12:00:00"}).encode(), "eventTime has no time zone"),
        (json.dumps({**body(state="Failed"), "error": None}).encode(), "a Failed event needs an error"),
    ],
)
def test_refuses_malformed_bodies_with_one_line(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(payload)
    assert reason in str(info.value) and "\n" not in str(info.value)


def _events() -> list[bytes]:
    v1 = DEFINITION.replace("app-v2", "app-v1")
    return [
        raw(state="Accepted", seconds=0, definition=v1),
        raw(state="Succeeded", seconds=10, definition=v1),
        raw(state="Accepted", seconds=20),
        raw(state="Succeeded", seconds=30),
        raw(event_type="PATCH", state="Succeeded", seconds=40),
    ]


def test_fold_is_ordered_by_event_time_whatever_the_arrival_order() -> None:
    events = [parse_event(e) for e in _events()]
    results = set()
    for order in itertools.permutations(events):
        inst = None
        for event in order:
            inst = fold(inst, event)
        assert inst is not None
        seen = (inst.definition_id, inst.last_event_type, inst.last_state, inst.first_seen, inst.last_seen)
        results.add(seen)
    assert len(results) == 1
    definition, last_type, last_state, first, last = results.pop()
    assert definition == DEFINITION and (last_type, last_state) == ("PATCH", "Succeeded")
    assert (last - first).total_seconds() == 40


def test_a_failed_update_keeps_the_version_that_last_succeeded() -> None:
    v1 = DEFINITION.replace("app-v2", "v1")
    inst = fold(None, parse_event(raw(state="Succeeded", seconds=0, definition=v1)))
    inst = fold(inst, parse_event(raw(state="Accepted", seconds=5)))
    inst = fold(inst, parse_event(raw(state="Failed", seconds=9)))
    assert inst.definition_id is not None and inst.definition_id.endswith("/v1")
    assert inst.last_state == "Failed" and inst.error_code == "ApplicationDefinitionInvalid"


def test_delete_then_recreate() -> None:
    inst = fold(None, parse_event(raw(state="Succeeded", seconds=0)))
    inst = fold(inst, parse_event(raw(event_type="DELETE", state="Deleted", seconds=10)))
    assert inst.deleted
    inst = fold(inst, parse_event(raw(event_type="DELETE", state="Deleting", seconds=5)))  # late, older
    assert inst.deleted and inst.last_state == "Deleted"
    inst = fold(inst, parse_event(raw(state="Succeeded", seconds=20)))
    assert not inst.deleted


def test_registry_stores_once_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Registry(path) as registry:
        first = registry.record_many([parse_event(e) for e in _events()])
        again = registry.record_many([parse_event(e) for e in _events()])
        assert first == [True] * 5 and again == [False] * 5
    with Registry(path) as registry:
        assert registry.count_events() == 5
        inst = registry.instance(app_id(1).upper())
        assert inst is not None and inst.events == 5 and inst.definition_id == DEFINITION
        states = [e.event.provisioning_state for e in registry.events(app_id(1))]
        assert states[:2] == ["Accepted", "Succeeded"]
    # It is the journal's file: the journal opens it as before, and the registry's tables are its own.
    with Journal(path) as journal:
        assert journal.runs() == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_registry_refuses_what_is_not_a_journal(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE x (y)")
    conn.close()
    with pytest.raises(JournalError, match="not an orchestrator journal"):
        Registry(foreign)
    assert Registry.existing(tmp_path / "missing.db") is None


def test_registry_app_ids_groups_by_owner_and_drops_deleted_apps() -> None:
    from orchestrator.inventory import registry_app_ids
    from tests.notifications.events import SUB

    live = fold(None, parse_event(raw(n=1)))
    deleted = parse_event(raw(n=2, event_type="DELETE", state="Deleted"))
    gone = fold(fold(None, parse_event(raw(n=2))), deleted)
    elsewhere = fold(None, parse_event(raw(app=app_id(3, sub="ffffffff-0000-0000-0000-000000000000"))))
    by_tenant, misses = registry_app_ids([live, gone, elsewhere], {SUB.lower(): "tenant-a"})
    assert by_tenant == {"tenant-a": [app_id(1)]}
    assert [m.app_id for m in misses] == [app_id(3, sub="ffffffff-0000-0000-0000-000000000000")]
    assert "no configured tenant owns subscription ffffffff" in misses[0].cause


def test_a_registry_from_a_newer_orchestrator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Registry(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE notification_meta SET value = '99' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer orchestrator"):
        Registry(path)
