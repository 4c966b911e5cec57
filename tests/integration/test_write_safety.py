"""A write to Azure is never re-sent by a transport: connections dropped after ARM applied the PUT.

The emulator's `drop_response` / `drop_mid_body` faults apply the write (its operation starts) and then
close the connection, before the answer or halfway through its body; `reset` closes it before the write
is handled. Whatever the HTTP stack does with that, the emulator's own counters say what it was sent.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.arm import AzureGateway
from orchestrator.config import load_config
from orchestrator.emulator.fleet import V1_ALLOWED_ACTIONS, V1_ALLOWED_DATA_ACTIONS, V2_EXTRA_ACTION
from orchestrator.errors import EXIT_PARTIAL, ArmError
from orchestrator.inventory import collect_snapshot
from orchestrator.models import AppState, Decision, Plan, PlanOptions, WaveSpec
from orchestrator.planning.planfile import seal, write_plan
from orchestrator.planning.planner import build_plan
from orchestrator.planning.target import load_target
from tests.integration.conftest import Fleet, make_fleet
from tests.integration.test_apply import TIME_SCALE, apply_args, apply_cli, journal_view, read_only_tenants

pytestmark = pytest.mark.integration

# 64% of write responses lost: 10% before the write is handled, then 60% of the rest after it landed.
DROPS: list[dict[str, Any]] = [
    {"kind": "write", "action": "reset", "probability": 0.10},
    {"kind": "write", "action": "drop_response", "probability": 0.30},
    {"kind": "write", "action": "drop_mid_body", "probability": 0.30 / 0.70},
]


def both_channels_target(fleet: Fleet, path: Path) -> Path:
    """A release on both channels: definition app-v2 and marketplace plan version 2.0.0."""
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    actions = ", ".join(f'"{a}"' for a in [*V1_ALLOWED_ACTIONS, V2_EXTRA_ACTION])
    data = ", ".join(f'"{a}"' for a in V1_ALLOWED_DATA_ACTIONS)
    path.write_text(
        f'name = "v2"\ndefinition_id = "{v2}"\nlock_level = "ReadOnly"\n'
        f"allowed_actions = [{actions}]\nallowed_data_actions = [{data}]\n"
        '[plan]\npublisher = "contoso-isv"\nproduct = "contoso-app"\nname = "standard"\nversion = "2.0.0"\n',
        encoding="utf-8",
    )
    return path


def plan_both(fleet: Fleet, tmp_path: Path) -> tuple[Path, Plan]:
    config = load_config(fleet.config_path)
    target = load_target(both_channels_target(fleet, tmp_path / "target.toml"))

    async def read() -> Plan:
        async with AzureGateway(config) as gateway:
            snapshot = await collect_snapshot(config, gateway)
        return build_plan(
            snapshot,
            target,
            PlanOptions(waves=WaveSpec(steps=("50%", "100%"))),
            tool_version="test",
            now=datetime.now(UTC),
            rings={t.id: t.ring for t in config.tenants},
        )

    plan = seal(asyncio.run(read()))
    path = tmp_path / "plan.json"
    write_plan(plan, path)
    return path, plan


@pytest.fixture
def big_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """5 tenants × 3 subscriptions × 20 apps (300); operations take 30 emulated seconds (0.3 s).

    WRITE_SAFETY_FLEET overrides the generator spec, for a bigger run (not ORCHESTRATOR_*: tests scrub
    those)."""
    yield from make_fleet(
        tmp_path,
        generate=os.environ.get("WRITE_SAFETY_FLEET", "tenants=5,subscriptions=3,apps=20"),
        time_scale=TIME_SCALE,
        operation_seconds=30,
        page_size=50,
    )


def test_gateway_sends_a_write_once_whatever_happens_to_the_connection(big_fleet: Fleet) -> None:
    fleet = big_fleet.emulator.fleet()
    v2 = fleet["publisher"]["definitions"]["app-v2"]
    tenant = next(t["id"] for t in fleet["tenants"] if t["publisher_access"] == "full")
    config = load_config(big_fleet.config_path)
    errors: dict[str, ArmError] = {}

    async def run() -> None:
        async with AzureGateway(config) as gw:
            subs = await gw.list_subscriptions(tenant)
            apps = await gw.list_applications(tenant, subs[0].id)
            v1 = [a for a in apps if (a.definition_id or "").lower().endswith("/app-v1")]
            for action, app in zip(("drop_response", "drop_mid_body", "reset"), v1, strict=False):
                big_fleet.emulator.set_faults([{"kind": "write", "action": action}])
                with pytest.raises(ArmError) as caught:
                    await gw.submit_upgrade(tenant, app.id, definition_id=v2, plan=None)
                errors[action] = caught.value
            big_fleet.emulator.set_faults([])
            # Reads keep their transport retries.
            big_fleet.emulator.set_faults([{"kind": "read", "action": "reset", "first": 1}])
            assert await gw.get_application(tenant, v1[0].id) is not None

    asyncio.run(run())
    assert set(errors) == {"drop_response", "drop_mid_body", "reset"}
    assert all(e.transient for e in errors.values())  # outcome unknown: the engine re-reads
    stats = big_fleet.emulator.stats()
    writes = {k: v for k, v in stats["requests"].items() if k.startswith("write")}
    # Each PUT arrived exactly once: no re-send by azure-core or aiohttp after any of the three faults.
    assert writes == {"write 200 drop_response": 1, "write 200 drop_mid_body": 1, "write reset": 1}
    assert stats["conflicting_writes"] == 0
    assert sorted(stats["writes_per_app"].values()) == [1, 1]  # the two that landed
    assert stats["requests"].get("read reset") == 1 and stats["requests"].get("read 200", 0) >= 1


def test_dropped_write_responses_never_cause_a_second_write(big_fleet: Fleet, tmp_path: Path) -> None:
    plan_path, plan = plan_both(big_fleet, tmp_path)
    updates = {i.app_id: i for i in plan.items if i.decision == Decision.UPDATE}
    blocked = read_only_tenants(big_fleet)
    writable = {a for a, i in updates.items() if i.tenant_id not in blocked}
    assert len(writable) >= 100
    assert any(i.to_plan for i in updates.values()) and any(i.to_definition_id for i in updates.values())
    big_fleet.emulator.set_faults(DROPS)
    journal = tmp_path / "journal.db"
    result = apply_cli(*apply_args(big_fleet, plan_path, journal, "--failure-tolerance", "100%"), timeout=600)
    assert result.returncode in (0, EXIT_PARTIAL), result.stderr[-3000:]

    stats = big_fleet.emulator.stats()
    requests: Counter[str] = Counter(stats["requests"])
    # Writes the access check refused (the read-only tenant: 403) never reach the fault rules.
    sent = sum(n for k, n in requests.items() if k.startswith("write ") and k != "write 403")
    lost = sum(
        n
        for k, n in requests.items()
        if k.startswith("write ") and k.endswith(("reset", "drop_response", "drop_mid_body"))
    )
    landed_then_lost = sum(n for k, n in requests.items() if k.startswith("write ") and "drop_" in k)
    assert 0.5 <= lost / sent <= 0.75, (lost, sent)
    assert landed_then_lost >= len(writable) // 3

    # The emulator's counters: nothing written while an operation ran, nothing after a success.
    assert stats["conflicting_writes"] == 0
    assert stats["writes_after_success"] == 0, stats["writes_after_success_per_app"]
    assert all(n <= 1 for n in stats["max_concurrent_ops_per_app"].values())
    view = journal_view(journal)
    by_id = {a.app_id: a for a in view.apps}
    accepted = stats["writes_per_app"]
    for app_id in updates:
        app = by_id[app_id]
        if app_id in writable:
            # Exactly one accepted write per app, and it converged.
            assert app.state == AppState.SUCCEEDED, (app.app_name, app.state, app.error_message)
            assert accepted.get(app_id) == 1, (app.app_name, accepted.get(app_id))
        else:
            assert app.state == AppState.FAILED and app.error_code and app.error_message
            assert accepted.get(app_id, 0) == 0
    assert set(accepted) <= set(writable)
    print(
        f"\nwrite-safety: {len(writable)} apps written, {sent} PUTs sent, {lost} responses lost "
        f"({lost / sent:.0%}; {landed_then_lost} after the write landed), "
        f"accepted writes {sum(accepted.values())}, conflicting {stats['conflicting_writes']}, "
        f"after success {stats['writes_after_success']}"
    )
