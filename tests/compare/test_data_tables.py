"""Reading declared tables: every format, exact row counts, the uniform sample, directories, and
clear reasons for what cannot be read. Real files in a real git repository, read as the
workspace revision (the way compare reads the candidate)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_ci.compare.snapshot import Project, RevisionFiles
from mlops_ci.compare.tabular import TableAbsent, TableUnreadable, read_table


def _needs_pyarrow() -> None:
    """Parquet needs the `parquet` extra (in the test extra): skipped locally without it, a
    failure in CI (tests/README.md)."""
    if importlib.util.find_spec("pyarrow") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pyarrow is missing: install mlops-ci[test]")
        pytest.skip("Parquet needs pyarrow (pip install 'mlops-ci[parquet]')")


def _reader(root: Path) -> RevisionFiles:
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return RevisionFiles(Project.find(root, root), None)


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"id": np.arange(n), "x": rng.normal(size=n).round(5), "c": rng.choice(["a", "b"], n)}
    )


def test_a_large_csv_is_counted_exactly_and_sampled_uniformly(tmp_path: Path):
    _frame(20_000).to_csv(tmp_path / "t.csv", index=False)
    table = read_table(_reader(tmp_path), "t.csv", sample_rows=1_000)
    assert table.rows == 20_000 and table.sampled
    assert 850 <= len(table.frame) <= 1_150  # a Bernoulli sample of expected size 1,000
    ids = table.frame["id"].to_numpy()
    assert len(set(ids)) == len(ids) and ids.min() < 2_000 and ids.max() > 18_000
    whole = _frame(20_000).set_index("id")
    assert (whole.loc[ids, "x"].to_numpy() == table.frame["x"].to_numpy()).all()


def test_blank_lines_crlf_and_a_missing_final_newline_are_counted_as_pandas_reads(tmp_path: Path):
    (tmp_path / "t.csv").write_bytes(b"a,b\r\n1,2\r\n\r\n3,4\n\n5,6")
    table = read_table(_reader(tmp_path), "t.csv", sample_rows=1_000)
    assert table.rows == 3 == len(pd.read_csv(tmp_path / "t.csv"))
    assert table.frame["a"].tolist() == [1, 3, 5]


def test_quoted_fields_with_line_breaks_are_parsed_whole(tmp_path: Path):
    frame = pd.DataFrame({"text": ["one\nline two", "plain", 'say "hi"'] * 500, "n": range(1500)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = read_table(_reader(tmp_path), "t.csv", sample_rows=1_000)
    assert table.rows == 1_500 and table.sampled
    assert set(table.frame["text"]) <= {"one\nline two", "plain", 'say "hi"'}


@pytest.mark.parametrize("name", ["t.tsv", "t.jsonl", "t.parquet"])
def test_every_format_reads_the_same_table(tmp_path: Path, name: str):
    frame = _frame(500)
    path = tmp_path / name
    if name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    else:
        _needs_pyarrow()
        frame.to_parquet(path)
    table = read_table(_reader(tmp_path), name, sample_rows=1_000)
    assert table.rows == 500 and not table.sampled
    pd.testing.assert_frame_equal(table.frame, frame, check_dtype=False)


def test_a_parquet_file_is_sampled_from_its_footer_count(tmp_path: Path):
    _needs_pyarrow()
    _frame(5_000).to_parquet(tmp_path / "t.parquet")
    table = read_table(_reader(tmp_path), "t.parquet", sample_rows=1_000)
    assert table.rows == 5_000 and table.sampled and 800 <= len(table.frame) <= 1_200


def test_a_directory_is_one_table_of_all_its_files(tmp_path: Path):
    (tmp_path / "parts").mkdir()
    _frame(3_000, 1).to_csv(tmp_path / "parts" / "a.csv", index=False)
    _frame(1_000, 2).to_csv(tmp_path / "parts" / "b.csv", index=False)
    (tmp_path / "parts" / "README.txt").write_text("not a table")
    table = read_table(_reader(tmp_path), "parts", sample_rows=1_000)
    assert (table.rows, table.files) == (4_000, 2)
    assert table.sampled and 800 <= len(table.frame) <= 1_200


def test_what_cannot_be_read_says_why(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.bin").write_bytes(b"\0")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    reader = _reader(tmp_path)
    with pytest.raises(TableAbsent):
        read_table(reader, "missing.csv", sample_rows=1_000)
    with pytest.raises(TableUnreadable, match=r"notes\.txt is not a table"):
        read_table(reader, "notes.txt", sample_rows=1_000)
    with pytest.raises(TableUnreadable, match="holds no CSV"):
        read_table(reader, "empty", sample_rows=1_000)
    with pytest.raises(TableUnreadable, match=r"bad\.jsonl is not a valid table"):
        read_table(reader, "bad.jsonl", sample_rows=1_000)


def test_the_sample_is_drawn_from_a_seed_both_revisions_content_sets(tmp_path: Path):
    from mlops_ci.compare.data import sample_seed

    seed = sample_seed("md5:aaa", "md5:bbb")
    assert seed == sample_seed("md5:aaa", "md5:bbb")  # a rerun tests the same rows
    assert len({seed, sample_seed("md5:aaa", "md5:ccc"), sample_seed("md5:ccc", "md5:bbb")}) == 3
    _frame(20_000).to_csv(tmp_path / "t.csv", index=False)
    reader = _reader(tmp_path)
    ids = [frozenset(read_table(reader, "t.csv", 1_000, seed=s).frame["id"]) for s in (1, 2, 1)]
    assert ids[0] != ids[1] and ids[0] == ids[2] and len(ids[0]) == 1_000


def test_every_row_is_profiled_however_few_are_sampled(tmp_path: Path):
    frame = _frame(20_000)
    frame.loc[frame.index % 3 == 0, "x"] = None
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = read_table(_reader(tmp_path), "t.csv", sample_rows=1_000)
    whole = pd.read_csv(tmp_path / "t.csv")
    assert table.rows == len(whole) and len(table.frame) == 1_000
    assert {c: col.missing for c, col in table.columns.items()} == whole.isna().sum().to_dict()
    assert dict(table.columns["c"].counts or {}) == whole["c"].value_counts().to_dict()
