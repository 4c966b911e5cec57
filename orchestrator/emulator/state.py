"""The emulator's in-memory Azure: tenants, subscriptions, resources, operations; JSON persistence.

Resource bodies are kept as the ARM JSON the routes return, indexed by lower-cased id because ARM
ids are case-insensitive. The fleet file (`--fleet`) and the state file (`--state`) share one format.
"""

from __future__ import annotations

import heapq
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.emulator.index import ScopedIndex, place_by_id, place_by_scope

FORMAT_VERSION = 1

Json = dict[str, Any]


@dataclass
class Tenant:
    id: str
    name: str
    client_id: str
    client_secret: str
    principal_id: str  # object id of the orchestrator's service principal in this tenant
    role: str = "customer"  # "customer" | "publisher"
    publisher_access: str = "full"  # "full" | "read-only" | "none" | "by-id"
    ring: str = "default"
    # How the publisher reaches this customer (the generator's access mix): "direct" (the customer's
    # own identity), "delegated" (Lighthouse), "publisher" (reads by id), "locked" (customer-managed).
    access: str = "direct"


@dataclass
class Subscription:
    id: str
    tenant_id: str
    display_name: str


@dataclass
class Operation:
    id: str
    kind: str  # "create" | "update" | "delete" | "refreshPermissions"
    app_key: str
    app_id: str
    subscription_id: str
    location: str
    start: float
    end: float
    status: str = "InProgress"  # InProgress | Succeeded | Failed
    running_state: str = "Updating"
    fail_code: str | None = None
    fail_message: str | None = None
    deny_delay: float = 0.0  # seconds after success before the deny assignment converges
    previous: Json | None = None  # the app before this write, restored if the operation fails
    ended_at: float | None = None

    def quarter(self) -> float:
        """When the app leaves Accepted for Running/Updating."""
        return self.start + (self.end - self.start) * 0.25

    def error(self) -> Json | None:
        if self.status != "Failed":
            return None
        return {"code": self.fail_code, "message": self.fail_message, "details": [], "additionalInfo": []}


@dataclass
class WriteRecord:
    method: str
    start: float
    end: float | None
    status: int
    operation_id: str | None = None
    conflict: bool = False


@dataclass
class PendingDeny:
    apply_at: float
    key: str  # lower-cased deny assignment id
    body: Json | None  # None: remove


@dataclass
class State:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    resource_groups: dict[str, Json] = field(default_factory=dict)
    # Indexed by subscription (and deny assignments by scope) so listings don't scan the fleet.
    definitions: ScopedIndex = field(default_factory=lambda: ScopedIndex(place_by_id))
    applications: ScopedIndex = field(default_factory=lambda: ScopedIndex(place_by_id))
    deny_assignments: ScopedIndex = field(default_factory=lambda: ScopedIndex(place_by_scope))
    # Marketplace offer plan versions: {"publisher","product","name","version","lockLevel",
    # "allowedActions","allowedDataActions","authorizations":[{"principalId","roleDefinitionId"}]}
    offers: list[Json] = field(default_factory=list)
    operations: dict[str, Operation] = field(default_factory=dict)
    in_flight: dict[str, str] = field(default_factory=dict)  # app key -> operation id
    pending_deny: list[PendingDeny] = field(default_factory=list)  # kept sorted by apply_at
    # In memory only (rebuilt on load): a heap of (when, operation id) for every in-flight operation's
    # next transition (a quarter in: Accepted -> Running/Updating; the end), so advancing to the
    # present costs nothing per request unless something is due.
    timeline: list[tuple[float, str]] = field(default_factory=list, repr=False, compare=False)
    writes: dict[str, list[WriteRecord]] = field(default_factory=dict)
    publisher_tenant_id: str = ""
    publisher_subscription_id: str = ""
    # Azure Lighthouse (Microsoft.ManagedServices), by lower-cased id.
    registration_definitions: dict[str, Json] = field(default_factory=dict)
    registration_assignments: dict[str, Json] = field(default_factory=dict)

    # ---- lookups -------------------------------------------------------------------------------
    def tenant_by_client(self, tenant_id: str, client_id: str) -> Tenant | None:
        tenant = self.tenants.get(tenant_id.lower())
        if tenant is None or tenant.client_id.lower() != client_id.lower():
            return None
        return tenant

    def subscriptions_of(self, tenant_id: str) -> list[Subscription]:
        tid = tenant_id.lower()
        return [s for s in self.subscriptions.values() if s.tenant_id.lower() == tid]

    def find_offer(self, plan: Json) -> Json | None:
        want = tuple(str(plan.get(k, "")).lower() for k in ("publisher", "product", "name", "version"))
        for offer in self.offers:
            if tuple(str(offer[k]).lower() for k in ("publisher", "product", "name", "version")) == want:
                return offer
        return None

    def schedule(self, op: Operation) -> None:
        """Put an in-flight operation's transitions on the timeline."""
        heapq.heappush(self.timeline, (op.quarter(), op.id))
        heapq.heappush(self.timeline, (op.end, op.id))

    # ---- persistence ---------------------------------------------------------------------------
    def to_json(self) -> Json:
        return {
            "format": "managedapp-emulator-state",
            "version": FORMAT_VERSION,
            "publisher": {
                "tenant_id": self.publisher_tenant_id,
                "subscription_id": self.publisher_subscription_id,
            },
            "tenants": [asdict(t) for t in self.tenants.values()],
            "subscriptions": [asdict(s) for s in self.subscriptions.values()],
            "resource_groups": list(self.resource_groups.values()),
            "application_definitions": list(self.definitions.values()),
            "applications": list(self.applications.values()),
            "deny_assignments": list(self.deny_assignments.values()),
            "marketplace_offers": self.offers,
            "operations": [asdict(o) for o in self.operations.values()],
            "in_flight": self.in_flight,
            "pending_deny": [asdict(p) for p in self.pending_deny],
            "writes": {k: [asdict(w) for w in v] for k, v in self.writes.items()},
            "registration_definitions": list(self.registration_definitions.values()),
            "registration_assignments": list(self.registration_assignments.values()),
        }

    @classmethod
    def from_json(cls, raw: Json) -> State:
        if raw.get("format") != "managedapp-emulator-state":
            raise ValueError("not an emulator fleet/state file (missing format: managedapp-emulator-state)")
        state = cls()
        pub = raw.get("publisher", {})
        state.publisher_tenant_id = pub.get("tenant_id", "")
        state.publisher_subscription_id = pub.get("subscription_id", "")
        for t in raw.get("tenants", []):
            state.tenants[t["id"].lower()] = Tenant(**t)
        for s in raw.get("subscriptions", []):
            state.subscriptions[s["id"].lower()] = Subscription(**s)
        for rg in raw.get("resource_groups", []):
            state.resource_groups[rg["id"].lower()] = rg
        state.definitions = ScopedIndex(
            place_by_id, ((d["id"].lower(), d) for d in raw.get("application_definitions", []))
        )
        state.applications = ScopedIndex(
            place_by_id, ((a["id"].lower(), a) for a in raw.get("applications", []))
        )
        state.deny_assignments = ScopedIndex(
            place_by_scope, ((da["id"].lower(), da) for da in raw.get("deny_assignments", []))
        )
        state.offers = list(raw.get("marketplace_offers", []))
        for o in raw.get("operations", []):
            state.operations[o["id"]] = Operation(**o)
        state.in_flight = dict(raw.get("in_flight", {}))
        state.pending_deny = sorted(
            (PendingDeny(**p) for p in raw.get("pending_deny", [])), key=lambda p: p.apply_at
        )
        for op_id in state.in_flight.values():
            state.schedule(state.operations[op_id])
        state.writes = {k: [WriteRecord(**w) for w in v] for k, v in raw.get("writes", {}).items()}
        for d in raw.get("registration_definitions", []):
            state.registration_definitions[d["id"].lower()] = d
        for a in raw.get("registration_assignments", []):
            state.registration_assignments[a["id"].lower()] = a
        return state

    def save(self, path: Path) -> None:
        """Write atomically, so a crash mid-save never leaves a truncated state file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        # 0600: the file holds every tenant's client secret.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.to_json(), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> State:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def now() -> float:
    """Wall-clock seconds: persisted operation times stay meaningful across restarts."""
    return time.time()


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e6):06d}Z"
