"""The lock files the image installs with --require-hashes match pyproject.toml (scripts/lock makes them).

A dependency added, removed or re-bounded in pyproject.toml without re-running ./scripts/lock fails
here rather than in a container build.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SELF = f"{canonicalize_name(PYPROJECT['project']['name'])} (pyproject.toml)"
# The image's platform: the lock is resolved for it (scripts/lock: --python-version 3.11, linux).
IMAGE_ENV = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
             "platform_system": "Linux", "os_name": "posix", "extra": ""}  # fmt: skip


@dataclass
class Pin:
    version: str
    hashes: list[str]
    via: set[str]


def parse_lock(text: str) -> dict[str, Pin]:
    """`uv pip compile --generate-hashes` output: name==version, its hashes, its `# via` parents."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in re.sub(r"\\\n", " ", text).splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line.startswith((" ", "#")):
            requirement, *options = stripped.split()
            name, sep, version = requirement.partition("==")
            assert sep and version, f"not pinned with ==: {requirement}"
            hashes = [opt.removeprefix("--hash=") for opt in options if opt.startswith("--hash=")]
            assert len(hashes) == len(options), f"unexpected options on {requirement}: {options}"
            current = pins.setdefault(canonicalize_name(name), Pin(version, hashes, set()))
            in_via = False
        elif current is not None and stripped.startswith("# via"):
            parent = stripped.removeprefix("# via").strip()
            in_via = not parent
            if parent:
                current.via.add(parent)
        elif current is not None and in_via and stripped.startswith("#   "):
            current.via.add(stripped.removeprefix("#").strip())
    return pins


def _canonical_parent(parent: str) -> str:
    return parent if parent == SELF else canonicalize_name(parent)


@pytest.fixture(scope="module")
def runtime() -> dict[str, Pin]:
    return parse_lock((ROOT / "requirements.lock").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def build() -> dict[str, Pin]:
    return parse_lock((ROOT / "requirements-build.lock").read_text(encoding="utf-8"))


def _check_pinned(requires: list[str], pins: dict[str, Pin], lock: str) -> set[str]:
    wanted: set[str] = set()
    for spec in requires:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate(IMAGE_ENV):
            continue
        name = canonicalize_name(req.name)
        wanted.add(name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in {lock}: run ./scripts/lock"
        assert req.specifier.contains(pins[name].version, prereleases=True), (
            f"{lock} pins {req.name}=={pins[name].version}, outside pyproject.toml's {req.specifier}: "
            "run ./scripts/lock"
        )
    return wanted


def test_every_runtime_dependency_is_locked_within_its_bounds(runtime: dict[str, Pin]) -> None:
    wanted = _check_pinned(PYPROJECT["project"]["dependencies"], runtime, "requirements.lock")
    direct = {name for name, pin in runtime.items() if SELF in pin.via}
    assert direct == wanted, (
        f"requirements.lock was made from other dependencies than pyproject.toml's: "
        f"extra {sorted(direct - wanted)}, missing {sorted(wanted - direct)}: run ./scripts/lock"
    )


def test_every_locked_package_is_needed_and_hashed(runtime: dict[str, Pin], build: dict[str, Pin]) -> None:
    # requirements-build.lock is compiled from stdin: its top-level entries carry no `# via`.
    roots = {"requirements.lock": {SELF}, "requirements-build.lock": set(build) - _pulled_in(build)}
    for lock, pins in (("requirements.lock", runtime), ("requirements-build.lock", build)):
        assert pins, f"{lock} is empty"
        for name, pin in pins.items():
            assert pin.hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), (
                f"{lock}: {name} has no sha256 hash (pip --require-hashes would refuse it)"
            )
            # Each entry is pulled in by pyproject.toml or by another locked package: nothing stale.
            parents = {_canonical_parent(p) for p in pin.via}
            assert parents or name in roots[lock], f"{lock}: nothing requires {name}"
            assert parents <= set(pins) | roots[lock], (
                f"{lock}: {name} is required by {sorted(parents - set(pins))}, which are not locked"
            )


def _pulled_in(pins: dict[str, Pin]) -> set[str]:
    return {name for name, pin in pins.items() if pin.via}


def test_dev_tools_stay_out_of_the_image(runtime: dict[str, Pin]) -> None:
    dev_specs = PYPROJECT["project"]["optional-dependencies"]["dev"]
    dev = {canonicalize_name(Requirement(spec).name) for spec in dev_specs}
    assert not dev & set(runtime), f"dev tools in requirements.lock: {sorted(dev & set(runtime))}"


def test_build_requirements_are_locked(build: dict[str, Pin]) -> None:
    wanted = _check_pinned(PYPROJECT["build-system"]["requires"], build, "requirements-build.lock")
    top_level = set(build) - _pulled_in(build)
    assert top_level == wanted, (
        f"requirements-build.lock was made from other requirements than [build-system].requires: "
        f"extra {sorted(top_level - wanted)}, missing {sorted(wanted - top_level)}: run ./scripts/lock"
    )


def test_the_parser_reads_uv_output() -> None:
    text = (
        "# header\nfoo-bar==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via\n    #   baz\n"
        f"    #   {SELF}\nbaz==2 \\\n    --hash=sha256:" + "b" * 64 + f"\n    # via {SELF}\n"
    )
    pins = parse_lock(text)
    assert pins == {
        "foo-bar": Pin("1.0", ["sha256:" + "a" * 64], {"baz", SELF}),
        "baz": Pin("2", ["sha256:" + "b" * 64], {SELF}),
    }
