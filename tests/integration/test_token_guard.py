"""The token guard with the real rule, through the real SDK against the emulator's mixed fleet.

A token is used on a subscription only when ARM lists it for that identity (home tenant, or delegated
with the home tenant in managedByTenants), or, for reads only, on an application (and its MRG) that
names this publisher. Every refusal happens before a request: the emulator counts no cross-tenant try.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.arm import AzureGateway, RetrySettings
from orchestrator.config import load_config
from orchestrator.errors import ArmError
from orchestrator.inventory import collect_snapshot
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import parse_event
from tests.integration.conftest import Fleet, make_fleet
from tests.integration.notify import customer_config
from tests.notifications.events import body

pytestmark = pytest.mark.integration

FAST = RetrySettings(backoff_factor=0.01, backoff_max=0.2, polling_interval=0.05)
MIX = "tenants=4,subscriptions=2,apps=2,access=direct:1,delegated:1,publisher:1,locked:1"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from make_fleet(tmp_path_factory.mktemp("mixed"), generate=MIX, page_size=50)


def tenants_by_access(fleet: Fleet) -> dict[str, dict[str, Any]]:
    return {t["access"]: t for t in fleet.emulator.fleet()["tenants"]}


def apps_in(fleet: Fleet, tenant: dict[str, Any]) -> list[dict[str, Any]]:
    subs = {s.lower() for s in tenant["subscriptions"]}
    return [a for a in fleet.emulator.fleet()["applications"] if a["id"].split("/")[2].lower() in subs]


def crossings(fleet: Fleet) -> int:
    return int(fleet.emulator.stats()["cross_tenant_attempts"])


async def test_each_path_reads_what_it_may_and_nothing_crosses(mixed: Fleet) -> None:
    before = crossings(mixed)
    t = tenants_by_access(mixed)
    async with AzureGateway(mixed.config, retry=FAST) as gw:
        for kind in ("direct", "delegated"):
            sub = t[kind]["subscriptions"][0]
            assert {s.id for s in await gw.list_subscriptions(t[kind]["id"])} == set(t[kind]["subscriptions"])
            assert len(await gw.list_applications(t[kind]["id"], sub)) == 2
        delegated = (await gw.list_subscriptions(t["delegated"]["id"]))[0]
        assert delegated.managed_by_tenants == (mixed.emulator.fleet()["publisher"]["id"],)
        # Publisher path: by id, then the MRG's deny assignments; nothing listed, nothing written.
        app = apps_in(mixed, t["publisher"])[0]
        read = await gw.get_application(t["publisher"]["id"], app["id"])
        assert read is not None and read.publisher_tenant_id == mixed.emulator.fleet()["publisher"]["id"]
        assert await gw.list_deny_assignments_at(t["publisher"]["id"], app["mrg"])
        with pytest.raises(ArmError) as err:
            await gw.list_applications(t["publisher"]["id"], t["publisher"]["subscriptions"][0])
        assert err.value.code == "WrongTenant"
        with pytest.raises(ArmError) as err:
            await gw.submit_upgrade(t["publisher"]["id"], app["id"], definition_id=app["id"], plan=None)
        assert err.value.code == "NotWritable"
        # Customer-run (locked: a Lighthouse Reader delegation): reads yes, writes never tried.
        locked = apps_in(mixed, t["locked"])[0]
        assert await gw.get_application(t["locked"]["id"], locked["id"]) is not None
        with pytest.raises(ArmError) as err:
            await gw.submit_upgrade(t["locked"]["id"], locked["id"], definition_id=locked["id"], plan=None)
        assert err.value.code == "NotWritable"
    assert crossings(mixed) == before


async def test_a_subscription_of_another_tenant_is_refused_before_any_request(
    mixed: Fleet, tmp_path: Path
) -> None:
    before = crossings(mixed)
    t = tenants_by_access(mixed)
    other = t["publisher"]["subscriptions"][0]
    config = load_config(customer_config(mixed, tmp_path, t["direct"]["id"], [other]))
    async with AzureGateway(config, retry=FAST) as gw:
        for call in (
            gw.list_applications(t["direct"]["id"], other),
            gw.list_deny_assignments(t["direct"]["id"], other),
        ):
            with pytest.raises(ArmError) as err:
                await call
            assert err.value.code == "WrongTenant" and "ARM does not list it" in str(err.value)
    assert crossings(mixed) == before


async def test_a_delegated_subscription_claimed_by_the_wrong_customer_is_refused(mixed: Fleet) -> None:
    """ARM lists the delegated subscription under its real tenant: the guard refuses another customer."""
    before = crossings(mixed)
    t = tenants_by_access(mixed)
    delegated_sub = t["delegated"]["subscriptions"][0]
    async with AzureGateway(mixed.config, retry=FAST) as gw:
        with pytest.raises(ArmError) as err:
            await gw.list_applications(t["locked"]["id"], delegated_sub)
        assert err.value.code == "WrongTenant" and "according to ARM" in str(err.value)
        # An app id of another publisher's customer in a list file: the publisher may not read its MRG.
        with pytest.raises(ArmError) as err:
            await gw.list_deny_assignments_at(t["publisher"]["id"], apps_in(mixed, t["publisher"])[1]["mrg"])
        assert err.value.code == "WrongTenant"
    assert crossings(mixed) == before


async def test_a_publisher_path_app_known_only_from_the_registry_is_read_never_written(
    mixed: Fleet, tmp_path: Path
) -> None:
    """The customer's list names one app; the notification registry learned another in the same
    subscription: inventory reads it by id with the publisher identity; nothing is written or crossed."""
    t = tenants_by_access(mixed)
    customer = t["publisher"]
    sub = customer["subscriptions"][0]
    listed, learned = sorted(a["id"] for a in apps_in(mixed, customer) if a["id"].split("/")[2] == sub)[:2]
    folder = mixed.config_path.parent
    (folder / "customers" / "one-app.txt").write_text(listed + "\n", encoding="utf-8")
    text = mixed.config_path.read_text(encoding="utf-8")
    text = text.replace(f'apps = "customers/{customer["id"]}.txt"', 'apps = "customers/one-app.txt"')
    config = load_config(_write(folder / "registry-only.toml", text))
    with Registry(tmp_path / "journal.db") as registry:
        registry.record(parse_event(json.dumps(body(app=learned, state="Succeeded")).encode()))
        instances = registry.instances()
    before, writes = crossings(mixed), mixed.emulator.stats()["writes"]
    async with AzureGateway(config, retry=FAST) as gw:
        with pytest.raises(ArmError) as err:  # not in the list, not (yet) vouched for by the registry
            await gw.get_application(customer["id"], learned)
        assert err.value.code == "WrongTenant"
        snapshot = await collect_snapshot(config, gw, source="both", registry=instances)
        with pytest.raises(ArmError) as err:
            await gw.submit_upgrade(customer["id"], learned, definition_id=learned, plan=None)
        assert err.value.code == "NotWritable"
    found = {a.id.lower(): a for a in snapshot.apps}
    assert {listed.lower(), learned.lower()} <= set(found) and snapshot.registry_misses == ()
    app = found[learned.lower()]
    assert app.tenant_id == customer["id"] and app.path == "publisher" and app.deny_assignment is not None
    assert snapshot.sources["registry"] == 1
    assert crossings(mixed) == before and mixed.emulator.stats()["writes"] == writes


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
