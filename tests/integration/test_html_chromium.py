"""Render both HTML pages in headless Chromium: the DOM a browser builds, and a real screenshot.

Needs Debian's `chromium` package (`apt-get install -y chromium`); skips with a message without it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.render.html import render_plan_html, render_run_html
from tests.html_samples import EVIL_APP, EVIL_MESSAGE, EVIL_TENANT, GENERATED, sample_plan, sample_run

pytestmark = pytest.mark.chromium

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    """CHROMIUM_BIN if set, else the first browser on PATH or Debian's /usr/bin/chromium."""
    override = os.environ.get("CHROMIUM_BIN")
    found = override if override else next(filter(None, map(shutil.which, _CANDIDATES)), None)
    found = found or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found or not Path(found).exists():
        pytest.skip(
            f"headless Chromium not found ({override or 'chromium on PATH'}); "
            "install Debian's chromium package (apt-get install -y chromium) to run this test"
        )
    return found


def _render(tmp_path: Path, name: str, page: str) -> tuple[str, Path]:
    """Load the page from a file:// URL; return the DOM after parsing and the screenshot path."""
    source = tmp_path / f"{name}.html"
    source.write_text(page, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    argv = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / f'profile-{name}'}",
        "--window-size=1300,1800",
        f"--screenshot={shot}",
        "--dump-dom",
        source.as_uri(),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("http_", "https_", "HTTP_", "HTTPS_"))}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, shot


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _dom(serialized: str) -> _Dom:
    dom = _Dom()
    dom.feed(serialized)
    dom.close()
    return dom


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _assert_real_screenshot(path: Path) -> None:
    assert path.exists(), "Chromium wrote no screenshot"
    width, height = _png_size(path)
    assert (width, height) == (1300, 1800)
    # A blank page compresses to a few kilobytes; a rendered report with tables and colour is far larger.
    assert path.stat().st_size > 30_000, f"screenshot is only {path.stat().st_size} bytes"


def test_plan_page_in_chromium(tmp_path: Path) -> None:
    plan = sample_plan()
    serialized, shot = _render(tmp_path, "plan", render_plan_html(plan, generated_at=GENERATED))
    dom = _dom(serialized)
    text = " ".join(" ".join(dom.text).split())
    assert "script" not in dom.tags  # the hostile app name stayed text
    assert EVIL_APP in text and EVIL_TENANT in text
    assert f"{len(plan.items)} apps" in text and "widens-write" in text
    assert serialized.count('class="cell"') == len(plan.items)
    for wave in plan.waves:
        assert wave.name in text
    _assert_real_screenshot(shot)


def test_run_page_in_chromium(tmp_path: Path) -> None:
    run = sample_run()
    serialized, shot = _render(
        tmp_path, "run", render_run_html(run, generated_at=GENERATED, wave_names={0: "canary", 1: "wave-1"})
    )
    dom = _dom(serialized)
    text = " ".join(" ".join(dom.text).split())
    assert "img" not in dom.tags and "script" not in dom.tags
    assert EVIL_MESSAGE in text
    assert "svg" in dom.tags and "Waves over time" in text
    bars = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="6"', serialized)
    assert len(bars) == sum(1 for a in run.apps if a.started_at)
    assert "canary" in text and "wave-1" in text and "wave 2" in text  # unnamed wave falls back to its index
    _assert_real_screenshot(shot)
