"""A fleet file (the --state format) loaded with --fleet, including a tenant with no access."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.emulator.fleet import generate
from orchestrator.emulator.testing import run_emulator
from tests.emulator.conftest import raw, tenant_of, token_for

pytestmark = pytest.mark.integration
API = "api-version=2023-12-01-preview"


def test_fleet_file_and_no_access_tenant(tmp_path: Path) -> None:
    state = generate("tenants=2,subscriptions=1,apps=2", 5)
    customers = [t for t in state.tenants.values() if t.role == "customer"]
    customers[0].publisher_access = "none"
    path = tmp_path / "fleet.json"
    state.save(path)
    with run_emulator(fleet=path, generate=None) as emu:
        fleet = emu.fleet()
        assert [t["id"] for t in fleet["tenants"]] == [t.id for t in customers]
        tenant = tenant_of(emu, fleet, 0)
        token = token_for(emu, tenant)
        sub = tenant.subscriptions[0]
        status, _, body = raw(
            emu, "GET", f"subscriptions/{sub}/providers/Microsoft.Solutions/applications?{API}", token
        )
        assert (status, body["error"]["code"]) == (403, "AuthorizationFailed")
        assert "Microsoft.Solutions/applications/read" in body["error"]["message"]
        rg = f"subscriptions/{sub}/resourceGroups/rg-managedapps"
        status, _, body = raw(
            emu, "GET", f"{rg}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01", token
        )
        assert (status, body["value"]) == (200, [])
        assert raw(emu, "GET", "subscriptions?api-version=2022-12-01", token)[0] == 200
