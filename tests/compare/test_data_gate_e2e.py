"""Data rules end to end: real git, real DVC, the commands as processes.

A pull request that drops 10% of a declared table's rows fails `max_row_drop_pct: 5` and the
report names the rule and the numbers; one that drops none passes; a table the baseline cannot
read fails closed. Names from the data (a hostile column, a category that pings) stay inert text
in the report, checked with GitHub's own renderer (cmarkgfm).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from jsonschema import Draft202012Validator

import mlops_ci
from tests.compare.data_project import BIN, MLOPS_CI, DataProject, table

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

POLICY = """\
artifact: model
data:
  tables:
    - {path: data/raw.csv, target: label, key: id}
    - {path: out/parts}
  rules: {max_row_drop_pct: 5}
"""
HOSTILE = "| @team <img src=x> **bold** #1"


def _pr(tmp_path: Path, keep: int, *, shift: float = 0.0) -> DataProject:
    base = table(1000)
    base[HOSTILE] = ["a", "b"] * 500
    repo = DataProject.create(tmp_path / "repo", base, POLICY)
    repo.git("checkout", "-qb", "candidate")
    cand = table(1000, seed=1, shift=shift).iloc[:keep].copy()
    cand[HOSTILE] = (["a", "@everyone"] * 500)[:keep]
    repo.write_table("data/raw.csv", cand)
    repo.add("data/raw.csv")
    repo.repro()
    repo.commit("change the data")
    return repo


def _run_all(repo: DataProject, gate_exit: int) -> tuple[dict, dict, str]:
    repo.run(MLOPS_CI, "compare", "--baseline", "main")
    repo.run(MLOPS_CI, "gate", ok=(gate_exit,))
    repo.run(MLOPS_CI, "report")
    run_dir = repo.root / ".mlops-ci"
    comparison = json.loads((run_dir / "comparison.json").read_text())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    return comparison, verdict, (run_dir / "report.md").read_text()


def _html(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).replace("&gt;", ">")


def test_a_pr_that_drops_10_percent_of_rows_fails_and_the_report_says_why(tmp_path: Path):
    repo = _pr(tmp_path, keep=900)
    comparison, verdict, report = _run_all(repo, gate_exit=1)
    raw = next(t for t in comparison["data"]["tables"] if t["path"] == "data/raw.csv")
    assert (raw["baseline"]["rows"], raw["candidate"]["rows"], raw["row_change_pct"]) == (
        1000,
        900,
        -10.0,
    )
    failed = [r for r in verdict["rules"] if r["outcome"] == "fail"]
    assert {(r["metric"], r["rule"]) for r in failed} == {
        ("data:data/raw.csv", "max_row_drop_pct"),
        ("data:out/parts", "max_row_drop_pct"),
    }
    rule = next(r for r in failed if r["metric"] == "data:data/raw.csv")
    assert (rule["threshold"], rule["observed"], rule["baseline"], rule["candidate"]) == (
        5.0,
        -10.0,
        1000,
        900,
    )
    expected = (
        "table data/raw.csv dropped 10.00% of its rows (1,000 → 900), more than max_row_drop_pct 5"
    )
    assert rule["reason"] == expected
    # What a fork's run directory is checked against before it is posted.
    schema = json.loads(
        (Path(mlops_ci.__file__).parent / "project/schemas/comparison.schema.json").read_text()
    )
    assert not list(Draft202012Validator(schema).iter_errors(comparison))
    html = _html(report)
    text = _text(html)
    assert expected in text  # the headline names the rule and the numbers
    assert "Data" in text and "rows 1,000 → 900 (-10.00%)" in text
    # The data section sits between the metrics and what follows, and nothing hostile is live.
    assert "<img" not in html and "<strong>bold</strong>" not in html
    assert "@\u200beveryone" in text and "@\u200bteam" in text
    rows = [r for r in html.split("<tr>") if HOSTILE.split()[0] in _text(r) or "team" in r]
    assert rows and all(r.count("<td") == 8 for r in rows if "<td" in r)  # one cell, not two


def test_a_pr_that_drops_no_rows_passes(tmp_path: Path):
    repo = _pr(tmp_path, keep=1000)
    _, verdict, report = _run_all(repo, gate_exit=0)
    results = {(r["metric"], r["rule"]): r for r in verdict["rules"]}
    rule = results[("data:data/raw.csv", "max_row_drop_pct")]
    assert rule["outcome"] == "pass" and rule["observed"] == 0.0
    assert verdict["verdict"] == "pass"
    assert "rows 1,000 ·" in _text(_html(report)) or "rows 1,000 " in _text(_html(report))


def test_a_table_the_baseline_cannot_read_fails_closed(tmp_path: Path):
    repo = _pr(tmp_path, keep=1000)
    old = repo.git("show", "main:data/raw.csv.dvc")
    md5 = re.search(r"md5: ([0-9a-f]{32})", old).group(1)  # type: ignore[union-attr]
    cached = next((repo.root / ".dvc" / "cache").rglob(md5[2:]))
    cached.unlink()  # the baseline's table is in no cache and there is no remote
    comparison, verdict, _ = _run_all(repo, gate_exit=1)
    raw = next(t for t in comparison["data"]["tables"] if t["path"] == "data/raw.csv")
    assert (
        raw["status"] == "unknown" and raw["errors"][0]["revision"] == comparison["baseline"]["sha"]
    )
    rule = next(r for r in verdict["rules"] if r["metric"] == "data:data/raw.csv")
    assert rule["outcome"] == "fail" and "cannot be judged" in rule["reason"]


@pytest.mark.parametrize("value", ["", "0", "x"])
def test_a_bad_data_rule_is_an_error_naming_the_key(tmp_path: Path, value: str):
    repo = DataProject.create(tmp_path / "repo", table(10), "artifact: model\n")
    repo.write("mlops-ci.yaml", f"data:\n  rules: {{max_row_drop_pct: '{value}'}}\n")
    proc = repo.run(MLOPS_CI, "validate", ok=(2,))
    assert "data.rules.max_row_drop_pct" in proc.stderr + proc.stdout


def test_a_table_only_on_the_dvc_remote_is_read_from_there(tmp_path: Path):
    repo = DataProject.create(tmp_path / "repo", table(1000), POLICY)
    remote = tmp_path / "remote"
    repo.run(str(BIN / "dvc"), "remote", "add", "-d", "store", str(remote))
    repo.run(str(BIN / "dvc"), "push", "-q")
    repo.commit("a remote")
    repo.git("checkout", "-qb", "candidate")
    repo.write_table("data/raw.csv", table(940, seed=1))
    repo.add("data/raw.csv")
    repo.repro()
    repo.commit("fewer rows")
    old = repo.git("show", "main:data/raw.csv.dvc")
    md5 = re.search(r"md5: ([0-9a-f]{32})", old).group(1)  # type: ignore[union-attr]
    next((repo.root / ".dvc" / "cache").rglob(md5[2:])).unlink()  # only the remote has it now
    comparison, verdict, _ = _run_all(repo, gate_exit=1)
    raw = next(t for t in comparison["data"]["tables"] if t["path"] == "data/raw.csv")
    assert (raw["status"], raw["baseline"]["rows"], raw["candidate"]["rows"]) == (
        "changed",
        1000,
        940,
    )
    rule = next(r for r in verdict["rules"] if r["metric"] == "data:data/raw.csv")
    assert rule["outcome"] == "fail" and "(1,000 → 940)" in rule["reason"]
