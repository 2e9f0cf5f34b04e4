"""Data rules tried the way a careless user or an attacker would: damage hidden from a sample
whose rows can be computed in advance, rows dropped and the file padded with whitespace lines,
a shifted column made untestable, a headerless TSV. Real git, real DVC, the commands as
processes; each change must fail the gate (exit 1) with the rule named.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_ci.compare.snapshot import Project, RevisionFiles, read_declarations
from mlops_ci.compare.tabular import read_table
from tests.compare.data_project import MLOPS_CI, DataProject, table

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

ROWS = 20_000


def _policy(rules: str, table_path: str = "data/raw.csv", sample_rows: int = 1000) -> str:
    return (
        f"artifact: model\ndata:\n  tables: [{table_path}]\n  sample_rows: {sample_rows}\n"
        f"  rules: {rules}\n"
    )


def _gate(repo: DataProject) -> tuple[dict, dict]:
    repo.run(MLOPS_CI, "compare", "--baseline", "main")
    proc = repo.run(MLOPS_CI, "gate", ok=(0, 1))
    run_dir = repo.root / ".mlops-ci"
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert proc.returncode == (1 if verdict["verdict"] == "fail" else 0)
    return json.loads((run_dir / "comparison.json").read_text()), verdict


def _entry(comparison: dict, path: str = "data/raw.csv") -> dict:
    """The declared table's entry (the stage outputs it feeds are profiled too, undeclared)."""
    return next(t for t in comparison["data"]["tables"] if t["path"] == path)


def _failed(verdict: dict) -> dict[str, str]:
    return {r["rule"]: r["reason"] for r in verdict["rules"] if r["outcome"] == "fail"}


def _predictable_sample(rows: int, sample_rows: int) -> np.ndarray:
    """The rows a sample drawn from a fixed seed and the row count would check: what an
    attacker computes before writing the change."""
    rng = np.random.default_rng(20240917)
    return rng.random(rows) < sample_rows / rows


@pytest.mark.parametrize("tracked", ["git", "dvc"])
def test_a_column_blanked_outside_a_predictable_sample_fails_max_missing_rate(
    tmp_path: Path, tracked: str
):
    base = table(ROWS)
    path = "data/raw.csv" if tracked == "dvc" else "tables/t.csv"
    repo = DataProject.create(tmp_path / "repo", base, _policy("{max_missing_rate: 0.05}", path))
    if tracked == "git":
        repo.write_table(path, base)
        repo.commit("a table in git")
    repo.git("checkout", "-qb", "candidate")
    cand = base.copy()
    seen = _predictable_sample(ROWS, 1000)
    cand["x"] = cand["x"].where(seen)  # blank outside the sample
    if tracked == "dvc":
        cand.loc[np.flatnonzero(seen)[0], "y"] = 99  # one sampled row changed: a new hash
    repo.write_table(path, cand)
    if tracked == "dvc":
        repo.add(path)
        repo.repro()
    repo.commit("blank most of x")
    comparison, verdict = _gate(repo)
    entry = _entry(comparison, path)
    assert entry["status"] == "changed"
    x = next(c for c in entry["columns"] if c["name"] == "x")
    assert x["candidate_missing"] == round(1 - seen.sum() / ROWS, 6)  # over every row
    assert "x is 9" in _failed(verdict)["max_missing_rate"]


def test_rows_dropped_and_padded_with_whitespace_lines_fail_max_row_drop_pct(tmp_path: Path):
    repo = DataProject.create(tmp_path / "repo", table(5000), _policy("{max_row_drop_pct: 5}"))
    repo.git("checkout", "-qb", "candidate")
    kept = table(5000).iloc[:2000].to_csv(index=False)
    repo.write("data/raw.csv", kept + " \n" * 3000)  # as many lines as before
    repo.add("data/raw.csv")
    repo.repro()
    repo.commit("drop 60% of the rows")
    comparison, verdict = _gate(repo)
    entry = _entry(comparison)
    assert (entry["baseline"]["rows"], entry["candidate"]["rows"]) == (5000, 2000)
    assert "(5,000 → 2,000)" in _failed(verdict)["max_row_drop_pct"]


def test_a_table_edited_in_the_working_tree_without_dvc_add_is_read_not_trusted(tmp_path: Path):
    """`dvc add` not run: the record still names the old table, the working tree holds a
    smaller one. As `dvc diff` hashes the working tree, the data section reads it."""
    repo = DataProject.create(tmp_path / "repo", table(5000), _policy("{max_row_drop_pct: 5}"))
    repo.git("checkout", "-qb", "candidate")
    repo.write_table("data/raw.csv", table(5000).iloc[:4000])
    comparison, verdict = _gate(repo)
    entry = _entry(comparison)
    assert entry["status"] == "changed"
    assert (entry["baseline"]["rows"], entry["candidate"]["rows"]) == (5000, 4000)
    assert entry["candidate"]["digest"].startswith("sha256:")  # its bytes, not the record
    assert "(5,000 → 4,000)" in _failed(verdict)["max_row_drop_pct"]


def test_a_table_edited_to_the_same_size_without_dvc_add_is_read_not_trusted(tmp_path: Path):
    """The record names the table as it was and the working tree's copy kept its size (a
    column renamed to another of one letter): only its bytes tell, as `dvc status` hashes it."""
    repo = DataProject.create(tmp_path / "repo", table(5000), _policy("{schema_unchanged: true}"))
    repo.git("checkout", "-qb", "candidate")
    raw = repo.root / "data" / "raw.csv"
    before = raw.stat().st_size
    repo.write_table("data/raw.csv", table(5000).rename(columns={"x": "z"}))
    assert raw.stat().st_size == before
    comparison, verdict = _gate(repo)
    entry = _entry(comparison)
    assert entry["status"] == "changed"
    assert entry["candidate"]["digest"].startswith("sha256:")
    assert "schema_unchanged" in _failed(verdict)


def test_a_directory_table_is_trusted_by_its_record_only_while_each_file_hashes_to_it(
    tmp_path: Path,
):
    from mlops_ci.compare.tracked_diff import workspace_holds

    repo = DataProject.create(tmp_path / "repo", table(10))
    for part in range(2):
        repo.write_table(f"data/parts/p{part}.csv", table(50, seed=part))
    repo.add("data/parts")
    reader = _reader(repo.root)
    read_declarations(reader, "workspace")
    md5 = reader.outs["data/parts"]
    assert md5.endswith(".dir")
    assert workspace_holds(reader, "data/parts", md5)
    repo.write_table("data/parts/p1.csv", table(50, seed=1).rename(columns={"y": "w"}))
    assert not workspace_holds(reader, "data/parts", md5)  # one file edited, same size
    repo.write_table("data/parts/p1.csv", table(50, seed=1))
    (repo.root / "data" / "parts" / "p2.csv").write_text("id\n1\n")
    assert not workspace_holds(reader, "data/parts", md5)  # one file more
    (repo.root / "data" / "parts" / "p2.csv").unlink()
    assert workspace_holds(reader, "data/parts", md5)
    assert not workspace_holds(reader, "data/raw.csv", reader.outs["data/parts"])  # not its hash
    assert workspace_holds(reader, "data/raw.csv", reader.outs["data/raw.csv"])
    # A symlink out of the repository is not read, even to the very bytes recorded.
    outside = tmp_path / "outside.csv"
    outside.write_bytes((repo.root / "data" / "raw.csv").read_bytes())
    (repo.root / "data" / "raw.csv").unlink()
    (repo.root / "data" / "raw.csv").symlink_to(outside)
    assert not workspace_holds(reader, "data/raw.csv", reader.outs["data/raw.csv"])


def _shift_with_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["x"] = (out["x"] * 100).round(4).astype(object)
    out.loc[::50, "x"] = "unknown"  # one text token in every 50th value
    return out


def _shift_with_nul(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["x"] = [f"{v * 100:.4f}\0" for v in out["x"]]
    return out


def _shift_renamed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(x=frame["x"] * 100).rename(columns={"x": "x_"})


@pytest.mark.parametrize("change", [_shift_with_text, _shift_with_nul, _shift_renamed])
def test_a_shifted_column_made_untestable_fails_max_drift(tmp_path: Path, change):
    repo = DataProject.create(tmp_path / "repo", table(2000), _policy("{max_drift: 0.1}"))
    repo.git("checkout", "-qb", "candidate")
    repo.write_table("data/raw.csv", change(table(2000)))
    repo.add("data/raw.csv")
    repo.repro()
    repo.commit("shift x a hundredfold")
    _, verdict = _gate(repo)
    assert "x" in _failed(verdict)["max_drift"]


def _reader(root: Path) -> RevisionFiles:
    return RevisionFiles(Project.find(root, root), None)


def test_a_headerless_tsv_keeps_its_first_row(tmp_path: Path):
    """example-get-started's data/prepared/*.tsv: id, label, text; no header line."""
    from mlops_ci.compare.tabular import Layout

    rng = np.random.default_rng(5)
    lines = [f"{1000 + i}\t{rng.integers(0, 2)}\tpost number {i} about r\n" for i in range(3187)]
    DataProject.create(tmp_path / "repo", table(10))
    root = tmp_path / "repo"
    (root / "train.tsv").write_text("".join(lines))
    got = read_table(_reader(root), "train.tsv", 1000)
    assert got.rows == 3187 == len(lines)  # what `wc -l` says
    assert list(got.columns) == ["0", "1", "2"]
    named = read_table(_reader(root), "train.tsv", 1000, layout=Layout(columns=("id", "y", "t")))
    assert (named.rows, list(named.columns)) == (3187, ["id", "y", "t"])
    said = read_table(_reader(root), "train.tsv", 1000, layout=Layout(header=True))
    assert said.rows == 3186  # the user said the first line is a header


def test_dvcs_header_plot_property_says_a_tsv_has_no_header(tmp_path: Path):
    """A TSV of words only (nothing to tell a header by) that `dvc.yaml` plots with
    `header: false`: its first line is a row, at both revisions."""
    policy = _policy("{max_row_drop_pct: 5}", "plots/words.tsv")
    repo = DataProject.create(tmp_path / "repo", table(10), policy)
    words = ["alpha\tbeta\n", "gamma\tdelta\n", "epsilon\tzeta\n"]
    # `header` is a property of a stage's plot output (DVC's schema refuses it at the top).
    repo.write("dvc.yaml", (repo.root / "dvc.yaml").read_text() + (
        "  words:\n    cmd: 'true'\n    plots:\n      - plots/words.tsv:\n"
        "          cache: false\n          header: false\n          x: '0'\n          y: '1'\n"
    ))  # fmt: skip
    repo.write("plots/words.tsv", "".join(words * 10))
    repo.commit("words")
    repo.git("checkout", "-qb", "candidate")
    repo.write("plots/words.tsv", "".join(words * 10 + words[:1]))
    repo.commit("one more word")
    comparison, verdict = _gate(repo)
    entry = _entry(comparison, "plots/words.tsv")
    assert (entry["baseline"]["rows"], entry["candidate"]["rows"]) == (30, 31)
    assert not _failed(verdict)
