"""The journal's writer lock: one apply/resume/rollback process per journal at a time (two would drive
the same apps). An OS file lock (`flock`) on `<journal>.lock`: the OS drops it when the process dies,
even by SIGKILL, so a run recorded as `running` while nobody holds the lock was interrupted."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import JournalError


def lock_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".lock")


@contextlib.contextmanager
def exclusive(journal: Path) -> Iterator[None]:
    """Hold the writer lock of the journal at `journal` for the block, or fail at once naming it."""
    path = lock_path(journal)
    try:
        handle = path.open("a+")
    except OSError as exc:
        raise JournalError(f"{journal}: cannot create its lock file {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalError(
                f"{journal}: another orchestrator process is applying with this journal right now; "
                "wait for it to finish (or use another journal)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def writer_active(journal: Path) -> bool:
    """Whether a process holds the writer lock of the journal at `journal` now."""
    try:
        handle = lock_path(journal).open("r")
    except FileNotFoundError:
        return False  # no writer has ever run
    except OSError:
        return True  # cannot tell: do not claim an interruption
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
