"""The JSON Schema is the one truth of `mlops-ci.yaml`: the settings dataclasses take their
defaults from it, and every key it allows reaches a field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, get_args, get_origin, get_type_hints

import pytest
import yaml

from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings import Settings, parse_settings
from mlops_ci.project.settings_schema import SECTIONS, section, settings_schema

# Fields that no key of the file sets: derived from other keys or from where the file was read.
NOT_IN_FILE = {("Settings", "default_rule"), ("Settings", "source"), ("TableSettings", "auto")}


def default_of(cls: type, name: str) -> Any:
    (found,) = [f for f in fields(cls) if f.name == name]
    if found.default is MISSING and found.default_factory is not MISSING:
        return found.default_factory()
    return found.default  # MISSING for a required field


def test_every_default_is_the_schema_default() -> None:
    for cls, name in SECTIONS.items():
        for key, prop in section(name)["properties"].items():
            default = default_of(cls, key)
            if "default" in prop:
                expected = prop["default"]
                assert default == (tuple(expected) if isinstance(expected, list) else expected)
            else:  # no default in the schema: the field is required, unset, empty or a section
                assert default in (MISSING, None, (), {}, False) or is_dataclass(default), key


def test_each_section_of_the_schema_is_a_dataclass_with_a_field_per_key() -> None:
    objects = {n for n, d in settings_schema()["$defs"].items() if "properties" in d}
    assert objects | {None} == set(SECTIONS.values())
    for cls, name in SECTIONS.items():
        keys = set(section(name)["properties"])
        names = {f.name for f in fields(cls)}
        assert keys <= names, (cls, keys - names)
        assert {(cls.__name__, n) for n in names - keys} <= NOT_IN_FILE


def sample(schema: dict[str, Any]) -> Any:
    """A valid value of `schema` other than its default."""
    if "$ref" in schema:
        schema = {**section(schema["$ref"].rsplit("/", 1)[1]), **schema, "$ref": None}
    if "anyOf" in schema:
        return sample(schema["anyOf"][0])
    if "enum" in schema:
        return next(v for v in schema["enum"] if v not in (None, schema.get("default")))
    kind = schema["type"] if isinstance(schema["type"], str) else schema["type"][0]
    if kind == "boolean":
        return not schema.get("default", False)
    if kind in ("number", "integer"):
        return schema.get("maximum", schema.get("minimum", 0) + 1)
    if kind == "array":
        return [sample(schema["items"])]
    if kind == "object":
        return {"value": sample(schema["additionalProperties"])}
    return next(v for v in ("value", "value.dvc") if re.search(schema.get("pattern", ""), v))


def document(cls: type) -> dict[str, Any]:
    """Every key of `cls`'s section set to a value other than its default."""
    hints = get_type_hints(cls)
    doc: dict[str, Any] = {}
    for key, prop in section(SECTIONS[cls])["properties"].items():
        hint, args = hints[key], get_args(hints[key])
        if get_origin(hint) is tuple and is_dataclass(args[0]):
            doc[key] = [document(args[0])]  # type: ignore[arg-type]
        elif get_origin(hint) is Mapping and is_dataclass(args[1]):
            doc[key] = {"m": document(args[1])}  # type: ignore[arg-type]
        elif is_dataclass(hint):
            doc[key] = document(hint)  # type: ignore[arg-type]
        else:
            doc[key] = sample(prop)
    return doc


def unread(doc: dict[str, Any], obj: Any, where: str = "") -> list[str]:
    """The keys of `doc` whose value did not reach `obj` (it still has the field's default)."""
    missed = []
    for key, value in doc.items():
        got = getattr(obj, key)
        if is_dataclass(got):
            missed += unread(value, got, f"{where}{key}.")
        elif isinstance(got, tuple) and got and is_dataclass(got[0]):
            missed += unread(value[0], got[0], f"{where}{key}.0.")
        elif isinstance(got, Mapping) and got and is_dataclass(next(iter(got.values()))):
            missed += unread(value["m"], got["m"], f"{where}{key}.m.")
        elif got == default_of(type(obj), key):
            missed.append(f"{where}{key}")
    return missed


def test_every_key_the_schema_allows_is_read() -> None:
    doc = document(Settings)
    settings = parse_settings(yaml.safe_dump(doc))
    assert unread(doc, settings) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("on_inconclusiv: pass", "unknown key 'on_inconclusiv' (did you mean 'on_inconclusive'?); allowed here: artifact,"),
        ("promote: {bmp: major}", "unknown key 'promote.bmp' (did you mean 'bump'?); allowed here: auto, bump, stages"),
        ("metrics: {acc: {min: .nan}}", "metrics.acc.min must be a number, not nan"),
        ("confidence: .inf", "confidence must be a number, not inf"),
        ("metrics: {1: {min: 0}}", "metrics keys must be metric names, not 1"),
        ("slices: 5", "slices must be a list or a mapping, not 5"),
        ("promote: {stages: [a, 1]}", "promote.stages must be a list of strings, not ['a', 1]"),
        ("promote: {stages: [a], auto: b}", "promote.auto must be one of promote.stages (a), not 'b'"),
        ("retrain: {sources: [../up.csv.dvc]}", "retrain.sources.0 must be a .dvc file inside the project"),
        ("data: {tables: [{path: a.csv, key: \"a\\nb\"}]}", "data.tables.0.key must be a non-empty one-line string"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_named_with_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(text)
    assert str(err.value).startswith(f"mlops-ci.yaml: {message}")


def test_null_is_the_default_unless_the_field_may_be_unset() -> None:
    settings = parse_settings("artifact: null\nconfidence: null\npromote: {auto: null}\n")
    assert (settings.artifact, settings.confidence) == ("model", 0.95)
    assert settings.promote.auto is None  # no stage on merge
