"""A fast yes/no check of a document against one of the package's JSON Schemas.

Importing `jsonschema` costs about 0.15 s of CPU (attrs, referencing, rpds), more than the rest
of `compare` reads and parses; settings are loaded by nearly every command. This checks the
keywords the package's schemas use, in plain Python, and answers only "conforms" or "cannot
say": anything else (a violation, an unknown keyword, a remote `$ref`) goes to `jsonschema`,
which words the error. tests/project/test_schema_check.py holds it to jsonschema's answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

# Keywords that never change whether a document conforms.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


class _Unsure(Exception):
    """A keyword or reference this checker does not judge: let jsonschema decide."""


def conforms(instance: Any, schema: Mapping[str, Any]) -> bool:
    """True only when `instance` certainly conforms to `schema`; False means "ask jsonschema"
    (it may or may not conform)."""
    try:
        return _check(instance, schema, schema)
    except _Unsure:
        return False


def _check(value: Any, node: Any, root: Mapping[str, Any]) -> bool:
    if node is True or node == {}:
        return True
    if node is False or not isinstance(node, Mapping):
        raise _Unsure
    for keyword, arg in node.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            raise _Unsure
        if not check(value, arg, node, root):
            return False
    return True


def _type(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    names = [arg] if isinstance(arg, str) else arg
    return any(_TYPES[name](value) for name in names)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, and 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    numbers = _TYPES["number"](a) and _TYPES["number"](b)
    return bool((type(a) is type(b) or numbers) and a == b)


def _enum(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    return any(_same(value, option) for option in arg)


def _properties(value: Any, arg: Any, _node: Any, root: Any) -> bool:
    if not isinstance(value, dict):
        return True
    return all(_check(value[k], sub, root) for k, sub in arg.items() if k in value)


def _additional(value: Any, arg: Any, node: Any, root: Any) -> bool:
    if not isinstance(value, dict):
        return True
    if "patternProperties" in node:
        raise _Unsure
    known = node.get("properties", {})
    return all(_check(v, arg, root) for k, v in value.items() if k not in known)


def _required(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    return not isinstance(value, dict) or all(k in value for k in arg)


def _number_bound(test: Any) -> Any:
    def check(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
        return not _TYPES["number"](value) or test(value, arg)

    return check


def _min_length(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    return not isinstance(value, str) or len(value) >= arg


@cache
def _pattern_of(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _pattern(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    return not isinstance(value, str) or _pattern_of(arg).search(value) is not None


def _any_of(value: Any, arg: Any, _node: Any, root: Any) -> bool:
    return any(_check(value, sub, root) for sub in arg)


def _items(value: Any, arg: Any, _node: Any, root: Any) -> bool:
    if not isinstance(arg, Mapping):
        raise _Unsure  # the tuple form of older drafts
    return not isinstance(value, list) or all(_check(v, arg, root) for v in value)


def _min_items(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    return not isinstance(value, list) or len(value) >= arg


def _min_properties(value: Any, arg: Any, _node: Any, _root: Any) -> bool:
    return not isinstance(value, dict) or len(value) >= arg


def _property_names(value: Any, arg: Any, _node: Any, root: Any) -> bool:
    return not isinstance(value, dict) or all(_check(k, arg, root) for k in value)


def _ref(value: Any, arg: Any, _node: Any, root: Any) -> bool:
    base = str(root.get("$id", ""))
    ref = arg[len(base) :] if base and arg.startswith(base + "#") else arg
    if not ref.startswith("#/"):
        raise _Unsure
    target: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or part not in target:
            raise _Unsure
        target = target[part]
    return _check(value, target, root)


_KEYWORDS = {
    "type": _type,
    "enum": _enum,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "minimum": _number_bound(lambda v, a: v >= a),
    "maximum": _number_bound(lambda v, a: v <= a),
    "exclusiveMinimum": _number_bound(lambda v, a: v > a),
    "exclusiveMaximum": _number_bound(lambda v, a: v < a),
    "minLength": _min_length,
    "pattern": _pattern,
    "anyOf": _any_of,
    "items": _items,
    "minItems": _min_items,
    "minProperties": _min_properties,
    "propertyNames": _property_names,
    "$ref": _ref,
}
