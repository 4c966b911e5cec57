"""Hostile text from ARM and the config, and Ctrl-C, through the real CLI against the HTTPS emulator.

Names from ARM (subscription display names) and from the config (tenant names, written by the
emulator) carry terminal escape sequences, C1 controls, a bidi override and rich markup. Every command
must show them defanged (no raw control character reaches stdout or stderr), keep them in JSON (escaped),
never print a client secret, and never end in a traceback. Ctrl-C (SIGINT) during `inventory` and `apply`
must print one line and exit 130, and an interrupted apply must resume to completion.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.emulator.fleet import generate
from orchestrator.emulator.testing import EmulatorHandle, run_emulator
from tests.integration.conftest import REPO, Fleet, make_fleet

pytestmark = pytest.mark.integration

EVIL = "\x1b[2J\x1b]0;pwned\x07[/x][bold]\x9b31m\u202eevil\x85"
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ORCHESTRATOR_"))}
    env.update(NO_COLOR="1", COLUMNS="200", **extra)
    return env


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(**env),
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorHandle, Path]]:
    root = tmp_path_factory.mktemp("evil")
    state = generate("tenants=2,subscriptions=1,apps=2", 3)
    for tenant in state.tenants.values():
        tenant.name += EVIL
    for sub in state.subscriptions.values():
        sub.display_name += EVIL
    state.save(root / "fleet.json")
    with run_emulator(fleet=root / "fleet.json", generate=None, time_scale=0.01, operation_seconds=30) as emu:
        yield emu, emu.write_config(root / "fleet" / "fleet.toml")


def _secrets(config: Path) -> list[str]:
    return [p.read_text(encoding="utf-8").strip() for p in (config.parent / "secrets").glob("*.secret")]


def _safe(result: subprocess.CompletedProcess[str], config: Path, codes: tuple[int, ...] = (0, 3)) -> None:
    shown = result.stdout + result.stderr
    assert result.returncode in codes, result.stderr[-2000:]
    assert "Traceback" not in shown, result.stderr[-2000:]
    assert not RAW_CONTROL.search(shown), repr(RAW_CONTROL.search(shown))
    for secret in _secrets(config):
        assert secret not in shown


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_inventory_shows_hostile_names_defanged(evil: tuple[EmulatorHandle, Path], fmt: str) -> None:
    _, config = evil
    result = cli("inventory", "-c", str(config), "--format", fmt, "--log-level", "info")
    _safe(result, config)
    assert "pwned" in result.stdout
    if fmt == "json":
        names = {t["name"] for t in json.loads(result.stdout)["tenants"]}
        assert all(name.endswith(EVIL) for name in names)  # escaped in JSON, not lost


def test_doctor_shows_hostile_names_defanged(evil: tuple[EmulatorHandle, Path]) -> None:
    _, config = evil
    _safe(cli("doctor", "-c", str(config)), config)
    result = cli("doctor", "-c", str(config), "--format", "json")
    _safe(result, config)
    assert any(r["tenant_name"].endswith(EVIL) for r in json.loads(result.stdout))


def test_plan_show_apply_status_with_hostile_names(evil: tuple[EmulatorHandle, Path], tmp_path: Path) -> None:
    emu, config = evil
    v2 = str(emu.fleet()["publisher"]["definitions"]["app-v2"])
    plan = tmp_path / "plan.json"
    _safe(cli("plan", "-c", str(config), "--target-definition", v2, "--out", str(plan)), config)
    assert not RAW_CONTROL.search(plan.read_text(encoding="utf-8"))
    for fmt in ("table", "markdown", "json", "html"):
        _safe(cli("show", str(plan), "--format", fmt), config)
    journal = tmp_path / "j.db"
    applied = cli(
        "apply",
        str(plan),
        "-c",
        str(config),
        "--journal",
        str(journal),
        "--yes",
        ORCHESTRATOR_TIME_SCALE="0.01",
    )
    _safe(applied, config)
    for fmt in ("table", "json", "html"):
        _safe(cli("status", "--journal", str(journal), "--format", fmt, "--by", "app"), config)
    _safe(cli("runs", "--journal", str(journal)), config)


# --- Ctrl-C ---------------------------------------------------------------------------------------------


def _interrupt(args: list[str], running: Callable[[], bool], **env: str) -> tuple[int, str]:
    """Start the CLI and send it SIGINT once `running()` says the command is at work."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_env(**env),
    )
    try:
        deadline = time.monotonic() + 120
        while not running():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the command did not get to work in time"
            time.sleep(0.1)
        assert proc.poll() is None, "the command ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _has_submitted(journal: Path) -> bool:
    if not journal.exists():
        return False
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM apps WHERE state = 'submitted'").fetchone()[0])
    except sqlite3.Error:
        return False


@pytest.fixture
def slow_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Operations take 20 s, requests 300 ms: long enough to be interrupted in the middle."""
    yield from make_fleet(tmp_path, time_scale=1.0, operation_seconds=20, latency_ms=300)


def test_ctrl_c_during_inventory_is_one_line_and_130(slow_fleet: Fleet) -> None:
    tokens = slow_fleet.emulator.stats()["tokens_issued"]
    code, err = _interrupt(
        ["inventory", "-c", str(slow_fleet.config_path)],
        running=lambda: slow_fleet.emulator.stats()["tokens_issued"] > tokens,  # it reads ARM now
    )
    assert code == 130, err
    assert err.strip().splitlines() == ["error: interrupted; no run was started; run the command again"]


def test_ctrl_c_during_apply_names_the_run_and_resume_finishes_it(slow_fleet: Fleet, tmp_path: Path) -> None:
    from tests.integration.plans import make_plan_file

    slow_fleet.emulator.set_time_scale(0.01)  # a quick plan, then slow writes
    plan = tmp_path / "plan.json"
    make_plan_file(
        slow_fleet.config_path, str(slow_fleet.emulator.fleet()["publisher"]["definitions"]["app-v2"]), plan
    )
    slow_fleet.emulator.set_time_scale(1.0)
    journal = tmp_path / "j.db"
    args = ["apply", str(plan), "-c", str(slow_fleet.config_path), "--journal", str(journal), "--yes"]
    code, err = _interrupt(args, running=lambda: _has_submitted(journal))
    assert code == 130, err
    assert len(err.strip().splitlines()) == 1, err
    last = err.strip().splitlines()[-1]
    match = re.search(r"`orchestrator resume (\S+)`", last)  # the run to resume, named in the one line
    assert match, err
    assert "Traceback" not in err
    with sqlite3.connect(journal) as conn:
        assert conn.execute("SELECT run_id FROM runs").fetchall() == [(match.group(1),)]
    slow_fleet.emulator.set_time_scale(0.01)
    resumed = cli(
        "resume", match.group(1), "-c", str(slow_fleet.config_path), "--journal", str(journal), "--yes",
        "--failure-tolerance", "100%",  # the read-only tenant's apps fail (403), the rest must finish
        ORCHESTRATOR_TIME_SCALE="0.01",
    )  # fmt: skip
    assert resumed.returncode in (0, 3), resumed.stderr[-6000:]
    status = json.loads(cli("status", "--journal", str(journal), "--format", "json").stdout)
    assert status["state"] == "completed"
    assert "submitted" not in status["counts"] and "pending" not in status["counts"]
