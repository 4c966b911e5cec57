"""Bad input to the notification commands: one line naming the flag or file, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import parse_event
from tests.integration.conftest import run_cli
from tests.notifications.events import app_id, raw


def _one_line_error(result_stderr: str, text: str) -> None:
    lines = [line for line in result_stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in result_stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--cert", "c.pem"], "--cert and --key: give both"),
        ([], "--cert/--key: HTTPS needs both"),
        (["--plain-http", "--secret-env", "NO_SUCH_VARIABLE_HERE"], "$NO_SUCH_VARIABLE_HERE is not set"),
    ],
)
def test_serve_refuses_bad_flags(args: list[str], text: str) -> None:
    result = run_cli("notifications", "serve", *args)
    assert result.code == 2
    _one_line_error(result.stderr, text)


def test_serve_refuses_a_secret_file_others_can_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0o644)
    result = run_cli("notifications", "serve", "--plain-http", "--secret-file", str(secret))
    assert result.code == 2
    _one_line_error(result.stderr, "accessible by group or others (mode 0644)")


def test_list_without_a_registry_and_inventory_source_registry(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.db")
    result = run_cli("notifications", "list", "--journal", journal)
    assert result.code == 2
    _one_line_error(result.stderr, "no notification registry here")
    config = tmp_path / "fleet.toml"
    config.write_text(
        '[cloud]\nname = "AzureCloud"\n[[tenants]]\nid = "11111111-1111-1111-1111-111111111111"\n'
        'name = "Contoso"\n[tenants.credential]\nkind = "azure_cli"\n'
    )
    result = run_cli("inventory", "-c", str(config), "--source", "registry", "--journal", journal)
    assert result.code == 2
    _one_line_error(result.stderr, "--source registry")


def test_list_show_export(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with Registry(journal) as registry:
        registry.record_many([parse_event(raw(n=1, state="Accepted")), parse_event(raw(n=1, seconds=5))])
        registry.record(parse_event(raw(n=2, plan_version="2.0.0", state="Failed")))
    listed = run_cli("notifications", "list", "--journal", str(journal), "-f", "json")
    assert listed.code == 0 and '"version": "contoso-isv/contoso-app/standard@2.0.0"' in listed.stdout
    table = run_cli("notifications", "list", "--journal", str(journal))
    assert table.code == 0 and "ma-00001" in table.stdout and "PUT Failed" in table.stdout
    shown = run_cli("notifications", "show", app_id(1), "--journal", str(journal))
    assert shown.code == 0 and "Accepted" in shown.stdout and "Succeeded" in shown.stdout
    missing = run_cli("notifications", "show", app_id(9), "--journal", str(journal))
    assert missing.code == 2 and "APP: the registry has no application" in missing.stderr
    out = tmp_path / "registry.csv"
    exported = run_cli("notifications", "export", "--journal", str(journal), "-f", "csv", "-o", str(out))
    assert exported.code == 0 and out.read_text().splitlines()[0].startswith("app_id,kind,")
