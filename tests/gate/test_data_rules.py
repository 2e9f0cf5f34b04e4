"""Data rules on comparison documents: each rule's pass and fail with the numbers in the reason,
and fail closed on what could not be read."""

from __future__ import annotations

import pytest

from mlops_ci.gate.rules import evaluate_gate
from mlops_ci.project.settings import parse_settings

POLICY = """\
data:
  tables: [{path: t.csv}]
  rules: {max_row_drop_pct: 5, schema_unchanged: true, max_drift: 0.1, max_missing_rate: 0.2}
"""


def _comparison(table: dict | None, *, sha: str | None = "a" * 40, data: bool = True) -> dict:
    doc: dict = {"schema_version": 1, "kind": "comparison", "metrics": [],
                 "baseline": {"sha": sha}, "candidate": {"sha": "b" * 40}}  # fmt: skip
    if data:
        doc["data"] = {"tables": [table] if table else [], "files": None}
    return doc


def _column(name: str, **fields: object) -> dict:
    return {"name": name, "change": "same", "candidate_missing": 0.0, "test": "ks",
            "effect": 0.01, "p_adjusted": 0.5, "drifted": False} | fields  # fmt: skip


def _table(**fields: object) -> dict:
    return {"path": "t.csv", "status": "changed", "errors": [],
            "baseline": {"rows": 100}, "candidate": {"rows": 100},
            "columns": [_column("a"), _column("b")]} | fields  # fmt: skip


def _results(comparison: dict) -> dict[str, tuple[str, str]]:
    verdict = evaluate_gate(comparison, parse_settings(POLICY))
    return {r.rule: (r.outcome, r.reason) for r in verdict.rules if r.metric == "data:t.csv"}


def test_an_unchanged_schema_and_small_shifts_pass():
    results = _results(_comparison(_table()))
    assert {rule: outcome for rule, (outcome, _) in results.items()} == {
        "max_row_drop_pct": "pass", "schema_unchanged": "pass", "max_drift": "pass",
        "max_missing_rate": "pass",
    }  # fmt: skip


def test_each_rule_fails_naming_the_column_and_the_numbers():
    columns = [
        _column("a", change="dtype", baseline_dtype="int64", candidate_dtype="str"),
        _column("b", effect=0.31, drifted=True, p_adjusted=0.0001, test="chi2"),
        _column("c", candidate_missing=0.35),
        _column("d", change="added"),
    ]
    results = _results(_comparison(_table(columns=columns, candidate={"rows": 80})))
    assert results["max_row_drop_pct"] == (
        "fail",
        "table t.csv dropped 20.00% of its rows (100 → 80), more than max_row_drop_pct 5",
    )
    assert results["schema_unchanged"][0] == "fail"
    assert "a int64 → str, d added" in results["schema_unchanged"][1]
    assert results["max_drift"][0] == "fail"
    assert "column b shifted with Cramér's V 0.3100" in results["max_drift"][1]
    assert results["max_missing_rate"] == (
        "fail",
        "table t.csv: column c is 35.00% missing, more than max_missing_rate 0.2",
    )


def test_a_large_effect_that_is_not_significant_does_not_fail_max_drift():
    columns = [_column("a", effect=0.5, drifted=False, p_adjusted=0.2)]
    assert _results(_comparison(_table(columns=columns)))["max_drift"][0] == "pass"


@pytest.mark.parametrize(
    ("comparison", "says"),
    [
        (_comparison(_table(status="unknown", errors=[{"revision": "abc", "message": "gone"}])),
         "cannot be judged: at abc: gone"),
        (_comparison(_table(status="absent")), "exists at neither revision"),
        (_comparison(_table(status="removed")), "is removed by this change"),
        (_comparison(None), "compare did not report it"),
        (_comparison(None, data=False), "comparison.json has no data section"),
    ],
)  # fmt: skip
def test_what_cannot_be_judged_fails_closed(comparison: dict, says: str):
    results = _results(comparison)
    assert results and all(outcome == "fail" for outcome, _ in results.values())
    assert all(says in reason for _, reason in results.values())


def test_a_first_pull_request_skips_data_rules_like_metric_rules():
    results = _results(_comparison(None, sha=None, data=False))
    assert results and all(outcome == "skipped" for outcome, _ in results.values())
