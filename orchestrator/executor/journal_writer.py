"""Group commit for the journal: many apps' transitions share one SQLite sync, off the event loop.

`await writer.record(t)` returns only once `t` is durably committed, so the caller may then call
Azure; meanwhile other apps keep running, and whatever queued during one commit goes in the next.
"""

from __future__ import annotations

import asyncio
import contextlib

from orchestrator.journal import Journal, Transition


class JournalWriter:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._queue: list[tuple[tuple[Transition, ...], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    async def __aenter__(self) -> JournalWriter:
        self._task = asyncio.create_task(self._run(), name="journal-writer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def record(self, *transitions: Transition) -> None:
        """Commit `transitions` (all in the same transaction) before returning."""
        if self._task is None:  # not running (e.g. outside a run): commit directly
            await asyncio.to_thread(self.journal.record_many, transitions)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((transitions, future))
        self._wake.set()
        await future

    async def flush(self) -> None:
        while self._queue:
            await asyncio.sleep(0)
            if self._task is None or self._task.done():
                break
            pending = [f for _, f in self._queue]
            if pending:
                await asyncio.wait(pending)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                await asyncio.to_thread(self.journal.record_many, [t for ts, _ in batch for t in ts])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.commits += 1
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
