"""ARM's list paging: pages of `page_size` items, an absolute https nextLink with a skip token."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from orchestrator.emulator.arm_routes import Ctx
from orchestrator.emulator.errors import ArmError


def _next_link(ctx: Ctx, token: str) -> str:
    """An absolute nextLink carrying api-version, the original $filter and the skip token."""
    query = {"api-version": ctx.api_version}
    if "$filter" in ctx.request.query:
        query["$filter"] = ctx.request.query["$filter"]
    query["$skiptoken"] = token
    return f"{ctx.rt.base_url}{ctx.request.path.lstrip('/')}?{urlencode(query)}"


def keyed_page(ctx: Ctx, rows_after: Callable[[str | None], Iterator[tuple[str, Any]]]) -> dict[str, Any]:
    """One page of an index scan, resuming after the sort key in the skip token.

    `rows_after(key)` yields (sort key, item) in order, strictly after `key`. Each page reads only
    its own rows plus one to know whether a next page exists, so a whole listing costs O(rows)."""
    size = max(1, ctx.rt.settings.page_size)
    raw = ctx.request.query.get("$skiptoken", "")
    after: str | None = None
    if raw:
        try:
            after = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ArmError(400, "InvalidSkipToken", f"The skip token '{raw}' is invalid.") from None
    page: list[Any] = []
    last = ""
    for sort_key, item in rows_after(after):
        if len(page) == size:
            token = base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii").rstrip("=")
            return {"value": page, "nextLink": _next_link(ctx, token)}
        page.append(item)
        last = sort_key
    return {"value": page}


def page_of(ctx: Ctx, items: list[Any]) -> dict[str, Any]:
    """One page of a small in-memory list, with an offset skip token."""
    size = max(1, ctx.rt.settings.page_size)
    raw = ctx.request.query.get("$skiptoken", "")
    try:
        offset = int(raw, 16) if raw else 0
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{raw}' is invalid.") from None
    body: dict[str, Any] = {"value": items[offset : offset + size]}
    if offset + size < len(items):
        body["nextLink"] = _next_link(ctx, f"{offset + size:08x}")
    return body
