"""Realistic `comparison.json` / `verdict.json` documents for the report tests (docs/documents.md)."""

from __future__ import annotations

import math
from typing import Any

BASE_SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
HEAD_SHA = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c"


def roc_points(power: float, n: int = 50) -> list[dict[str, float]]:
    return [{"fpr": i / (n - 1), "tpr": (i / (n - 1)) ** power} for i in range(n)]


def pr_points(shift: float, n: int = 50) -> list[dict[str, float]]:
    return [
        {"recall": i / (n - 1), "precision": max(0.0, 1 - (i / (n - 1)) ** 3 * shift)}
        for i in range(n)
    ]


def confusion_rows(errors: int) -> list[dict[str, str]]:
    rows = []
    for actual in ("0", "1", "2"):
        for i in range(20):
            predicted = str((int(actual) + 1) % 3) if i < errors else actual
            rows.append({"actual": actual, "predicted": predicted})
    return rows


def metric(name: str, baseline: Any, candidate: Any, status: str, **extra: Any) -> dict:
    delta = rel = None
    if isinstance(baseline, (int, float)) and isinstance(candidate, (int, float)):
        delta = candidate - baseline
        rel = delta / baseline if baseline else None
    row = {
        "name": name,
        "file": "eval/metrics.json",
        "key": name,
        "baseline": baseline,
        "candidate": candidate,
        "delta": delta,
        "rel_delta": rel,
        "direction": "higher",
        "ci_low": None,
        "ci_high": None,
        "status": status,
    }
    row.update(extra)
    return row


def make_comparison(**overrides: Any) -> dict:
    doc = {
        "schema_version": 1,
        "kind": "comparison",
        "tool_version": "0.1.0",
        "created_at": "2026-11-27T10:00:00Z",
        "artifact": "classifier",
        "target_branch": "main",
        "confidence": 0.95,
        "baseline": {
            "how": "merge-base",
            "ref": "main",
            "sha": BASE_SHA,
            "subject": "Train on the full data set",
        },
        "candidate": {
            "ref": "workspace",
            "sha": HEAD_SHA,
            "branch": "feature/wider-trees",
            "dirty": False,
        },
        "metrics": [
            metric(
                "accuracy",
                0.9561,
                0.9348,
                "regressed",
                ci_low=-0.031,
                ci_high=-0.011,
                ci_method="paired-bootstrap",
            ),
            metric(
                "f1",
                0.9402,
                0.9455,
                "inconclusive",
                ci_low=-0.004,
                ci_high=0.012,
                ci_method="paired-bootstrap",
            ),
            metric(
                "roc_auc",
                0.981,
                0.989,
                "improved",
                ci_low=0.002,
                ci_high=0.013,
                ci_method="paired-bootstrap",
            ),
            metric("latency_ms", 12.5, 12.5, "unchanged", direction="lower"),
            metric("per_class.0.f1", 0.97, 0.97, "unchanged"),
            metric("per_class.1.f1", 0.91, 0.93, "improved"),
        ],
        "params": [
            {
                "name": "train.max_depth",
                "file": "params.yaml",
                "baseline": 4,
                "candidate": 8,
                "change": "changed",
            },
            {
                "name": "train.criterion",
                "file": "params.yaml",
                "baseline": None,
                "candidate": "entropy",
                "change": "added",
            },
        ],
        "plots": [
            {
                "id": "eval/plots/roc.json",
                "title": "ROC",
                "x": "fpr",
                "y": "tpr",
                "template": "simple",
                "baseline": roc_points(0.4),
                "candidate": roc_points(0.3),
            },
            {
                "id": "eval/plots/prc.json",
                "title": "Precision-recall",
                "x": "recall",
                "y": "precision",
                "template": "simple",
                "baseline": pr_points(0.6),
                "candidate": pr_points(0.4),
            },
            {
                "id": "eval/plots/confusion.json",
                "title": "Confusion",
                "x": "actual",
                "y": "predicted",
                "template": "confusion",
                "baseline": confusion_rows(3),
                "candidate": confusion_rows(1),
            },
        ],
        "stages": [
            {"name": "prepare", "status": "unchanged", "duration_s": 0.01},
            {"name": "train", "status": "ran", "duration_s": 2.5},
            {"name": "evaluate", "status": "restored", "source": "run-cache", "duration_s": 0.3},
        ],
        "policy_change": {"changed": False, "diff": ""},
        "errors": [],
        "warnings": [],
    }
    doc.update(overrides)
    return doc


def make_verdict(outcome: str = "fail") -> dict:
    reason = "accuracy dropped 0.0213 (0.9561 → 0.9348), more than max_drop 0.01"
    return {
        "schema_version": 1,
        "kind": "verdict",
        "tool_version": "0.1.0",
        "artifact": "classifier",
        "verdict": outcome,
        "summary": reason if outcome == "fail" else "all rules passed",
        "baseline_sha": BASE_SHA,
        "candidate_sha": HEAD_SHA,
        "policy": {"revision": BASE_SHA, "path": "mlops-ci.yaml"},
        "rules": [
            {
                "metric": "accuracy",
                "rule": "max_drop",
                "threshold": 0.01,
                "observed": -0.0213,
                "outcome": outcome,
                "reason": reason,
            },
        ],
    }


def many_metrics(n: int, changed_every: int = 7) -> list[dict]:
    """`n` metric rows, most unchanged, some regressed or improved (a per-feature report)."""
    rows = []
    for i in range(n):
        base = 0.5 + 0.4 * math.sin(i)
        if i % changed_every == 0:
            cand, status = base - 0.01, "regressed"
        elif i % changed_every == 1:
            cand, status = base + 0.01, "improved"
        else:
            cand, status = base, "unchanged"
        rows.append(metric(f"per_feature.feature_{i:05d}.importance_gain", base, cand, status))
    return rows
