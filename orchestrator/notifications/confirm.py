"""Confirm an event by reading the application by id, as the notification docs advise.

The identity: the configured customer that owns the app's subscription (named in its `subscriptions`,
its subscription paths or its application list, or found by listing each customer's subscriptions
once); when none does, the publisher identity (the tenant with `ring = "publisher"`), which in Azure
may read its instances by id. The gateway's tenant guard still refuses anything it knows belongs to
another tenant before a request is sent; an id the registry holds is readable like the customer's
application list (reads only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from orchestrator.config import WRITING_PATHS, FleetConfig
from orchestrator.errors import ArmError
from orchestrator.gateway import ArmGateway
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import Notification

log = structlog.get_logger("orchestrator.notifications")

TERMINAL = frozenset({"Succeeded", "Failed", "Deleted"})


def judge(event: Notification, provisioning_state: str | None) -> tuple[str, str]:
    """(outcome, detail) for what ARM returned (`None`: the app does not exist). Pure."""
    if provisioning_state is None:
        if event.event_type == "DELETE" and event.provisioning_state == "Deleted":
            return "confirmed", "the application no longer exists"
        return "not-found", "the application does not exist"
    said = f"ARM says provisioningState {provisioning_state}"
    if event.provisioning_state not in TERMINAL or provisioning_state == event.provisioning_state:
        return "confirmed", said
    return "differs", said


class Confirmer:
    def __init__(
        self,
        fleet: FleetConfig,
        gateway: ArmGateway,
        registry: Registry,
        *,
        concurrency: int = 8,
        then: Callable[[Notification], Awaitable[None]] | None = None,
    ) -> None:
        """`then`: called after each confirmation (the receiver's verification of awaiting apps)."""
        self._fleet = fleet
        self._gateway = gateway
        self._registry = registry
        self._then = then
        self._limit = asyncio.Semaphore(concurrency)
        self._owners: dict[str, str] = {
            sub.lower(): c.id for c in fleet.customer_list for sub in c.named_subscriptions
        }
        self._listed: asyncio.Task[None] | None = None
        publishers = [t.id for t in fleet.tenants if t.ring == "publisher"]
        self._publisher = publishers[0] if publishers else None

    async def _list_owners(self) -> None:
        for customer in self._fleet.customer_list:
            if customer.subscriptions != "all" or not customer.paths & WRITING_PATHS:
                continue  # named, or not listable (by-id paths)
            try:
                subs = await self._gateway.list_subscriptions(customer.id)
            except ArmError as exc:
                log.warning("cannot list subscriptions for confirmations", tenant=customer.id, cause=str(exc))
                continue
            for sub in subs:
                self._owners.setdefault(sub.id.lower(), customer.id)

    async def owner_of(self, subscription_id: str) -> str | None:
        if subscription_id.lower() not in self._owners:
            if self._listed is None:
                self._listed = asyncio.create_task(self._list_owners())
            await asyncio.shield(self._listed)
        return self._owners.get(subscription_id.lower(), self._publisher)

    async def __call__(self, event: Notification) -> None:
        await self._confirm(event)
        if self._then is not None:
            await self._then(event)

    async def _confirm(self, event: Notification) -> None:
        async with self._limit:
            tenant = await self.owner_of(event.subscription_id)
            if tenant is None:
                outcome, detail = "unconfirmed", f"no configured identity can read {event.subscription_id}"
            else:
                # The registry holds the event: its id is readable by id like the customer's list.
                self._gateway.allow_app_reads(tenant, [event.application_id])
                try:
                    app = await self._gateway.get_application(tenant, event.application_id)
                except ArmError as exc:
                    outcome, detail = "error", str(exc)
                else:
                    outcome, detail = judge(event, app.provisioning_state if app is not None else None)
            customer = tenant if tenant is not None and tenant != self._publisher else None
            try:
                await asyncio.to_thread(self._registry.record_confirmation, event, outcome, detail, customer)
            except Exception as exc:
                log.error("cannot record a confirmation", app=event.application_id, cause=str(exc))
                return
            log.info("notification confirmed", app=event.application_id, outcome=outcome, detail=detail)
