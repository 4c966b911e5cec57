"""Action matching: case-insensitive `*` globs, inclusion and the exclusion diff."""

from __future__ import annotations

import fnmatch
import itertools
from functools import cache

import pytest

from orchestrator.planning.actions import (
    closest,
    covers,
    dedupe,
    diff,
    excluded,
    intersects,
    matches,
    normalise,
    same_set,
    shape_problem,
)

KV_READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "Microsoft.Web/sites/write", True),
        ("*/read", "Microsoft.Web/sites/read", True),
        ("*/read", "Microsoft.Web/sites/write", False),
        ("Microsoft.KeyVault/vaults/*", KV_READ_METADATA, True),
        ("microsoft.keyvault/VAULTS/*", KV_READ_METADATA, True),
        ("Microsoft.KeyVault/vaults/*/action", KV_READ_METADATA, True),
        ("Microsoft.KeyVault/vaults/sec*/read*", KV_READ_METADATA, True),
        ("Microsoft.KeyVault/vaults/secrets/read", KV_READ_METADATA, False),
        (KV_READ_METADATA.upper(), KV_READ_METADATA, True),
        ("Microsoft.Web/*", "Microsoft.WebX/sites/read", False),
        ("Microsoft.Web*", "Microsoft.WebX/sites/read", True),
        ("a*b*c", "abbbc", True),
        ("a*b*c", "acb", False),
        ("[ab]?", "[ab]?", True),  # no fnmatch classes: only * is special
        ("[ab]?", "a?", False),
    ],
)
def test_matches(pattern: str, action: str, expected: bool) -> None:
    assert matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("*", "*/read", True),
        ("*/read", "*", False),
        ("Microsoft.KeyVault/vaults/*", KV_READ_METADATA, True),
        ("Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/vaults/secrets/*", True),
        ("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/*", False),
        ("*/read", "Microsoft.Web/*/read", True),
        ("*/read", "Microsoft.Web/*", False),
        ("Microsoft.*/read", "Microsoft.Web/sites/read", True),
        ("*a*", "*ab*", True),
        ("*ab*", "*a*b*", False),  # "a-b" is in the second only
        ("a*b", "a*b*b", True),
        ("a*b*b", "a*b", False),  # "ab"
        ("MICROSOFT.KEYVAULT/*", "microsoft.keyvault/vaults/*", True),
        ("x", "x", True),
        ("x", "X", True),
    ],
)
def test_covers(a: str, b: str, expected: bool) -> None:
    assert covers(a, b) is expected


# Exhaustive check against brute force: patterns over {a, b, *} up to length 4, operations over
# {a, b, c} (c appears in no pattern, standing for every other character) up to the length that
# decides each question.
_PATTERNS = ["".join(p) for n in range(5) for p in itertools.product("ab*", repeat=n)]


@cache
def _language(pattern: str, max_len: int) -> frozenset[str]:
    strings = ("".join(s) for n in range(max_len + 1) for s in itertools.product("abc", repeat=n))
    return frozenset(s for s in strings if fnmatch.fnmatchcase(s, pattern))


def test_covers_agrees_with_brute_force_exhaustively() -> None:
    # A counterexample to b ⊆ a, when there is one, needs at most len(b) characters.
    wrong = [
        (a, b) for a in _PATTERNS for b in _PATTERNS if covers(a, b) != (_language(b, 4) <= _language(a, 4))
    ]
    assert wrong == []


def test_intersects_agrees_with_brute_force_exhaustively() -> None:
    # A common string, when there is one, needs at most the literal characters of both patterns.
    small = [p for p in _PATTERNS if len(p) <= 3]
    wrong = [
        (a, b) for a in small for b in small if intersects(a, b) != bool(_language(a, 6) & _language(b, 6))
    ]
    assert wrong == []


def test_matches_agrees_with_fnmatch_exhaustively() -> None:
    strings = ["".join(s) for n in range(5) for s in itertools.product("abc", repeat=n)]
    wrong = [(p, s) for p in _PATTERNS for s in strings if matches(p, s) != fnmatch.fnmatchcase(s, p)]
    assert wrong == []


def test_normalise_folds_case_and_collapses_stars() -> None:
    assert normalise("  Microsoft.Web/**/READ ") == "microsoft.web/*/read"


def test_excluded_is_wildcard_aware() -> None:
    patterns = ["*/read", "Microsoft.KeyVault/vaults/*"]
    assert excluded(KV_READ_METADATA, patterns)
    assert excluded("microsoft.web/sites/READ", patterns)
    assert not excluded("Microsoft.Web/sites/write", patterns)
    assert excluded("Microsoft.KeyVault/vaults/secrets/*", patterns)  # a pattern: all of it
    assert not excluded("Microsoft.KeyVault/*", patterns)
    assert not excluded("anything", [])


def test_dedupe_is_case_insensitive_keeps_first_spelling_and_sorts() -> None:
    assert dedupe(["b/Read", "A/x", "B/READ", " a/X "]) == ("A/x", "b/Read")


def test_diff_is_about_operations_not_strings() -> None:
    old = ["*/read", "Microsoft.KeyVault/vaults/*"]
    # Already inside the old wildcard: no change.
    assert diff(old, [*old, KV_READ_METADATA]) == ((), ())
    # A respelling is no change either.
    assert diff(old, ["*/READ", "microsoft.keyvault/VAULTS/*"]) == ((), ())
    # Narrowing the wildcard removes it: operations under vaults/ outside secrets/ are now denied.
    added, removed = diff(old, ["*/read", "Microsoft.KeyVault/vaults/secrets/*"])
    assert added == ()
    assert removed == ("Microsoft.KeyVault/vaults/*",)
    # Widening: the new wildcard covers operations no old pattern did.
    added, removed = diff(["*/read", KV_READ_METADATA], ["*/read", "Microsoft.KeyVault/*"])
    assert added == ("Microsoft.KeyVault/*",)
    assert removed == ()


def test_diff_order_is_deterministic_and_spelling_preserved() -> None:
    added, removed = diff(["Z/One", "a/Two"], ["C/new", "b/New"])
    assert added == ("b/New", "C/new")
    assert removed == ("a/Two", "Z/One")


def test_same_set() -> None:
    assert same_set(["*/read", "x/*", "x/y"], ["x/*", "*/READ"])
    assert not same_set(["*/read"], ["*/read", "x/write"])


@pytest.mark.parametrize(
    "action",
    [
        "*",
        "*/read",
        "Microsoft.Web/*",
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        "microsoft.web/sites/Write",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
        "Microsoft.Authorization/*/read",
    ],
)
def test_operation_shapes_that_are_fine(action: str) -> None:
    assert shape_problem(action) is None


@pytest.mark.parametrize(
    ("action", "problem"),
    [
        ("bogus", "provider namespace"),
        ("Microsoft.Web", "no operation"),
        ("Microsoft.Web/sites/frobnicate", "not an operation verb"),
        ("Microsoft.Web//read", "between single '/'"),
        ("Microsoft.Web/sites read", "between single '/'"),
    ],
)
def test_operation_shapes_that_are_not(action: str, problem: str) -> None:
    found = shape_problem(action)
    assert found is not None and problem in found


def test_closest_names_a_likely_typo() -> None:
    known = ["Microsoft.KeyVault/vaults/secrets/readMetadata/action", "Microsoft.Web/sites/*"]
    assert closest("Microsoft.KeyVault/vaults/secrets/readMetdata/action", known) == known[0]
    assert closest("Microsoft.Compute/virtualMachines/start/action", known) is None
