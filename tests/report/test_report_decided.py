"""The report says, per metric, how its status was decided (interval, noise band, tolerance or
none), and shows the worst slices: a golden file holds the exact wording.

The rows are decided by the functions `compare` uses (`decide.decide_rows` on a real bootstrap
family and a real noise estimate). Set `UPDATE_GOLDEN=1` to rewrite the golden file
after a deliberate change of wording, then review its diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cmarkgfm
import numpy as np
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.compare.decide import decide_rows, family_document, slices_document
from mlops_ci.compare.noise import estimate_noise
from mlops_ci.compare.stats import Predictions, bootstrap_family
from mlops_ci.project.settings import parse_settings
from mlops_ci.report import build_report

GOLDEN = Path(__file__).parent / "golden" / "decided.md"
SETTINGS = parse_settings(
    """
artifact: classifier
predictions: eval/predictions.csv
slices: {columns: [region], min_size: 150, show: 4}
metrics:
  accuracy: {max_drop: 0.01, significant: true, worst_slice_drop: 0.05}
  model_size_mb: {tolerance_pct: 5}
"""
)


def _row(name: str, base: float, cand: float, direction: str = "higher") -> dict:
    return {
        "name": name, "file": "eval/metrics.json", "key": name, "baseline": base,
        "candidate": cand, "delta": cand - base, "rel_delta": (cand - base) / abs(base),
        "direction": direction, "ci_low": None, "ci_high": None, "ci_method": None,
        "status": "unchanged",
    }  # fmt: skip


def make_comparison() -> dict:
    rng = np.random.default_rng(7)
    n = 1200
    y = (rng.random(n) < 0.4).astype(int)
    region = np.array(["eu", "us", "apac", "latam"])[rng.choice(4, n, p=[0.4, 0.4, 0.15, 0.05])]
    shared = rng.normal(0, 1, n)
    scores = [1 / (1 + np.exp(-(1.6 * (2 * y - 1) + shared + 0.4 * rng.normal(0, 1, n))))
              for _ in range(2)]  # fmt: skip
    base, cand = (Predictions.from_arrays(y, (s > 0.5).astype(int), np.round(s, 4)) for s in scores)
    family = bootstrap_family(
        base, cand, ["accuracy", "roc_auc"], slices={"region": (region, region)},
        min_slice=SETTINGS.slices.min_size, n_resamples=400, seed=3, band_members=1,
    )  # fmt: skip
    history = [("a", 11.8), ("a", 12.3), ("a", 12.0), ("b", 12.9), ("b", 12.6), ("b", 13.1)]
    noise = {"predict_latency_ms": estimate_noise(history, "b", 13.1)}
    rows = [_row(m, ci.baseline, ci.candidate) for m, ci in family.overall.items()]
    rows += [
        _row("predict_latency_ms", 13.1, 17.9, "lower"),
        _row("model_size_mb", 3.10, 3.18, "lower"),
        _row("train_time_s", 41.0, 44.5, "lower"),
        _row("n_features", 30, 30),
    ]
    rows = decide_rows(rows, family, noise, SETTINGS)
    return {
        "schema_version": 1, "kind": "comparison", "artifact": "classifier",
        "target_branch": "main", "confidence": 0.95,
        "baseline": {"how": "merge-base", "ref": "main", "sha": "a" * 40},
        "candidate": {"ref": "workspace", "sha": "b" * 40, "branch": "feature"},
        "metrics": rows, "params": [], "plots": [], "stages": [], "errors": [], "warnings": [],
        "family": family_document(family, len(noise), SETTINGS),
        "slices": slices_document(family, SETTINGS),
    }  # fmt: skip


def test_each_metric_says_how_its_status_was_decided_golden() -> None:
    comparison = make_comparison()
    decided = {r["name"]: r["decided_by"] for r in comparison["metrics"]}
    assert decided == {
        "accuracy": "interval", "roc_auc": "interval", "predict_latency_ms": "noise band",
        "model_size_mb": "tolerance", "train_time_s": "none", "n_features": "none",
    }  # fmt: skip
    statuses = {r["name"]: r["status"] for r in comparison["metrics"]}
    assert statuses["predict_latency_ms"] == "regressed"  # 17.9 ms is past the band
    assert statuses["model_size_mb"] == "within-noise"  # +2.6%, inside the 5% tolerance
    assert statuses["train_time_s"] == "changed"  # no band at all: uncoloured
    text = build_report(comparison, None, limit=None).markdown
    text = re.sub(r"\*mlops-ci [^*]+\*", "*mlops-ci VERSION*", text)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_the_decided_by_column_and_worst_slices_render_as_tables_on_github() -> None:
    text = build_report(make_comparison(), None, limit=None).markdown
    html = cmarkgfm.markdown_to_html_with_extensions(
        text, options=Options.CMARK_OPT_GITHUB_PRE_LANG, extensions=["table"]
    )
    assert "<th>Decided by</th>" in html
    assert "<th>CI (simultaneous)</th>" in html
    cells = re.findall(r"<td>([^<]*)</td>", html)
    assert any(c.startswith("tolerance [") for c in cells)
    assert any("noise band [" in c for c in cells)
    assert "none: no interval, tolerance or noise estimate" in cells
    assert any(c.startswith("interval (") for c in cells)
    assert "not gated (under 150 rows)" in cells  # latam: about 60 rows


def test_a_comparison_with_family_slices_and_bands_passes_its_schema() -> None:
    """A fork's comparison.json is validated before the trusted job renders it."""
    import json

    from mlops_ci.project.untrusted import validate_document

    comparison = json.loads(json.dumps(make_comparison()))  # as read back from the file
    assert validate_document("comparison", comparison) == comparison
    comparison["metrics"][0]["status"] = "coloured"
    with pytest.raises(Exception, match="status"):
        validate_document("comparison", comparison)


def test_slice_values_from_the_repository_render_as_inert_text() -> None:
    comparison = make_comparison()
    hostile = "<img src=x onerror=alert(1)>|@admin ![x](https://tracker.invalid/p.png)"
    comparison["slices"]["rows"][0]["value"] = hostile
    comparison["slices"]["rows"][0]["metrics"][0]["name"] = "acc|uracy"
    comparison["family"]["interval_members"] = "many"  # not a number: no claim is made
    text = build_report(comparison, None, limit=None).markdown
    html = cmarkgfm.markdown_to_html_with_extensions(
        text, options=Options.CMARK_OPT_GITHUB_PRE_LANG, extensions=["table"]
    )
    assert "<img" not in html and 'href="https://tracker' not in html
    slices = html.split("Worst slices", 1)[1].split("</table>", 1)[0]
    assert all(row.count("<td") == 8 for row in slices.split("<tr>")[2:])
    assert "interval (" not in text.split("Worst slices")[0].split("| accuracy")[1].split("\n")[0]
