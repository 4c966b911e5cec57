"""Property tests of pattern inclusion against brute force (needs hypothesis; skipped without it)."""

from __future__ import annotations

import fnmatch
import itertools

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.planning.actions import covers, diff, excluded, intersects, matches

patterns = st.text(alphabet="ab/*", max_size=7)
# "c" is in no pattern: it stands for every character the patterns do not mention.
operations = st.text(alphabet="ab/c", max_size=9)


def _strings(max_len: int) -> list[str]:
    return ["".join(s) for n in range(max_len + 1) for s in itertools.product("ab/c", repeat=n)]


@settings(max_examples=300, deadline=None)
@given(patterns, patterns)
def test_covers_is_exact_inclusion(a: str, b: str) -> None:
    # A counterexample, when one exists, is at most len(b) long.
    counterexamples = [
        s for s in _strings(len(b)) if fnmatch.fnmatchcase(s, b) and not fnmatch.fnmatchcase(s, a)
    ]
    assert covers(a, b) == (counterexamples == [])


@settings(max_examples=300, deadline=None)
@given(patterns, patterns, operations)
def test_covered_patterns_match_whatever_the_narrower_matches(a: str, b: str, op: str) -> None:
    if covers(a, b) and matches(b, op):
        assert matches(a, op)
    if matches(a, op) and matches(b, op):
        assert intersects(a, b)


@settings(max_examples=200, deadline=None)
@given(st.lists(patterns, max_size=4), st.lists(patterns, max_size=4), operations)
def test_diff_accounts_for_every_operation(old: list[str], new: list[str], op: str) -> None:
    added, removed = diff(old, new)
    if excluded(op, new) and not excluded(op, old):
        assert any(matches(p, op) for p in added)
    if excluded(op, old) and not excluded(op, new):
        assert any(matches(p, op) for p in removed)


@settings(max_examples=200, deadline=None)
@given(patterns, operations)
def test_case_never_matters(pattern: str, op: str) -> None:
    assert matches(pattern.upper(), op) == matches(pattern, op.upper()) == matches(pattern, op)
