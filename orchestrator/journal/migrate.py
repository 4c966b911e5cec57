"""Opening and migrating the journal's SQLite file: one helper for every set of tables kept in it.

The journal (`schema.sql`) and the notification registry (`notifications/registry.sql`) share the
file and its rules: autocommit connections that open explicit `BEGIN IMMEDIATE` transactions,
forward-only migrations written as SQL files, each migration and its version mark committed together.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path

_MARK = re.compile(r"^-- migration (\d+)[ \t]*$", re.MULTILINE)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (we open our own transactions), shareable by threads behind
    the caller's lock, that waits for another writer's lock rather than failing at once."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed when the block ends, rolled back when it raises (a failing
    rollback, e.g. on a dead disk, does not hide the error that caused it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def load_migrations(package: str, name: str) -> tuple[str, ...]:
    """The migrations of an SQL file shipped in `package` (see `parse_migrations`)."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return parse_migrations(text, f"{package}/{name}")


def parse_migrations(text: str, where: str) -> tuple[str, ...]:
    """The text under each `-- migration N` line, for N = 1, 2, ... (what precedes the first is prose)."""
    parts = _MARK.split(text)[1:]  # [number, body, number, body, ...]
    numbers = [int(n) for n in parts[0::2]]
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"{where}: migrations must be numbered 1, 2, ... in order, not {numbers}")
    return tuple(parts[1::2])


def statements(script: str) -> list[str]:
    """A script's statements, split where SQLite says one is complete (a `;` in a string is kept)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise ValueError(f"unterminated SQL statement: {pending.strip()[:60]!r}")
    return found


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[str],
    *,
    read_version: Callable[[sqlite3.Connection], int],
    write_version: Callable[[sqlite3.Connection, int], None],
    too_new: Callable[[int], Exception],
) -> None:
    """Bring the tables to version `len(migrations)`, one transaction per migration.

    The version is read again inside each transaction: another process opening the same file may
    have migrated it meanwhile. Already current: nothing is written (readers open without writing).
    """
    latest = len(migrations)
    if read_version(conn) == latest:
        return
    while True:
        with transaction(conn):
            version = read_version(conn)
            if version > latest:
                raise too_new(version)
            if version == latest:
                return
            for statement in statements(migrations[version]):
                conn.execute(statement)
            write_version(conn, version + 1)
