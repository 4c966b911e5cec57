"""The one error tree: every error the CLI can print is documented in `orchestrator.errors` with the
exit code it maps to, and the code the class carries is the documented one."""

from __future__ import annotations

import inspect
import re

from orchestrator import errors
from orchestrator.errors import ArmError, InputError, JournalUnavailable, OrchestratorError


def _documented() -> dict[str, int]:
    doc = errors.__doc__ or ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^[\s│├└─]*(\w+)\s+(\d+)\s", doc, re.MULTILINE)}


def test_every_error_is_in_the_documented_tree_with_its_exit_code() -> None:
    classes = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, OrchestratorError) and cls.__module__ == errors.__name__
    }
    documented = _documented()
    assert set(documented) == set(classes)
    assert {name: cls.exit_code for name, cls in classes.items()} == documented


def test_a_disk_failure_mid_run_is_not_bad_input() -> None:
    assert not issubclass(JournalUnavailable, InputError) and JournalUnavailable.exit_code == 1
    failed = ArmError("read application x: HTTP 403 AuthorizationFailed: no", status=403)
    assert isinstance(failed, OrchestratorError) and failed.exit_code == 1 and failed.info.request_id is None
