"""The plan file: versioned JSON, validated against its JSON Schema, sealed with a digest.

The digest is sha256 over the canonical JSON (sorted keys, no insignificant whitespace, UTF-8) of the
plan body without the `digest` field. `read_plan` recomputes it over the body exactly as stored, so any
edit after `write_plan` (even one byte) is refused, and apply executes only what was reviewed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from orchestrator.errors import PlanFileError
from orchestrator.models import Plan
from orchestrator.untrusted import UnreadableFile, clean, read_regular_file

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SUPPORTED_SCHEMA_VERSION = 1
DIGEST_PREFIX = "sha256:"
SCHEMA_RESOURCE = "plan.schema.json"
MAX_PLAN_BYTES = 512 * 1024 * 1024  # a 10,000-app plan is tens of MB
MAX_PLAN_DEPTH = 32


def _canonical(body: Any) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _body(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(mode="json")


def canonical_json(plan: Plan) -> bytes:
    """The plan's canonical form: sorted keys, compact separators, UTF-8."""
    return _canonical(_body(plan))


def _digest_of(body: dict[str, Any]) -> str:
    unsealed = {k: v for k, v in body.items() if k != "digest"}
    return DIGEST_PREFIX + hashlib.sha256(_canonical(unsealed)).hexdigest()


def _digest_matches(body: dict[str, Any], digest: str) -> bool:
    """Whether `digest` is the body's. orjson first (sorted keys, compact, UTF-8: the same bytes as
    `_canonical` for what a plan holds, 13x faster); only when its bytes do not give `digest` does
    `_canonical`, the definition, decide. So a fast path can never accept what the definition refuses."""
    unsealed = {k: v for k, v in body.items() if k != "digest"}
    try:
        fast = orjson.dumps(unsealed, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):  # e.g. a lone surrogate or an int beyond 64 bits
        fast = None
    if fast is not None and DIGEST_PREFIX + hashlib.sha256(fast).hexdigest() == digest:
        return True
    return _digest_of(body) == digest


def seal(plan: Plan) -> Plan:
    """The plan with `digest` set over its canonical body (the digest field itself excluded)."""
    return plan.model_copy(update={"digest": _digest_of(_body(plan))})


def _nullable_as_type_list(node: Any) -> Any:
    """`anyOf: [{type: T, ...}, {type: null}]` → `{type: [T, null], ...}`: the same constraint.

    Keywords other than `type` apply to one JSON type only, so they leave `null` alone; `enum` and
    `const` would not, and keep the `anyOf`. Equivalent, easier to read, and much faster for
    jsonschema to check on a 10,000-app plan (no failed branch per optional field).
    """
    if isinstance(node, list):
        return [_nullable_as_type_list(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_as_type_list(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = next(o for o in options if o != {"type": "null"})
        if isinstance(other.get("type"), str) and "enum" not in other and "const" not in other:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return {**other, **rest, "type": [other["type"], "null"]}
    return node


def plan_schema() -> dict[str, Any]:
    """The JSON Schema every plan file must satisfy (generated from `Plan`; see scripts/gen_schemas.py)."""
    schema = _nullable_as_type_list(Plan.model_json_schema())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Managed application upgrade plan",
        "description": f"Written by `orchestrator plan`; schema_version {SUPPORTED_SCHEMA_VERSION}.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


@cache
def _validator() -> Draft202012Validator:
    # Imported here: only a refused plan needs jsonschema (50 ms of every apply's start otherwise).
    from jsonschema import Draft202012Validator

    text = resources.files("orchestrator.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def write_plan(plan: Plan, path: Path) -> None:
    """Write the plan as pretty-printed JSON, atomically (a reader never sees half a file)."""
    if not plan.digest:
        raise ValueError("write_plan needs a sealed plan: call seal(plan) first")
    # Control characters escaped (\u0085): the same JSON, so the same digest, and safe to `cat`.
    text = clean(json.dumps(_body(plan), indent=2, ensure_ascii=False), json=True) + "\n"
    path = Path(path)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp_name).replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(temp_name).unlink()
        raise PlanFileError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def _deeper_than(body: Any, limit: int) -> bool:
    """Whether JSON containers nest deeper than `limit` (a plan nests about 6; the validators
    recurse, so a hostile file must stop here)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _location(path: Any) -> str:
    parts = [str(p) for p in path]
    return "/".join(parts) if parts else "(top level)"


def read_plan(path: Path) -> Plan:
    """Read, validate and verify a plan file; every problem is one PlanFileError naming the file."""
    try:
        raw = read_regular_file(Path(path), limit=MAX_PLAN_BYTES)
    except UnreadableFile as exc:
        raise PlanFileError(f"{path}: {exc}") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PlanFileError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError:
        raise PlanFileError(f"{path}: not a plan: nested deeper than {MAX_PLAN_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise PlanFileError(f"{path}: not a plan: the top level must be a JSON object")

    version = body.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PlanFileError(f"{path}: not a plan: schema_version is missing or not an integer")
    if version != SUPPORTED_SCHEMA_VERSION:
        which = "a newer" if version > SUPPORTED_SCHEMA_VERSION else "an older"
        raise PlanFileError(
            f"{path}: plan was written by {which} orchestrator (schema version {version}; "
            f"this one reads {SUPPORTED_SCHEMA_VERSION})"
        )

    # The digest is checked on the parsed body, which is then let go before the model is built from
    # the bytes: the two never coexist (a 10,000-app plan's peak memory is ~100 MB lower). Refusals
    # keep their order: a plan that breaks the schema says so before its digest is judged.
    digest = body.get("digest")
    sealed = isinstance(digest, str) and bool(digest) and _digest_matches(body, digest)
    del body
    plan = _validated(path, raw)
    if not digest:
        raise PlanFileError(f"{path}: the plan is not sealed (no digest)")
    if not sealed:
        raise PlanFileError(f"{path}: digest mismatch: the plan was modified after it was written")
    return plan


def _schema_problem(path: Path, body: dict[str, Any]) -> PlanFileError | None:
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(body))
    if error is None:
        return None
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    where = _location(error.absolute_path)
    return PlanFileError(f"{path}: does not match the plan schema at {where}: {message}")


def _validated(path: Path, raw: bytes) -> Plan:
    """The plan, once it satisfies the JSON Schema.

    The model in strict mode checks it: the schema is generated from that model (every model forbids
    extra fields), and strict mode accepts a subset of what the schema does (no coercions), so what
    passes here satisfies the schema, and nests no deeper than the model. jsonschema (seconds on a
    10,000-app plan) runs only on a document the model refused, for a message that points at the
    offending field; the nesting check before it, because jsonschema recurses.
    """
    try:
        return Plan.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        body = json.loads(raw)  # parsed before (read_plan): only to explain the refusal
        if _deeper_than(body, MAX_PLAN_DEPTH):
            raise PlanFileError(f"{path}: not a plan: nested deeper than {MAX_PLAN_DEPTH} levels") from None
        problem = _schema_problem(path, body)
        if problem is not None:
            raise problem from exc
        first = exc.errors()[0]
        raise PlanFileError(f"{path}: invalid plan at {_location(first['loc'])}: {first['msg']}") from exc
