"""Value objects that flow config → inventory → planner → plan → executor → journal → report.

Everything here is pure data (pydantic, frozen). No I/O, no Azure SDK types: the ARM edge
(`orchestrator.arm`) converts SDK models into these the moment they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


LockLevel = Literal["None", "CanNotDelete", "ReadOnly"]
# How the orchestrator reaches a customer's app (see config.CustomerConfig).
AccessPath = Literal["direct", "delegated", "publisher", "customer-run"]

# Provisioning states after which an instance can be written to (ARM's terminal success).
TERMINAL_SUCCESS = "Succeeded"


class MarketplacePlan(Frozen):
    """A marketplace plan reference, as on `Microsoft.Solutions/applications`.plan."""

    publisher: str
    product: str
    name: str
    version: str


class Authorization(Frozen):
    principal_id: str
    role_definition_id: str


class Definition(Frozen):
    """What an application definition (or a marketplace plan version) says about the deny assignment."""

    id: str | None = None  # ARM id for service-catalog definitions; None for a marketplace plan version
    lock_level: LockLevel
    allowed_actions: tuple[str, ...] = ()
    allowed_data_actions: tuple[str, ...] = ()
    authorizations: tuple[Authorization, ...] = ()


class DenyAssignment(Frozen):
    """The parts of a `Microsoft.Authorization/denyAssignments` resource the orchestrator reasons about.

    Only the first permission block is modelled: system deny assignments of managed applications have one.
    """

    id: str
    name: str
    scope: str
    deny_assignment_name: str = ""
    description: str = ""
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()  # the excluded actions
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()  # the excluded data actions
    excluded_principal_ids: tuple[str, ...] = ()
    is_system_protected: bool = False


class AppKind(StrEnum):
    SERVICE_CATALOG = "ServiceCatalog"
    MARKETPLACE = "MarketPlace"


class App(Frozen):
    """One `Microsoft.Solutions/applications` instance as read, joined with its MRG deny assignment."""

    id: str
    name: str
    tenant_id: str
    subscription_id: str
    resource_group: str
    location: str
    kind: str  # AppKind value, kept as str because ARM may return others
    managed_resource_group_id: str
    definition_id: str | None = None
    plan: MarketplacePlan | None = None
    provisioning_state: str
    tags: dict[str, str] = Field(default_factory=dict)
    # The lock level of the instance's current definition when known (service catalog), else None.
    lock_level: LockLevel | None = None
    deny_assignment: DenyAssignment | None = None
    # Why no deny assignment was chosen although system-protected ones sit on the MRG (derive.py).
    deny_assignment_problem: str | None = None
    # Whether the orchestrator's identity may write the application resource (customer resource group):
    # None when not checked. `plan` checks it; the planner skips updates it could never apply.
    writable: bool | None = None
    # The tenant the application names as its publisher (properties.publisherTenantId).
    publisher_tenant_id: str | None = None
    # How the orchestrator reaches it: direct, delegated, publisher, customer-run.
    path: AccessPath = "direct"


class Subscription(Frozen):
    id: str  # the bare subscription GUID
    display_name: str = ""
    tenant_id: str
    state: str = "Enabled"
    # Tenants managing it through Azure Lighthouse, as ARM lists them (managedByTenants).
    managed_by_tenants: tuple[str, ...] = ()


class TenantInventory(Frozen):
    tenant_id: str
    display_name: str
    ring: str
    tags: dict[str, str] = Field(default_factory=dict)
    subscriptions: tuple[Subscription, ...] = ()
    error: str | None = None  # one line: why this tenant could not be (fully) read


class RegistryMiss(Frozen):
    """An app the notification registry knows that inventory could not read by id, and why."""

    app_id: str
    cause: str


class Snapshot(Frozen):
    """The fleet as read by one inventory run."""

    taken_at: datetime
    tenants: tuple[TenantInventory, ...]
    apps: tuple[App, ...]
    # Definitions the apps point at, by lower-cased ARM id (read once each).
    definitions: dict[str, Definition] = Field(default_factory=dict)
    # How many apps each source contributed ("arm": listed per subscription, "registry": read by id).
    sources: dict[str, int] = Field(default_factory=dict)
    registry_misses: tuple[RegistryMiss, ...] = ()


class Lineage(Frozen):
    """The service-catalog definitions a target replaces: an app on any other is another product's.

    Names and the name stem are matched only among definitions in the target definition's own
    publisher resource group; ids match anywhere. See `orchestrator.planning.lineage`.
    """

    definition_ids: tuple[str, ...] = ()  # exact definition ids (case-insensitive)
    names: tuple[str, ...] = ()  # globs on the definition name, e.g. "app-v*" (case-insensitive)
    same_stem: bool = False  # definitions whose name has the target's stem ("app" of app-v2)


class Target(Frozen):
    """What every fitting instance should be moved to."""

    name: str = "target"
    # Service catalog: instances move to this definition id. Marketplace: to `plan`'s version.
    definition_id: str | None = None
    plan: MarketplacePlan | None = None
    definition: Definition  # lock level, allowed actions and authorizations the target implies
    # Which definitions it replaces (service catalog). None in plans made before lineage existed: the
    # default rule (same name stem, same publisher resource group) applies to them.
    lineage: Lineage | None = None

    @property
    def moves_to(self) -> str:
        """What instances move to, for people: the definition id and/or the marketplace plan version."""
        parts = []
        if self.definition_id:
            parts.append(f"service catalog: {self.definition_id}")
        if self.plan is not None:
            p = self.plan
            parts.append(f"marketplace: {p.publisher}/{p.product}/{p.name} version {p.version}")
        return "; ".join(parts) or "?"


class Decision(StrEnum):
    UPDATE = "update"
    CURRENT = "current"
    DRIFTED = "drifted"
    SKIP = "skip"


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Risk(Frozen):
    code: str  # stable machine code, e.g. "widens-write", "broad-wildcard", "tightens"
    severity: Severity
    message: str


class ActionChange(Frozen):
    """How the set of operations excluded from the deny changes (pattern-aware, case-insensitive)."""

    actions_added: tuple[str, ...] = ()
    actions_removed: tuple[str, ...] = ()
    data_actions_added: tuple[str, ...] = ()
    data_actions_removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.actions_added or self.actions_removed or self.data_actions_added or self.data_actions_removed
        )


class AppStateSummary(Frozen):
    """The parts of an app's state that apply must find unchanged (normalised: ids lower, lists sorted)."""

    definition_id: str | None = None
    plan: MarketplacePlan | None = None
    provisioning_state: str
    managed_resource_group_id: str
    has_deny_assignment: bool
    not_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


class PlanItem(Frozen):
    app_id: str
    app_name: str
    tenant_id: str
    tenant_name: str
    subscription_id: str
    resource_group: str
    kind: str
    decision: Decision
    reason: str
    wave: int | None = None  # index into Plan.waves for decision == update
    from_definition_id: str | None = None
    from_plan: MarketplacePlan | None = None
    to_definition_id: str | None = None
    to_plan: MarketplacePlan | None = None
    change: ActionChange = ActionChange()
    # Exclusions the deny assignment must carry once the update is done (verification reads these).
    expected_not_actions: tuple[str, ...] = ()
    expected_not_data_actions: tuple[str, ...] = ()
    risks: tuple[Risk, ...] = ()
    fingerprint: str  # of the app's state as read; apply refuses when it changed
    # What the fingerprint was computed over, so apply can say what changed (planning.fingerprint).
    as_read: AppStateSummary | None = None
    # How the orchestrator reaches the app: direct and delegated apps are written by apply (and have a
    # wave); publisher and customer-run updates are made by the customer from a kit (no wave).
    path: AccessPath = "direct"


class Wave(Frozen):
    index: int
    name: str  # "canary", "wave-1", ...
    app_ids: tuple[str, ...]


class WaveSpec(Frozen):
    canary_ring: str = "canary"
    # Steps after the canary wave: "10", "25%", ... ; the last step repeats until all apps are placed.
    steps: tuple[str, ...] = ("25%", "100%")


class PlanOptions(Frozen):
    waves: WaveSpec = WaveSpec()


class PlanCounts(Frozen):
    apps: int = 0
    tenants: int = 0
    update: int = 0
    current: int = 0
    drifted: int = 0
    skip: int = 0
    # Risk code → number of plan items carrying it.
    risks: dict[str, int] = Field(default_factory=dict)


class Plan(Frozen):
    schema_version: int = 1
    tool_version: str
    created_at: datetime
    target: Target
    options: PlanOptions
    items: tuple[PlanItem, ...]
    waves: tuple[Wave, ...]
    counts: PlanCounts | None = None  # set by the planner; derived from items, for readers and tools
    # Plan-level warnings a reviewer must see, e.g. a tenant whose apps could not be read.
    notes: tuple[str, ...] = ()
    # Tenants that could not be read when planning: their apps are missing; apply refuses the plan
    # unless told otherwise (--allow-incomplete).
    incomplete_tenants: tuple[str, ...] = ()
    # Set on the review of a rollback (`rollback RUN --plan-out`): the run it undoes. `rollback` runs
    # it, not `apply` (which would leave the undone run unmarked).
    rollback_of: str | None = None
    digest: str = ""  # sha256 over the canonical body without this field; set by planning.planfile

    def wave_names(self) -> dict[int, str]:
        """Wave index -> its name ("canary", "wave-1", ...)."""
        return {w.index: w.name for w in self.waves}


class AppState(StrEnum):
    """Where one app stands in a run (the journal's per-app state)."""

    PENDING = "pending"
    SUBMITTED = "submitted"  # a write is in flight at ARM
    VERIFYING = "verifying"  # the operation succeeded; reading the deny assignment back
    SUCCEEDED = "succeeded"  # verified: the deny assignment carries the planned exclusions
    UNVERIFIED = "unverified"  # the operation succeeded but the deny assignment never converged
    FAILED = "failed"
    STALE = "stale"  # the app changed since planning; not written
    SKIPPED = "skipped"  # the plan decided not to update it (skip)
    CURRENT = "current"  # already on the target with the planned exclusions: nothing to write
    DRIFTED = "drifted"  # the plan found its deny assignment drifted: a human looks, apply does not write
    HALTED = "halted"  # not attempted because the rollout stopped
    ROLLED_BACK = "rolled_back"
    # On a path the orchestrator does not write (publisher, customer-run): the customer runs the update
    # from its kit (`orchestrator handoff`); `orchestrator verify` moves it to succeeded or failed.
    AWAITING_CUSTOMER = "awaiting-customer"


TERMINAL_APP_STATES = frozenset(
    {
        AppState.SUCCEEDED,
        AppState.UNVERIFIED,
        AppState.FAILED,
        AppState.STALE,
        AppState.SKIPPED,
        AppState.CURRENT,
        AppState.DRIFTED,
        AppState.ROLLED_BACK,
    }
)


class RunState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # every app reached a terminal state
    HALTED = "halted"  # a wave exceeded its failure tolerance
    WAITING = "waiting"  # some apps wait for their maintenance window
    INTERRUPTED = "interrupted"  # the process stopped before finishing (resume continues it)


class AppStatusView(Frozen):
    app_id: str
    app_name: str
    tenant_id: str
    tenant_name: str
    subscription_id: str
    wave: int | None
    state: AppState
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None  # first submit
    finished_at: datetime | None = None  # terminal state reached


class RunView(Frozen):
    """A run as the journal knows it; what status, reports and the HTML page render."""

    run_id: str
    kind: str  # "apply" | "rollback"
    plan_digest: str
    plan_path: str | None = None
    target_name: str
    state: RunState
    started_at: datetime
    updated_at: datetime
    apps: tuple[AppStatusView, ...]
    # Wave index -> the plan's name for it, as journaled (empty for runs journaled before names were).
    wave_names: dict[int, str] = Field(default_factory=dict)


# A plain frozen dataclass, not pydantic: one is made for every ARM response (the pacer reads each).
@dataclass(frozen=True)
class CallInfo:
    """What ARM said about a call, for the journal and logs."""

    request_id: str | None = None  # x-ms-request-id
    correlation_id: str | None = None
    remaining_reads: int | None = None  # x-ms-ratelimit-remaining-subscription-reads
    remaining_writes: int | None = None  # x-ms-ratelimit-remaining-subscription-writes
    tenant_remaining_reads: int | None = None  # x-ms-ratelimit-remaining-tenant-reads
    tenant_remaining_writes: int | None = None  # x-ms-ratelimit-remaining-tenant-writes
    retry_after: float | None = None  # Retry-After / retry-after-ms, in seconds
