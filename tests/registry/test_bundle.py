"""Bundles: built from the version's commit through DVC, checksummed, verified in a fresh process."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import cmarkgfm
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlops_ci.ci import documents
from mlops_ci.commands import promote
from mlops_ci.project.errors import ConfigError, VerificationFailed
from mlops_ci.project.git import Git
from mlops_ci.registry import bundle

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

FILES = {"model.pkl", "metadata.json", "model-card.md", "samples.csv", "SHA256SUMS"}


def write_doc(run_dir: Path, name: str, doc: dict) -> None:
    run_dir.mkdir(exist_ok=True)
    (run_dir / name).write_text(json.dumps({"schema_version": 1, "tool_version": "0.1.0", **doc}))


def commit_model_out_of_step(repo: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Swap in a differently trained model, `dvc commit` it and commit: predictions.csv is stale."""
    from dvc.repo import Repo

    monkeypatch.chdir(repo)  # DVC resolves stage paths against the working directory
    train = pd.read_csv(repo / "data/prepared/train.csv")
    features = [c for c in train.columns if c not in ("id", "target")]
    model = LogisticRegression(C=1e-4, max_iter=200).fit(train[features], train["target"])
    (repo / "models/model.pkl").write_bytes(pickle.dumps(model))
    with Repo(str(repo)) as dvc_repo:
        dvc_repo.commit("train", force=True)
    git = Git(repo)
    git.run("add", "--all")
    git.run("commit", "--quiet", "-m", "Swap the model without re-evaluating")
    return git.out("rev-parse", "HEAD")


def test_bundle_holds_what_the_version_is_made_of(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    sha = Git(trained_repo).head_sha()
    write_doc(
        run_dir,
        "comparison.json",
        {
            "kind": "comparison",
            "confidence": 0.9,
            "baseline": {"how": "merge-base", "ref": "main", "sha": "a" * 40},
            "candidate": {"sha": sha},
            "metrics": [
                {
                    "name": "accuracy",
                    "baseline": 0.97,
                    "candidate": 0.986,
                    "delta": 0.016,
                    "ci_low": -0.004,
                    "ci_high": 0.021,
                }
            ],
        },
    )
    # A verdict names the comparison it judged; promote refuses one that does not.
    judged = {"comparison.json": documents.file_digest(run_dir / "comparison.json")}
    write_doc(
        run_dir,
        "verdict.json",
        {
            "kind": "verdict",
            "verdict": "pass",
            "summary": "all rules pass",
            "candidate_sha": sha,
            "inputs": judged,
        },
    )
    promoted = promote.promote(trained_repo, run_dir)
    out = bundle.build_bundle(trained_repo, run_dir, version=promoted.version, sha=promoted.sha)

    assert {p.name for p in out.iterdir()} == FILES
    # The checksums are in the format coreutils checks.
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=out, check=True)
    assert (out / "model.pkl").read_bytes() == (trained_repo / "models/model.pkl").read_bytes()

    meta = json.loads((out / "metadata.json").read_text())
    lock = yaml.safe_load((trained_repo / "dvc.lock").read_text())
    model_md5 = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"].endswith("pkl"))
    assert (meta["artifact"], meta["version"], meta["git_sha"]) == ("classifier", "v0.1.0", sha)
    assert {"created_at", "tool_version", "params", "metrics", "verdict"} <= set(meta)
    assert {"stage": "train", "role": "out", "path": "models/model.pkl", "md5": model_md5} in [
        {k: row[k] for k in ("stage", "role", "path", "md5")} for row in meta["dvc_lock"]
    ]
    assert any(row["path"] == "data/prepared" for row in meta["dvc_lock"])
    assert meta["params"]["params.yaml"]["train"]["logistic_regression"]["C"] == 1.0
    assert meta["metrics"]["eval/metrics.json"] == json.loads(
        (trained_repo / "eval/metrics.json").read_text()
    )
    assert meta["verdict"]["summary"] == "all rules pass"
    samples = pd.read_csv(out / "samples.csv")
    assert len(samples) == meta["verification"]["rows"] == bundle.SAMPLE_ROWS
    assert samples["id"].is_unique

    html = cmarkgfm.github_flavored_markdown_to_html((out / "model-card.md").read_text())
    assert "<h1>Model card: classifier v0.1.0</h1>" in html
    assert "<td>accuracy</td>\n<td>0.986</td>\n<td>0.97</td>\n<td>+0.016</td>" in html
    assert "<td>[-0.004, +0.021]</td>" in html
    assert "90% CI of delta" in html
    assert "<td>log_loss</td>" in html  # the escaped underscore renders as itself
    assert "<td>train.logistic_regression.C</td>" in html
    assert f"<code>{model_md5}</code>" in html
    assert "not a medical device" in html  # intended_use from mlops-ci.yaml


def test_verification_passes_then_catches_every_kind_of_damage(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    promoted = promote.promote(trained_repo, run_dir)
    out = bundle.build_bundle(trained_repo, run_dir, version=promoted.version, sha=promoted.sha)
    checked = bundle.verify_bundle(out, env=os.environ)
    assert checked["checksums"] == "ok"
    assert (checked["rows"], checked["mismatches"], checked["checked"]) == (50, 0, "y_score")

    model = out / "model.pkl"
    original = model.read_bytes()
    model.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(VerificationFailed, match=r"model\.pkl does not match its sha256"):
        bundle.verify_bundle(out, env=os.environ)
    model.write_bytes(original)
    (out / "extra.py").write_text("print('hi')\n")
    with pytest.raises(VerificationFailed, match=r"extra\.py is not listed"):
        bundle.verify_bundle(out, env=os.environ)
    (out / "extra.py").unlink()
    (out / "samples.csv").unlink()
    with pytest.raises(VerificationFailed, match=r"samples\.csv is missing"):
        bundle.verify_bundle(out, env=os.environ)


def test_a_model_out_of_step_with_its_predictions_is_refused(
    trained_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = trained_repo / ".mlops-ci"
    sha = commit_model_out_of_step(trained_repo, monkeypatch)
    promoted = promote.promote(trained_repo, run_dir)
    assert promoted.sha == sha
    out = bundle.build_bundle(trained_repo, run_dir, version=promoted.version, sha=sha)
    assert bundle.checksum_problems(out) == []  # intact files, wrong model
    with pytest.raises(VerificationFailed, match="predicts differently") as caught:
        bundle.verify_bundle(out, env=os.environ)
    assert "rerun the pipeline" in str(caught.value)


def test_the_test_rows_come_from_test_data_of_the_settings(trained_repo: Path) -> None:
    run_dir = trained_repo / ".mlops-ci"
    holdout = pd.read_csv(trained_repo / "data/prepared/test.csv").iloc[::7].head(12)
    (trained_repo / "holdout.csv").write_text(holdout.to_csv(index=False))
    settings = trained_repo / "mlops-ci.yaml"
    text = settings.read_text()
    assert "test_data: data/prepared/test.csv" in text
    settings.write_text(text.replace("test_data: data/prepared/test.csv", "test_data: holdout.csv"))
    git = Git(trained_repo)
    git.run("add", "holdout.csv", "mlops-ci.yaml")
    git.run("commit", "--quiet", "-m", "Verify on a hold-out sample")
    promoted = promote.promote(trained_repo, run_dir)
    out = bundle.build_bundle(trained_repo, run_dir, version=promoted.version, sha=promoted.sha)
    samples = pd.read_csv(out / "samples.csv")
    assert sorted(samples["id"]) == sorted(holdout["id"])
    assert bundle.verify_bundle(out, env=os.environ)["rows"] == 12

    settings.write_text(text.replace("test_data: data/prepared/test.csv", "test_data: gone.csv"))
    with pytest.raises(ConfigError, match=r"gone\.csv does not exist at"):
        bundle.build_bundle(trained_repo, run_dir, version=promoted.version, sha=promoted.sha)


def regression_bundle(tmp_path: Path, error_on_every_fourth_row: float) -> Path:
    """A real bundle of a regression model whose recorded predictions differ from what the
    model predicts now by `error_on_every_fourth_row` on 13 of 50 rows."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(7)
    features = ["f0", "f1", "f2"]
    x = pd.DataFrame(rng.normal(size=(50, 3)), columns=features)
    model = LinearRegression().fit(x, x @ np.array([0.5, -1.5, 2.0]) + rng.normal(size=50))
    recorded = model.predict(x)
    recorded[::4] += error_on_every_fourth_row
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "model.pkl").write_bytes(pickle.dumps(model))
    x.assign(id=range(50), y_pred=recorded).to_csv(out / "samples.csv", index=False)
    meta = {
        "model": {"file": "model.pkl"},
        "verification": {"file": "samples.csv", "rows": 50, "id": "id", "features": features},
    }
    (out / "metadata.json").write_text(json.dumps(meta))
    bundle.write_checksums(out)
    return out


def test_float_noise_in_regression_predictions_is_not_a_mismatch(tmp_path: Path) -> None:
    # The mistake: predictions compared as strings, so 2.8e-14 apart (another BLAS, another
    # summation order) failed the deploy.
    checked = bundle.verify_bundle(regression_bundle(tmp_path, 2.8e-14), env=os.environ)
    assert (checked["checked"], checked["mismatches"]) == ("y_pred", 0)
    assert 0 < checked["max_abs_diff"] < 1e-12


def test_a_real_regression_mismatch_reports_its_largest_absolute_difference(
    tmp_path: Path,
) -> None:
    with pytest.raises(VerificationFailed) as caught:
        bundle.verify_bundle(regression_bundle(tmp_path, 0.3), env=os.environ)
    # 13 of 50 rows: the old message called the fraction 0.26 "the largest difference".
    assert "on 13 of 50 test rows (largest absolute difference 0.3 in y_pred" in str(caught.value)
