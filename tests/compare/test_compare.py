"""`mlops-ci compare` against DVC's own diff, in shallow clones, and on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.cli import main
from mlops_ci.commands.compare import format_comparison, run_compare
from mlops_ci.commands.demo import set_param
from mlops_ci.project.git import Git
from tests.conftest import git_commit_all

DVC = str(Path(sys.executable).parent / "dvc")


def dvc_json(repo: Path, *args: str) -> dict:
    out = subprocess.run(
        [DVC, *args, "--json"], cwd=repo, capture_output=True, text=True, check=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )  # fmt: skip
    return json.loads(out.stdout or "{}")


@pytest.fixture
def tuned_branch(trained_repo: Path) -> Path:
    """A branch that changes a train param, retrained (the workspace is the candidate)."""
    git = Git(trained_repo)
    git.run("checkout", "--quiet", "-b", "tune")
    set_param(trained_repo, "train.logistic_regression.C", 0.02)
    set_param(trained_repo, "evaluate.latency_samples", 20)
    assert main(["train", "-C", str(trained_repo)]) == 0
    git_commit_all(trained_repo, "Tune C")
    return trained_repo


def test_numbers_agree_with_dvc_metrics_and_params_diff(tuned_branch: Path) -> None:
    doc = run_compare(tuned_branch, tuned_branch / ".mlops-ci", baseline="main")
    base_sha = doc["baseline"]["sha"]
    metrics = dvc_json(tuned_branch, "metrics", "diff", base_sha)
    ours = {(r["file"], r["key"]): r for r in doc["metrics"]}
    assert metrics, "dvc metrics diff found no change"
    for path, keys in metrics.items():
        for key, values in keys.items():
            row = ours[(path, key)]
            assert row["baseline"] == values["old"] and row["candidate"] == values["new"]
            assert row["delta"] == pytest.approx(values["diff"], abs=1e-12)
    params = dvc_json(tuned_branch, "params", "diff", base_sha)
    changed = {(p["file"], p["name"]): p for p in doc["params"]}
    expected = {(f, k): v for f, keys in params.items() for k, v in keys.items()}
    assert set(changed) == set(expected)
    for key, values in expected.items():
        assert changed[key]["baseline"] == values["old"]
        assert changed[key]["candidate"] == values["new"]


def test_rows_have_direction_status_and_confidence_intervals(tuned_branch: Path) -> None:
    doc = run_compare(tuned_branch, tuned_branch / ".mlops-ci")
    rows = {r["name"]: r for r in doc["metrics"]}
    assert rows["log_loss"]["direction"] == "lower"
    assert rows["accuracy"]["direction"] == "higher"
    assert rows["predict_latency_ms"]["direction"] == "lower"
    for name in ("accuracy", "f1", "roc_auc", "log_loss"):
        row = rows[name]
        assert row["ci_method"] == "paired-bootstrap"
        assert row["ci_low"] <= row["delta"] + 1e-9 and row["delta"] - 1e-9 <= row["ci_high"]
        excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
        assert (row["status"] in ("improved", "regressed")) == excludes_zero
    assert doc["baseline"]["how"] == "merge-base"
    assert {p["id"] for p in doc["plots"]} == {"ROC", "Precision-recall", "Confusion matrix"}
    assert all(len(p["candidate"]) <= 200 for p in doc["plots"])
    assert doc["schema_version"] == 1


def test_depth_one_clone_finds_the_merge_base(tuned_branch: Path, tmp_path: Path) -> None:
    git = Git(tuned_branch)
    branch_point = git.out("rev-parse", "main")
    git.run("push", "--quiet", "origin", "tune", "main")
    # main moves on after the branch point
    git.run("checkout", "--quiet", "main")
    for i in range(3):
        (tuned_branch / f"notes-{i}.md").write_text(f"note {i}\n")
        git_commit_all(tuned_branch, f"Docs {i}")
    git.run("push", "--quiet", "origin", "main")
    origin = tuned_branch.parent / "origin.git"
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth=1", "--branch=tune", f"file://{origin}", str(clone)],
        check=True,
    )
    assert Git(clone).is_shallow()
    assert Git(clone).rev_parse("refs/remotes/origin/main") is None
    doc = run_compare(clone, clone / ".mlops-ci")
    assert doc["baseline"]["how"] == "merge-base"
    assert doc["baseline"]["sha"] == branch_point
    assert doc["baseline"]["sha"] != git.out("rev-parse", "main")


def test_first_pr_has_every_metric_added(trained_repo: Path) -> None:
    git = Git(trained_repo)
    first = git.out("rev-list", "--max-parents=0", "HEAD")
    doc = run_compare(trained_repo, trained_repo / ".mlops-ci", baseline=first)
    assert doc["metrics"] and {r["status"] for r in doc["metrics"]} == {"added"}
    assert any("no dvc.lock" in w for w in doc["warnings"])
    assert any("no metrics" in w for w in doc["warnings"])


def test_malformed_metrics_at_one_revision(tuned_branch: Path) -> None:
    (tuned_branch / "eval" / "extra.json").write_text('{"coverage": 0.5}')
    dvc_yaml = (tuned_branch / "dvc.yaml").read_text()
    dvc_yaml += "metrics:\n  - eval/extra.json\n"
    (tuned_branch / "dvc.yaml").write_text(dvc_yaml)
    git_commit_all(tuned_branch, "Extra metrics")
    base = Git(tuned_branch).out("rev-parse", "HEAD")
    (tuned_branch / "eval" / "extra.json").write_text('{"coverage": 0.5,,,')
    doc = run_compare(tuned_branch, tuned_branch / ".mlops-ci", baseline=base)
    ((error),) = doc["errors"]
    assert (error["file"], error["revision"]) == ("eval/extra.json", "workspace")
    assert error["message"].startswith("not valid metrics: ")
    # What the user reads names the file and the revision.
    assert "error: eval/extra.json at workspace: not valid metrics" in format_comparison(doc)
    rows = {r["name"]: r for r in doc["metrics"]}
    assert rows["coverage"]["status"] == "unknown"  # unreadable, never "inconclusive"
    assert rows["accuracy"]["status"] == "unchanged"  # the other files are still compared


def test_nan_inf_strings_booleans_and_a_big_file(trained_repo: Path) -> None:
    extra = trained_repo / "eval" / "odd.json"
    big = {
        f"group{g}": {
            f"a_long_descriptive_metric_name_{j}": j / 7 for j in range(g * 1000, g * 1000 + 1000)
        }
        for g in range(90)
    }
    extra.write_text(json.dumps({"nan": 1.0, "inf": 2.0, "label": "a", "flag": True, "big": big}))
    (trained_repo / "dvc.yaml").write_text(
        (trained_repo / "dvc.yaml").read_text() + "metrics:\n  - eval/odd.json\n"
    )
    git_commit_all(trained_repo, "Odd metrics")
    base = Git(trained_repo).out("rev-parse", "HEAD")
    extra.write_text(
        '{"nan": NaN, "inf": Infinity, "label": "b", "flag": false, "big": '
        + json.dumps(big) + "}"
    )  # fmt: skip
    assert extra.stat().st_size > 5_000_000
    doc = run_compare(trained_repo, trained_repo / ".mlops-ci", baseline=base)
    rows = {r["name"]: r for r in doc["metrics"]}
    assert rows["nan"]["candidate"] == "nan" and rows["nan"]["status"] == "changed"
    assert rows["inf"]["candidate"] == "inf"
    assert rows["label"] == rows["label"] | {"baseline": "a", "candidate": "b", "status": "changed"}
    # Booleans stay booleans, as DVC reports them.
    assert rows["flag"]["baseline"] is True and rows["flag"]["status"] == "changed"
    assert sum(1 for r in doc["metrics"] if r["name"].startswith("big.")) == 90000
    json.loads((trained_repo / ".mlops-ci" / "comparison.json").read_text())  # strict JSON


def test_cli_prints_table_and_json(tuned_branch: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "-C", str(tuned_branch)]) == 0
    assert "accuracy" in capfd.readouterr().out
    assert main(["compare", "-C", str(tuned_branch), "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["kind"] == "comparison"


def test_unknown_baseline_ref_is_a_clear_error(
    trained_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "-C", str(trained_repo), "--baseline", "no-such-ref"]) == 2
    assert "does not name a commit" in capfd.readouterr().err


def test_stage_baseline_is_the_commit_of_the_version_in_that_stage(tuned_branch: Path) -> None:
    git = Git(tuned_branch)
    main_sha = git.out("rev-parse", "main")
    git.run("checkout", "--quiet", "main")
    assert main(["promote", "-C", str(tuned_branch)]) == 0  # main's commit -> staging
    git.run("checkout", "--quiet", "tune")
    doc = run_compare(tuned_branch, tuned_branch / ".mlops-ci", baseline="stage:staging")
    assert doc["baseline"]["how"] == "stage:staging"
    assert doc["baseline"]["sha"] == main_sha
    empty = run_compare(tuned_branch, tuned_branch / ".mlops-ci", baseline="stage:production")
    assert empty["baseline"]["sha"] is None
    assert "no version of classifier is in stage 'production'" in empty["warnings"][0]
    assert {r["status"] for r in empty["metrics"]} == {"added"}


def test_baseline_predictions_come_from_the_remote_when_the_cache_lacks_them(
    trained_repo: Path,
) -> None:
    # A fresh clone beside the project (its relative DVC remote resolves) with an empty cache.
    clone = trained_repo.parent / "fresh"
    subprocess.run(
        ["git", "clone", "--quiet", str(trained_repo.parent / "origin.git"), str(clone)], check=True
    )
    Git(clone).run("checkout", "--quiet", "-b", "tune")
    set_param(clone, "train.logistic_regression.C", 0.3)
    assert main(["train", "-C", str(clone)]) == 0  # the candidate, trained here
    base = Git(clone).out("rev-parse", "main")
    lock = yaml.safe_load(Git(clone).show(base, "dvc.lock"))
    (md5,) = [
        o["md5"] for o in lock["stages"]["evaluate"]["outs"] if o["path"] == "eval/predictions.csv"
    ]
    assert not (clone / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()
    doc = run_compare(clone, clone / ".mlops-ci", baseline="main")
    rows = {r["name"]: r for r in doc["metrics"]}
    assert rows["accuracy"]["ci_method"] == "paired-bootstrap"
    assert not [w for w in doc["warnings"] if "confidence" in w]


def test_a_new_branch_at_the_target_tip_compares_with_that_tip(trained_repo: Path) -> None:
    """`git checkout -b tune` at main's tip: the baseline is main's tip (the merge-base), not
    main's previous commit; that rule is for a push to the target branch itself."""
    git = Git(trained_repo)
    tip = git.out("rev-parse", "main")
    git.run("checkout", "--quiet", "-b", "fresh-branch")
    set_param(trained_repo, "train.logistic_regression.C", 0.5)
    doc = run_compare(trained_repo, trained_repo / ".mlops-ci")
    assert (doc["baseline"]["how"], doc["baseline"]["sha"]) == ("merge-base", tip)
    git.run("checkout", "--quiet", "main")
    on_main = run_compare(trained_repo, trained_repo / ".mlops-ci")
    assert on_main["baseline"]["how"] == "previous"
    assert on_main["baseline"]["sha"] == git.out("rev-parse", "main^")


def test_a_stage_that_no_version_ever_had_and_no_setting_names_is_an_error(
    trained_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "-C", str(trained_repo), "--baseline", "stage:prdo"]) == 2
    assert "stage 'prdo'" in capfd.readouterr().err
    assert main(["compare", "-C", str(trained_repo), "--baseline", ""]) == 2
    assert "empty" in capfd.readouterr().err


def test_the_terminal_table_shows_the_rows_that_matter_and_says_how_many_it_left_out() -> None:
    """100,000 metrics must not print 100,000 lines: at most TERMINAL_ROWS, regressions first,
    in document order; comparison.json keeps every row."""
    from mlops_ci.commands.compare import TERMINAL_ROWS

    def row(i: int, status: str) -> dict:
        return {"name": f"m{i:03d}", "baseline": 1.0, "candidate": 1.0, "delta": 0.0,
                "ci_low": None, "ci_high": None, "status": status}  # fmt: skip

    rows = [row(i, "regressed" if i % 40 == 7 else "unchanged") for i in range(120)]
    doc = {"baseline": {"how": "ref", "sha": "a" * 40}, "candidate": {"sha": "b" * 40},
           "metrics": rows, "params": [], "errors": [], "warnings": []}  # fmt: skip
    text = format_comparison(doc)
    shown = [line.split()[0] for line in text.splitlines() if line.startswith("m0")]
    assert len(shown) == TERMINAL_ROWS
    assert {"m007", "m047", "m087"} <= set(shown) and shown == sorted(shown)
    assert f"... and {120 - TERMINAL_ROWS} more metrics (every row is in comparison.json)" in text
