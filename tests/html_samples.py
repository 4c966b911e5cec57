"""A plan and a run to render, with hostile names where customers control them (test data only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.models import (
    ActionChange,
    AppState,
    AppStatusView,
    Decision,
    Definition,
    Plan,
    PlanItem,
    PlanOptions,
    Risk,
    RunState,
    RunView,
    Severity,
    Target,
    Wave,
)

EVIL_APP = "<script>alert('pwned')</script>"
EVIL_TENANT = 'Contoso & "Partners" <b>'
EVIL_MESSAGE = "deployment failed: <img src=x onerror=alert(1)>"
START = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)
GENERATED = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)  # when a page says it was made
READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"

TENANTS = [
    ("11111111-1111-1111-1111-111111111111", EVIL_TENANT),
    ("22222222-2222-2222-2222-222222222222", "Fabrikam"),
    ("33333333-3333-3333-3333-333333333333", "Northwind Traders"),
]


def _app_id(tenant: int, n: int) -> str:
    sub = f"{tenant:08d}-0000-0000-0000-{n:012d}"
    return f"/subscriptions/{sub}/resourceGroups/rg-{n}/providers/Microsoft.Solutions/applications/app-{n}"


def _risk(code: str, severity: Severity, message: str) -> Risk:
    return Risk(code=code, severity=severity, message=message)


def _item(t: int, n: int) -> PlanItem:
    """App n of tenant t: mostly updates, some current, skipped or drifted; a few with risks."""
    decision = Decision.UPDATE
    reason = "definition v1 → v2"
    risks: tuple[Risk, ...] = ()
    change = ActionChange(actions_added=(READ_METADATA,))
    if n % 7 == 3:
        decision, reason, change = Decision.CURRENT, "already on v2", ActionChange()
    elif n % 11 == 5:
        decision, reason, change = Decision.SKIP, "no write access", ActionChange()
    elif t == 2 and n == 2:
        decision, reason = Decision.DRIFTED, "provisioning state Updating since plan was read"
    if decision == Decision.UPDATE and n == 1:
        risks = (_risk("widens-write", Severity.HIGH, "adds Microsoft.Web/sites/write"),)
    if decision == Decision.UPDATE and n == 4:
        risks = (_risk("broad-wildcard", Severity.MEDIUM, "adds Microsoft.Storage/*"),)
    if decision == Decision.UPDATE and n == 6:
        change = ActionChange(actions_removed=("Microsoft.Web/sites/config/list/action",))
        risks = (_risk("tightens", Severity.LOW, "removes config/list from exclusions"),)
    tenant_id, tenant_name = TENANTS[t]
    return PlanItem(
        app_id=_app_id(t, n),
        app_name=EVIL_APP if (t, n) == (0, 1) else f"app-{t}-{n}",
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        subscription_id=f"{t:08d}-0000-0000-0000-{n:012d}",
        resource_group=f"rg-{n}",
        kind="ServiceCatalog",
        decision=decision,
        reason=reason,
        change=change,
        risks=risks,
        fingerprint=f"fp-{t}-{n}",
    )


def sample_plan() -> Plan:
    items = [_item(t, n) for t in range(len(TENANTS)) for n in range(8 + 4 * t)]
    updates = [i for i in items if i.decision == Decision.UPDATE]
    waves = (
        Wave(index=0, name="canary", app_ids=tuple(i.app_id for i in updates[:3])),
        Wave(index=1, name="wave-1", app_ids=tuple(i.app_id for i in updates[3:12])),
        Wave(index=2, name="wave-2", app_ids=tuple(i.app_id for i in updates[12:])),
    )
    wave_of = {a: w.index for w in waves for a in w.app_ids}
    items = [i.model_copy(update={"wave": wave_of.get(i.app_id)}) for i in items]
    return Plan(
        tool_version="0.1.0",
        created_at=START - timedelta(days=1),
        target=Target(
            name="v2 <readMetadata>",
            definition_id="/subscriptions/0/resourceGroups/isv/providers/Microsoft.Solutions/applicationDefinitions/app-v2",
            definition=Definition(lock_level="ReadOnly", allowed_actions=(READ_METADATA,)),
        ),
        options=PlanOptions(),
        items=tuple(items),
        waves=waves,
        notes=("tenant 44444444-…: could not list subscriptions (AuthorizationFailed) <i>",),
        digest="ab" * 32,
    )


def sample_run() -> RunView:
    plan = sample_plan()
    apps: list[AppStatusView] = []
    wave_start = {0: START, 1: START + timedelta(minutes=6), 2: START + timedelta(minutes=14)}
    position: dict[int, int] = {}
    for item in plan.items:
        if item.wave is None:
            state = AppState.SKIPPED
            started = finished = None
        else:
            k = position.setdefault(item.wave, 0)
            position[item.wave] = k + 1
            started = wave_start[item.wave] + timedelta(seconds=40 * (k % 4) + 5 * k)
            finished = started + timedelta(minutes=3, seconds=17 * (k % 5))
            state = AppState.SUCCEEDED
            if item.wave == 1 and k == 2:
                state = AppState.FAILED
            elif item.wave == 2 and k == 1:
                state = AppState.UNVERIFIED
            elif item.wave == 2 and k >= 6:
                state, finished = AppState.SUBMITTED, None
        apps.append(
            AppStatusView(
                app_id=item.app_id,
                app_name=item.app_name,
                tenant_id=item.tenant_id,
                tenant_name=item.tenant_name,
                subscription_id=item.subscription_id,
                wave=item.wave,
                state=state,
                attempts=3 if state == AppState.FAILED else (1 if started else 0),
                error_code="ApplicationUpdateFailed" if state == AppState.FAILED else None,
                error_message="deployment failed: <img src=x onerror=alert(1)>"
                if state == AppState.FAILED
                else None,
                request_id="0f9c1c2e-aaaa-bbbb-cccc-000000000001" if state == AppState.FAILED else None,
                started_at=started,
                finished_at=finished,
                updated_at=finished or started,
            )
        )
    return RunView(
        run_id="run-20261128-2100",
        kind="apply",
        plan_digest=plan.digest,
        plan_path="plans/v2.plan.json",
        target_name=plan.target.name,
        state=RunState.RUNNING,
        started_at=START,
        updated_at=START + timedelta(minutes=22),
        apps=tuple(apps),
    )
