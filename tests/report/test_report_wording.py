"""The report's sentences held to their oracles: the headline to the table's rows, p-values to
scipy, the baseline's name to what compare resolved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, ks_2samp

from mlops_ci.compare.drift import column_rows, correct
from mlops_ci.compare.tabular import table_from_frame
from mlops_ci.report import build_report
from tests.report.report_parse import table_with, unescape
from tests.report.test_report_data import _comparison
from tests.report.test_report_inputs import HEAD_SHA, make_comparison


def _changed(name: str, base: float, cand: float, direction: str = "higher") -> dict:
    return {"name": name, "baseline": base, "candidate": cand, "delta": cand - base,
            "rel_delta": (cand - base) / base, "direction": direction, "ci_low": None,
            "ci_high": None, "status": "changed", "decided_by": "none"}  # fmt: skip


def test_without_a_noise_estimate_the_headline_counts_by_point_value_as_the_table() -> None:
    rows = [_changed("acc", 0.9, 0.49), _changed("f1", 0.8, 0.7),
            _changed("loss", 0.3, 0.2, "lower")]  # fmt: skip
    markdown = build_report(make_comparison(metrics=rows), None, limit=None).markdown
    head = markdown.split("#### Metrics")[0]
    assert "0 regressed" not in head and "0 improved" not in head
    assert "2 worse, 1 better by point value; no noise estimate" in head
    table = table_with(markdown, "Metric")[1:]
    words = [r[-2].split("(")[-1] for r in table]
    assert sorted(words) == sorted(["worse by point value)"] * 2 + ["better by point value)"])
    # how to get intervals or bands is said once
    assert unescape(markdown).count("mlops-ci noise") == 1


def test_p_values_are_scientific_and_corrected_from_unrounded_values() -> None:
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(0, 1, 400),
                         "c": rng.normal(0, 1, 400)})  # fmt: skip
    cand = pd.DataFrame({"a": rng.normal(0.5, 1, 400), "b": rng.normal(3, 1, 400),
                         "c": rng.normal(0, 1, 400)})  # fmt: skip
    rows = column_rows(table_from_frame(base), table_from_frame(cand), None)
    correct(rows, 0.01)
    raw = [ks_2samp(base[c], cand[c]).pvalue for c in "abc"]
    expected = false_discovery_control(raw)
    assert raw[1] < 1e-100  # what rounding to six decimals turned into 0
    for row, p in zip(rows, expected, strict=True):
        assert row["p_adjusted"] > 0
        np.testing.assert_allclose(row["p_adjusted"], p, rtol=1e-4)
    doc = _comparison(1, 0, 0)
    doc["data"]["tables"][0]["columns"] = rows
    markdown = build_report(doc, None, limit=None).markdown
    shown = {unescape(r[0]): r[5] for r in table_with(markdown, "Column")[1:]}
    assert set(shown) == {"a", "b"}  # c did not shift: not listed
    for name, p in zip("ab", expected, strict=False):
        assert shown[name] == f"{p:.2e}"
        assert float(shown[name]) > 0


def test_a_commit_compared_with_itself_says_so() -> None:
    doc = make_comparison(baseline={"how": "merge-base", "ref": "main", "sha": HEAD_SHA})
    markdown = build_report(doc, None, limit=None).markdown
    assert "compared with itself" in markdown.split("#### Metrics")[0]


def test_the_model_card_names_a_stage_baseline_in_words() -> None:
    from mlops_ci.registry.bundle import baseline_words

    stage = {"how": "stage:production", "ref": "production", "sha": "1a2b3c4d5e6f7081"}
    assert baseline_words(stage) == "the version in stage production, commit 1a2b3c4d5e6f"
    assert baseline_words({"how": "merge-base", "ref": "main", "sha": None}) == (
        "the merge-base with main"
    )


def test_the_trend_ends_with_the_tables_change_and_marks_the_baseline() -> None:
    """The baseline is the merge-base, not main's tip: main moved on to a better value, so a
    trend that ended tip -> PR would draw a fall where the table says improved."""
    from mlops_ci.report import Trend, TrendPoint

    base = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
    doc = make_comparison()
    accuracy = next(m for m in doc["metrics"] if m["name"] == "accuracy")
    accuracy.update(baseline=0.90, candidate=0.93, status="improved")
    points = [TrendPoint(base, "old", {"accuracy": None}),  # unreadable in git alone
              TrendPoint("c" * 40, "newer", {"accuracy": 0.97})]  # fmt: skip
    trend = Trend(ref="main", metrics=["accuracy"], points=points)
    markdown = build_report(doc, None, limit=None, trend=trend).markdown
    (chart,) = [c for c in parse_charts_all(markdown) if "accuracy" in c[0]]
    title, categories, values = chart
    assert title == "accuracy - 2 commits of main, then PR"
    assert categories == ["1a2b3c4 baseline", "ccccccc", "PR"]
    assert values == [0.90, 0.97, 0.93]  # the baseline as the table shows it, no null


def parse_charts_all(markdown: str) -> list[tuple[str, list[str], list[float]]]:
    """Every Mermaid block (the trend's have no bold title above them)."""
    import re

    out = []
    for src in re.findall(r"```mermaid\n(.*?)\n```", markdown, flags=re.S):
        title = re.search(r'title "([^"]*)"', src).group(1)
        cats = re.search(r"x-axis \"[^\"]*\" \[([^\]]*)\]", src)
        line = re.search(r"line \[([^\]]*)\]", src)
        categories = [c.strip().strip('"') for c in cats.group(1).split(",")] if cats else []
        out.append((title, categories, [float(v) for v in line.group(1).split(",")]))
    return out


def test_the_trend_follows_gated_metrics_first() -> None:
    from mlops_ci.commands.report import load_trend
    from mlops_ci.report import key_metrics

    doc = make_comparison(trend={"ref": "main", "metrics": ["accuracy", "f1"], "commits": []})
    names = ["f1", "accuracy"]
    assert [m["name"] for m in key_metrics(doc, names)][:2] == names
    verdict = {"rules": [
        {"metric": "accuracy", "rule": "direction", "outcome": "skipped"},  # listed, not gated
        {"metric": "f1", "rule": "max_drop", "outcome": "pass"},
    ]}  # fmt: skip
    for m in doc["metrics"]:
        m.setdefault("file", "eval/metrics.json")
        m.setdefault("key", m["name"])
    trend = load_trend(Path("."), doc, verdict)
    assert trend is not None and trend.metrics[:2] == ["f1", "accuracy"]
