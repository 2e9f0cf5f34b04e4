"""DVC is the oracle for the file-level table of the data section: its rows are what
`dvc diff main --json --show-hash` prints, change by change, path by path, hash by hash, and its
sizes and file counts are what DVC records (and what is on disk).

The project (tests/compare/data_project.py) changes, between `main` and the candidate, a file
tracked by a `.dvc` file, a directory tracked by one (a file modified, one deleted, one added,
one renamed), a stage's file and directory outputs; it adds one `.dvc`-tracked file and removes
another. Checked on the uncommitted workspace (what compare sees after `train`) and after the
change is committed. .ci/run runs this file under the lowest supported DVC too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.compare.data_project import DVC, MLOPS_CI, DataProject, table

pytestmark = pytest.mark.integration  # builds real DVC projects of its own


def _project(base: Path) -> DataProject:
    repo = DataProject.create(base / "repo", table(400))
    for name, text in {"a.txt": "alpha\n", "b.txt": "beta\n", "c.txt": "gamma\n"}.items():
        repo.write(f"data/images/{name}", text)
    repo.write("data/gone.txt", "to be removed\n")
    repo.add("data/images", "data/gone.txt")
    repo.commit("more data")
    repo.git("checkout", "-qb", "candidate")
    repo.write_table("data/raw.csv", table(380, seed=1))
    repo.write("data/images/a.txt", "alpha, changed\n")
    repo.write("data/images/b.txt", None)
    repo.write("data/images/d.txt", "delta\n")
    repo.write("data/images/e.txt", "gamma\n")  # c.txt renamed: the same content
    repo.write("data/images/c.txt", None)
    repo.write("data/new.txt", "new data\n")
    repo.add("data/raw.csv", "data/images", "data/new.txt")
    repo.remove("data/gone.txt.dvc")
    repo.repro()
    return repo


def _normal(diff: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str, str]]:
    """Every entry as (change, path, hash) with `old -> new` spelt out."""
    found = set()
    for change, entries in diff.items():
        for e in entries:
            path, digest = e["path"], e.get("hash")
            if isinstance(path, dict):
                path = f"{path['old']} -> {path['new']}"
            if isinstance(digest, dict):
                digest = f"{digest['old']} -> {digest['new']}"
            found.add((change, path, str(digest)))
    return found


def _ours(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    found = set()
    for r in rows:
        path = f"{r['old_path']} -> {r['path']}" if r["change"] == "renamed" else r["path"]
        old, new = r["baseline_hash"], r["candidate_hash"]
        digest = f"{old} -> {new}" if r["change"] == "modified" else (new or old)
        found.add((r["change"], path, str(digest)))
        if r.get("not_in_cache") == "baseline":  # one row, as DVC's two entries
            found.add(("not in cache", r.get("old_path") or r["path"], str(old)))
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> DataProject:
    return _project(tmp_path_factory.mktemp("files-oracle"))


def _check(repo: DataProject) -> dict[str, Any]:
    ours = json.loads(repo.run(MLOPS_CI, "compare", "--baseline", "main", "--json").stdout)
    dvc = json.loads(repo.run(DVC, "diff", "main", "--json", "--show-hash").stdout)
    files = ours["data"]["files"]
    assert files["source"] in ("records", "dvc diff")
    assert _ours(files["rows"]) == _normal(dvc)
    counts = {k: len(v) for k, v in dvc.items()}
    assert {k: v for k, v in files["counts"].items() if v} == {k: v for k, v in counts.items() if v}
    return files


def _on_disk(repo: DataProject, row: dict[str, Any]) -> tuple[int, int | None]:
    path = repo.root / row["path"].rstrip("/")
    if path.is_dir():
        inside = [p for p in path.rglob("*") if p.is_file()]
        return sum(p.stat().st_size for p in inside), len(inside)
    return path.stat().st_size, None


def test_the_file_table_equals_dvc_diff_on_the_workspace(project: DataProject):
    files = _check(project)
    assert files["source"] == "records"  # the workspace holds what train recorded: no DVC
    changes = {r["change"] for r in files["rows"]}
    assert {"added", "deleted", "modified", "renamed"} <= changes  # every kind was exercised
    outputs = [r for r in files["rows"] if r["candidate_size"] is not None]
    assert {r["path"] for r in outputs} >= {"data/raw.csv", "data/images/", "out/train.csv",
                                            "out/parts/", "data/new.txt"}  # fmt: skip
    for row in outputs:  # the sizes DVC records are the bytes on disk
        size, nfiles = _on_disk(project, row)
        assert (row["candidate_size"], row["candidate_nfiles"]) == (size, nfiles), row["path"]
    gone = next(r for r in files["rows"] if r["path"] == "data/gone.txt")
    assert (gone["change"], gone["baseline_size"], gone["candidate_size"]) == (
        "deleted",
        len("to be removed\n"),
        None,
    )


def test_a_tracked_change_is_tabled_without_opening_dvc(project: DataProject):
    """Tracked data changed, the workspace holds what train recorded: compare answers what
    `dvc diff` does (above) from the records, and DVC's repository code is never imported."""
    probe = (
        "import sys, json; from pathlib import Path; "
        "from mlops_ci.commands.compare import run_compare; "
        "doc = run_compare(Path('.'), Path('.mlops-ci'), baseline='main'); "
        "print(json.dumps({'dvc': 'dvc.repo' in sys.modules, "
        "'source': doc['data']['files']['source']}))"
    )
    found = json.loads(project.run(sys.executable, "-c", probe).stdout)
    assert found == {"dvc": False, "source": "records"}


def test_the_file_table_equals_dvc_diff_once_committed(project: DataProject):
    project.commit("candidate data")
    assert _check(project)["source"] == "records"


def test_a_workspace_that_differs_from_its_records_is_left_to_dvc(project: DataProject):
    """An output edited after it was recorded: only hashing the workspace tells, so DVC does."""
    path = project.root / "data" / "new.txt"
    original = path.read_text()
    path.write_text("edited after `dvc add`, never recorded\n")
    try:
        assert _check(project)["source"] == "dvc diff"
    finally:
        path.write_text(original)


def test_no_tracked_change_asks_no_dvc_diff_and_dvc_agrees(tmp_path: Path):
    repo = DataProject.create(tmp_path / "repo", table(100))
    repo.git("checkout", "-qb", "candidate")
    repo.write("README.md", "code only\n")
    repo.commit("no data change")
    ours = json.loads(repo.run(MLOPS_CI, "compare", "--baseline", "main", "--json").stdout)
    assert ours["data"]["files"]["source"] == "recorded hashes equal"
    assert ours["data"]["files"]["rows"] == []
    assert json.loads(repo.run(DVC, "diff", "main", "--json").stdout or "{}") == {}


def test_without_a_tracked_change_compare_opens_no_dvc_and_tests_nothing(tmp_path: Path):
    """What the data section costs when no tracked data changed: it reads the recorded hashes
    it already has, and neither DVC's diff nor scipy (nor pandas, here) is imported."""
    policy = "artifact: model\ndata:\n  tables: [{path: data/raw.csv, target: label}]\n"
    repo = DataProject.create(tmp_path / "repo", table(100), policy)
    repo.git("checkout", "-qb", "candidate")
    repo.write("README.md", "code only\n")
    repo.commit("no data change")
    probe = (
        "import sys, json; from pathlib import Path; "
        "from mlops_ci.commands.compare import run_compare; "
        "doc = run_compare(Path('.'), Path('.mlops-ci'), baseline='main'); "
        "print(json.dumps({'loaded': [m for m in ('dvc.repo.diff', 'scipy', 'pandas') "
        "if m in sys.modules], 'table': doc['data']['tables'][0]['status']}))"
    )
    found = json.loads(repo.run(sys.executable, "-c", probe).stdout)
    assert found == {"loaded": [], "table": "unchanged"}


def test_a_path_whose_baseline_is_not_in_cache_is_one_row_counted_once(tmp_path: Path):
    """`dvc diff` lists such a path twice (modified, and not in cache); the table has one row
    that says which side is missing, and the byte totals count it once."""
    from mlops_ci.report import build_report
    from tests.report.report_parse import table_with, unescape

    repo = DataProject.create(tmp_path / "repo", table(100))
    repo.write("data/notes.txt", "x" * 5000 + "\n")
    repo.add("data/notes.txt")
    repo.commit("notes")
    digest = (repo.root / "data" / "notes.txt.dvc").read_text().split("md5: ")[1].split()[0]
    repo.git("checkout", "-qb", "candidate")
    repo.write("data/notes.txt", "y" * 5100 + "\n")
    repo.add("data/notes.txt")
    repo.commit("notes changed")
    cached = repo.root / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    cached.unlink()  # the baseline's object is gone from the local cache
    files = _check(repo)
    dvc = json.loads(repo.run(DVC, "diff", "main", "--json", "--show-hash").stdout)
    assert [e["path"] for e in dvc["not in cache"]] == ["data/notes.txt"]
    assert [e["path"] for e in dvc["modified"]] == ["data/notes.txt"]
    rows = [r for r in files["rows"] if r["path"] == "data/notes.txt"]
    assert len(rows) == 1 and rows[0]["not_in_cache"] == "baseline"
    assert (files["baseline_bytes"], files["candidate_bytes"]) == (
        sum(r["baseline_size"] or 0 for r in files["rows"]),
        sum(r["candidate_size"] or 0 for r in files["rows"]),
    )
    comparison = json.loads((repo.root / ".mlops-ci" / "comparison.json").read_text())
    markdown = build_report(comparison, None, limit=None).markdown
    listed = [unescape(r[0]) for r in table_with(markdown, "Path")[1:]]
    assert listed.count("data/notes.txt") == 1
    row = next(r for r in table_with(markdown, "Path")[1:] if unescape(r[0]) == "data/notes.txt")
    assert "baseline not in cache" in row[1]
