"""The report says, per metric, how its status was decided (interval, noise band, tolerance or
none), and shows the worst slices: a golden file holds the exact wording.

The rows are decided by the functions `compare` uses (`decide.decide_rows` on a real bootstrap
family and a real noise estimate). Before the golden file is compared, or rewritten with
`UPDATE_GOLDEN=1` after a deliberate change of wording, the report is read back and held to its
oracles: every value to scikit-learn on the generated predictions, the noise band to scipy's t
quantile, the tolerance band to the policy, the confidence levels to the error split. A golden
file can only ever hold a report that says what they say.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cmarkgfm
import numpy as np
import pytest
from cmarkgfm.cmark import Options
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, roc_auc_score

from mlops_ci.compare.decide import decide_rows, family_document, slices_document
from mlops_ci.compare.noise import estimate_noise
from mlops_ci.compare.stats import Predictions, bootstrap_family
from mlops_ci.project.settings import parse_settings
from mlops_ci.report import build_report
from tests.report.report_parse import table_with, unescape
from tests.report.test_report_oracle import check_headline

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


HISTORY = [("a", 11.8), ("a", 12.3), ("a", 12.0), ("b", 12.9), ("b", 12.6), ("b", 13.1)]


def generated() -> dict[str, np.ndarray]:
    """The test set (labels, region) and both revisions' scores."""
    rng = np.random.default_rng(7)
    n = 1200
    y = (rng.random(n) < 0.4).astype(int)
    region = np.array(["eu", "us", "apac", "latam"])[rng.choice(4, n, p=[0.4, 0.4, 0.15, 0.05])]
    shared = rng.normal(0, 1, n)
    scores = [1 / (1 + np.exp(-(1.6 * (2 * y - 1) + shared + 0.4 * rng.normal(0, 1, n))))
              for _ in range(2)]  # fmt: skip
    return {"y": y, "region": region, "baseline": np.round(scores[0], 4),
            "candidate": np.round(scores[1], 4)}  # fmt: skip


def make_comparison() -> dict:
    data = generated()
    y, region = data["y"], data["region"]
    base, cand = (
        Predictions.from_arrays(y, (data[side] > 0.5).astype(int), data[side])
        for side in ("baseline", "candidate")
    )
    family = bootstrap_family(
        base, cand, ["accuracy", "roc_auc"], slices={"region": (region, region)},
        min_slice=SETTINGS.slices.min_size, n_resamples=400, seed=3, band_members=1,
    )  # fmt: skip
    noise = {"predict_latency_ms": estimate_noise(HISTORY, "b", 13.1)}
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
    assert oracle_problems(text) == []
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def _close(cell: str, value: float) -> bool:
    """A cell shows `value` rounded to the decimals it prints."""
    text = unescape(cell).replace("−", "-").lstrip("+")
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10.0**-decimals + 1e-12


def _sklearn(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"accuracy": accuracy_score(y, scores > 0.5), "roc_auc": roc_auc_score(y, scores)}


def _scipy_band(alpha: float) -> tuple[float, float]:
    """The noise band of predict_latency_ms: a t prediction interval on log values, pooled
    within input sets, around the mean of the baseline's own set."""
    groups: dict[str, list[float]] = {}
    for digest, value in HISTORY:
        groups.setdefault(digest, []).append(np.log(value))
    df = sum(len(g) - 1 for g in groups.values())
    sd = np.sqrt(sum(((np.array(g) - np.mean(g)) ** 2).sum() for g in groups.values()) / df)
    own = groups["b"]
    half = scipy_stats.t.ppf(1 - alpha / 2, df) * sd * np.sqrt(1 + 1 / len(own))
    centre = np.mean(own)
    return float(np.exp(centre - half)), float(np.exp(centre + half))


def oracle_problems(markdown: str) -> list[str]:
    """What the report says that scikit-learn, scipy or the policy do not."""
    data = generated()
    bad = check_headline(markdown)
    rows = {unescape(r[0]).rstrip(" ↑↓"): r for r in table_with(markdown, "Metric")[1:]}
    truth = {side: _sklearn(data["y"], data[side]) for side in ("baseline", "candidate")}
    for metric in ("accuracy", "roc_auc"):
        row = rows[metric]
        base, cand = truth["baseline"][metric], truth["candidate"][metric]
        if not (_close(row[1], base) and _close(row[2], cand) and _close(row[3], cand - base)):
            bad.append(f"{metric}: report {row[1:4]}, scikit-learn {base} -> {cand}")
        low, high = (float(v) for v in unescape(row[5]).strip("[]").split(","))
        if not low <= cand - base <= high:
            bad.append(f"{metric}: interval {row[5]} does not hold its own point delta")
    # 8 intervals (2 metrics on all rows and 3 gated slices) and 1 band share 5% by count.
    members, bands = 8, 1
    joint = 1 - members / (members + bands) * 0.05
    band_level = 1 - bands / (members + bands) * 0.05
    header = table_with(markdown, "Metric")[0]
    if f"CI (all hold at {joint:.1%})" not in header:
        bad.append(f"CI header {header[5]!r}, the split gives {joint:.1%}")
    latency = unescape(rows["predict_latency_ms"][7])
    found = re.search(r"([\d.]+)% noise band \[([\d.]+), ([\d.]+)\]", latency)
    low, high = _scipy_band(1 - band_level)
    if not (found and found.group(1) == f"{band_level:.1%}"[:-1]
            and _close(found.group(2), low) and _close(found.group(3), high)):  # fmt: skip
        bad.append(f"latency: report {latency!r}, scipy {band_level:.1%} [{low:.4g}, {high:.4g}]")
    size = unescape(rows["model_size_mb"][7])
    if size != f"tolerance [{3.10 * 0.95:.4g}, {3.10 * 1.05:.4g}] (policy)":
        bad.append(f"model_size_mb: report {size!r}, the policy gives 3.1 ± 5%")
    for row in table_with(markdown, "Slice")[1:]:
        value = unescape(row[0]).split("=", 1)[1]
        member = data["region"] == value
        count = f"{member.sum()} / {member.sum()}"
        metric = unescape(row[2])
        base, cand = (_sklearn(data["y"][member], data[s][member])[metric]
                      for s in ("baseline", "candidate"))  # fmt: skip
        if unescape(row[1]) != count or not (_close(row[3], base) and _close(row[4], cand)):
            bad.append(
                f"slice {value}: report {row[1:5]}, numpy/scikit-learn {count} {base} {cand}"
            )
    return bad


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

    from mlops_ci.ci.untrusted import validate_document

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
