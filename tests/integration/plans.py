"""Make a sealed plan file against a running emulator, the way `orchestrator plan` would."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.arm import AzureGateway
from orchestrator.config import load_config
from orchestrator.inventory import collect_snapshot
from orchestrator.models import Plan, PlanOptions, Snapshot, WaveSpec
from orchestrator.planning.planfile import seal, write_plan
from orchestrator.planning.planner import build_plan
from orchestrator.planning.target import target_from_definition


def make_plan_file(
    config_path: Path,
    definition_id: str,
    out: Path,
    *,
    steps: tuple[str, ...] = ("50%", "100%"),
) -> Plan:
    config = load_config(config_path)

    async def read() -> Plan:
        async with AzureGateway(config) as gateway:
            snapshot = await collect_snapshot(config, gateway)
            owner = _owner_of(definition_id, snapshot)
            definition = await gateway.get_definition(owner, definition_id)
        target = target_from_definition(definition)
        plan = build_plan(
            snapshot,
            target,
            PlanOptions(waves=WaveSpec(steps=steps)),
            tool_version="test",
            now=datetime.now(UTC),
            rings={t.id: t.ring for t in config.tenants},
        )
        return seal(plan)

    plan = asyncio.run(read())
    write_plan(plan, out)
    return plan


def _owner_of(resource_id: str, snapshot: Snapshot) -> str:
    """The configured tenant whose subscription holds `resource_id` (the publisher, for a definition)."""
    for tenant in snapshot.tenants:
        for sub in tenant.subscriptions:
            if resource_id.lower().startswith(f"/subscriptions/{sub.id}/".lower()):
                return tenant.tenant_id
    raise LookupError(f"no configured tenant holds {resource_id}")
