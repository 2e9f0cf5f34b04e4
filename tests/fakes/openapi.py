"""GitHub's published REST description (the extracted subset) as a request/response validator.

The fake GitHub routes nothing that is not in the subset and checks what it receives and what it
sends, so the fake cannot drift from GitHub: a field the library sends wrong, or a field the fake
forgets, fails the test that caused it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

SUBSET_PATH = Path(__file__).resolve().parent.parent / "openapi" / "github-rest-subset.json"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]


@functools.lru_cache(maxsize=1)
def load_subset() -> dict[str, Any]:
    return json.loads(SUBSET_PATH.read_text())


@functools.lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    ops = []
    for template, item in load_subset()["paths"].items():
        # {ref} in git refs spans slashes ("tags/v1"); other parameters are one segment.
        regex = re.sub(
            r"\{(\w+)\}",
            lambda m: f"(?P<{m[1]}>.+)" if m[1] == "ref" else f"(?P<{m[1]}>[^/]+)",
            template,
        )
        for method, spec in item.items():
            ops.append(
                Operation(
                    spec["operationId"], method.upper(), template, re.compile(f"^{regex}$"), spec
                )
            )
    # Literal segments win over parameters: /commits/{sha}/pulls before a looser match.
    ops.sort(key=lambda op: (op.template.count("{"), -len(op.template)))
    return tuple(ops)


def match(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    for op in operations():
        if op.method == method:
            found = op.pattern.match(path)
            if found:
                return op, found.groupdict()
    return None


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    out: Any = load_subset()
    for part in ref[2:].split("/"):
        out = out[part]
    return out


@functools.lru_cache(maxsize=256)
def _cached_validator(schema_json: str, reading: bool):
    # The subset's components travel with every schema so local $refs resolve.
    root = {
        "$ref": "#/x-schema",
        "x-schema": json.loads(schema_json),
        "components": load_subset()["components"],
    }
    cls = OAS30ReadValidator if reading else OAS30WriteValidator
    return cls(root)


def _validator(schema: dict[str, Any], *, reading: bool):
    return _cached_validator(json.dumps(schema, sort_keys=True), reading)


def _errors(schema: dict[str, Any], value: Any, *, reading: bool, where: str) -> list[str]:
    validator = _validator(schema, reading=reading)
    return [
        f"{where}: {'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in validator.iter_errors(value)
    ]


def _coerce(raw: str, schema: dict[str, Any]) -> Any:
    kind = _resolve(schema).get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            return {"true": True, "false": False}[raw]
    except (ValueError, KeyError):
        return raw
    return raw


def validate_request(
    op: Operation, path_params: dict[str, str], query: dict[str, str], body: Any
) -> list[str]:
    """Every problem with a request, as readable lines (empty when it is valid)."""
    problems: list[str] = []
    declared_query = set()
    for raw in op.spec.get("parameters", []):
        param = _resolve(raw)
        name, where, schema = param["name"], param["in"], param.get("schema", {})
        if where == "path":
            value = path_params.get(name)
        elif where == "query":
            declared_query.add(name)
            value = query.get(name)
        else:
            continue
        if value is None:
            if param.get("required"):
                problems.append(f"{where} parameter {name} is required")
            continue
        problems += _errors(schema, _coerce(value, schema), reading=False, where=f"{where} {name}")
    for name in set(query) - declared_query:
        problems.append(f"query parameter {name} is not part of {op.operation_id}")
    request_body = op.spec.get("requestBody")
    if request_body is not None:
        content = _resolve(request_body).get("content", {}).get("application/json")
        if body is None:
            if request_body.get("required"):
                problems.append("a JSON request body is required")
        elif content:
            problems += _errors(content["schema"], body, reading=False, where="body")
    return problems


def response_schema(op: Operation, status: int) -> dict[str, Any] | None:
    response = op.spec.get("responses", {}).get(str(status))
    if response is None:
        return None
    content = _resolve(response).get("content", {}).get("application/json")
    return content.get("schema") if content else None


def validate_response(op: Operation, status: int, body: Any) -> list[str]:
    responses = op.spec.get("responses", {})
    # GitHub answers 401/403/404/429 and 5xx on any endpoint, documented or not.
    if str(status) not in responses and status < 500 and status not in (401, 403, 404, 429):
        return [f"{op.operation_id} does not document status {status}"]
    schema = response_schema(op, status)
    if schema is None:
        # Undocumented error statuses still carry GitHub's error shape.
        schema = {"$ref": "#/components/schemas/basic-error"} if status >= 400 else None
    if schema is None:
        return []
    return _errors(schema, body, reading=True, where=f"response {status}")


# --- minimal valid instances -----------------------------------------------------------------


def synthesize(schema: dict[str, Any], depth: int = 0) -> Any:
    """A small instance that satisfies `schema`: required fields only, first enum value."""
    schema = _resolve(schema)
    if depth > 12:
        return None
    for combinator in ("allOf",):
        if combinator in schema:
            merged: dict[str, Any] = {}
            for part in schema[combinator]:
                value = synthesize(part, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return synthesize(schema[combinator][0], depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {
            name: synthesize(props.get(name, {}), depth + 1) for name in schema.get("required", [])
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "uri":
            return "http://127.0.0.1/"
        return "x"
    if schema.get("nullable"):
        return None
    return None


def synthesize_component(name: str) -> Any:
    return synthesize({"$ref": f"#/components/schemas/{name}"})
