"""`worst_slice_drop`: the gate bounds the worst gated slice's drop, on the simultaneous intervals
when the rule is `significant`."""

from __future__ import annotations

import pytest

from mlops_ci.gate.rules import evaluate_gate
from mlops_ci.project.settings import parse_settings


def _comparison(*slices: tuple[str, float, float | None, float | None, bool]) -> dict:
    """Slices as (value, delta of accuracy, ci_low, ci_high, gated)."""
    return {
        "schema_version": 1, "kind": "comparison", "confidence": 0.95,
        "baseline": {"sha": "a" * 40}, "candidate": {"sha": "b" * 40}, "errors": [],
        "metrics": [{
            "name": "accuracy", "file": "m.json", "key": "accuracy", "baseline": 0.9,
            "candidate": 0.9, "direction": "higher", "status": "unchanged",
        }],
        "slices": {"columns": ["region"], "min_size": 100, "rows": [
            {"column": "region", "value": v, "gated": gated, "n_baseline": 500,
             "n_candidate": 500, "metrics": [{
                 "name": "accuracy", "baseline": 0.9, "candidate": 0.9 + d, "delta": d,
                 "ci_low": lo, "ci_high": hi, "direction": "higher"}]}
            for v, d, lo, hi, gated in slices
        ]},
    }  # fmt: skip


def _rule(comparison: dict, rule: str, on_inconclusive: str = "neutral"):
    settings = parse_settings(f"on_inconclusive: {on_inconclusive}\nmetrics:\n  accuracy: {rule}\n")
    verdict = evaluate_gate(comparison, settings)
    (result,) = [r for r in verdict.rules if r.rule == "worst_slice_drop"]
    return verdict, result


def test_a_slice_that_drops_past_the_limit_fails_naming_it() -> None:
    doc = _comparison(("eu", -0.01, None, None, True), ("us", -0.06, None, None, True))
    verdict, result = _rule(doc, "{worst_slice_drop: 0.05}")
    assert verdict.verdict == "fail" and result.outcome == "fail"
    assert "accuracy dropped 0.0600 in slice region=us, more than worst_slice_drop 0.05" in (
        result.reason
    )
    assert result.observed == pytest.approx(-0.06)


def test_slices_too_small_to_gate_are_not_judged() -> None:
    doc = _comparison(("eu", -0.01, None, None, True), ("tiny", -0.5, None, None, False))
    _verdict, result = _rule(doc, "{worst_slice_drop: 0.05}")
    assert result.outcome == "pass" and "the worst of 1 slices is region=eu" in result.reason


def test_significant_fails_only_when_a_whole_simultaneous_interval_is_beyond() -> None:
    sure = _comparison(("eu", -0.09, -0.12, -0.06, True), ("us", -0.07, -0.15, 0.01, True))
    _, result = _rule(sure, "{worst_slice_drop: 0.05, significant: true}")
    assert result.outcome == "fail" and "region=eu" in result.reason
    assert "simultaneous interval says at least 0.0600" in result.reason
    unsure = _comparison(("us", -0.07, -0.15, 0.01, True))
    _, result = _rule(unsure, "{worst_slice_drop: 0.05, significant: true}", "pass")
    assert result.outcome == "pass" and "rules out noise (on_inconclusive: pass)" in result.reason


def test_no_slices_to_judge_fails_closed_and_a_first_pr_skips() -> None:
    doc = _comparison()
    _verdict, result = _rule(doc, "{worst_slice_drop: 0.05}")
    assert result.outcome == "fail" and "no gated slices" in result.reason
    doc["metrics"][0]["baseline"] = None
    _, result = _rule(doc, "{worst_slice_drop: 0.05}")
    assert result.outcome == "skipped"
