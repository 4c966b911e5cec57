"""The second signal for apps awaiting their customers, end to end over HTTPS with the real SDK.

Apply journals the publisher-path apps as awaiting-customer. Each customer then updates its own apps,
signed in as itself; the emulator notifies a running receiver (`serve --confirm`), which verifies each
app at once: the journal shows it succeeded (ARM read, deny assignment as planned), or failed with the
cause Azure's PUT Failed event gave, without anyone running `orchestrator verify`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator.arm import AzureGateway, RetrySettings
from orchestrator.config import load_config
from orchestrator.journal import Journal
from orchestrator.models import AppState, AppStatusView
from orchestrator.planning.planfile import read_plan
from tests.integration.conftest import make_fleet, run_cli
from tests.integration.notify import Receiver, customer_config, settled
from tests.integration.test_customer_kit import release_target

pytestmark = pytest.mark.integration

MIX = "tenants=2,subscriptions=1,apps=3,access=publisher:1,direct:1"
FAST = RetrySettings(backoff_factor=0.01, backoff_max=0.2, polling_interval=0.05)


def _apps(journal: Path, run_id: str) -> dict[str, AppStatusView]:
    with Journal(journal, create=False) as j:
        return {a.app_id.lower(): a for a in j.run_view(run_id).apps}


def _wait_terminal(
    journal: Path, run_id: str, app_ids: set[str], timeout: float = 90
) -> dict[str, AppStatusView]:
    deadline = time.monotonic() + timeout
    while True:
        apps = _apps(journal, run_id)
        if all(apps[a].state != AppState.AWAITING_CUSTOMER for a in app_ids):
            return apps
        assert time.monotonic() < deadline, {a: apps[a].state for a in app_ids}
        time.sleep(0.2)


async def test_a_notified_customer_update_is_verified_without_verify(tmp_path: Path) -> None:
    for fleet in make_fleet(tmp_path, generate=MIX, time_scale=0.01):
        config, journal = str(fleet.config_path), tmp_path / "journal.db"
        receiver = Receiver(tmp_path, journal, "--confirm", "-c", config)
        receiver.start()
        try:
            fleet.emulator.set_notification_endpoint(receiver.endpoint)
            target = release_target(fleet, tmp_path / "release.toml")
            plan_path = tmp_path / "plan.json"
            planned = run_cli("plan", "-c", config, "--target", str(target), "-o", str(plan_path))
            assert planned.code == 0, planned.stderr
            applied = run_cli("apply", str(plan_path), "-c", config, "--journal", str(journal), "--yes")
            assert applied.code == 0, applied.stderr
            with Journal(journal, create=False) as j:
                run_id = j.latest_run()
            assert run_id is not None
            plan = read_plan(plan_path)
            waiting = [
                i
                for i in plan.items
                if _apps(journal, run_id)[i.app_id.lower()].state == AppState.AWAITING_CUSTOMER
            ]
            assert len(waiting) >= 2 and {i.path for i in waiting} == {"publisher"}
            good, bad = waiting[0], waiting[1]
            # The customer's own update of `bad` fails in ARM (the emulator's operation ends Failed).
            fleet.emulator.set_faults([{"kind": "write", "action": "fail_permanent", "app": bad.app_name}])

            customer = load_config(customer_config(fleet, tmp_path, good.tenant_id, [good.subscription_id]))
            async with AzureGateway(customer, retry=FAST) as as_customer:
                for item in (good, bad):
                    await as_customer.submit_upgrade(
                        item.tenant_id, item.app_id, definition_id=item.to_definition_id, plan=item.to_plan
                    )
            apps = _wait_terminal(journal, run_id, {good.app_id.lower(), bad.app_id.lower()})
        finally:
            settled(fleet.emulator)
            assert receiver.stop() == 0

        assert apps[good.app_id.lower()].state == AppState.SUCCEEDED
        failed = apps[bad.app_id.lower()]
        assert failed.state == AppState.FAILED and failed.error_code == "ApplicationDefinitionInvalid"
        assert (failed.error_message or "").startswith("Azure notified PUT Failed: ")
        # The other apps awaiting their customers still wait; nothing crossed tenants.
        assert all(apps[i.app_id.lower()].state == AppState.AWAITING_CUSTOMER for i in waiting[2:])
        assert fleet.emulator.stats()["cross_tenant_attempts"] == 0
        log = receiver.log.read_text()
        assert log.count('"verified on notification"') == 2, log
        status = json.loads(run_cli("status", "--journal", str(journal), "--format", "json").stdout)
        assert {a["app_id"].lower(): a["state"] for a in status["apps"]}[good.app_id.lower()] == "succeeded"
