"""The `data:` section of `mlops-ci.yaml`: the tables the pipeline declares and the data rules.

    data:
      tables:
        - {path: data/train.csv, target: label, key: id}
      sample_rows: 50000
      rules: {max_row_drop_pct: 5, schema_unchanged: true, max_drift: 0.1}

Kept apart from `settings` so that module stays one reader of the whole file; the JSON Schema
(`project/schemas/mlops-ci.schema.json`, `$defs/data`) holds the same keys and ranges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mlops_ci.project.errors import ConfigError

# Rows read per revision of one table; the rest is sampled (the report states the size).
DEFAULT_SAMPLE_ROWS = 50_000  # a KS test on 50k rows a side sees a shift of 0.03 sd
# Benjamini-Hochberg false discovery rate across every column test of a comparison. Kept low:
# with many columns a reviewer should see real shifts, not one false alarm in twenty runs.
DEFAULT_FDR = 0.01
# Bytes of undeclared tables profiled per revision: a change to a data lake is not profiled
# whole on every pull request (the report names what was left out).
DEFAULT_MAX_AUTO_BYTES = 2 * 1024**3
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class DataRules:
    """Thresholds the gate applies to each declared table (None: not gated)."""

    max_row_drop_pct: float | None = None  # rows may drop at most this percent
    schema_unchanged: bool | None = None  # no column added, removed or retyped
    max_drift: float | None = None  # no significant shift with an effect size above this
    max_missing_rate: float | None = None  # no column's missing rate above this (0 to 1)

    def any(self) -> bool:
        return any(getattr(self, f.name) not in (None, False) for f in fields(self))

    def over(self, defaults: DataRules) -> DataRules:
        """These rules, each unset one taken from `defaults`."""
        return DataRules(
            **{
                f.name: getattr(defaults, f.name)
                if getattr(self, f.name) is None
                else getattr(self, f.name)
                for f in fields(self)
            }
        )


@dataclass(frozen=True)
class TableSettings:
    path: str  # a file or a directory of files, relative to the DVC project root
    target: str | None = None  # the label column: its class balance is reported
    key: str | None = None  # an id column: never tested for drift
    rules: DataRules = field(default_factory=DataRules)
    header: bool | None = None  # CSV/TSV: whether the first line names the columns (None: infer)
    columns: tuple[str, ...] | None = None  # CSV/TSV: the column names (no header line)
    auto: bool = False  # profiled because DVC tracks it and its hash changed, not declared


@dataclass(frozen=True)
class DataSettings:
    tables: tuple[TableSettings, ...] = ()
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    fdr: float = DEFAULT_FDR
    files: bool = True  # the table of DVC-tracked files that changed
    rules: DataRules = field(default_factory=DataRules)
    auto: bool = True  # profile every changed DVC-tracked table, declared or not
    max_auto_bytes: int = DEFAULT_MAX_AUTO_BYTES  # per side, over the tables profiled that way

    def rules_for(self, table: TableSettings) -> DataRules:
        return table.rules.over(self.rules)


_RULE_KEYS = {f.name for f in fields(DataRules)}
_TABLE_KEYS = {"path", "target", "key", "rules", "header", "columns"}
_DATA_KEYS = {"tables", "sample_rows", "fdr", "files", "rules", "auto", "max_auto_bytes"}


def _unknown(source: str, where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(str(k) for k in data if k not in allowed)
    if extra:
        raise ConfigError(
            f"{source}: unknown key '{where}.{extra[0]}'; allowed here: {', '.join(sorted(allowed))}"
        )


def _number(source: str, where: str, value: Any, low: float, high: float | None) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"{source}: {where} must be a number {bound}, not {value!r}")
    return float(value)


def _text(source: str, where: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() and "\n" not in value:
        return value
    raise ConfigError(f"{source}: {where} must be a non-empty one-line string, not {value!r}")


def parse_rules(source: str, where: str, data: Any) -> DataRules:
    if data is None:
        return DataRules()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping of data rules, not {data!r}")
    _unknown(source, where, data, _RULE_KEYS)
    schema = data.get("schema_unchanged")
    if schema is not None and not isinstance(schema, bool):
        raise ConfigError(f"{source}: {where}.schema_unchanged must be true or false")

    def num(key: str, high: float | None) -> float | None:
        value = data.get(key)
        return None if value is None else _number(source, f"{where}.{key}", value, 0, high)

    return DataRules(
        max_row_drop_pct=num("max_row_drop_pct", 100),
        schema_unchanged=schema,
        max_drift=num("max_drift", 1),
        max_missing_rate=num("max_missing_rate", 1),
    )


def parse_data(source: str, data: Any) -> DataSettings:
    """`data:` as typed settings; ConfigError naming the file and key otherwise."""
    if data is None:
        return DataSettings()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: data must be a mapping (tables, rules, ...), not {data!r}")
    _unknown(source, "data", data, _DATA_KEYS)
    raw_tables = data.get("tables") or []
    if not isinstance(raw_tables, list):
        raise ConfigError(f"{source}: data.tables must be a list of tables, not {raw_tables!r}")
    tables: list[TableSettings] = []
    for i, item in enumerate(raw_tables):
        where = f"data.tables.{i}"
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, Mapping):
            raise ConfigError(f"{source}: {where} must be a path or a mapping with `path`")
        _unknown(source, where, item, _TABLE_KEYS)
        path = _text(source, f"{where}.path", item.get("path"))
        if path is None:
            raise ConfigError(f"{source}: {where}.path is required (a file or directory)")
        if path.startswith("/") or path == ".." or path.startswith("../") or "/../" in path:
            raise ConfigError(f"{source}: {where}.path must be relative to the project: {path!r}")
        if any(t.path == path.rstrip("/") for t in tables):
            raise ConfigError(f"{source}: {where}.path {path!r} is declared twice")
        tables.append(
            TableSettings(
                path=path.rstrip("/"),
                target=_text(source, f"{where}.target", item.get("target")),
                key=_text(source, f"{where}.key", item.get("key")),
                rules=parse_rules(source, f"{where}.rules", item.get("rules")),
                header=_flag(source, f"{where}.header", item.get("header")),
                columns=_names(source, f"{where}.columns", item.get("columns")),
            )
        )
    sample = data.get("sample_rows", DEFAULT_SAMPLE_ROWS)
    if isinstance(sample, bool) or not isinstance(sample, int):
        raise ConfigError(f"{source}: data.sample_rows must be a whole number, not {sample!r}")
    files = _flag(source, "data.files", data.get("files", True))
    auto = _flag(source, "data.auto", data.get("auto", True))
    budget = data.get("max_auto_bytes", DEFAULT_MAX_AUTO_BYTES)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ConfigError(
            f"{source}: data.max_auto_bytes must be a whole number of bytes, not {budget!r}"
        )
    return DataSettings(
        tables=tuple(tables),
        sample_rows=int(_number(source, "data.sample_rows", sample, 1000, 10_000_000)),
        fdr=_number(source, "data.fdr", data.get("fdr", DEFAULT_FDR), 0.0001, 0.5),
        files=bool(files),
        rules=parse_rules(source, "data.rules", data.get("rules")),
        auto=bool(auto),
        max_auto_bytes=budget,
    )


def _flag(source: str, where: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{source}: {where} must be true or false, not {value!r}")


def _names(source: str, where: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
    if not ok or len(set(value)) != len(value):
        raise ConfigError(f"{source}: {where} must be a list of distinct column names")
    return tuple(value)
