"""`orchestrator status` per-tenant table: counts per state and the apps that needed retries."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator.models import AppState
from orchestrator.render.status import render_table
from tests.html_samples import sample_run


def test_per_tenant_counts_states_and_retried_apps() -> None:
    run = sample_run()
    sink = io.StringIO()
    render_table(run, Console(file=sink, width=200, color_system=None), by="tenant")
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


def test_failures_sharing_a_cause_are_one_row_without_trace_ids() -> None:
    run = sample_run()
    tenant = run.apps[0].tenant_name
    entra = (
        "authentication failed: AADSTS7000215: Invalid client secret provided. Trace ID: 90c0fe10-7889 "
        "Correlation ID: ac47f0c2-dd63 Timestamp: 2026-11-29 23:14:09Z"
    )
    same_tenant = [a for a in run.apps if a.tenant_name == tenant]
    broken = {
        a.app_id: a.model_copy(
            update={"state": AppState.FAILED, "error_code": "AuthenticationFailed", "error_message": entra}
        )
        for a in same_tenant
    }
    run = run.model_copy(update={"apps": [broken.get(a.app_id, a) for a in run.apps]})
    sink = io.StringIO()
    render_table(run, Console(file=sink, width=200, color_system=None), by="tenant")
    text = sink.getvalue()
    failures = text[text.find("Failures and their causes") :]
    rows = [line for line in failures.splitlines() if "AuthenticationFailed" in line]
    assert len(same_tenant) > 1 and len(rows) == 1
    assert f"(+{len(same_tenant) - 1} more)" in rows[0]
    assert "Invalid client secret provided." in rows[0]
    assert "Trace ID" not in failures and "Correlation ID" not in failures
