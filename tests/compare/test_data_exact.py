"""The numbers data rules decide on equal pandas' on the whole file, for generated tables and
random edits: rows dropped, cells blanked, a number turned text, blank and whitespace-only
lines added, line breaks inside quoted fields, and a file of its header alone. The table is read
in small chunks so every edit lands across chunk borders, where dtypes and counts are merged.

Rule outcomes are compared too: `max_row_drop_pct`, `max_missing_rate` and `schema_unchanged`
judged by the gate on the comparison's numbers, and on pandas' own.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_ci.compare.drift import column_rows
from mlops_ci.compare.tabular import TableFile, build_table

EDITS = ("drop", "blank", "text", "blank_lines", "quoted_newlines")


def generated(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "id": np.arange(n),
        "x": rng.normal(size=n).round(4),
        "k": rng.integers(0, 50, size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "flag": rng.choice([True, False], size=n),
    })  # fmt: skip


def edited(frame: pd.DataFrame, edits: list[str], rng: np.random.Generator) -> bytes:
    frame = frame.copy()
    n = len(frame)
    if "drop" in edits:
        frame = frame.drop(index=rng.choice(n, size=n // 3, replace=False)).reset_index(drop=True)
    if "blank" in edits:
        for col in ("x", "k", "colour", "flag"):
            frame[col] = frame[col].astype(object)
            frame.loc[rng.random(len(frame)) < 0.2, col] = None
    if "text" in edits:
        frame["k"] = frame["k"].astype(object)
        frame.loc[rng.random(len(frame)) < 0.1, "k"] = "n/a-value"
    if "quoted_newlines" in edits:
        frame["colour"] = frame["colour"].astype(object)
        frame.loc[rng.random(len(frame)) < 0.2, "colour"] = "dark\nred"
    lines = frame.to_csv(index=False).splitlines(keepends=True)
    if "blank_lines" in edits:
        for at in sorted(rng.choice(len(lines), size=max(len(lines) // 5, 1)), reverse=True):
            if at > 0 and lines[at - 1].count('"') % 2 == 0:  # not inside a quoted field
                lines.insert(at, str(rng.choice(["\n", " \n", "\t \n"])))
    return "".join(lines).encode()


def ours(data: bytes, tmp_path: Path, name: str) -> tuple:
    path = tmp_path / name
    path.write_bytes(data)
    table = build_table(name, [TableFile(name, path=path)], 1000, seed=1, chunk_rows=7)
    return table, {
        "rows": table.rows,
        "missing": {c: col.missing for c, col in table.columns.items()},
        "dtypes": {c: col.dtype() for c, col in table.columns.items()},
        "categories": {
            c: set(col.counts) for c, col in table.columns.items() if col.counts is not None
        },
    }


def pandas_whole(data: bytes) -> dict:
    frame = pd.read_csv(io.BytesIO(data), low_memory=False)
    text = [c for c in frame.columns if str(frame[c].dtype) in ("object", "str")]
    return {
        "rows": len(frame),
        "missing": {str(c): int(v) for c, v in frame.isna().sum().items()},
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "categories": {str(c): set(frame[c].dropna().astype(str)) for c in text},
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    edits=st.lists(st.sampled_from(EDITS), unique=True),
)
def test_rows_missing_dtypes_and_categories_equal_pandas_on_the_whole_file(
    tmp_path: Path, seed: int, n: int, edits: list[str]
):
    rng = np.random.default_rng(seed)
    base = generated(rng, n)
    data = edited(base, edits, rng)
    _, got = ours(data, tmp_path, "t.csv")
    want = pandas_whole(data)
    assert got["rows"] == want["rows"]
    assert got["missing"] == want["missing"]
    assert got["dtypes"] == want["dtypes"]
    for column, categories in want["categories"].items():
        if column in got["categories"]:
            assert got["categories"][column] == categories


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), edits=st.lists(st.sampled_from(EDITS), unique=True))
def test_rule_outcomes_equal_those_on_pandas_numbers(tmp_path: Path, seed: int, edits: list[str]):
    from mlops_ci.gate.data_rules import judge_data
    from mlops_ci.project.settings import parse_settings

    rng = np.random.default_rng(seed)
    frame = generated(rng, 40)
    old_bytes, new_bytes = frame.to_csv(index=False).encode(), edited(frame, edits, rng)
    old, _ = ours(old_bytes, tmp_path, "old.csv")
    new, _ = ours(new_bytes, tmp_path, "new.csv")
    columns = column_rows(old, new, "id")
    entry = {"path": "t.csv", "status": "changed", "columns": columns,
             "baseline": {"rows": old.rows}, "candidate": {"rows": new.rows}}  # fmt: skip
    comparison = {"baseline": {"sha": "0" * 40}, "data": {"tables": [entry]}}
    policy = parse_settings(
        "artifact: model\ndata:\n  tables: [t.csv]\n  rules: {max_row_drop_pct: 10, "
        "max_missing_rate: 0.1, schema_unchanged: true}\n"
    )
    outcomes = {r.rule: r.outcome for r in judge_data(comparison, policy)}
    a, b = pd.read_csv(io.BytesIO(old_bytes)), pd.read_csv(io.BytesIO(new_bytes))
    want = {
        "max_row_drop_pct": "fail" if 100 * (len(a) - len(b)) / len(a) > 10 else "pass",
        "max_missing_rate": "fail" if (b.isna().sum() / len(b)).max() > 0.1 else "pass",
        "schema_unchanged": "pass" if a.dtypes.astype(str).equals(b.dtypes.astype(str)) else "fail",
    }
    assert outcomes == want


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 400),
    size=st.integers(1, 60),
    chunk_rows=st.one_of(st.none(), st.integers(1, 90)),
)
def test_the_sample_is_the_rows_with_the_smallest_keys_however_the_file_is_chunked(
    tmp_path: Path, seed: int, n: int, size: int, chunk_rows: int | None
):
    """A bottom-k sample: each row draws a key from the seeded generator, in file order, and
    the `size` rows with the smallest keys are kept, in file order; chunks change nothing."""
    rng = np.random.default_rng(seed)
    path = tmp_path / "t.csv"
    generated(rng, n).to_csv(path, index=False)
    table = build_table("t.csv", [TableFile("t.csv", path=path)], size, seed=seed,
                        chunk_rows=chunk_rows)  # fmt: skip
    keys = np.random.default_rng(seed).random(n)
    assert table.frame["id"].tolist() == sorted(np.argsort(keys)[:size].tolist())
    whole = pd.read_csv(path)
    pd.testing.assert_frame_equal(
        table.frame, whole.iloc[table.frame["id"]].reset_index(drop=True), check_dtype=False
    )
