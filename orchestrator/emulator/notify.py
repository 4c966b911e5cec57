"""The managed-application notification sender, as Azure runs it for a definition or marketplace offer.

Where: a service-catalog definition's `properties.notificationPolicy.notificationEndpoints[0].uri`, or a
marketplace offer's `notificationEndpoint`; the event is POSTed to that URI with `/resource` appended
to its path (query kept: that is where the publisher's `sig` secret rides).
What: PUT Accepted when an application PUT is accepted, then PUT Succeeded or Failed when its operation
ends; PATCH Succeeded; DELETE Deleting, then Deleted or Failed (Azure docs, "Azure managed applications
with notifications": notification schema).
How: each event on its own; retried on 5xx, 429 and when unreachable with exponential backoff, until a
200, for at most 10 hours; every duration scaled by the time scale. Any other answer (400, 401, 413…)
is final ("rejected"): resending the same body cannot change it. Undelivered events live in memory:
an emulator restart drops them (Azure's own queue is durable; not emulated).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from orchestrator.emulator.state import Json, Operation, State

if TYPE_CHECKING:
    from orchestrator.emulator.runtime import Runtime

GIVE_UP_SECONDS = 10 * 3600.0  # Azure stops retrying after 10 hours
FIRST_BACKOFF = 5.0
MAX_BACKOFF = 600.0
CONCURRENCY = 64


@dataclass
class NotifyStats:
    events: int = 0  # events the emulator produced for an app with an endpoint
    attempts: int = 0  # POSTs sent
    delivered: int = 0  # answered 200
    retries: int = 0  # attempts after the first
    rejected: int = 0  # a final non-200, non-retryable answer
    gave_up: int = 0  # still failing after the (scaled) 10 hours
    answers: Counter[str] = field(default_factory=Counter)  # "200", "503", "unreachable", …

    def as_json(self, pending: int) -> dict[str, Any]:
        return {
            "events": self.events,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "retries": self.retries,
            "rejected": self.rejected,
            "gave_up": self.gave_up,
            "pending": pending,
            "answers": dict(sorted(self.answers.items())),
        }


def endpoint_secret(state: State, param: str = "sig") -> str | None:
    """The `sig` secret of the first endpoint a definition or offer carries (for --write-config)."""
    for definition in state.definitions.values():
        policy = definition.get("properties", {}).get("notificationPolicy") or {}
        for entry in policy.get("notificationEndpoints", []):
            found = URL(str(entry.get("uri", ""))).query.get(param)
            if found:
                return found
    for offer in state.offers:
        found = URL(str(offer.get("notificationEndpoint", ""))).query.get(param)
        if found:
            return found
    return None


def resource_url(endpoint: str) -> str:
    url = URL(endpoint)
    return str(url.with_path(url.path.rstrip("/") + "/resource").with_query(url.query))


def set_endpoint(state: State, endpoint: str | None) -> None:
    """Point every definition and marketplace offer at `endpoint` (None removes it)."""
    for definition in state.definitions.values():
        props = definition.setdefault("properties", {})
        if endpoint is None:
            props.pop("notificationPolicy", None)
        else:
            props["notificationPolicy"] = {"notificationEndpoints": [{"uri": endpoint}]}
    for offer in state.offers:
        if endpoint is None:
            offer.pop("notificationEndpoint", None)
        else:
            offer["notificationEndpoint"] = endpoint


def _masked(endpoint: str) -> str:
    url = URL(endpoint)
    return str(url.with_query({k: "***" for k in url.query})) if url.query else endpoint


def mask_endpoints(dump: Json) -> None:
    """Hide endpoint query strings (the publisher's secret) in a state dump."""
    for definition in dump.get("application_definitions", []):
        policy = (definition.get("properties") or {}).get("notificationPolicy") or {}
        for entry in policy.get("notificationEndpoints", []):
            entry["uri"] = _masked(str(entry.get("uri", "")))
    for offer in dump.get("marketplace_offers", []):
        if offer.get("notificationEndpoint"):
            offer["notificationEndpoint"] = _masked(str(offer["notificationEndpoint"]))


def endpoint_of(rt: Runtime, app: Json) -> str | None:
    if str(app.get("kind", "")).lower() == "marketplace":
        offer = rt.state.find_offer(app.get("plan") or {})
        return str(offer["notificationEndpoint"]) if offer and offer.get("notificationEndpoint") else None
    def_id = str((app.get("properties") or {}).get("applicationDefinitionId") or "")
    definition = rt.state.definitions.get(def_id.lower()) if def_id else None
    if definition is None:
        return None
    policy = definition.get("properties", {}).get("notificationPolicy") or {}
    endpoints = policy.get("notificationEndpoints")
    return str(endpoints[0]["uri"]) if endpoints else None


def event_body(
    app: Json, event_type: str, state: str, error: Json | None = None, at: float | None = None
) -> Json:
    when = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    body: Json = {
        "eventType": event_type,
        "applicationId": app["id"],
        "eventTime": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "provisioningState": state,
    }
    if str(app.get("kind", "")).lower() == "marketplace":
        plan = app.get("plan") or {}
        body["plan"] = {k: plan.get(k) for k in ("publisher", "product", "name", "version")}
        usage = uuid.uuid5(uuid.NAMESPACE_URL, str(app["id"]).lower())
        body["billingDetails"] = {"resourceUsageId": str(usage)}
    else:
        body["applicationDefinitionId"] = (app.get("properties") or {}).get("applicationDefinitionId")
    if state == "Failed":
        body["error"] = error or {"code": "Failed", "message": "The operation failed.", "details": []}
    return body


class Notifier:
    """Sends events in the background of the emulator's event loop."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self.stats = NotifyStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._limit: asyncio.Semaphore | None = None

    # -- lifecycle (the emulator's aiohttp app) --------------------------------------------------

    async def start(self) -> None:
        context = ssl.create_default_context()
        if self._rt.ca_bundle is not None and self._rt.ca_bundle.exists():
            context.load_verify_locations(self._rt.ca_bundle)  # a receiver with a cert from our CA
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._ticker = asyncio.create_task(self._tick())

    async def close(self) -> None:
        for task in [self._ticker, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ticker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._session is not None:
            await self._session.close()

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.stats = NotifyStats()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _tick(self) -> None:
        """Operations end lazily (on the next request); advance them so Succeeded is sent on time."""
        from orchestrator.emulator import lro

        while True:
            timeline = self._rt.state.timeline
            wait = 0.25
            if timeline:
                wait = min(wait, max(0.005, timeline[0][0] - time.time()))
            await asyncio.sleep(wait)
            lro.advance(self._rt)

    # -- hooks from the write handlers and the operation lifecycle --------------------------------

    def write_started(self, method: str, app: Json) -> None:
        if method == "PUT":
            self.emit(app, "PUT", "Accepted")
        elif method == "DELETE":
            self.emit(app, "DELETE", "Deleting")

    def operation_finished(self, op: Operation, before: Json | None) -> None:
        app = self._rt.state.applications.get(op.app_key) or before
        if app is None or op.kind == "refreshPermissions":
            return
        writes = self._rt.state.writes.get(op.app_key, [])
        method = next((w.method for w in reversed(writes) if w.operation_id == op.id), "PUT")
        if op.status == "Failed":
            if method != "PATCH":  # the docs list PATCH Succeeded only
                self.emit(app, method, "Failed", op.error(), at=op.end)
        else:
            self.emit(app, method, "Deleted" if method == "DELETE" else "Succeeded", at=op.end)

    def announce(self) -> int:
        """The PUT that created each existing app, as it ended (the fleet "was created" with the endpoint
        set): Succeeded, or Failed for the apps whose provisioning failed."""
        apps = list(self._rt.state.applications.values())
        for app in apps:
            failed = (app.get("properties") or {}).get("provisioningState") == "Failed"
            error = {"code": "DeploymentFailed", "message": "The deployment failed.", "details": []}
            self.emit(app, "PUT", "Failed" if failed else "Succeeded", error if failed else None)
        return len(apps)

    def emit(
        self, app: Json, event_type: str, state: str, error: Json | None = None, at: float | None = None
    ) -> None:
        endpoint = endpoint_of(self._rt, app)
        if endpoint is None or self._session is None:
            return
        self.stats.events += 1
        task = asyncio.get_running_loop().create_task(
            self._deliver(resource_url(endpoint), event_body(app, event_type, state, error, at))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: Json) -> None:
        assert self._session is not None and self._limit is not None
        deadline = time.monotonic() + self._rt.scaled(GIVE_UP_SECONDS)
        backoff = FIRST_BACKOFF
        first = True
        while True:
            if not first:
                self.stats.retries += 1
            first = False
            self.stats.attempts += 1
            try:
                async with self._limit, self._session.post(url, json=body) as resp:
                    status = resp.status
                    await resp.read()
                answer = str(status)
            except (TimeoutError, aiohttp.ClientError, OSError):
                status, answer = None, "unreachable"
            self.stats.answers[answer] += 1
            if status == 200:
                self.stats.delivered += 1
                return
            if status is not None and status != 429 and status < 500:
                self.stats.rejected += 1
                return
            delay = self._rt.scaled(backoff)
            if time.monotonic() + delay > deadline:
                self.stats.gave_up += 1
                return
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, MAX_BACKOFF)
