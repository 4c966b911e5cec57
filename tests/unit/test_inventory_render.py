"""The inventory table: one row per app, exclusion sets spelled out once, every field in JSON/CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from orchestrator.cli.inventory_cmd import render
from orchestrator.models import App, DenyAssignment, MarketplacePlan, Snapshot, TenantInventory

SUB = "11111111-2222-3333-4444-555555555555"
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _deny(*not_actions: str) -> DenyAssignment:
    return DenyAssignment(
        id="d", name="d", scope="s", actions=("*",), not_actions=not_actions, is_system_protected=True
    )


def _app(name: str, **fields: object) -> App:
    base: dict[str, object] = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Solutions/applications/{name}",
        "name": name,
        "tenant_id": "t1",
        "subscription_id": SUB,
        "resource_group": "rg",
        "location": "westeurope",
        "kind": "ServiceCatalog",
        "managed_resource_group_id": f"/subscriptions/{SUB}/resourceGroups/mrg-{name}",
        "definition_id": f"/subscriptions/{SUB}/resourceGroups/p/providers/Microsoft.Solutions/"
        "applicationDefinitions/app-v1",
        "provisioning_state": "Succeeded",
        "lock_level": "ReadOnly",
    }
    base.update(fields)
    return App.model_validate(base)


SNAPSHOT = Snapshot(
    taken_at=datetime(2026, 11, 23, tzinfo=UTC),
    tenants=(TenantInventory(tenant_id="t1", display_name="Contoso", ring="canary"),),
    apps=(
        _app("b-app", deny_assignment=_deny("*/read", KV)),
        _app("a-app", deny_assignment=_deny("*/READ")),
        _app(
            "c-market",
            kind="MarketPlace",
            definition_id=None,
            lock_level=None,
            plan=MarketplacePlan(publisher="isv", product="offer", name="standard", version="1.0.0"),
            deny_assignment=_deny("*/read"),
        ),
        _app("d-unlocked", lock_level="None"),
    ),
)


def test_table_labels_each_distinct_exclusion_set_once_and_sorts_rows() -> None:
    out = render(SNAPSHOT, "table")
    lines = out.splitlines()
    rows = [line for line in lines if line.startswith("Contoso")]
    assert [r.split()[2] for r in rows] == ["a-app", "b-app", "c-market", "d-unlocked"]
    # a-app and c-market share one set (case-insensitively); b-app has its own; d-unlocked has none.
    assert rows[0].split()[-1] == rows[2].split()[-1] != rows[1].split()[-1]
    assert rows[3].split()[-1] == "none"
    assert out.count(KV) == 1  # spelled out once, in the legend
    # The marketplace app's lock level is read off its deny assignment (ARM does not expose it).
    assert "standard@1.0.0" in rows[2] and "ReadOnly" in rows[2]


def test_json_and_csv_carry_every_field() -> None:
    doc = json.loads(render(SNAPSHOT, "json"))
    assert {a["app"] for a in doc["apps"]} == {"a-app", "b-app", "c-market", "d-unlocked"}
    b = next(a for a in doc["apps"] if a["app"] == "b-app")
    assert KV in b["excluded_actions"] and b["managed_resource_group"].endswith("mrg-b-app")
    rows = list(csv.DictReader(io.StringIO(render(SNAPSHOT, "csv"))))
    assert len(rows) == 4 and rows[0]["subscription"] == SUB
