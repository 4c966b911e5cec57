"""The SQLite migration helper the journal and the notification registry share."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.journal import SCHEMA_VERSION
from orchestrator.journal.migrate import connect, load_migrations, migrate, parse_migrations, statements
from orchestrator.notifications import registry

TWO = """-- prose before the first migration is not SQL to run

-- migration 1
CREATE TABLE t (x TEXT);
INSERT INTO t VALUES ('a;b');  -- a ';' inside a string does not split the statement

-- migration 2
ALTER TABLE t ADD COLUMN y INTEGER;
"""


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _mark(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA user_version={version}")


def _too_new(version: int) -> Exception:
    return RuntimeError(f"schema {version} is newer")


def test_the_packaged_schemas_parse_and_every_statement_runs() -> None:
    journal = load_migrations("orchestrator.journal", "schema.sql")
    assert len(journal) == SCHEMA_VERSION
    assert registry.SCHEMA_VERSION == len(registry.MIGRATIONS) == 1
    conn = sqlite3.connect(":memory:")
    for script in (*journal, *registry.MIGRATIONS):
        for statement in statements(script):
            conn.execute(statement)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "apps", "events", "notification_meta", "notification_instances"} <= tables


def test_migrations_must_be_numbered_in_order() -> None:
    assert len(parse_migrations(TWO, "two.sql")) == 2
    with pytest.raises(ValueError, match=r"bad\.sql: migrations must be numbered"):
        parse_migrations("-- migration 2\nSELECT 1;\n", "bad.sql")
    with pytest.raises(ValueError, match="numbered"):
        parse_migrations("CREATE TABLE t (x);\n", "none.sql")


def test_statements_split_where_sqlite_says_and_refuse_an_unterminated_one() -> None:
    create, insert = statements(parse_migrations(TWO, "two.sql")[0])
    assert create == "CREATE TABLE t (x TEXT);"
    assert insert.startswith("INSERT INTO t VALUES ('a;b');  -- a ';' inside")
    with pytest.raises(ValueError, match="unterminated"):
        statements("CREATE TABLE t (x TEXT)\n")


def test_each_migration_commits_with_its_version_and_a_failing_one_leaves_the_last(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    broken = (*parse_migrations(TWO, "two.sql"), "INSERT INTO missing VALUES (1);\n")
    conn = connect(path)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        migrate(conn, broken, read_version=_version, write_version=_mark, too_new=_too_new)
    conn.close()
    conn = connect(path)
    assert _version(conn) == 2  # migrations 1 and 2 stayed committed; 3 left nothing behind
    assert conn.execute("SELECT x, y FROM t").fetchall() == [("a;b", None)]
    assert not conn.in_transaction
    conn.close()


def test_a_file_another_process_migrated_meanwhile_is_not_migrated_twice(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    steps = parse_migrations(TWO, "two.sql")
    other = connect(path)
    migrate(other, steps, read_version=_version, write_version=_mark, too_new=_too_new)
    other.close()
    reads: list[int] = []

    def stale_then_true(conn: sqlite3.Connection) -> int:
        # The first look (before the write lock) saw the file before the other process migrated it.
        reads.append(0 if not reads else _version(conn))
        return reads[-1]

    conn = connect(path)
    migrate(conn, steps, read_version=stale_then_true, write_version=_mark, too_new=_too_new)
    assert reads == [0, 2]  # re-read under the lock: nothing to do, no "table already exists"
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    conn.close()


def test_a_newer_file_is_refused_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = connect(path)
    _mark(conn, 7)
    with pytest.raises(RuntimeError, match="schema 7 is newer"):
        migrate(
            conn,
            parse_migrations(TWO, "two.sql"),
            read_version=_version,
            write_version=_mark,
            too_new=_too_new,
        )
    assert _version(conn) == 7 and not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()
