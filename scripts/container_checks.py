"""Host-side helpers for scripts/container-test: write its inputs, and assert on what the containers did.

Each sub-command prints one `ok: ...` line or exits non-zero with one `FAIL: ...` line, so the shell
script stays a plain sequence of docker runs. Run with the project's venv python.
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import sys
import tarfile
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

DAYS = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'


# Journal states of apps the plan does not update: written never, only recorded.
NOT_UPDATED = frozenset({"skipped", "current", "drifted"})


def fail(message: str) -> NoReturn:
    print(f"FAIL: {message}", file=sys.stderr)
    raise SystemExit(1)


def _open(url: str, body: bytes | None = None, context: ssl.SSLContext | None = None) -> Any:
    """GET (or POST a JSON body to) the emulator's or the receiver's loopback URL, nothing else."""
    if not url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
        fail(f"not a loopback URL: {url}")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (checked above)
    return urllib.request.urlopen(request, timeout=30, context=context)  # noqa: S310 (checked above)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{path}: not readable JSON ({exc})")


def write_target(ready: Path, out: Path) -> None:
    """The release (app-v2 / plan 2.0.0) read from the emulator's generated publisher, as scripts/demo."""
    info = _read_json(ready)
    ctx = ssl.create_default_context(cafile=info["ca_bundle"])
    with _open(info["admin_url"] + "fleet", context=ctx) as resp:
        publisher = json.load(resp)["publisher"]
    v2 = next(p for p in publisher["marketplace_plans"] if p["version"] == "2.0.0")

    def quote(xs: list[str]) -> str:
        return ", ".join(json.dumps(x) for x in xs)

    out.write_text(
        f'name = "release 2"\n'
        f"definition_id = {json.dumps(publisher['definitions']['app-v2'])}\n"
        f"lock_level = {json.dumps(v2['lockLevel'])}\n"
        f"allowed_actions = [{quote(v2['allowedActions'])}]\n"
        f"allowed_data_actions = [{quote(v2['allowedDataActions'])}]\n\n"
        f"[plan]\npublisher = {json.dumps(v2['publisher'])}\nproduct = {json.dumps(v2['product'])}\n"
        f'name = {json.dumps(v2["name"])}\nversion = "2.0.0"\n',
        encoding="utf-8",
    )
    print(f"ok: release target written to {out}")


def write_configs(host_config: Path, ca_bundle: Path, out: Path) -> None:
    """Two container configs from the emulator's: every window closed now, and one open now.

    Inside the container the config is /etc/orchestrator/fleet.toml, the CA next to it, and the
    secrets directory (mounted separately at run time) at /etc/orchestrator/secrets.
    """
    text = host_config.read_text(encoding="utf-8")
    text = text.replace(json.dumps(str(ca_bundle)), json.dumps("/etc/orchestrator/ca.pem"))
    if "/etc/orchestrator/ca.pem" not in text:
        fail(f"{host_config}: ca_bundle is not {ca_bundle}")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    windows = {
        # Opens in 6 hours, for 1 hour: closed for the whole test.
        "closed": (now + timedelta(hours=6), 60),
        # Opened an hour ago, for 12 hours: open, with far more than apply's 30 minutes left.
        "open": (now - timedelta(hours=1), 12 * 60),
    }
    for name, (start, minutes) in windows.items():
        folder = out / name
        (folder / "secrets").mkdir(parents=True, exist_ok=True)  # the secrets mount point
        shutil.copyfile(ca_bundle, folder / "ca.pem")
        (folder / "fleet.toml").write_text(
            text + "\n[maintenance]\n[[maintenance.windows]]\n"
            f"days = {DAYS}\nstart = {start:%H:%M}:00\nduration_minutes = {minutes}\n"
            'timezone = "UTC"\n',
            encoding="utf-8",
        )
        for path in folder.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        folder.chmod(0o755)
    print(f"ok: container configs (window closed / open now) in {out}")


def _status(path: Path) -> dict[str, Any]:
    body = _read_json(path)
    if not isinstance(body, dict) or "state" not in body or "apps" not in body:
        fail(f"{path}: not the output of status --format json")
    return body


def _states(status: Path, plan: Path, expected_run_state: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's app states by lower-cased id; every app the plan does not update keeps the state the plan
    gave it (skipped, current or drifted)."""
    body = _status(status)
    if body["state"] != expected_run_state:
        fail(f"{status.name}: run state {body['state']!r}, expected {expected_run_state!r}")
    updates = _planned_updates(plan)
    states = {a["app_id"].lower(): a["state"] for a in body["apps"]}
    if missing := updates - set(states):
        fail(f"{status.name}: the run lacks {len(missing)} of the plan's updates")
    touched = {app: s for app, s in states.items() if app not in updates and s not in NOT_UPDATED}
    if touched:
        fail(f"{status.name}: apps the plan does not update were touched: {sorted(touched.items())[:3]}")
    return body, {app: states[app] for app in updates}


def expect_waiting(status: Path, plan: Path) -> None:
    body, states = _states(status, plan, "waiting")
    touched = {app: s for app, s in states.items() if s != "pending"}
    if touched:
        fail(f"apps were touched outside their window: {sorted(touched.items())[:3]}")
    print(f"ok: run {body['run_id']} is waiting; all {len(states)} planned updates pending (window closed)")


def expect_completed(status: Path, plan: Path, run_id: str) -> None:
    body, states = _states(status, plan, "completed")
    if body["run_id"] != run_id:
        fail(f"the second container started run {body['run_id']} instead of continuing {run_id}")
    bad = {app: s for app, s in states.items() if s != "succeeded"}
    if bad:
        fail(f"{len(bad)} apps did not succeed: {sorted(bad.items())[:3]}")
    print(f"ok: run {run_id} continued from the volume and completed; all {len(states)} updates succeeded")


def _planned_updates(plan: Path) -> set[str]:
    items = _read_json(plan)["items"]
    updates = {i["app_id"].lower() for i in items if i["decision"] == "update"}
    if not updates:
        fail(f"{plan}: the plan updates nothing, so the rollout would prove nothing")
    return updates


def run_id(status: Path) -> None:
    print(_status(status)["run_id"])


def no_secrets(secrets_dir: Path, image_tar: Path, *texts: Path) -> None:
    """No secret value in `docker history`/`docker inspect`, nor in any layer; no config in a layer."""
    secrets = [p.read_bytes().strip() for p in sorted(secrets_dir.glob("*.secret"))]
    if not secrets or any(len(s) < 8 for s in secrets):
        fail(f"{secrets_dir}: expected the emulator's secret files")
    for text in texts:
        data = text.read_bytes()
        if any(s in data for s in secrets):
            fail(f"a client secret appears in {text.name}")
    layers = 0
    with tarfile.open(image_tar) as image:
        for member in image:
            if not member.name.endswith("layer.tar"):
                continue
            layers += 1
            blob = image.extractfile(member)
            assert blob is not None
            with tarfile.open(fileobj=blob) as layer:
                for entry in layer:
                    name = entry.name
                    if name.endswith((".secret", "fleet.toml", "ca-key.pem")):
                        fail(f"layer {member.name} contains {name}")
                    if entry.isfile() and entry.size:
                        content = layer.extractfile(entry)
                        assert content is not None
                        data = content.read()
                        if any(s in data for s in secrets):
                            fail(f"layer {member.name}: {name} contains a client secret")
    if not layers:
        fail(f"{image_tar}: no layers found (docker save format changed?)")
    print(f"ok: no secret in docker history/inspect or in any of {layers} layers; no fleet config baked in")


def _post(url: str, body: bytes) -> int:
    try:
        with _open(url, body) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def notify(base_url: str, secret: str, app_id: str, definition_id: str) -> None:
    """Posts the documented managed-application notification to a running receiver (issue 9)."""
    event = {
        "eventType": "PUT",
        "applicationId": app_id,
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "provisioningState": "Succeeded",
        "applicationDefinitionId": definition_id,
    }
    url = f"{base_url.rstrip('/')}/resource?sig={secret}"
    wrong = f"{base_url.rstrip('/')}/resource?sig=wrong-{secret}"
    with _open(f"{base_url.rstrip('/')}/healthz") as resp:
        if resp.status != 200:
            fail(f"/healthz answered {resp.status}")
    cases: list[tuple[str, str, bytes, int]] = [
        ("a valid event", url, json.dumps(event).encode(), 200),
        ("the same event again (idempotent)", url, json.dumps(event).encode(), 200),
        ("malformed JSON", url, b"{not json", 400),
        ("an unknown eventType", url, json.dumps({**event, "eventType": "POST"}).encode(), 400),
        ("a valid event with the wrong secret", wrong, json.dumps(event).encode(), 401),
    ]
    for what, target, body, expected in cases:
        got = _post(target, body)
        if got != expected:
            fail(f"receiver answered {got} to {what}, expected {expected}")
    print(f"ok: receiver: /healthz 200; {', '.join(f'{c[0]} {c[3]}' for c in cases)}")


def registry(export: Path, app_id: str) -> None:
    """`notifications export --format json` after the posts: the valid event's app, and nothing else."""
    instances = _read_json(export).get("instances")
    if not isinstance(instances, list):
        fail(f"{export}: not the output of notifications export --format json")
    ids = [str(i.get("app_id", "")).lower() for i in instances]
    if ids != [app_id.lower()]:
        fail(f"the registry holds {len(ids)} instances {ids[:3]}, expected only {app_id}")
    print("ok: the registry (on the journal volume) holds the valid event's app and nothing else")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("target")
    p.add_argument("ready", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("configs")
    p.add_argument("host_config", type=Path)
    p.add_argument("ca_bundle", type=Path)
    p.add_argument("out", type=Path)
    for name in ("expect-waiting", "expect-completed"):
        p = sub.add_parser(name)
        p.add_argument("status", type=Path)
        p.add_argument("plan", type=Path)
        if name == "expect-completed":
            p.add_argument("run_id")
    p = sub.add_parser("run-id")
    p.add_argument("status", type=Path)
    p = sub.add_parser("no-secrets")
    p.add_argument("secrets_dir", type=Path)
    p.add_argument("image_tar", type=Path)
    p.add_argument("texts", type=Path, nargs="+")
    p = sub.add_parser("registry")
    p.add_argument("export", type=Path)
    p.add_argument("app_id")
    p = sub.add_parser("notify")
    for arg in ("base_url", "secret", "app_id", "definition_id"):
        p.add_argument(arg)
    args = parser.parse_args()
    if args.cmd == "target":
        write_target(args.ready, args.out)
    elif args.cmd == "configs":
        write_configs(args.host_config, args.ca_bundle, args.out)
    elif args.cmd == "expect-waiting":
        expect_waiting(args.status, args.plan)
    elif args.cmd == "expect-completed":
        expect_completed(args.status, args.plan, args.run_id)
    elif args.cmd == "run-id":
        run_id(args.status)
    elif args.cmd == "registry":
        registry(args.export, args.app_id)
    elif args.cmd == "no-secrets":
        no_secrets(args.secrets_dir, args.image_tar, *args.texts)
    else:
        notify(args.base_url, args.secret, args.app_id, args.definition_id)


if __name__ == "__main__":
    main()
