"""The JSON Schema of `mlops-ci.yaml` and the one reader it drives.

The schema holds every key, default, choice and range. `jsonschema` checks a file against it
(each problem worded with file, key, what was expected and a "did you mean"); `read` then turns
the checked mapping into the settings dataclasses, whose defaults `schema_section` takes from the
schema. A new key is a schema property and a dataclass field, nothing more.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from functools import cache
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

SCHEMA_FILE = "mlops-ci.schema.json"
# Package data beside the modules (pyproject's "**/*.json" glob); read from the file system, not
# through importlib.resources, whose import costs more than the read.
SCHEMAS = Path(__file__).parent / "schemas"
# A field written `= FROM_SCHEMA` takes its default from the schema's `default`.
FROM_SCHEMA: Any = object()
# Each settings dataclass and the schema section it reads (`$defs/<name>`; None: the whole file).
SECTIONS: dict[type, str | None] = {}

T = TypeVar("T")


@cache
def settings_schema() -> dict[str, Any]:
    """The JSON Schema of `mlops-ci.yaml`, shipped in the package (project/schemas/)."""
    return json.loads(SCHEMAS.joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def section(name: str | None) -> dict[str, Any]:
    """The schema of one section (`$defs/<name>`), or of the whole file for None."""
    schema = settings_schema()
    return schema if name is None else schema["$defs"][name]


def schema_section(name: str | None) -> Callable[[type[T]], type[T]]:
    """Register a class (put under `@dataclass`) as the reading of section `name`, and give
    each field written `= FROM_SCHEMA` the schema's default (a list as a tuple)."""

    def register(cls: type[T]) -> type[T]:
        properties = section(name)["properties"]
        for key, value in list(vars(cls).items()):
            if value is FROM_SCHEMA:
                default = properties[key]["default"]
                setattr(cls, key, tuple(default) if isinstance(default, list) else default)
        SECTIONS[cls] = name
        return cls

    return register


def read(cls: type[T], data: Any) -> T:
    """`cls` from a value the schema accepted: each field from its key, the field's default
    when the key is absent, or null where the field cannot be None. A value that is not a
    mapping is the short form of the first field (`slices: [a, b]`, a table given as a path)."""
    if data is None:
        data = {}
    elif not isinstance(data, Mapping):
        data = {fields(cls)[0].name: data}  # type: ignore[arg-type]
    hints = _hints(cls)
    return cls(
        **{
            key: _value(hints[key], value)
            for key, value in data.items()
            if value is not None or _optional(hints[key])
        }
    )


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, UnionType) and NoneType in get_args(hint)


def _value(hint: Any, value: Any) -> Any:
    if _optional(hint):
        hint = next(a for a in get_args(hint) if a is not NoneType)
        if value is None:
            return None
    if is_dataclass(hint):
        return read(hint, value)  # type: ignore[arg-type]
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        return tuple(_value(args[0], v) for v in value)
    if origin is Mapping:
        return {str(k): _value(args[1], v) for k, v in value.items()}
    return hint(value) if hint in (int, float) else value


# --- checking a file against the schema ------------------------------------------------------


def _finite_number(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond a float's range (10**400)
        return False


@cache
def _validator() -> Any:
    """Draft 2020-12, where a number must also be finite (YAML reads `.nan` and `.inf`)."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number)
    return validators.extend(Draft202012Validator, type_checker=checker)(settings_schema())


def schema_problems(data: Any, source: str) -> list[str]:
    """Every way `data` (parsed `mlops-ci.yaml`) breaks the schema, each naming file and key;
    an unknown key first where it explains a missing one."""
    errors = sorted(
        _leaves(_validator().iter_errors(data)),
        key=lambda e: ([str(p) for p in e.absolute_path], e.validator != "additionalProperties"),
    )
    return list(dict.fromkeys(m for e in errors for m in _messages(e, data, source)))


def _leaves(errors: Any) -> Iterator[Any]:
    """The errors to report: for an `anyOf`, those of the branch the value's type fits."""
    for error in errors:
        if error.validator != "anyOf" or not error.context:
            yield error
            continue
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [
            subs
            for subs in branches.values()
            if not any(s.validator == "type" and not s.relative_path for s in subs)
        ]
        yield from _leaves(fitting[0]) if fitting else [error]


_WORDS = {
    "object": ("a mapping", "mappings"),
    "array": ("a list", "lists"),
    "string": ("a string", "strings"),
    "number": ("a number", "numbers"),
    "integer": ("a whole number", "whole numbers"),
    "boolean": ("true or false", "true or false values"),
}


def _types(value: str | list[str], plural: bool = False) -> str:
    types = [value] if isinstance(value, str) else value
    return " or ".join(_WORDS[t][plural] for t in types if t != "null")


def _messages(error: Any, data: Any, source: str) -> list[str]:
    path = list(error.absolute_path)
    key = ".".join(map(str, path))
    schema, kind, value = error.schema, error.validator, error.instance
    if kind == "additionalProperties" and isinstance(value, Mapping):
        allowed = sorted(schema.get("properties", {}))
        return [_unknown(source, key, str(k), allowed) for k in value if k not in allowed]
    if "propertyNames" in error.relative_schema_path:
        return [f"{source}: {key} keys must be {schema['description']}, not {value!r}"]
    if kind == "anyOf":  # no branch fits the value's type
        types = [_types(s.validator_value) for s in error.context if s.validator == "type"]
        expected = " or ".join(dict.fromkeys(t for t in types if t))
    elif kind == "type" and path and isinstance(path[-1], int):  # name the list, not the item
        key = ".".join(map(str, path[:-1]))
        expected = "a list of " + _types(error.validator_value, plural=True)
        for part in path[:-1]:
            data = data[part]
        value = data
    elif kind == "type":
        expected = _types(error.validator_value)
    elif kind == "required":
        missing = next(k for k in error.validator_value if k not in value)
        return [f"{source}: {key}.{missing} is required"]
    elif kind == "enum":
        expected = "one of " + ", ".join(str(v) for v in error.validator_value if v is not None)
    elif kind in ("minimum", "maximum"):
        expected = f"at {'least' if kind == 'minimum' else 'most'} {error.validator_value}"
    elif kind in ("minItems", "minProperties"):
        expected = "a non-empty " + ("list" if kind == "minItems" else "mapping")
    elif kind == "maxItems":
        expected = f"a list of at most {error.validator_value} items"
    elif kind == "maxLength":
        expected = f"at most {error.validator_value} characters"
    elif kind == "uniqueItems":
        expected = "a list without repeats"
    elif kind in ("pattern", "minLength"):
        expected = schema.get("description") or "a non-empty string"
    else:
        expected = f"valid ({error.message[:200]})"
    text = repr(value)
    text = text if len(text) <= 100 else text[:97] + "..."
    return [f"{source}: {key or 'the file'} must be {expected}, not {text}"]


def _unknown(source: str, where: str, key: str, allowed: list[str]) -> str:
    path = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{source}: unknown key {path!r}{hint}; allowed here: {', '.join(allowed)}"


def without_schema_errors(data: Any) -> Any:
    """A copy of `data` without the keys that break the schema, so the checks that read the
    rest still run (`validate` lists every problem, not the first)."""
    cleaned = copy.deepcopy(data)
    for error in _validator().iter_errors(data):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = set(error.schema.get("properties", {}))
            paths = [[*path, k] for k in error.instance if k not in allowed]
        else:
            paths = [path]
        for bad in paths:
            parent = cleaned
            for part in bad[:-1]:
                parent = parent[part] if isinstance(parent, dict | list) else None
            if bad and isinstance(parent, dict):
                parent.pop(bad[-1], None)
    return cleaned
