"""The deployment examples in docs/: they load, use no stored secret, and run apply the scheduled way."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import WorkloadIdentityCredentialConfig, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_example_fleet_config_loads_and_uses_workload_identity() -> None:
    fleet = load_config(EXAMPLES / "fleet.workload-identity.toml")
    assert fleet.tenants
    assert all(isinstance(t.credential, WorkloadIdentityCredentialConfig) for t in fleet.tenants)
    assert fleet.maintenance.windows and fleet.maintenance.blackout_dates


def test_github_workflow_uses_oidc_and_no_stored_secret() -> None:
    text = (EXAMPLES / "github-actions-rollout.yml").read_text(encoding="utf-8")
    assert "id-token: write" in text and "azure/login@v2" in text
    assert "client-id: ${{ vars.AZURE_CLIENT_ID }}" in text
    assert "secrets." not in text
    assert "--respect-windows --yes" in text and "show" in text and "--format markdown" in text
    assert "concurrency:" in text


def test_scheduled_jobs_apply_with_windows_and_one_writer() -> None:
    k8s = (EXAMPLES / "k8s-cronjob.yaml").read_text(encoding="utf-8")
    aca = (EXAMPLES / "containerapps-job.yaml").read_text(encoding="utf-8")
    for text in (k8s, aca):
        assert '"apply", "/plans/current.plan.json", "--respect-windows", "--yes"' in text
        assert "ORCHESTRATOR_JOURNAL" in text
    assert "concurrencyPolicy: Forbid" in k8s and "runAsNonRoot: true" in k8s
    assert "azure.workload.identity/use" in k8s and "persistentVolumeClaim" in k8s
    assert "triggerType: Schedule" in aca and "parallelism: 1" in aca and "UserAssigned" in aca
