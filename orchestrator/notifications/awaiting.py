"""The second signal for apps awaiting their customers: the receiver verifies them when Azure notifies.

Apply journals the apps it may not write (publisher and customer-run paths) as `awaiting-customer`;
`orchestrator verify` judges them later. A PUT Succeeded/Failed event for such an app makes the
receiver (`notifications serve --confirm`, which has the fleet's identities) run that same
verification at once, for that app only: ARM is read and the deny assignment decides success; a PUT
Failed event is the recorded cause only when ARM shows the app Failed too (verify.judge).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from orchestrator.errors import OrchestratorError
from orchestrator.gateway import ArmError, ArmGateway
from orchestrator.journal import Journal
from orchestrator.notifications.schema import Notification
from orchestrator.notifications.signals import Signal
from orchestrator.verify import VerifyResult, verify_notified

log = structlog.get_logger("orchestrator.notifications")


class AwaitingVerifier:
    """Called with each newly stored event; verifies the apps that wait for their customers.

    It takes the journal's writer lock as `verify` does; while an apply, resume or rollback holds it,
    it waits (polling every `busy_poll` seconds, at most `busy_limit`), then says to run `verify`.
    """

    def __init__(
        self, journal: Path, gateway: ArmGateway, *, busy_poll: float = 1.0, busy_limit: float = 600.0
    ) -> None:
        self._path = journal
        self._gateway = gateway
        self._busy_poll = busy_poll
        self._busy_limit = busy_limit
        self._one = asyncio.Lock()  # one verification at a time in this process

    async def __call__(self, event: Notification) -> None:
        signal = Signal.of(event)
        if signal is None:
            return
        async with self._one:
            try:
                results = await self._verify(signal)
            except (OrchestratorError, ArmError) as exc:
                log.error("cannot verify a notified app", app=signal.app_id, cause=str(exc))
                return
        if results is None:
            log.warning(
                "journal busy: the notified app was not verified; run `orchestrator verify`",
                app=signal.app_id,
            )
        for run_id, result in (results or {}).items():
            for app_id, state in result.changed.items():
                log.info("verified on notification", run=run_id, app=app_id, state=state.value)
            for app_id, why in result.unreadable.items():
                log.warning("notified app not verified", run=run_id, app=app_id, cause=why)

    async def _verify(self, signal: Signal) -> dict[str, VerifyResult] | None:
        """The results per run, or None when the writer lock stayed busy past `busy_limit`."""
        if not self._path.exists():
            return {}  # no journal: nothing waits
        with Journal(self._path, create=False) as journal:
            waited = 0.0
            while True:
                with contextlib.ExitStack() as held:
                    try:
                        held.enter_context(journal.exclusive())
                    except OrchestratorError:
                        if not journal.writer_active():
                            raise  # not busy: the lock file itself is the problem
                    else:
                        return await verify_notified(journal, self._gateway, signal)
                if waited >= self._busy_limit:
                    return None
                await asyncio.sleep(self._busy_poll)
                waited += self._busy_poll
