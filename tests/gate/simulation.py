"""Seeded trials of whole comparisons, driven through the functions `compare` and `gate` use.

Each trial draws a test set, two models' predictions and the history of three metrics that
have no per-sample predictions; then `stats.bootstrap_family` (intervals that hold together, on
all rows and on each slice), `noise.estimate_noise`, `decide.decide_rows` and
`decide.slices_document` build the comparison rows as `compare` does, and
`rules.evaluate_gate` judges them with a real policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlops_ci.compare.decide import decide_rows, family_document, slices_document
from mlops_ci.compare.noise import estimate_noise
from mlops_ci.compare.stats import Predictions, bootstrap_family
from mlops_ci.gate.rules import evaluate_gate
from mlops_ci.project.settings import parse_settings

INTERVAL_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
# name -> (typical value, run-to-run noise as a share of it, direction)
BANDED = {
    "predict_latency_ms": (12.0, 0.05, "lower"),
    "train_time_s": (40.0, 0.10, "lower"),
    "model_size_mb": (3.0, 0.02, "lower"),
}
POLICY = """
artifact: model
predictions: eval/predictions.csv
slices: {columns: [segment], min_size: 100}
metrics:
  accuracy: {max_drop: 0, significant: true, worst_slice_drop: 0}
  precision: {max_drop: 0, significant: true}
  recall: {max_drop: 0, significant: true}
  f1: {max_drop: 0, significant: true, worst_slice_drop: 0}
  roc_auc: {max_drop: 0, significant: true, worst_slice_drop: 0}
  log_loss: {max_drop: 0, significant: true}
  predict_latency_ms: {max_drop_pct: 30}
  train_time_s: {max_drop_pct: 50}
  model_size_mb: {max: 10}
"""
SETTINGS = parse_settings(POLICY)
SEGMENTS = np.array(["a", "b", "c", "d", "e"])


@dataclass
class Trial:
    verdict: str
    coloured: list[str]  # rows and slice metrics shown improved or regressed


def draw_pair(
    rng: np.random.Generator, n: int, *, drop: float = 0.0, drop_in: str | None = None
) -> tuple[Predictions, Predictions, np.ndarray]:
    """Two models of equal quality that share most of their errors (as two versions of one
    model do), and a segment column; `drop`: the candidate loses that much accuracy on the
    rows of segment `drop_in` (all rows when None) by flipping right answers to wrong."""
    y = (rng.random(n) < 0.4).astype(int)
    segment = SEGMENTS[rng.integers(0, len(SEGMENTS), n)]
    shared = rng.normal(0, 1, n)
    sides = []
    for _ in range(2):
        logit = 1.6 * (2 * y - 1) + shared + 0.45 * rng.normal(0, 1, n)
        sides.append(1 / (1 + np.exp(-logit)))
    base, cand = sides
    if drop:
        inside = np.ones(n, bool) if drop_in is None else segment == drop_in
        right = inside & ((cand > 0.5) == (y == 1))
        flip = right & (rng.random(n) < drop * inside.sum() / max(right.sum(), 1))
        cand = np.where(flip, 1 - cand, cand)
    ids = np.arange(n)
    return (
        Predictions.from_arrays(y, (base > 0.5).astype(int), np.round(base, 6), ids=ids),
        Predictions.from_arrays(y, (cand > 0.5).astype(int), np.round(cand, 6), ids=ids),
        segment,
    )


def draw_history(
    rng: np.random.Generator,
    typical: float,
    noise: float,
    *,
    commits: int = 20,
    sets: int = 4,
    kind: str = "lognormal",
) -> tuple[list[tuple[str, float]], float, float]:
    """History points (inputs digest, value) of a metric with run-to-run noise (`lognormal`:
    log values with standard deviation `noise`; `uniform`: within +-`noise` of the level), the
    baseline's value (the newest point) and a fresh candidate measurement with the same inputs.
    Each input set has its own level, as a change of inputs moves a latency."""

    def jitter() -> float:
        if kind == "uniform":
            return float(1 + rng.uniform(-noise, noise))
        return float(np.exp(rng.normal(0, noise)))

    digests = [f"inputs-{i * sets // commits}" for i in range(commits)]
    level = {d: typical * np.exp(rng.normal(0, 0.1)) for d in sorted(set(digests))}
    points = [(d, float(level[d] * jitter())) for d in digests]
    return points, points[-1][1], float(level[digests[-1]] * jitter())


def run_trial(
    seed: int,
    n: int,
    *,
    drop: float = 0.0,
    drop_in: str | None = None,
    slowdown: float = 1.0,
    resamples: int = 1000,
) -> Trial:
    rng = np.random.default_rng(seed)
    base, cand, segment = draw_pair(rng, n, drop=drop, drop_in=drop_in)
    noise, rows = {}, []
    for name, (typical, sd, direction) in BANDED.items():
        points, before, after = draw_history(rng, typical, sd)
        after *= slowdown if name == "predict_latency_ms" else 1.0
        est = estimate_noise(points, points[-1][0], before)
        if est is not None:
            noise[name] = est
        rows.append(_row(name, before, after, direction))
    family = bootstrap_family(
        base, cand, INTERVAL_METRICS, slices={"segment": (segment, segment)},
        min_slice=SETTINGS.slices.min_size, confidence=SETTINGS.confidence,
        n_resamples=resamples, seed=seed, band_members=len(noise),
    )  # fmt: skip
    for name, ci in family.overall.items():
        rows.append(_row(name, ci.baseline, ci.candidate, ci.direction))
    rows = decide_rows(rows, family, noise, SETTINGS)
    comparison = {
        "schema_version": 1, "kind": "comparison", "confidence": SETTINGS.confidence,
        "baseline": {"sha": "a" * 40}, "candidate": {"sha": "b" * 40}, "metrics": rows,
        "errors": [], "family": family_document(family, len(noise), SETTINGS),
        "slices": slices_document(family, SETTINGS),
    }  # fmt: skip
    verdict = evaluate_gate(comparison, SETTINGS)
    coloured = [r["name"] for r in rows if r["status"] in ("improved", "regressed")]
    for s in comparison["slices"]["rows"]:
        coloured += [
            f"{s['column']}={s['value']}:{m['name']}" for m in s["metrics"]
            if m["status"] in ("improved", "regressed")
        ]  # fmt: skip
    return Trial(verdict.verdict, coloured)


def _row(name: str, base: float, cand: float, direction: str) -> dict:
    return {
        "name": name, "file": "eval/metrics.json", "key": name, "baseline": base,
        "candidate": cand, "delta": cand - base, "rel_delta": (cand - base) / abs(base),
        "direction": direction, "ci_low": None, "ci_high": None, "ci_method": None,
        "status": "unchanged",
    }  # fmt: skip
