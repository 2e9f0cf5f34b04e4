"""YAML 1.2 as DVC reads params and metrics files, without loading ruamel for the plain ones.

DVC parses YAML params and metrics files with ruamel.yaml, which speaks YAML 1.2 (`1e-3` is a
number, `yes` a string). Importing ruamel costs about 20 ms, more than the rest of reading a
params file. Most params files are plain mappings of numbers, words and booleans: those are
composed here by PyYAML's C parser (already loaded for `dvc.yaml`) and their plain scalars
resolved by YAML 1.2's core schema, which is what ruamel answers for them. Anything outside
that subset (tags, anchors and aliases, merge keys, directives, escapes, tabs, dates, hex,
octal or underscores in numbers, duplicate or complex keys, a parse error) is left to ruamel:
`load` then says it is not sure. `tests/project/test_yaml12.py` holds the two to the same
answers on generated documents.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

# Characters that may start something the core schema subset does not cover: tags (!),
# anchors and aliases (& *), merge keys (<<), directives (%), escapes (\), tabs.
_UNSURE_MARKS = ("!", "&", "*", "<<", "%", "\\", "\t")
_INT = re.compile(r"[-+]?[0-9]+")
# ruamel's floats: a leading-dot form (`.5e+2`) needs a signed exponent (`.5e2` is a string).
_FLOAT = re.compile(
    r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
    r"|[-+]?\.[0-9]+(?:[eE][-+][0-9]+)?"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*(?: [A-Za-z0-9_./-]+)*")
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INF = frozenset({".inf", ".Inf", ".INF"})
_NAN = frozenset({".nan", ".NaN", ".NAN"})
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Unsure(Exception):
    """The document leaves the subset: ruamel decides."""


def load(text: str) -> tuple[bool, Any]:
    """(True, data) for a document in the subset, as ruamel's safe loader gives it; (False,
    None) when ruamel must decide."""
    if any(mark in text for mark in _UNSURE_MARKS):
        return False, None
    try:
        node = yaml.compose(text, Loader=_LOADER)
        return True, _construct(node)
    except (_Unsure, yaml.YAMLError, ValueError):
        return False, None


def _construct(node: yaml.Node | None) -> Any:
    if node is None:  # an empty document
        return None
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.style else _scalar(node.value)  # style "" or None: plain
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Unsure  # a complex key
            key = _construct(key_node)
            if (isinstance(key, float) and math.isnan(key)) or key in out:
                raise _Unsure  # ruamel refuses duplicate keys
            out[key] = _construct(value_node)
        return out
    raise _Unsure


def _scalar(value: str) -> Any:
    """A plain scalar by YAML 1.2's core schema, or _Unsure outside the subset."""
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.fullmatch(value):
        return int(value)  # ValueError past Python's digit limit: ruamel decides
    if _FLOAT.fullmatch(value):
        return float(value)
    if value in _INF or (value[:1] in "+-" and value[1:] in _INF):
        return -math.inf if value[0] == "-" else math.inf
    if value in _NAN:
        return math.nan
    if _WORD.fullmatch(value):
        return value
    raise _Unsure
