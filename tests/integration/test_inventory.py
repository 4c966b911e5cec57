"""Inventory and the ARM edge through the real SDK and credentials, over HTTPS, against the emulator."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import base64
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.arm import AzureGateway, RetrySettings
from orchestrator.arm.clients import TLS_READ_BUFFER
from orchestrator.errors import ArmError
from orchestrator.inventory import collect_snapshot, load_snapshot, save_snapshot
from orchestrator.models import Snapshot
from tests.integration.conftest import Fleet, make_fleet, run_cli

pytestmark = pytest.mark.integration

FAST = RetrySettings(backoff_factor=0.01, backoff_max=0.2, polling_interval=0.05)


async def inventory(fleet: Fleet, *, concurrency: int = 8) -> Snapshot:
    config = fleet.config
    async with AzureGateway(config, retry=FAST) as gateway:
        return await collect_snapshot(config, gateway, concurrency=concurrency)


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["id"].lower(): i for i in items}


async def test_inventory_matches_the_emulators_fleet(fleet: Fleet) -> None:
    snapshot = await inventory(fleet)
    state = fleet.emulator.state()
    apps = by_id(state["applications"])

    assert all(t.error is None for t in snapshot.tenants)
    assert {a.id.lower() for a in snapshot.apps} == set(apps)
    subscriptions = {s["id"].lower(): s["tenant_id"].lower() for s in state["subscriptions"]}
    assert {
        s.id.lower(): t.tenant_id.lower() for t in snapshot.tenants for s in t.subscriptions
    } == subscriptions
    definitions = {d["id"].lower(): d for d in state["application_definitions"]}
    denies = state["deny_assignments"]
    user_denies = 0
    for app in snapshot.apps:
        raw = apps[app.id.lower()]
        assert app.kind == raw["kind"]
        assert app.provisioning_state == raw["properties"]["provisioningState"]
        assert app.managed_resource_group_id == raw["properties"]["managedResourceGroupId"]
        assert app.tenant_id.lower() == subscriptions[app.subscription_id.lower()]
        if raw["kind"] == "MarketPlace":
            assert app.plan is not None and app.plan.version == raw["plan"]["version"]
            assert app.definition_id is None
        else:
            definition = definitions[raw["properties"]["applicationDefinitionId"].lower()]
            assert app.lock_level == definition["properties"]["lockLevel"]
        at_mrg = [
            d for d in denies if d["properties"]["scope"].lower() == app.managed_resource_group_id.lower()
        ]
        system = [d for d in at_mrg if d["properties"].get("isSystemProtected")]
        user_denies += len(at_mrg) - len(system)
        if not system:
            assert app.deny_assignment is None
            continue
        assert app.deny_assignment is not None
        assert app.deny_assignment.is_system_protected
        assert app.deny_assignment.id.lower() == system[0]["id"].lower()
        assert (
            list(app.deny_assignment.not_actions) == system[0]["properties"]["permissions"][0]["notActions"]
        )
    assert user_denies > 0, "the generated fleet has customer deny assignments that must be ignored"
    # Each distinct definition read once, through the publisher tenant's own credential.
    used = {a.definition_id.lower() for a in snapshot.apps if a.definition_id}
    assert set(snapshot.definitions) == used
    stats = fleet.emulator.stats()
    assert stats["requests"].get("read 200", 0) == len(used)
    assert stats["cross_tenant_attempts"] == 0


@pytest.fixture
def wide_fleet(tmp_path: Path) -> Iterator[Fleet]:
    # 20 apps per subscription; pages as large as ARM's so paging does not dominate the count.
    yield from make_fleet(tmp_path, generate="tenants=3,subscriptions=2,apps=20", page_size=100)


async def test_requests_stay_per_subscription_not_per_app(wide_fleet: Fleet) -> None:
    snapshot = await inventory(wide_fleet)
    stats = wide_fleet.emulator.stats()
    arm = sum(n for key, n in stats["requests"].items() if not key.startswith("token"))
    subscriptions = [s for t in snapshot.tenants for s in t.subscriptions]
    per_sub: dict[str, int] = {}
    for app in snapshot.apps:
        per_sub[app.subscription_id.lower()] = per_sub.get(app.subscription_id.lower(), 0) + 1
    app_listing = sum(max(1, math.ceil(per_sub.get(s.id.lower(), 0) / 100)) for s in subscriptions)
    beyond = (arm - app_listing) / len(snapshot.apps)
    assert len(snapshot.apps) == 120
    assert beyond <= 0.2, (
        f"{arm} ARM requests, {app_listing} for the app listing: {beyond:.3f} per app beyond it"
    )
    # One token per tenant, however many SDK clients it has.
    assert stats["tokens_issued"] == len(snapshot.tenants)


async def test_a_page_larger_than_the_tls_read_buffer_arrives_whole(tmp_path: Path) -> None:
    # The client reads TLS in TLS_READ_BUFFER pieces (smaller than asyncio's default): one listing
    # page several times that size must still arrive whole and parse.
    for fleet in make_fleet(tmp_path, generate="tenants=1,subscriptions=1,apps=300", page_size=1000):
        snapshot = await inventory(fleet)
        apps = fleet.emulator.state()["applications"]
        assert len(json.dumps(apps)) > 4 * TLS_READ_BUFFER
        assert asyncio.sslproto.SSLProtocol.max_size == TLS_READ_BUFFER
        assert [t.error for t in snapshot.tenants if t.error] == []
        assert {a.id.lower() for a in snapshot.apps} == {a["id"].lower() for a in apps}
        # One page each: subscriptions, apps, deny assignments, for the customer and the publisher.
        assert fleet.emulator.stats()["requests"].get("list 200", 0) == 6


async def test_a_tenant_with_a_bad_secret_is_reported_and_the_others_complete(fleet: Fleet) -> None:
    victim = fleet.customer_tenants()[0]
    fleet.break_secret(victim["id"])
    snapshot = await inventory(fleet)
    failed = {t.tenant_id: t.error for t in snapshot.tenants if t.error}
    assert list(failed) == [victim["id"]]
    error = failed[victim["id"]]
    assert error is not None and "\n" not in error and "authentication failed" in error
    assert "not-the-secret" not in error
    others = {s.lower() for t in fleet.customer_tenants()[1:] for s in t["subscriptions"]}
    assert {a.subscription_id.lower() for a in snapshot.apps} == others
    assert not any(a.tenant_id == victim["id"] for a in snapshot.apps)


async def test_a_throttled_subscription_completes_through_the_sdk_retry(tmp_path: Path) -> None:
    faults = [{"kind": "list", "action": "429", "first": 4, "retry_after": 1.0}]
    for fleet in make_fleet(tmp_path, faults=faults):
        snapshot = await inventory(fleet, concurrency=1)
        stats = fleet.emulator.stats()
        assert stats["throttled_429"] == 4
        assert [t.error for t in snapshot.tenants if t.error] == []
        assert len(snapshot.apps) == len(fleet.emulator.fleet()["applications"])


async def test_throttling_past_the_retry_budget_fails_that_tenant_with_its_cause(tmp_path: Path) -> None:
    faults = [{"kind": "list", "action": "429", "retry_after": 0.5}]
    for fleet in make_fleet(tmp_path, faults=faults):
        config = fleet.config
        retry = RetrySettings(total=2, backoff_factor=0.01, backoff_max=0.05)
        async with AzureGateway(config, retry=retry) as gateway:
            snapshot = await collect_snapshot(config, gateway, concurrency=4)
        assert snapshot.apps == ()
        for tenant in snapshot.tenants:
            assert tenant.error is not None and "HTTP 429" in tenant.error


async def test_snapshot_round_trip(fleet: Fleet, tmp_path: Path) -> None:
    snapshot = await inventory(fleet)
    path = tmp_path / "snapshot.json"
    save_snapshot(snapshot, path)
    assert load_snapshot(path) == snapshot
    text = path.read_text(encoding="utf-8")
    assert not any(secret in text for secret in fleet.secrets())


async def test_upgrade_resume_token_and_verification(fleet: Fleet) -> None:
    config = fleet.config
    snapshot = await inventory(fleet)
    app = next(
        a
        for a in snapshot.apps
        if a.kind == "ServiceCatalog" and a.lock_level == "ReadOnly" and a.provisioning_state == "Succeeded"
    )
    assert app.definition_id is not None
    v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
    async with AzureGateway(config, retry=FAST) as gateway:
        submitted = await gateway.submit_upgrade(app.tenant_id, app.id, definition_id=v2, plan=None)
        assert submitted.operation_url and "operationStatuses" in submitted.operation_url
        assert submitted.info.request_id
        decoded = base64.b64decode(submitted.resume_token).decode("utf-8")
        token = json.loads(decoded)  # JSON, as azure-core >= 1.38 writes it
        headers = {**token["data"]["request"]["headers"], **token["data"]["response"]["headers"]}
        assert "authorization" not in {h.lower() for h in headers}
        for text in (submitted.resume_token, decoded):
            assert "bearer" not in text.lower()
            assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.", text), "a JWT in the resume token"
            assert not any(secret in text for secret in fleet.secrets())
    # A new process (a fresh gateway) re-attaches with the app id and the token alone.
    async with AzureGateway(config, retry=FAST) as gateway:
        result = await gateway.wait_operation(app.tenant_id, app.id, submitted.resume_token)
        assert result.status == "Succeeded"
        # How long it ran by ARM's clock, from the last status the SDK's poller read (the head start).
        (op,) = [o for o in fleet.emulator.state()["operations"] if o["app_key"] == app.id.lower()]
        assert result.seconds == pytest.approx(op["end"] - op["start"], abs=1e-5)
        now = await gateway.get_application(app.tenant_id, app.id)
        assert now is not None and now.definition_id is not None and now.definition_id.lower() == v2.lower()
        # A token azure-core did not make is refused as such (the engine then reconciles the app).
        with pytest.raises(ArmError) as refused:
            await gateway.wait_operation(app.tenant_id, app.id, "bm90IGEgdG9rZW4=")
        assert refused.value.code == "InvalidResumeToken" and not refused.value.transient
        denies = await gateway.list_deny_assignments_at(app.tenant_id, app.managed_resource_group_id)
    system = [
        d
        for d in denies
        if d.is_system_protected and d.scope.lower() == app.managed_resource_group_id.lower()
    ]
    assert len(system) == 1
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action" in system[0].not_actions
    # The PUT carried the rest of the resource over unchanged.
    raw = by_id(fleet.emulator.state()["applications"])[app.id.lower()]
    assert raw["properties"]["parameters"] == {"environment": {"value": "production"}}
    assert raw["properties"]["managedResourceGroupId"] == app.managed_resource_group_id
    assert raw["location"] == app.location


async def test_marketplace_upgrade_changes_only_the_plan_version(fleet: Fleet) -> None:
    config = fleet.config
    snapshot = await inventory(fleet)
    app = next(a for a in snapshot.apps if a.kind == "MarketPlace" and a.provisioning_state == "Succeeded")
    assert app.plan is not None
    target = app.plan.model_copy(update={"version": "2.0.0"})
    async with AzureGateway(config, retry=FAST) as gateway:
        submitted = await gateway.submit_upgrade(app.tenant_id, app.id, definition_id=None, plan=target)
        result = await gateway.wait_operation(app.tenant_id, app.id, submitted.resume_token)
        assert result.status == "Succeeded"
        now = await gateway.get_application(app.tenant_id, app.id)
    assert now is not None and now.plan == target and now.kind == "MarketPlace"


async def test_a_failed_operation_is_a_result_not_an_exception(tmp_path: Path) -> None:
    faults = [{"kind": "write", "action": "fail_permanent"}]
    for fleet in make_fleet(tmp_path, faults=faults):
        config = fleet.config
        snapshot = await inventory(fleet)
        app = next(
            a for a in snapshot.apps if a.kind == "ServiceCatalog" and a.provisioning_state == "Succeeded"
        )
        v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
        async with AzureGateway(config, retry=FAST) as gateway:
            submitted = await gateway.submit_upgrade(app.tenant_id, app.id, definition_id=v2, plan=None)
            result = await gateway.wait_operation(app.tenant_id, app.id, submitted.resume_token)
        assert result.status == "Failed"
        assert result.error_code == "ApplicationDefinitionInvalid"
        assert result.error_message and "cannot succeed" in result.error_message


async def test_the_put_is_not_retried_by_the_transport_once_it_may_have_reached_arm(tmp_path: Path) -> None:
    """A 5xx (or lost answer) on the PUT surfaces to the executor, which re-reads before any second
    write; reads keep their transport retries."""
    from orchestrator.errors import ArmError

    for fleet in make_fleet(tmp_path):
        config = fleet.config
        snapshot = await inventory(fleet)
        app = next(
            a for a in snapshot.apps if a.kind == "ServiceCatalog" and a.provisioning_state == "Succeeded"
        )
        v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
        fleet.emulator.set_faults([{"kind": "write", "action": "503", "first": 1}])
        async with AzureGateway(config, retry=FAST) as gateway:
            with pytest.raises(ArmError) as info:
                await gateway.submit_upgrade(app.tenant_id, app.id, definition_id=v2, plan=None)
            assert info.value.status == 503 and info.value.transient
            stats = fleet.emulator.stats()
            assert stats["writes_per_app"].get(app.id.lower(), 0) <= 1
            # The next PUT (the executor's, after it re-read the app) goes through.
            submitted = await gateway.submit_upgrade(app.tenant_id, app.id, definition_id=v2, plan=None)
            result = await gateway.wait_operation(app.tenant_id, app.id, submitted.resume_token)
            assert result.status == "Succeeded"


async def test_a_missing_application_reads_as_none_and_a_write_to_it_is_not_transient(fleet: Fleet) -> None:
    from orchestrator.errors import ArmError

    config = fleet.config
    tenant = fleet.customer_tenants()[0]
    missing = (
        f"/subscriptions/{tenant['subscriptions'][0]}/resourceGroups/rg-managedapps"
        "/providers/Microsoft.Solutions/applications/nope"
    )
    async with AzureGateway(config, retry=FAST) as gateway:
        assert await gateway.get_application(tenant["id"], missing) is None
        with pytest.raises(ArmError) as info:
            await gateway.submit_upgrade(tenant["id"], missing, definition_id="/x", plan=None)
        assert info.value.status == 404 and not info.value.transient
        # Another tenant's subscription: refused before any request leaves.
        other = fleet.customer_tenants()[1]
        with pytest.raises(ArmError) as wrong:
            await gateway.list_applications(other["id"], tenant["subscriptions"][0])
        assert wrong.value.code in ("WrongTenant", "InvalidAuthenticationTokenTenant")


# -- the `orchestrator inventory` command ---------------------------------------------------------


def test_inventory_cli_formats_and_no_secret_anywhere(fleet: Fleet, tmp_path: Path) -> None:
    apps = fleet.emulator.fleet()["applications"]
    as_json = run_cli(
        "inventory", "--config", str(fleet.config_path), "--format", "json", "--log-level", "debug"
    )
    assert as_json.code == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert {a["id"].lower() for a in doc["apps"]} == {a["id"].lower() for a in apps}
    row = next(a for a in doc["apps"] if a["kind"] == "ServiceCatalog" and a["lock_level"] == "ReadOnly")
    assert set(row) >= {"tenant", "subscription", "resource_group", "app", "definition_or_plan", "lock_level"}
    assert "*/read" in row["excluded_actions"]
    market = next(a for a in doc["apps"] if a["kind"] == "MarketPlace")
    assert market["definition_or_plan"] == "contoso-isv/contoso-app/standard@1.0.0"

    out = tmp_path / "inventory.csv"
    as_csv = run_cli("inventory", "--config", str(fleet.config_path), "--format", "csv", "--out", str(out))
    assert as_csv.code == 0 and as_csv.stdout == ""
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("tenant,subscription,resource_group,app,kind") and len(lines) == len(apps) + 1

    table = run_cli("inventory", "--config", str(fleet.config_path))
    assert table.code == 0 and f"{len(apps)} apps in" in table.stdout
    # Piped: no progress bar on stderr.
    assert table.stderr == ""
    for result in (as_json, as_csv, table):
        for secret in fleet.secrets():
            assert secret not in result.stdout and secret not in result.stderr
    assert not any(secret in out.read_text(encoding="utf-8") for secret in fleet.secrets())


def test_inventory_cli_exits_3_and_names_the_failed_tenant(fleet: Fleet) -> None:
    victim = fleet.customer_tenants()[1]
    fleet.break_secret(victim["id"])
    result = run_cli("inventory", "--config", str(fleet.config_path), "--format", "json")
    assert result.code == 3, result.stderr
    assert victim["id"] in result.stderr and "authentication failed" in result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert [t["tenant_id"] for t in doc["tenants"] if t["error"]] == [victim["id"]]
    assert doc["apps"] and not any(a["tenant_id"] == victim["id"] for a in doc["apps"])
    assert "not-the-secret" not in result.stderr + result.stdout


def test_inventory_cli_bad_config_and_missing_secret_env_are_one_line_exit_2(
    fleet: Fleet, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cloud]\nname = 'Mars'\n", encoding="utf-8")
    result = run_cli("inventory", "--config", str(bad))
    assert result.code == 2 and str(bad) in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    text = fleet.config_path.read_text(encoding="utf-8")
    first_secret_file = text.split('secret_file = "', 1)[1].split('"', 1)[0]
    env_config = fleet.config_path.with_name("env.toml")
    env_config.write_text(
        text.replace(f'secret_file = "{first_secret_file}"', 'secret_env = "NO_SUCH_SECRET_VAR"', 1),
        encoding="utf-8",
    )
    result = run_cli("inventory", "--config", str(env_config))
    assert result.code == 2, result.stderr
    assert "NO_SUCH_SECRET_VAR" in result.stderr and str(env_config) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_every_request_arm_receives_waited_for_the_observer_first(tmp_path: Path) -> None:
    """A write, its operation's polls (one throttled, then retried by the transport) and the poller's
    final read: ARM receives none that the pacer did not let go first, and none leaves while it waits
    (a request that did not wait would take a token the pacer's mirror never granted)."""
    from orchestrator.gateway import CallInfo

    class Gate:
        def __init__(self, arm_received: Callable[[], int]) -> None:
            self.arm_received = arm_received
            self.let_go: Counter[str] = Counter()
            self.answered = 0
            self.early: list[str] = []

        async def sending(self, tenant_id: str, subscription_id: str | None, method: str) -> None:
            await asyncio.sleep(0.05)  # a dry bucket's wait: the request must not leave meanwhile
            if self.arm_received() != sum(self.let_go.values()):  # one at a time here
                self.early.append(method)
            self.let_go[method if subscription_id else f"{method} tenant-level"] += 1

        def observe_response(
            self, tenant_id: str, subscription_id: str | None, method: str, status: int, info: CallInfo
        ) -> None:
            self.answered += 1
            assert self.answered <= sum(self.let_go.values())

    faults = [{"kind": "poll", "action": "429", "retry_after": 0.01, "first": 1}]
    for fleet in make_fleet(tmp_path, throttle=True, faults=faults):
        snapshot = await inventory(fleet)
        app = next(
            a for a in snapshot.apps if a.kind == "ServiceCatalog" and a.provisioning_state == "Succeeded"
        )
        v2 = fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]
        before = Counter(fleet.emulator.stats()["routes"])

        def arm_received(emulator: Any = fleet.emulator, before: Counter[str] = before) -> int:
            return sum((Counter(emulator.stats()["routes"]) - before).values())

        gate = Gate(arm_received)
        async with AzureGateway(fleet.config, retry=FAST) as gateway:
            gateway.observe_calls(gate)
            submitted = await gateway.submit_upgrade(app.tenant_id, app.id, definition_id=v2, plan=None)
            result = await gateway.wait_operation(app.tenant_id, app.id, submitted.resume_token)
        assert result.status == "Succeeded"
        stats = fleet.emulator.stats()
    received = Counter(stats["routes"]) - before
    assert stats["faults_injected"].get("429") == 1
    assert received["GET op"] >= 2  # the throttled poll and the transport's retry of it
    assert received["GET app"] >= 2  # the body read before the PUT, and the poller's final read
    assert gate.let_go["PUT"] == received["PUT app"] == 1
    assert gate.let_go["GET"] == received["GET app"] + received["GET op"]
    assert gate.let_go["GET tenant-level"] == received["GET subscriptions"]
    assert gate.answered == sum(gate.let_go.values())
    assert gate.early == []  # ARM had received exactly the requests let go before each one


async def test_every_request_and_its_answer_reach_the_observer_with_arms_rate_limit_headers(
    tmp_path: Path,
) -> None:
    """The executor's pacer lets every request go and hears its answer (transport retries included)
    through the gateway: each exactly once, a connection reset as an answer with status 0."""
    from orchestrator.gateway import CallInfo

    class Heard:
        def __init__(self) -> None:
            self.sent: list[tuple[str, str | None, str]] = []
            self.answers: list[tuple[str, str | None, str, int, CallInfo]] = []

        async def sending(self, tenant_id: str, subscription_id: str | None, method: str) -> None:
            self.sent.append((tenant_id, subscription_id, method))

        def observe_response(
            self, tenant_id: str, subscription_id: str | None, method: str, status: int, info: CallInfo
        ) -> None:
            assert len(self.answers) < len(self.sent)  # never an answer before its request
            self.answers.append((tenant_id, subscription_id, method, status, info))

    heard = Heard()
    faults = [
        {"kind": "list", "action": "429", "retry_after": 0.01, "first": 1},
        {"kind": "read", "action": "reset", "first": 2},  # aiohttp re-sends a GET once itself
    ]
    for fleet in make_fleet(tmp_path, throttle=True, faults=faults):
        config = fleet.config
        async with AzureGateway(config, retry=FAST) as gateway:
            gateway.observe_calls(heard)
            tenant = str(fleet.customer_tenants()[0]["id"])
            subs = await gateway.list_subscriptions(tenant)
            apps = await gateway.list_applications(tenant, subs[0].id)
            await gateway.list_deny_assignments_at(tenant, apps[0].managed_resource_group_id)
            assert await gateway.get_application(tenant, apps[0].id) is not None
        stats = fleet.emulator.stats()
    assert stats["faults_injected"].get("429") == 1 and stats["faults_injected"].get("reset") == 2
    assert Counter(heard.sent) == Counter(a[:3] for a in heard.answers)  # each request answered once
    statuses = [h[3] for h in heard.answers]
    assert 429 in statuses and statuses.count(200) >= 4  # the throttled try and its retry both seen
    assert statuses.count(0) == 1  # the reset: no answer came, and the transport's retry was answered
    reset = next(h for h in heard.answers if h[3] == 0)
    assert reset[4] == CallInfo()
    throttled = next(h for h in heard.answers if h[3] == 429)
    assert throttled[4].retry_after is not None
    in_sub = [h for h in heard.answers if h[1] is not None and h[3] == 200]
    assert in_sub and all(h[1] is not None and h[1].lower() == subs[0].id.lower() for h in in_sub)
    assert all(h[0] == tenant.lower() and h[2] == "GET" for h in heard.answers)
    assert all(h[4].remaining_reads is not None and h[4].tenant_remaining_reads is not None for h in in_sub)
