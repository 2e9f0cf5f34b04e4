"""`data:` in mlops-ci.yaml: typed settings, and errors that name the file and key."""

from __future__ import annotations

import pytest

from mlops_ci.project.data_settings import DataRules
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings import parse_settings


def test_tables_rules_and_their_overrides():
    settings = parse_settings(
        "data:\n"
        "  tables:\n"
        "    - data/a.csv\n"
        "    - {path: data/parts/, target: y, key: id, rules: {max_drift: 0.2}}\n"
        "  sample_rows: 20000\n"
        "  rules: {max_row_drop_pct: 5, max_drift: 0.1}\n"
    )
    first, second = settings.data.tables
    assert (first.path, second.path, second.target, second.key) == (
        "data/a.csv",
        "data/parts",
        "y",
        "id",
    )
    assert settings.data.rules_for(first) == DataRules(max_row_drop_pct=5.0, max_drift=0.1)
    assert settings.data.rules_for(second) == DataRules(max_row_drop_pct=5.0, max_drift=0.2)
    assert settings.data.sample_rows == 20_000 and settings.data.files is True


def test_no_data_section_means_no_tables_and_no_rules():
    data = parse_settings("artifact: m\n").data
    assert data.tables == () and not data.rules.any()
    assert data.auto is True and data.max_auto_bytes == 2 * 1024**3  # changed tables profiled


def test_a_table_says_how_its_header_is_laid_out():
    data = parse_settings(
        "data:\n  auto: false\n  max_auto_bytes: 1000\n  tables:\n"
        "    - {path: a.tsv, header: false, columns: [id, label, text]}\n    - b.csv\n"
    ).data
    first, second = data.tables
    assert (first.header, first.columns) == (False, ("id", "label", "text"))
    assert (second.header, second.columns) == (None, None)
    assert (data.auto, data.max_auto_bytes) == (False, 1000)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("data: [a.csv]", "data must be a mapping"),
        ("data: {tables: [{pth: a.csv}]}", "data.tables.0.pth"),
        ("data: {tables: [{target: y}]}", "data.tables.0.path"),
        ("data: {tables: [/etc/passwd.csv]}", "data.tables.0.path"),
        ("data: {tables: [a.csv, a.csv]}", "declared twice"),
        ("data: {sample_rows: 10}", "data.sample_rows"),
        ("data: {sample_rows: 1.5e4}", "data.sample_rows"),
        ("data: {fdr: 0.9}", "data.fdr"),
        ("data: {files: 'yes'}", "data.files"),
        ("data: {rules: {max_row_drop_pct: -1}}", "data.rules.max_row_drop_pct"),
        ("data: {rules: {max_drift: 1.5}}", "data.rules.max_drift"),
        ("data: {rules: {schema_unchanged: 1}}", "data.rules.schema_unchanged"),
        ("data: {rules: {max_rows_drop_pct: 5}}", "data.rules.max_rows_drop_pct"),
        ("data: {auto: 1}", "data.auto"),
        ("data: {max_auto_bytes: -1}", "data.max_auto_bytes"),
        ("data: {max_auto_bytes: 1.5}", "data.max_auto_bytes"),
        ("data: {tables: [{path: a.tsv, header: 'no'}]}", "data.tables.0.header"),
        ("data: {tables: [{path: a.tsv, columns: [a, a]}]}", "data.tables.0.columns"),
        ("data: {tables: [{path: a.tsv, columns: []}]}", "data.tables.0.columns"),
    ],
)
def test_a_bad_data_setting_names_the_key(text: str, named: str):
    with pytest.raises(ConfigError, match=r"mlops-ci\.yaml") as err:
        parse_settings(text)
    assert named in str(err.value)
