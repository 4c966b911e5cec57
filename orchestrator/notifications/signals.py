"""The second signal of success: a rollout waiting on an app wakes up when Azure notifies a PUT for it.

The receiver (another process) stores events in the journal's file; `RegistryWatch` polls that table
for events newer than the last one it saw and wakes the verification waiting on that app. The event
only shortens the wait: verification still reads the deny assignment, and a PUT Failed event supplies
the cause when the read does not show success.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import Notification

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Signal:
    app_id: str
    provisioning_state: str  # Succeeded | Failed
    error_code: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.provisioning_state == "Failed"

    @classmethod
    def of(cls, event: Notification) -> Signal | None:
        """The signal a PUT Succeeded/Failed event gives; None for every other event."""
        if event.event_type != "PUT" or event.provisioning_state not in ("Succeeded", "Failed"):
            return None
        return cls(event.application_id, event.provisioning_state, event.error_code, event.error_message)


class NotifiedFailure(Exception):
    """Verification ends: Azure notified PUT Failed and ARM shows the app Failed."""

    def __init__(self, signal: Signal) -> None:
        super().__init__(signal.error_message or "PUT Failed")
        self.signal = signal


class Signals(Protocol):
    def mark(self) -> int:
        """A watermark: `wait(…, after=mark)` ignores what was already stored."""
        ...

    async def wait(self, app_id: str, *, after: int, timeout: float) -> Signal | None:
        """The first PUT Succeeded/Failed event for `app_id` stored after `after`, or None on timeout."""
        ...

    async def close(self) -> None: ...


class RegistryWatch:
    def __init__(self, registry: Registry, *, poll: float = POLL_SECONDS) -> None:
        self._registry = registry
        self._poll = poll
        self._seq = registry.last_seq()
        self._waiters: dict[str, list[tuple[int, asyncio.Future[Signal]]]] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, journal: Path) -> RegistryWatch | None:
        """A watch on the registry in the journal's file, or None when it holds none."""
        registry = Registry.existing(journal)
        return cls(registry) if registry is not None else None

    def mark(self) -> int:
        return self._registry.last_seq()

    async def wait(self, app_id: str, *, after: int, timeout: float) -> Signal | None:
        future: asyncio.Future[Signal] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(app_id.lower(), [])
        waiters.append((after, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None
        finally:
            waiters.remove((after, future))
            if not waiters:
                self._waiters.pop(app_id.lower(), None)

    async def _run(self) -> None:
        while self._waiters:
            events = await asyncio.to_thread(self._registry.events, after_seq=self._seq)
            for stored in events:
                self._seq = max(self._seq, stored.seq)
                signal = Signal.of(stored.event)
                if signal is None:
                    continue
                for after, future in self._waiters.get(stored.event.app_key, []):
                    if stored.seq > after and not future.done():
                        future.set_result(signal)
            await asyncio.sleep(self._poll)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._registry.close()
