"""Resources by id, with per-subscription sorted keys so listings cost O(log n + page), not O(state).

A `ScopedIndex` is a mapping (lower-cased ARM id -> ARM JSON body) that also files every entry in a
bucket (the subscription it lives under, "" for anything above subscriptions) under a sort key. Each
bucket's sort keys are kept sorted, so a listing is a few bisected ranges merged in sort-key order,
and a page resumes after the last sort key it returned (the skip token) instead of re-filtering.

Bodies are indexed when stored: replace a body (`index[key] = new`) rather than editing the fields the
placement reads (the id, or a deny assignment's scope) in place. Other fields may be edited freely.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, MutableMapping, ValuesView
from typing import Any

Json = dict[str, Any]
# (lower-cased id, body) -> (bucket, sort key); the sort key must be unique per id.
Placement = Callable[[str, Json], tuple[str, str]]

# Between a scope and the id in a deny assignment's sort key: sorts before "/", so one scope's own
# entries and its descendants' form one contiguous run starting with "<scope>/".
EXACT = "/\x00"


def subscription_bucket(path: str) -> str:
    """The subscription id a lower-cased ARM path lives under, or "" above subscriptions."""
    if path.startswith("/subscriptions/"):
        return path.split("/", 3)[2]
    return ""


def place_by_id(key: str, _: Json) -> tuple[str, str]:
    """Applications and definitions: bucket by subscription, ordered by id."""
    return subscription_bucket(key), key


def place_by_scope(key: str, body: Json) -> tuple[str, str]:
    """Deny assignments: bucket by the subscription of their scope, ordered by scope, then id."""
    scope = str(body["properties"]["scope"]).lower()
    return subscription_bucket(scope), scope + EXACT + key


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (prefix non-empty)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class ScopedIndex(MutableMapping[str, Json]):
    def __init__(self, place: Placement, items: Iterable[tuple[str, Json]] = ()) -> None:
        self._place = place
        self._items: dict[str, Json] = {}
        self._where: dict[str, tuple[str, str]] = {}  # id -> (bucket, sort key)
        self._ids: dict[str, str] = {}  # sort key -> id
        self._buckets: dict[str, list[str]] = {}  # bucket -> sorted sort keys
        for key, body in items:  # bulk load: append, then sort each bucket once
            self._forget(key)
            self._file(key, body, keep_sorted=False)
        for keys in self._buckets.values():
            keys.sort()

    # ---- mapping ----------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Json:
        return self._items[key]

    def get(self, key: str, default: Any = None) -> Any:  # the hot GET-by-id path: one dict lookup
        return self._items.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __setitem__(self, key: str, body: Json) -> None:
        self._forget(key)
        self._file(key, body, keep_sorted=True)

    def __delitem__(self, key: str) -> None:
        if key not in self._items:
            raise KeyError(key)
        self._forget(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> KeysView[str]:
        return self._items.keys()

    def values(self) -> ValuesView[Json]:
        return self._items.values()

    def items(self) -> ItemsView[str, Json]:
        return self._items.items()

    def __repr__(self) -> str:
        return f"ScopedIndex({len(self._items)} items in {len(self._buckets)} buckets)"

    # ---- filing -----------------------------------------------------------------------------
    def _file(self, key: str, body: Json, *, keep_sorted: bool) -> None:
        bucket, sort_key = self._place(key, body)
        keys = self._buckets.setdefault(bucket, [])
        if keep_sorted:
            insort(keys, sort_key)
        else:
            keys.append(sort_key)
        self._items[key] = body
        self._where[key] = (bucket, sort_key)
        self._ids[sort_key] = key

    def _forget(self, key: str) -> None:
        where = self._where.pop(key, None)
        if where is None:
            return
        bucket, sort_key = where
        keys = self._buckets[bucket]
        i = bisect_left(keys, sort_key)
        if i < len(keys) and keys[i] == sort_key:
            del keys[i]
        if not keys:
            del self._buckets[bucket]
        del self._ids[sort_key]
        del self._items[key]

    # ---- range scans ------------------------------------------------------------------------
    def bucket_keys(self, bucket: str) -> list[str]:
        """The bucket's sort keys in order (a copy; for tests and diagnostics)."""
        return list(self._buckets.get(bucket, ()))

    def key_of(self, sort_key: str) -> str:
        """The id filed under a sort key `scan` returned."""
        return self._ids[sort_key]

    def scan(self, ranges: Iterable[tuple[str, str]], after: str | None = None) -> Iterator[tuple[str, Json]]:
        """(sort key, body) for every entry whose sort key starts with one of the (bucket, prefix)
        ranges ("" = the whole bucket), in sort-key order, strictly after `after` when given.

        Costs O(log n) per range to start, then O(log ranges) per entry yielded."""
        spans: dict[str, list[tuple[int, int]]] = {}
        for bucket, prefix in ranges:
            keys = self._buckets.get(bucket)
            if not keys:
                continue
            lo = bisect_left(keys, prefix) if prefix else 0
            hi = bisect_left(keys, _prefix_end(prefix)) if prefix else len(keys)
            if after is not None:
                lo = max(lo, bisect_right(keys, after))
            if lo < hi:
                spans.setdefault(bucket, []).append((lo, hi))
        runs: list[Iterator[str]] = []
        for bucket, found in spans.items():
            keys = self._buckets[bucket]
            for lo, hi in _merge_spans(found):
                runs.append(_slice(keys, lo, hi))
        for sort_key in heapq.merge(*runs) if len(runs) > 1 else (runs[0] if runs else iter(())):
            yield sort_key, self._items[self._ids[sort_key]]


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping index ranges of one bucket folded together, so no entry is yielded twice."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _slice(keys: list[str], lo: int, hi: int) -> Iterator[str]:
    """keys[lo:hi] lazily, without copying (the list does not change while a listing runs: no await)."""
    for i in range(lo, hi):
        yield keys[i]
