"""`orchestrator status` per-tenant table: counts per state and the apps that needed retries."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator.cli import status_cmd
from tests.html_samples import sample_run


def test_per_tenant_counts_states_and_retried_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    run = sample_run()
    sink = io.StringIO()
    monkeypatch.setattr(status_cmd, "console", Console(file=sink, width=200, color_system=None))
    status_cmd.render_table(run, by="tenant")
    text = sink.getvalue()
    text = text[: text.find("Failures and their causes")] if "Failures and their causes" in text else text
    assert "retried" in text
    for tenant in {a.tenant_name for a in run.apps}:
        row = next(line for line in text.splitlines() if f" {tenant} " in line)
        cells = [c.strip() for c in row.split("│")[1:-1]]
        apps = [a for a in run.apps if a.tenant_name == tenant]
        assert cells[1] == str(len(apps))
        expected = sum(a.attempts > 1 for a in apps)
        assert cells[-1] == (str(expected) if expected else "")
