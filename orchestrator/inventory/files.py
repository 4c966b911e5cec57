"""Inventory snapshot files: the JSON `inventory --snapshot` writes and `plan`/`explain --snapshot` read."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import InputError
from orchestrator.models import Snapshot
from orchestrator.untrusted import UnreadableFile, clean, read_regular_file


class SnapshotFileError(InputError):
    pass


MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024


def save_snapshot(snapshot: Snapshot, path: Path) -> None:
    try:
        path.write_text(clean(snapshot.model_dump_json(indent=2), json=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SnapshotFileError(f"{path}: cannot write: {exc.strerror or exc}") from None


def load_snapshot(path: Path) -> Snapshot:
    try:
        text = read_regular_file(path, limit=MAX_SNAPSHOT_BYTES).decode("utf-8")
    except UnreadableFile as exc:
        raise SnapshotFileError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SnapshotFileError(f"{path}: cannot read: not UTF-8 text (byte {exc.start})") from None
    try:
        return Snapshot.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SnapshotFileError(
            f"{path}: not a snapshot: {where + ': ' if where else ''}{err['msg']}"
        ) from None
