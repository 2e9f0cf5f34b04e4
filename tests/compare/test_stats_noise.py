"""Noise bands from the target branch's history, and how each metric's status is decided."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlops_ci.compare.decide import decide
from mlops_ci.compare.noise import estimate_noise, read_history, split_alpha, stage_inputs
from mlops_ci.project.git import Git
from mlops_ci.project.settings import MetricRule
from tests.conftest import git_commit_all

LOCK = """schema: '2.0'
stages:
  evaluate:
    cmd: python -m evaluate
    deps:
    - path: models/model.pkl
      hash: md5
      md5: {model}
      size: 100
    params:
      params.yaml:
        evaluate.batch: 1
    outs:
    - path: eval/metrics.json
      hash: md5
      md5: {out}
      size: 40
"""


def _commit(repo: Path, model: str, latency: float, out: str, message: str) -> str:
    (repo / "eval").mkdir(exist_ok=True)
    (repo / "eval" / "metrics.json").write_text(f'{{"latency_ms": {latency}, "acc": 0.9}}')
    (repo / "dvc.lock").write_text(LOCK.format(model=model, out=out))
    return git_commit_all(repo, message)


def test_history_groups_repeat_runs_by_their_stage_s_declared_inputs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = Git(repo)
    git.run("init", "--quiet", "-b", "main")
    _commit(repo, "m1", 10.0, "o1", "model 1")
    _commit(repo, "m1", 10.6, "o2", "re-run")
    _commit(repo, "m1", 10.6, "o2", "docs only: a copy, not a measurement")
    (repo / "README").write_text("x")
    git_commit_all(repo, "no metrics change: not in the log")
    _commit(repo, "m2", 14.0, "o3", "model 2")
    baseline = _commit(repo, "m2", 13.3, "o4", "re-run")
    history = read_history(
        git, "main", [("eval/metrics.json", "latency_ms")], commits=20, baseline_sha=baseline
    )
    points = history.points["eval/metrics.json", "latency_ms"]
    assert [v for _, v in points] == [13.3, 14.0, 10.6, 10.0]  # newest first, the copy left out
    digests = [d for d, _ in points]
    assert digests[0] == digests[1] != digests[2] == digests[3]
    assert history.baseline_inputs["eval/metrics.json"] == digests[0]
    # Two repeat measurements are too few for a band.
    assert estimate_noise(points, history.baseline_inputs["eval/metrics.json"], 13.3) is None
    est = estimate_noise(
        [*points, *points], history.baseline_inputs["eval/metrics.json"], 13.3
    )  # the same runs seen twice: four repeats
    assert est is not None and est.relative and est.df == 6 and est.n_centre == 4
    assert est.centre == pytest.approx(math.sqrt(14.0 * 13.3))  # geometric mean of its set


def test_a_hand_edited_metric_on_three_commits_gives_no_band(tmp_path: Path) -> None:
    """main: three commits whose stage inputs are the same, the metric edited by hand on the
    last. With one or two degrees of freedom the band would span any value; there is none."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = Git(repo)
    git.run("init", "--quiet", "-b", "main")
    _commit(repo, "m1", 0.91, "o1", "train")
    _commit(repo, "m1", 0.90, "o2", "re-run")
    baseline = _commit(repo, "m1", 0.2, "o3", "edited by hand")
    history = read_history(
        git, "main", [("eval/metrics.json", "latency_ms")], commits=20, baseline_sha=baseline
    )
    points = history.points["eval/metrics.json", "latency_ms"]
    assert len({d for d, _ in points}) == 1 and len(points) == 3
    assert estimate_noise(points, history.baseline_inputs["eval/metrics.json"], 0.2) is None


def test_the_digest_ignores_outputs_and_sizes_but_not_params() -> None:
    a = stage_inputs(LOCK.format(model="m", out="o1").encode())
    b = stage_inputs(LOCK.format(model="m", out="o2").encode().replace(b"size: 100", b"size: 7"))
    c = stage_inputs(LOCK.format(model="m", out="o1").encode().replace(b"batch: 1", b"batch: 2"))
    assert a["eval/metrics.json"] == b["eval/metrics.json"] != c["eval/metrics.json"]
    assert stage_inputs(b"{not yaml") == {} and stage_inputs(None) == {}


def test_too_few_repeat_measurements_mean_no_estimate() -> None:
    assert estimate_noise([("a", 1.0), ("b", 1.2), ("c", 0.9)], "c", 0.9) is None
    assert estimate_noise([("a", 1.0), ("a", 1.1), ("a", 0.9), ("a", 1.0)], "a", 1.0) is None
    runs = [("a", -1.0), ("a", 1.0), ("a", 0.0), ("a", 0.5), ("a", -0.5)]
    est = estimate_noise(runs, "x", 0.5)  # not all positive: absolute
    assert est is not None and not est.relative and est.n_centre == 1 and est.centre == 0.5


def test_split_alpha_spends_the_whole_error_once() -> None:
    boot, band = split_alpha(0.05, 36, 3)
    assert boot + 3 * band == pytest.approx(0.05)
    assert split_alpha(0.05, 0, 1) == (0.0, 0.05)


def _row(base: float, cand: float, direction: str = "lower") -> dict:
    return {"name": "m", "key": "m", "baseline": base, "candidate": cand, "direction": direction}


def test_how_a_status_is_decided() -> None:
    runs = [("a", 10.0), ("a", 10.5), ("a", 9.7), ("a", 10.3), ("a", 10.2)]
    est = estimate_noise(runs, "a", 10.2)
    assert est is not None
    low, high = est.band(0.05)
    inside = decide(_row(10.2, high * 0.99), None, est, None, 0.05)
    assert inside["status"] == "within-noise" and inside["decided_by"] == "noise band"
    assert decide(_row(10.2, high * 1.01), None, est, None, 0.05)["status"] == "regressed"
    assert decide(_row(10.2, low * 0.99), None, est, None, 0.05)["status"] == "improved"
    assert decide(_row(10.2, high * 1.01, "higher"), None, est, None, 0.05)["status"] == "improved"
    # The policy's tolerance wins over the estimate; without either: changed, uncoloured.
    rule = MetricRule(tolerance_pct=50)
    tol = decide(_row(10.2, 14.0), None, est, rule, 0.05)
    assert tol["decided_by"] == "tolerance" and tol["status"] == "within-noise"
    assert tol["band_low"] == pytest.approx(5.1) and tol["band_high"] == pytest.approx(15.3)
    assert decide(_row(10.2, 16.0), None, None, MetricRule(tolerance=5.0), 0.05)["status"] == (
        "regressed"
    )
    none = decide(_row(10.2, 14.0), None, None, None, 0.05)
    assert none == {"status": "changed", "decided_by": "none"}
    assert decide(_row(10.2, 10.2), None, None, None, 0.05)["status"] == "unchanged"


def test_a_narrower_share_of_the_error_widens_the_band() -> None:
    est = estimate_noise([("a", 10.0), ("a", 10.5), ("a", 9.7), ("a", 10.1), ("a", 9.9)], "a", 9.7)
    assert est is not None
    assert est.half_width(0.05 / 10) > est.half_width(0.05) > 0


def test_the_t_quantile_equals_scipys() -> None:
    from scipy.special import stdtrit

    from mlops_ci.compare.noise import t_quantile

    for df in [*range(1, 60), 99, 200, 1000]:
        for alpha in (0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 1e-6):
            q = 1 - alpha / 2
            assert t_quantile(df, q) == pytest.approx(float(stdtrit(df, q)), rel=1e-9), (df, alpha)
