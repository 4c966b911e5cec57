"""Application ids as the by-id SDK operations put them into the URL (which they do not quote)."""

from __future__ import annotations

import pytest

from orchestrator.arm.gateway import _url_id
from orchestrator.errors import ArmError

SUB = "2a2b2c2d-3e3f-4a4b-8c8d-9e9fa0a1a2a3"
PREFIX = f"/subscriptions/{SUB}/resourceGroups/"


def test_a_plain_id_keeps_its_shape() -> None:
    app = f"{PREFIX}rg-apps/providers/Microsoft.Solutions/applications/ma-001"
    assert _url_id(app) == app


@pytest.mark.parametrize(
    ("rg", "name", "quoted"),
    [
        ("rg", "a?api-version=1", "rg/providers/Microsoft.Solutions/applications/a%3Fapi-version%3D1"),
        ("rg", "a#frag", "rg/providers/Microsoft.Solutions/applications/a%23frag"),
        ("r g", "a%2Fb", "r%20g/providers/Microsoft.Solutions/applications/a%252Fb"),
    ],
)
def test_every_part_is_quoted_so_no_id_addresses_anything_else(rg: str, name: str, quoted: str) -> None:
    app = f"{PREFIX}{rg}/providers/Microsoft.Solutions/applications/{name}"
    assert _url_id(app) == PREFIX + quoted


@pytest.mark.parametrize(
    "bad",
    [
        f"{PREFIX}rg/providers/Microsoft.Solutions/applications/..",
        f"{PREFIX}./providers/Microsoft.Solutions/applications/a",
        f"{PREFIX}rg/providers/Microsoft.Compute/virtualMachines/vm1",
        f"{PREFIX}rg/providers/Microsoft.Solutions/applications/a/child/b",
        "/subscriptions/x",
        "not an id",
    ],
)
def test_dot_segments_and_non_ids_are_refused(bad: str) -> None:
    with pytest.raises(ArmError) as caught:
        _url_id(bad)
    assert caught.value.code == "InvalidResourceId"
