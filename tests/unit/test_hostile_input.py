"""A corpus of hostile and broken inputs, each driven through the CLI as an operator would type it.

Every case must end in exactly one line on stderr that names the input and the problem, exit code 2,
no traceback, no control character or escape sequence on the terminal, no planted secret anywhere in the
output, and nothing created or modified in the working folder (no journal, no folder, no file).

The CLI runs in-process (`orchestrator.cli.main` with `sys.argv` set), so the corpus stays fast; the
cases that need a live ARM or a signal are in tests/integration/test_hostile_arm.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from orchestrator.cli import main
from orchestrator.errors import InputError
from orchestrator.models import Plan
from orchestrator.planning.planfile import seal, write_plan

SECRET_FILE_VALUE = "planted-secret-file-Qx7u2"
SECRET_ENV_VALUE = "planted-secret-env-Lk93a"
SECRET_INLINE_VALUE = "planted-secret-inline-Zp44w"
SECRET_URL_PASSWORD = "planted-url-password-Mm21q"
PLANTED = (SECRET_FILE_VALUE, SECRET_ENV_VALUE, SECRET_INLINE_VALUE, SECRET_URL_PASSWORD)

TENANT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
TENANT2 = "1f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
SUB = "2a2b2c2d-3e3f-4a4b-8c8d-9e9fa0a1a2a3"
CLIENT = "3c3c3c3c-4d4d-4e4e-8f8f-909192939495"
RUN = "20260101T020000Z-1a2b3c"

# A C0 or C1 control, DEL, or a bidi override anywhere in what reaches the terminal.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass
class Workspace:
    """A folder with a valid fleet config (secrets planted) and whatever a case adds."""

    root: Path

    def p(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, text: str | bytes, mode: int = 0o600) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    def fifo(self, name: str) -> Path:
        path = self.root / name
        os.mkfifo(path)
        return path

    def sparse(self, name: str, size: int) -> Path:
        path = self.root / name
        with path.open("wb") as fh:
            fh.truncate(size)
        return path

    def config(self, cloud: str = "", tenant: str = "", credential: str = "", extra: str = "") -> Path:
        """The good config with one part replaced (TOML text)."""
        cloud = cloud or (
            '[cloud]\nname = "custom"\narm_endpoint = "https://127.0.0.1:9/"\n'
            'authority_host = "https://127.0.0.1:9/"\nca_bundle = "ca.pem"\n'
        )
        credential = (
            credential or f'{{ kind = "client_secret", client_id = "{CLIENT}", secret_file = "s.secret" }}'
        )
        tenant = tenant or f'id = "{TENANT}"\nname = "Contoso"\nsubscriptions = ["{SUB}"]\n'
        text = (
            f"{cloud}\n[[tenants]]\n{tenant}credential = {credential}\n{extra}\n"
            f'[[tenants]]\nid = "{TENANT2}"\ncredential = {{ kind = "client_secret", client_id = "{CLIENT}", '
            'secret_env = "HOSTILE_TEST_SECRET" }\n'
        )
        return self.write("fleet.toml", text, 0o644)


@functools.cache
def _ca_pem() -> bytes:
    return trustme.CA().cert_pem.bytes()


def _workspace(tmp_path: Path) -> Workspace:
    tmp_path.mkdir()
    ws = Workspace(tmp_path)
    ws.write("ca.pem", _ca_pem(), 0o644)
    ws.write("s.secret", SECRET_FILE_VALUE + "\n")
    ws.config()
    return ws


def _plan_text() -> str:
    example = Path(__file__).resolve().parents[2] / "plans" / "examples" / "example-plan.json"
    return example.read_text(encoding="utf-8")


def _nested(depth: int) -> str:
    return '{"schema_version": 1, "x": ' + "[" * depth + "]" * depth + "}"


Setup = Callable[[Workspace], list[str]]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Setup
    expect: str  # a fragment the one error line must contain (the problem)
    names: str | None = None  # a fragment naming the input (default: checked by the case's expect)


def after(_: object, argv: list[str]) -> list[str]:
    """`argv`, once the first argument (a file the case prepares) is made."""
    return argv


def cfg(ws: Workspace, **parts: str) -> list[str]:
    return ["inventory", "-c", str(ws.config(**parts))]


def cloud(**fields: str) -> str:
    base = {
        "name": '"custom"',
        "arm_endpoint": '"https://127.0.0.1:9/"',
        "authority_host": '"https://127.0.0.1:9/"',
        "ca_bundle": '"ca.pem"',
    }
    base.update(fields)
    return "[cloud]\n" + "".join(f"{k} = {v}\n" for k, v in base.items())


def cred(**fields: str) -> str:
    base = {"kind": '"client_secret"', "client_id": f'"{CLIENT}"', "secret_file": '"s.secret"'}
    base.update(fields)
    return "{ " + ", ".join(f"{k} = {v}" for k, v in base.items() if v) + " }"


def signed_plan(ws: Workspace, file: str = "plan.json", name: str | None = None) -> Path:
    plan = Plan.model_validate_json(_plan_text())
    if name is not None:
        plan = plan.model_copy(update={"target": plan.target.model_copy(update={"name": name})})
    plan = seal(plan)
    path = ws.p(file)
    write_plan(plan, path)
    return path


def journal_args(ws: Workspace, journal: Path, *cmd: str) -> list[str]:
    return [*cmd, "--journal", str(journal)]


CASES: list[Case] = [
    # --- the fleet config: cloud -------------------------------------------------------------------
    Case(
        "ca_bundle missing", lambda ws: cfg(ws, cloud=cloud(ca_bundle='"nope.pem"')), "nope.pem: cannot read"
    ),
    Case(
        "ca_bundle not PEM",
        lambda ws: after(ws.write("junk.pem", "hello"), cfg(ws, cloud=cloud(ca_bundle='"junk.pem"'))),
        "not a PEM certificate bundle",
    ),
    Case(
        "ca_bundle empty",
        lambda ws: after(ws.write("empty.pem", ""), cfg(ws, cloud=cloud(ca_bundle='"empty.pem"'))),
        "not a PEM certificate bundle",
    ),
    Case(
        "ca_bundle a private key, not a certificate",
        lambda ws: after(
            ws.write("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
            cfg(ws, cloud=cloud(ca_bundle='"key.pem"')),
        ),
        "not a PEM certificate bundle",
    ),
    Case("ca_bundle a directory", lambda ws: cfg(ws, cloud=cloud(ca_bundle='"."')), "is a directory"),
    Case(
        "ca_bundle /dev/zero", lambda ws: cfg(ws, cloud=cloud(ca_bundle='"/dev/zero"')), "not a regular file"
    ),
    Case(
        "ca_bundle a FIFO",
        lambda ws: after(ws.fifo("ca.fifo"), cfg(ws, cloud=cloud(ca_bundle='"ca.fifo"'))),
        "not a regular file",
    ),
    Case(
        "authority_host over http",
        lambda ws: cfg(ws, cloud=cloud(authority_host='"http://127.0.0.1:9/"')),
        "cloud.authority_host: 'http://127.0.0.1:9/' must be an https:// URL",
    ),
    Case(
        "arm_endpoint over http",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"http://management.example/"')),
        "cloud.arm_endpoint: 'http://management.example/' must be an https:// URL",
    ),
    Case(
        "arm_endpoint with a path",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"https://management.example/arm/v1"')),
        "must have no path",
    ),
    Case(
        "arm_endpoint with a query",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"https://management.example/?x=1"')),
        "must have no path, query",
    ),
    Case(
        "arm_endpoint not a URL", lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"management"')), "https:// URL"
    ),
    Case(
        "arm_endpoint with no host",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"https:///"')),
        "not a URL with a host",
    ),
    Case(
        "arm_endpoint with a bad port",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"https://h:99999/"')),
        "not a URL",
    ),
    Case(
        "arm_endpoint with a password in it",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint=f'"https://u:{SECRET_URL_PASSWORD}@h/"')),
        "must not carry a user name or password",
    ),
    Case(
        "arm_endpoint with an escape sequence",
        lambda ws: cfg(ws, cloud=cloud(arm_endpoint='"http://\\u001b[2Jevil/"')),
        "\\x1b[2Jevil",
    ),
    Case(
        "unknown cloud name with markup and escapes",
        lambda ws: cfg(ws, cloud='[cloud]\nname = "[/x]\\u001b]0;title\\u0007"\n'),
        "unknown cloud '[/x]\\x1b]0;title\\x07'",
    ),
    # --- the fleet config: ids -----------------------------------------------------------------------
    Case(
        "tenant id not a GUID",
        lambda ws: cfg(ws, tenant='id = "contoso"\n'),
        "tenants.0.id: 'contoso' is not a GUID",
    ),
    Case(
        "tenant id a GUID in braces",
        lambda ws: cfg(ws, tenant=f'id = "{{{TENANT}}}"\n'),
        "is not a GUID",
    ),
    Case(
        "tenant id with an escape sequence",
        lambda ws: cfg(ws, tenant='id = "\\u001b[31mred"\n'),
        "'\\x1b[31mred' is not a GUID",
    ),
    Case(
        "subscription id not a GUID",
        lambda ws: cfg(ws, tenant=f'id = "{TENANT}"\nsubscriptions = ["sub-1"]\n'),
        "tenants.0.subscriptions.0: 'sub-1' is not a GUID",
    ),
    Case(
        "client id not a GUID",
        lambda ws: cfg(ws, credential=cred(client_id='"my-app"')),
        "client_id: 'my-app' is not a GUID",
    ),
    Case(
        "workload identity client id not a GUID",
        lambda ws: cfg(
            ws, credential='{ kind = "workload_identity", client_id = "x", token_file = "s.secret" }'
        ),
        "client_id: 'x' is not a GUID",
    ),
    Case(
        "managed identity client id not a GUID",
        lambda ws: cfg(ws, credential='{ kind = "managed_identity", client_id = "uami" }'),
        "client_id: 'uami' is not a GUID",
    ),
    # --- the fleet config: secret files --------------------------------------------------------------
    Case(
        "secret file readable by others (0644)",
        lambda ws: after(ws.write("s.secret", SECRET_FILE_VALUE, 0o644), cfg(ws)),
        "(mode 0644): run `chmod 600",
    ),
    Case(
        "secret file readable by group (0640)",
        lambda ws: after(ws.write("s.secret", SECRET_FILE_VALUE, 0o640), cfg(ws)),
        "(mode 0640): run `chmod 600",
    ),
    Case(
        "certificate file readable by others",
        lambda ws: after(
            ws.write("c.pem", "-----BEGIN CERTIFICATE-----\n", 0o644),
            cfg(ws, credential=cred(kind='"client_certificate"', secret_file="", certificate_path='"c.pem"')),
        ),
        "c.pem is accessible by group or others (mode 0644): run `chmod 600",
    ),
    Case(
        "secret file /dev/zero",
        lambda ws: cfg(ws, credential=cred(secret_file='"/dev/zero"')),
        "not a regular file",
    ),
    Case(
        "secret file a FIFO",
        lambda ws: after(ws.fifo("s.fifo"), cfg(ws, credential=cred(secret_file='"s.fifo"'))),
        "not a regular file",
    ),
    Case(
        "inline secret without opting in",
        lambda ws: cfg(ws, credential=cred(secret_file="", secret=f'"{SECRET_INLINE_VALUE}"')),
        "allow_inline_secret",
    ),
    # --- the fleet config: the file itself ---------------------------------------------------------
    Case("config /dev/zero", lambda ws: ["inventory", "-c", "/dev/zero"], "/dev/zero: not a regular file"),
    Case("config a FIFO", lambda ws: ["inventory", "-c", str(ws.fifo("f.toml"))], "not a regular file"),
    Case("config a directory", lambda ws: ["inventory", "-c", str(ws.root)], "is a directory"),
    Case(
        "config not UTF-8",
        lambda ws: ["inventory", "-c", str(ws.write("bin.toml", b"a = '\xff\xfe'"))],
        "not UTF-8",
    ),
    Case(
        "config nested 100,000 deep",
        lambda ws: ["inventory", "-c", str(ws.write("deep.toml", "a = " + "[" * 100_000))],
        "nested too deeply",
    ),
    Case(
        "config over the size cap",
        lambda ws: ["inventory", "-c", str(ws.sparse("big.toml", 17 << 20))],
        "too large",
    ),
    Case(
        "config path with rich markup",
        lambda ws: ["inventory", "-c", str(ws.p("[/x][bold]fleet.toml"))],
        "[/x][bold]fleet.toml: cannot read: no such file",
    ),
    Case(
        "config path with bytes that are not UTF-8",
        lambda ws: ["inventory", "-c", str(ws.p("fleet-\udcff.toml"))],
        "fleet-\\xff.toml: cannot read: no such file",
    ),
    Case(
        "config path with an escape sequence",
        lambda ws: ["inventory", "-c", str(ws.p("\x1b]0;pwned\x07.toml"))],
        "\\x1b]0;pwned\\x07.toml: cannot read",
    ),
    Case(
        "config key with an escape sequence",
        lambda ws: cfg(ws, extra='"\\u001b[2J" = 1\n'),
        "tenants.0.\\x1b[2J: Extra inputs are not permitted",
    ),
    # --- target files ---------------------------------------------------------------------------------
    Case(
        "target /dev/zero", lambda ws: ["plan", "-t", "/dev/zero", "-c", "x"], "/dev/zero: not a regular file"
    ),
    Case("target a FIFO", lambda ws: ["plan", "-t", str(ws.fifo("t.toml")), "-c", "x"], "not a regular file"),
    Case("target a directory", lambda ws: ["plan", "-t", str(ws.root), "-c", "x"], "is a directory"),
    Case(
        "target nested 100,000 deep",
        lambda ws: ["plan", "-t", str(ws.write("t.toml", "a = " + "[" * 100_000)), "-c", "x"],
        "nested too deeply",
    ),
    Case(
        "target not UTF-8",
        lambda ws: ["plan", "-t", str(ws.write("t.toml", b"\xff")), "-c", "x"],
        "not UTF-8",
    ),
    Case(
        "target over the size cap",
        lambda ws: ["plan", "-t", str(ws.sparse("t.toml", 2 << 20)), "-c", "x"],
        "too large",
    ),
    Case(
        "target with escape sequences and a field missing",
        lambda ws: [
            "plan",
            "-t",
            str(ws.write("t.toml", 'name = "\\u001b[31mv2"\nbogus = "\\u009b2J"\n')),
            "-c",
            "x",
        ],
        "t.toml",
    ),
    # --- plan files -----------------------------------------------------------------------------------
    Case("plan /dev/zero", lambda ws: ["show", "/dev/zero"], "/dev/zero: not a regular file"),
    Case("plan /dev/urandom", lambda ws: ["show", "/dev/urandom"], "not a regular file"),
    Case("plan a FIFO", lambda ws: ["show", str(ws.fifo("p.json"))], "not a regular file"),
    Case("plan a directory", lambda ws: ["show", str(ws.root)], "is a directory"),
    Case(
        "plan nested 5,000 deep",
        lambda ws: ["show", str(ws.write("p.json", _nested(5000)))],
        "nested deeper than",
    ),
    Case(
        "plan nested 40 deep",
        lambda ws: ["show", str(ws.write("p.json", _nested(40)))],
        "nested deeper than 32",
    ),
    Case(
        "plan nested 200,000 deep",
        lambda ws: ["show", str(ws.write("p.json", "[" * 200_000))],
        "p.json: not a plan",
    ),
    Case("plan over the size cap", lambda ws: ["show", str(ws.sparse("p.json", 600 << 20))], "too large"),
    Case("plan not UTF-8", lambda ws: ["show", str(ws.write("p.json", b'{"a": "\xff"}'))], "not UTF-8"),
    Case(
        "plan truncated", lambda ws: ["show", str(ws.write("p.json", _plan_text()[:500]))], "not valid JSON"
    ),
    Case(
        "plan edited to carry an escape sequence",
        lambda ws: [
            "show",
            str(
                ws.write(
                    "p.json",
                    _plan_text().replace('"schema_version": 1', '"schema_version": 1, "x": "\\u001b[2J"'),
                )
            ),
        ],
        "p.json",
    ),
    Case(
        "plan with a target name in markup, tampered",
        lambda ws: [
            "show",
            str(
                ws.write(
                    "p.json",
                    signed_plan(ws, "s.json", name="[/x]\x1b[2J")
                    .read_text()
                    .replace('"digest": "sha256:', '"digest": "sha256:0'),
                )
            ),
        ],
        "digest mismatch",
    ),
    Case(
        "apply /dev/zero",
        lambda ws: ["apply", "/dev/zero", "-c", str(ws.p("fleet.toml"))],
        "not a regular file",
    ),
    Case(
        "apply a plan path with rich markup",
        lambda ws: ["apply", str(ws.p("[/x].json")), "-c", str(ws.p("fleet.toml")), "--yes"],
        "[/x].json: cannot read: no such file",
    ),
    Case(
        "apply a plan path that is not UTF-8",
        lambda ws: ["apply", str(ws.p("\udcfe.json")), "-c", str(ws.p("fleet.toml")), "--yes"],
        "\\xfe.json: cannot read",
    ),
    # --- snapshots ------------------------------------------------------------------------------------
    Case(
        "snapshot /dev/zero",
        lambda ws: ["explain", "--action", "a/b", "--snapshot", "/dev/zero", "-c", str(ws.p("fleet.toml"))],
        "not a regular file",
    ),
    Case(
        "snapshot nested 100,000 deep",
        lambda ws: ["explain", "--action", "a/b", "--snapshot", str(ws.write("s.json", "[" * 100_000))],
        "s.json: not a snapshot",
    ),
    Case(
        "snapshot not UTF-8",
        lambda ws: ["explain", "--action", "a/b", "--snapshot", str(ws.write("s.json", b"\xff"))],
        "not UTF-8",
    ),
    # --- journals and run ids -------------------------------------------------------------------------
    Case(
        "status, journal in a missing folder",
        lambda ws: ["status", "--journal", str(ws.p("no/dir/j.db"))],
        "no journal here yet",
    ),
    Case(
        "runs, journal in a missing folder",
        lambda ws: ["runs", "--journal", str(ws.p("no/dir/j.db"))],
        "no journal here yet",
    ),
    Case(
        "resume, journal in a missing folder",
        lambda ws: [
            "resume",
            RUN,
            "-c",
            str(ws.p("fleet.toml")),
            "--journal",
            str(ws.p("no/dir/j.db")),
            "--yes",
        ],
        "no journal here yet",
    ),
    Case(
        "rollback, journal in a missing folder",
        lambda ws: [
            "rollback",
            RUN,
            "-c",
            str(ws.p("fleet.toml")),
            "--journal",
            str(ws.p("no/dir/j.db")),
            "--yes",
        ],
        "no journal here yet",
    ),
    Case(
        "resume, journal missing in an existing folder",
        lambda ws: ["resume", RUN, "-c", str(ws.p("fleet.toml")), "--journal", str(ws.p("j.db")), "--yes"],
        "no journal here yet",
    ),
    Case(
        "status, journal an empty file",
        lambda ws: ["status", "--journal", str(ws.write("j.db", ""))],
        "no journal here yet",
    ),
    Case("status, journal /dev/zero", lambda ws: ["status", "--journal", "/dev/zero"], "not a regular file"),
    Case(
        "status, journal a FIFO",
        lambda ws: ["status", "--journal", str(ws.fifo("j.db"))],
        "not a regular file",
    ),
    Case("status, journal a directory", lambda ws: ["status", "--journal", str(ws.root)], "is a directory"),
    Case(
        "status, journal a text file",
        lambda ws: ["status", "--journal", str(ws.write("j.db", "hello\n" * 20))],
        "not a journal",
    ),
    Case(
        "status, journal path with markup",
        lambda ws: ["status", "--journal", str(ws.p("[/x][red]j.db"))],
        "[/x][red]j.db: no journal here yet",
    ),
    Case(
        "status, journal path not UTF-8",
        lambda ws: ["status", "--journal", str(ws.p("\udcff\udcfe.db"))],
        "\\xff\\xfe.db: no journal here yet",
    ),
    Case("status, run id not UTF-8", lambda ws: ["status", "\udcff\udcfe"], "RUN '\\xff\\xfe': not a run id"),
    Case("status, run id with markup", lambda ws: ["status", "[/x]"], "RUN '[/x]': not a run id"),
    Case(
        "resume, run id with markup",
        lambda ws: ["resume", "[bold][/x]", "-c", str(ws.p("fleet.toml"))],
        "RUN '[bold][/x]': not a run id",
    ),
    Case(
        "resume, run id not UTF-8",
        lambda ws: ["resume", "2026\udc80", "-c", str(ws.p("fleet.toml"))],
        "RUN '2026\\x80': not a run id",
    ),
    Case(
        "rollback, run id with an escape sequence",
        lambda ws: ["rollback", "\x1b[2J\x9b31m", "-c", str(ws.p("fleet.toml"))],
        "RUN '\\x1b[2J\\x9b31m': not a run id",
    ),
    Case("status, run id with a newline", lambda ws: ["status", "a\nb"], "RUN 'a\\x0ab': not a run id"),
    # --- flags ----------------------------------------------------------------------------------------
    Case(
        "show --format with an escape sequence",
        lambda ws: ["show", str(signed_plan(ws)), "--format", "\x1b[31mjson"],
        "--format: '\\x1b[31mjson' is not one of",
    ),
    Case("status --by with markup", lambda ws: ["status", "--by", "[/x]"], "--by"),
    Case("inventory --format unknown", lambda ws: ["inventory", "--format", "yaml\x9b"], "--format"),
    Case("inventory --concurrency 0", lambda ws: ["inventory", "--concurrency", "0"], "--concurrency"),
    Case(
        "resume --failure-tolerance with an escape sequence",
        lambda ws: ["resume", RUN, "-c", str(ws.p("fleet.toml")), "--failure-tolerance", "\x1b]0;x\x07"],
        "--failure-tolerance",
    ),
    Case(
        "inventory --concurrency not a number",
        lambda ws: ["inventory", "--concurrency", "many"],
        "--concurrency",
    ),
    Case(
        "show --out in a missing folder",
        lambda ws: ["show", str(signed_plan(ws)), "--format", "markdown", "--out", str(ws.p("no/dir/x.md"))],
        "--out",
    ),
    Case(
        "config /dev/null",
        lambda ws: ["inventory", "-c", "/dev/null"],
        "/dev/null: not a regular file",
    ),
]


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto the captured stderr; later tests must not write to it."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    ws = _workspace(tmp_path / "ws")
    monkeypatch.chdir(ws.root)
    for key in list(os.environ):
        if key.startswith(("ORCHESTRATOR_", "AZURE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOSTILE_TEST_SECRET", SECRET_ENV_VALUE)
    monkeypatch.setenv("COLUMNS", "200")
    yield ws


def run_main(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["orchestrator", *argv])
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capfd.readouterr()
    return (code if isinstance(code, int) else 1), out, err


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_line_and_exit_2(
    case: Case, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    argv = case.setup(workspace)
    before = _tree(workspace.root)
    code, out, err = run_main(argv, monkeypatch, capfd)
    lines = err.strip("\n").split("\n")
    if os.environ.get("HOSTILE_SHOW"):  # a file to collect every case's line in, for review
        with open(os.environ["HOSTILE_SHOW"], "a", encoding="utf-8") as show:  # noqa: PTH123
            show.write(f"{case.name}: {err.strip()!r} (exit {code})\n")
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and case.expect in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert not RAW_CONTROL.search(out + err), repr(err)
    for secret in PLANTED:
        assert secret not in out + err
    assert _tree(workspace.root) == before, "the case created or modified something"


# --- text from outside, shown: every output cleans it, JSON keeps it (escaped) -----------------------

EVIL = "\x1b[2J\x1b]0;pwned\x07[/x][bold]\x9b31m\u202eevil\x85"


def _evil_plan(ws: Workspace) -> tuple[Path, Plan]:
    plan = Plan.model_validate_json(_plan_text())
    items = tuple(
        i.model_copy(update={"tenant_name": f"T{n}{EVIL}", "app_name": f"A{n}{EVIL}"})
        for n, i in enumerate(plan.items)
    )
    target = plan.target.model_copy(update={"name": f"target{EVIL}"})
    waves = tuple(w.model_copy(update={"name": f"{w.name}{EVIL}"}) for w in plan.waves)
    plan = seal(plan.model_copy(update={"items": items, "target": target, "waves": waves}))
    path = ws.p("evil.json")
    write_plan(plan, path)
    return path, plan


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "html"])
def test_show_cleans_names_from_outside(
    fmt: str, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    path, plan = _evil_plan(workspace)
    assert not RAW_CONTROL.search(path.read_text(encoding="utf-8"))  # the plan file itself is safe to cat
    code, out, err = run_main(["show", str(path), "--format", fmt], monkeypatch, capfd)
    assert code == 0, err
    assert not RAW_CONTROL.search(out + err) and "\udcff" not in out
    assert "pwned" in out or fmt == "table"  # shown, defanged (the table may fold long names)
    if fmt == "json":
        assert json.loads(out)["target"]["name"] == plan.target.name  # escaped, not lost
    if fmt == "html":
        assert "[/x][bold]" in out and "\\x1b[2J" in out
    out_file = workspace.p(f"out.{fmt}")
    code, _, err = run_main(["show", str(path), "--format", fmt, "--out", str(out_file)], monkeypatch, capfd)
    assert code == 0, err
    assert not RAW_CONTROL.search(out_file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt", ["table", "json", "html"])
def test_status_and_runs_clean_names_from_outside(
    fmt: str, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.executor.work import plan_work
    from orchestrator.journal import Journal

    path, plan = _evil_plan(workspace)
    with Journal(workspace.p("j.db")) as journal:
        run_id = journal.create_run(
            kind="apply",
            plan_digest=plan.digest,
            plan_path=str(path),
            target_name=plan.target.name,
            apps=plan_work(plan)[0],
            wave_names={w.index: w.name for w in plan.waves},
        )
    code, out, err = run_main(
        ["status", run_id, "--journal", str(workspace.p("j.db")), "--format", fmt, "--by", "app"],
        monkeypatch,
        capfd,
    )
    assert code == 0, err
    assert not RAW_CONTROL.search(out + err) and "\udcff" not in out
    if fmt == "json":
        assert json.loads(out)["target_name"] == plan.target.name
        assert json.loads(out)["wave_names"] == {str(w.index): w.name for w in plan.waves}
    if fmt == "html":  # the journaled wave names, shown defanged
        assert "<td>canary\\x1b[2J\\x1b]0;pwned\\x07[/x][bold]" in out
    code, out, err = run_main(["runs", "--journal", str(workspace.p("j.db"))], monkeypatch, capfd)
    assert code == 0, err
    assert not RAW_CONTROL.search(out + err)  # (the target column folds: its text may span lines)


def test_console_logs_clean_values(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    import structlog

    from orchestrator import logs

    logs.configure("console", level="info")
    structlog.get_logger("t").warning(f"app {EVIL}", tenant=EVIL, names=[EVIL])
    logging.getLogger("azure.x").error("sdk says %s", EVIL)
    err = capsys.readouterr().err
    assert "pwned" in err and not RAW_CONTROL.search(err) and "\udcff" not in err
    logs.configure("json", level="info")
    structlog.get_logger("t").warning("app", tenant=EVIL)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert not RAW_CONTROL.search(line) and json.loads(line)["tenant"] == EVIL


def test_a_shared_secret_file_is_accepted_with_the_explicit_opt_out(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.config import load_config

    workspace.write("s.secret", SECRET_FILE_VALUE, 0o644)
    monkeypatch.setenv("ORCHESTRATOR_ALLOW_SHARED_SECRET_FILES", "1")
    config = load_config(workspace.config())
    assert config.tenants[0].credential.secret_file == workspace.p("s.secret")  # type: ignore[union-attr]
    monkeypatch.setenv("ORCHESTRATOR_ALLOW_SHARED_SECRET_FILES", "yes")  # only "1" opts out
    with pytest.raises(InputError, match="chmod 600"):
        load_config(workspace.config())


def test_ctrl_c_in_a_command_is_one_line_and_exit_130(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import orchestrator.cli.show_cmd as show_cmd

    def interrupted(path: Path) -> Plan:
        raise KeyboardInterrupt

    monkeypatch.setattr(show_cmd, "read_plan", interrupted)
    code, out, err = run_main(["show", "plan.json"], monkeypatch, capfd)
    assert code == 130
    assert err.strip().splitlines() == ["error: interrupted; no run was started; run the command again"]
    assert "Traceback" not in out + err


def test_clean_escapes_every_control_and_keeps_text() -> None:
    from orchestrator.untrusted import clean

    assert clean("plain ünïcødé 名前 [x]") == "plain ünïcødé 名前 [x]"
    assert clean("a\x1b[31mb\x9bc\x7fd\u202ee\udcfff") == "a\\x1b[31mb\\x9bc\\x7fd\\u202ee\\xfff"
    assert clean("two\nlines\tx") == "two\nlines\tx"
    assert clean("two\nlines\tx", single_line=True) == "two\\x0alines\\x09x"
    assert json.loads(clean(json.dumps("\x85\x1b\u2028", ensure_ascii=False), json=True)) == "\x85\x1b\u2028"
    assert clean(clean(EVIL)) == clean(EVIL)
