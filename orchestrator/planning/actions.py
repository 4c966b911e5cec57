"""Azure RBAC action strings: case-insensitive glob patterns where `*` matches any run of characters.

An action string such as `Microsoft.KeyVault/vaults/*` or `*/read` names a *set* of operations. The
planner reasons about those sets, never about spellings:

- `matches(pattern, action)`: the pattern names the (literal) operation.
- `covers(a, b)`: every operation `b` names is also named by `a` (language inclusion).
- `intersects(a, b)`: some operation is named by both.

Inclusion rests on one fact about `*`-only globs over an open alphabet: `b ⊆ a` exactly when `a`
matches `b` with each `*` replaced by a character that appears in no pattern. (If it does, each such
character sits inside one of `a`'s stars, which absorbs whatever the `*` is filled with; if it does not,
that very string is an operation `b` names and `a` does not.) The same argument shows that a union of
patterns covers `b` only when one of them does, so per-pattern checks are exact for sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

WILDCARD = "*"
# Stands for "any string" when testing inclusion; outside every alphabet an action can use.
_FRESH = "\x00"


@lru_cache(maxsize=65536)
def normalise(pattern: str) -> str:
    """The comparison form: trimmed, case-folded, runs of `*` collapsed (they name the same set)."""
    text = pattern.strip().casefold()
    while "**" in text:
        text = text.replace("**", "*")
    return text


@lru_cache(maxsize=16384)
def _glob_match(pattern: str, text: str) -> bool:
    """Whether normalised `pattern` matches `text` literally (no wildcard in `text`). Linear greedy scan."""
    p = t = 0
    star_p, star_t = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] != WILDCARD and pattern[p] == text[t]:
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == WILDCARD:
            star_p, star_t = p, t
            p += 1
        elif star_p >= 0:
            # Let the last star absorb one more character and retry from there.
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    return all(ch == WILDCARD for ch in pattern[p:])


def matches(pattern: str, action: str) -> bool:
    """Whether `pattern` names the operation `action` (case-insensitive; `action` taken literally)."""
    return _glob_match(normalise(pattern), action.strip().casefold())


def covers(pattern_a: str, pattern_b: str) -> bool:
    """Whether every operation `pattern_b` names is also named by `pattern_a`."""
    a, b = normalise(pattern_a), normalise(pattern_b)
    if a == b:
        return True
    return _glob_match(a, b.replace(WILDCARD, _FRESH))


@lru_cache(maxsize=16384)
def _intersects(a: str, b: str) -> bool:
    # reach[j] after row i: some string takes a[:i] and b[:j] to the same point.
    n, m = len(a), len(b)
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[0][0] = True
    for i in range(n + 1):
        for j in range(m + 1):
            if not reach[i][j]:
                continue
            a_star = i < n and a[i] == WILDCARD
            b_star = j < m and b[j] == WILDCARD
            if a_star:
                reach[i + 1][j] = True  # a's star matches nothing more
            if b_star:
                reach[i][j + 1] = True
            if i < n and j < m:
                if a_star and not b_star:
                    reach[i][j + 1] = True  # a's star eats b's literal character
                elif b_star and not a_star:
                    reach[i + 1][j] = True
                elif not a_star and not b_star and a[i] == b[j]:
                    reach[i + 1][j + 1] = True
    return reach[n][m]


def intersects(pattern_a: str, pattern_b: str) -> bool:
    """Whether some operation is named by both patterns."""
    return _intersects(normalise(pattern_a), normalise(pattern_b))


def excluded(action: str, patterns: Iterable[str]) -> bool:
    """Whether `action` (an operation, or a pattern meaning all of its operations) is within `patterns`.

    Blank patterns name nothing (ARM rejects them) and are ignored, as `dedupe` does.
    """
    return any(covers(p, action) for p in patterns if normalise(p))


def dedupe(patterns: Iterable[str]) -> tuple[str, ...]:
    """Distinct patterns (case-insensitively), first spelling kept, sorted by their comparison form."""
    seen: dict[str, str] = {}
    for pattern in patterns:
        key = normalise(pattern)
        if key and key not in seen:
            seen[key] = pattern.strip()
    return tuple(seen[k] for k in sorted(seen))


def diff(old_patterns: Sequence[str], new_patterns: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """How the set of excluded operations changes from `old_patterns` to `new_patterns`.

    Returns (added, removed): *added* are new patterns naming some operation no old pattern names;
    *removed* are old patterns naming some operation no new pattern names. A new, narrower pattern
    already inside an old wildcard is not an addition.
    """
    return _diff(tuple(old_patterns), tuple(new_patterns))


# A fleet shares a handful of exclusion lists, so the same comparison repeats for thousands of apps.
@lru_cache(maxsize=4096)
def _diff(
    old_patterns: tuple[str, ...], new_patterns: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    old, new = dedupe(old_patterns), dedupe(new_patterns)
    added = tuple(p for p in new if not excluded(p, old))
    removed = tuple(p for p in old if not excluded(p, new))
    return added, removed


def same_set(left: Sequence[str], right: Sequence[str]) -> bool:
    """Whether both pattern lists name the same set of operations."""
    added, removed = diff(left, right)
    return not added and not removed


# The verbs every RBAC operation name ends with (`…/read`, `…/listKeys/action`, …).
_VERBS = ("read", "write", "delete", "action")
_SEGMENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-*")


def shape_problem(action: str) -> str | None:
    """None when `action` has the shape of an RBAC operation (or pattern); else what is wrong with it.

    An operation is `Provider.Namespace/resourceType[/…]/verb` with the verb one of read, write, delete
    or action; `*` may stand for any part (`*`, `*/read`, `Microsoft.Web/*`).
    """
    text = action.strip()
    if text == WILDCARD:
        return None
    segments = text.casefold().split("/")
    if any(not s or not set(s) <= _SEGMENT_CHARS for s in segments):
        return "use letters, digits, '.', '_', '-' and '*' between single '/'"
    provider, last = segments[0], segments[-1]
    if provider != WILDCARD and ("." not in provider or provider.startswith(".") or provider.endswith(".")):
        return "it does not start with a provider namespace such as Microsoft.KeyVault"
    if len(segments) < 2:
        return "it names a provider but no operation (e.g. Microsoft.KeyVault/vaults/read, or …/*)"
    if WILDCARD not in last and last not in _VERBS:
        return f"it ends in {last!r}, not an operation verb ({', '.join(_VERBS)}) or '*'"
    return None


def closest(action: str, known: Iterable[str]) -> str | None:
    """The known operation spelled most like `action` (a likely typo), if any is close."""
    from difflib import get_close_matches

    by_key = {normalise(k): k.strip() for k in known if WILDCARD not in k}
    found = get_close_matches(normalise(action), list(by_key), n=1, cutoff=0.85)
    return by_key[found[0]] if found else None
