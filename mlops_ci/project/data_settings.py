"""The `data:` section of `mlops-ci.yaml`: the tables the pipeline declares and the data rules.

    data:
      tables:
        - {path: data/train.csv, target: label, key: id}
      sample_rows: 50000
      rules: {max_row_drop_pct: 5, schema_unchanged: true, max_drift: 0.1}

The keys, defaults and ranges are those of the JSON Schema (`$defs/data`, `data_table`,
`data_rules`); `settings` reads the section with the rest of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings_schema import FROM_SCHEMA, schema_section

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")


@dataclass(frozen=True)
@schema_section("data_rules")
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
@schema_section("data_table")
class TableSettings:
    path: str  # a file or a directory of files, relative to the DVC project root
    target: str | None = None  # the label column: its class balance is reported
    key: str | None = None  # an id column: never tested for drift
    rules: DataRules = field(default_factory=DataRules)
    header: bool | None = None  # CSV/TSV: whether the first line names the columns (None: infer)
    columns: tuple[str, ...] | None = None  # CSV/TSV: the column names (no header line)
    auto: bool = False  # profiled because DVC tracks it and its hash changed, not declared


@dataclass(frozen=True)
@schema_section("data")
class DataSettings:
    tables: tuple[TableSettings, ...] = ()
    # Rows read per revision of one table; the rest is sampled (the report states the size).
    # 50k rows a side let a KS test see a shift of 0.03 sd.
    sample_rows: int = FROM_SCHEMA
    # Benjamini-Hochberg false discovery rate across every column test of a comparison. Kept
    # low: with many columns a reviewer should see real shifts, not one false alarm in twenty.
    fdr: float = FROM_SCHEMA
    files: bool = FROM_SCHEMA  # the table of DVC-tracked files that changed
    rules: DataRules = field(default_factory=DataRules)
    auto: bool = FROM_SCHEMA  # profile every changed DVC-tracked table, declared or not
    # Bytes of undeclared tables profiled per side: a change to a data lake is not profiled
    # whole on every pull request (the report names what was left out).
    max_auto_bytes: int = FROM_SCHEMA

    def rules_for(self, table: TableSettings) -> DataRules:
        return table.rules.over(self.rules)

    def checked(self, source: str) -> DataSettings:
        """These settings with each table path inside the project, declared once and without
        a trailing slash."""
        tables: list[TableSettings] = []
        for i, table in enumerate(self.tables):
            where, path = f"{source}: data.tables.{i}.path", table.path
            if path.startswith("/") or path == ".." or path.startswith("../") or "/../" in path:
                raise ConfigError(f"{where} must be relative to the project: {path!r}")
            if any(t.path == path.rstrip("/") for t in tables):
                raise ConfigError(f"{where} {path!r} is declared twice")
            tables.append(replace(table, path=path.rstrip("/")))
        return replace(self, tables=tuple(tables))
