"""The verdict's error rates, measured: seeded trials through the functions compare and gate use
(`tests/gate/simulation.py` says which). Every trial gates six interval metrics on all rows and
on five slices plus three metrics judged by a noise band from the target branch's history."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_ci.compare.decide import decide_rows
from mlops_ci.compare.noise import estimate_noise
from mlops_ci.project.settings import parse_settings
from tests.gate.simulation import draw_history, run_trial

pytestmark = pytest.mark.slow  # hundreds of simulated pull requests

TRIALS = 500


def test_equal_models_fail_and_colour_anything_in_at_most_5_percent_of_trials() -> None:
    failed = coloured = 0
    for seed in range(TRIALS):
        trial = run_trial(seed, 2000)
        failed += trial.verdict == "fail"
        coloured += bool(trial.coloured)
    # 9 metrics, 36 metric-and-slice intervals, 3 noise bands: at most 25 of 500 trials.
    assert failed <= TRIALS * 0.05, failed
    assert coloured <= TRIALS * 0.05, coloured


def test_a_three_point_accuracy_drop_in_a_fifth_of_20k_rows_fails_the_gate_in_90_percent() -> None:
    trials = 120
    caught = sum(
        run_trial(10_000 + seed, 20_000, drop=0.03, drop_in="a").verdict == "fail"
        for seed in range(trials)
    )
    assert caught >= 0.90 * trials, caught


def test_a_three_point_overall_drop_fails_the_gate_in_95_percent() -> None:
    trials = 120
    caught = sum(
        run_trial(20_000 + seed, 20_000, drop=0.03).verdict == "fail" for seed in range(trials)
    )
    assert caught >= 0.95 * trials, caught


LATENCY_POLICY = parse_settings("metrics:\n  predict_latency_ms: {direction: lower}\n")


def _latency_status(seed: int, slowdown: float, kind: str) -> str:
    """One pull request: main's history of a latency with 5% run-to-run noise (20 commits over
    four input sets), the baseline at main's tip, the candidate re-measured (times `slowdown`)."""
    rng = np.random.default_rng(seed)
    points, before, after = draw_history(rng, 12.0, 0.05, kind=kind)
    after *= slowdown
    noise = {"predict_latency_ms": estimate_noise(points, points[-1][0], before)}
    row = {
        "name": "predict_latency_ms", "key": "predict_latency_ms", "baseline": before,
        "candidate": after, "direction": "lower", "status": "unchanged",
    }  # fmt: skip
    (decided,) = decide_rows([row], None, noise, LATENCY_POLICY)
    assert decided["decided_by"] == "noise band"
    return decided["status"]


def test_latency_within_5_percent_is_rarely_flagged_and_a_30_percent_slowdown_always_is() -> None:
    unchanged = [_latency_status(seed, 1.0, "uniform") for seed in range(200)]
    flagged = sum(s in ("improved", "regressed") for s in unchanged)
    assert flagged <= 200 * 0.05, flagged
    assert unchanged.count("within-noise") == 200 - flagged
    slower = [_latency_status(1000 + seed, 1.3, "uniform") for seed in range(200)]
    assert slower == ["regressed"] * 200, [s for s in slower if s != "regressed"]


def test_latency_with_a_5_percent_standard_deviation_is_flagged_at_the_nominal_rate() -> None:
    """Lognormal noise of standard deviation 5%: the band is a 95% prediction interval, so
    about 10 of 200 unchanged pull requests are flagged (binomial spread: 4 to 17 for 99%),
    and a 30% slowdown (5.2 standard deviations) is missed about once in 300."""
    unchanged = [_latency_status(seed, 1.0, "lognormal") for seed in range(200)]
    flagged = sum(s in ("improved", "regressed") for s in unchanged)
    assert 4 <= flagged <= 17, flagged
    slower = [_latency_status(1000 + seed, 1.3, "lognormal") for seed in range(200)]
    assert slower.count("regressed") >= 196, slower.count("regressed")
