"""The data rules of the policy (`data.rules`, and a table's own `rules`) judged on the `data`
section of a comparison, like metric rules: each result names the table, the rule and the
numbers.

Fail closed: a table a rule needs that compare could not read (status `unknown`), that exists
at neither revision, or a comparison without a data section fails the rule; it never passes
for want of data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_ci.compare.wording import p_text
from mlops_ci.gate.verdict import RuleResult, fmt
from mlops_ci.project.data_settings import DataRules, TableSettings
from mlops_ci.project.settings import Settings

_SLACK = 1e-9


def _tables(comparison: Mapping[str, Any]) -> tuple[dict[str, Mapping[str, Any]], str | None]:
    """The comparison's tables by path, or why there are none to judge."""
    data = comparison.get("data")
    if not isinstance(data, Mapping):
        return {}, "comparison.json has no data section (rerun `mlops-ci compare`)"
    if data.get("error"):
        return {}, f"the data section could not be computed: {str(data['error'])[:300]}"
    tables = data.get("tables")
    found = {
        str(t.get("path")): t for t in tables if isinstance(t, Mapping)
    } if isinstance(tables, list) else {}  # fmt: skip
    return found, None


def _active(rules: DataRules) -> list[tuple[str, float | None]]:
    pairs: list[tuple[str, float | None]] = []
    if rules.max_row_drop_pct is not None:
        pairs.append(("max_row_drop_pct", rules.max_row_drop_pct))
    if rules.schema_unchanged:
        pairs.append(("schema_unchanged", None))
    if rules.max_drift is not None:
        pairs.append(("max_drift", rules.max_drift))
    if rules.max_missing_rate is not None:
        pairs.append(("max_missing_rate", rules.max_missing_rate))
    return pairs


def judge_data(comparison: Mapping[str, Any], settings: Settings) -> list[RuleResult]:
    """Every data rule's result, per declared table."""
    found, missing = _tables(comparison)
    baseline = comparison.get("baseline")
    first = isinstance(baseline, Mapping) and not baseline.get("sha")
    results = []
    for table in settings.data.tables:
        rules = _active(settings.data.rules_for(table))
        if not rules:
            continue
        entry = found.get(table.path)
        for rule, threshold in rules:
            if first:  # a first pull request: nothing to compare with, as for metric rules
                reason = f"table {table.path} has no baseline to compare with: {rule} not applied"
                results.append(_result(table, rule, threshold, "skipped", reason))
                continue
            results.append(_judge(table, entry, rule, threshold, missing))
    return results


def _result(
    table: TableSettings,
    rule: str,
    threshold: float | None,
    outcome: str,
    reason: str,
    observed: float | None = None,
    baseline: float | None = None,
    candidate: float | None = None,
) -> RuleResult:
    return RuleResult(
        metric=f"data:{table.path}", rule=rule, threshold=threshold, observed=observed,
        outcome=outcome, reason=reason, baseline=baseline, candidate=candidate,
    )  # fmt: skip


def _rows(entry: Mapping[str, Any], side: str) -> int | None:
    summary = entry.get(side)
    rows = summary.get("rows") if isinstance(summary, Mapping) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


def _judge(
    table: TableSettings,
    entry: Mapping[str, Any] | None,
    rule: str,
    threshold: float | None,
    missing: str | None,
) -> RuleResult:
    name = f"table {table.path}"
    shown = f"{rule} {threshold:g}" if threshold is not None else rule
    if entry is None:
        why = missing or "compare did not report it (rerun `mlops-ci compare`)"
        return _result(table, rule, threshold, "fail", f"{name} cannot be judged: {why}")
    status = entry.get("status")
    if status == "unknown":
        errors = entry.get("errors") if isinstance(entry.get("errors"), list) else []
        why = "; ".join(
            f"at {str(e.get('revision'))[:12]}: {str(e.get('message'))[:300]}"
            for e in errors[:2] if isinstance(e, Mapping)
        ) or "it could not be read"  # fmt: skip
        return _result(table, rule, threshold, "fail", f"{name} cannot be judged: {why}")
    if status == "absent":
        reason = f"{name} exists at neither revision: {shown} cannot be judged, so it fails"
        return _result(table, rule, threshold, "fail", reason)
    if status == "added":
        reason = f"{name} is new in this change (no baseline): {shown} not applied"
        return _result(table, rule, threshold, "skipped", reason)
    if status == "removed":
        reason = (
            f"{name} is removed by this change ({_rows(entry, 'baseline')} rows): {shown} fails"
        )
        return _result(table, rule, threshold, "fail", reason, baseline=_rows(entry, "baseline"))
    if status == "unchanged":
        return _result(table, rule, threshold, "pass", f"{name} is unchanged, within {shown}")
    columns = [c for c in entry.get("columns") or [] if isinstance(c, Mapping)]
    if rule == "max_row_drop_pct":
        return _row_drop(table, entry, threshold or 0.0)
    if rule == "schema_unchanged":
        changed = [c for c in columns if c.get("change") != "same"]
        if not changed:
            return _result(
                table, rule, None, "pass", f"{name}: no column added, removed or retyped"
            )
        parts = [_schema_change(c) for c in changed[:5]]
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        reason = f"{name} changed its schema: {', '.join(parts)}{more}; the policy requires {rule}"
        return _result(table, rule, None, "fail", reason, observed=float(len(changed)))
    if rule == "max_drift":
        return _drift(table, entry, columns, threshold or 0.0)
    return _missing(table, entry, columns, threshold or 0.0)


def _schema_change(column: Mapping[str, Any]) -> str:
    change, col = column.get("change"), str(column.get("name"))[:80]
    if change == "dtype":
        return f"{col} {column.get('baseline_dtype')} → {column.get('candidate_dtype')}"
    return f"{col} {change}"


def _row_drop(table: TableSettings, entry: Mapping[str, Any], threshold: float) -> RuleResult:
    old, new = _rows(entry, "baseline"), _rows(entry, "candidate")
    rule, name = "max_row_drop_pct", f"table {table.path}"
    if old is None or new is None:
        reason = f"{name} has no row count at both revisions: {rule} cannot be judged, so it fails"
        return _result(table, rule, threshold, "fail", reason)
    if old == 0:
        reason = f"{name} had no rows at the baseline: a drop in percent is undefined"
        return _result(table, rule, threshold, "skipped", reason, baseline=old, candidate=new)
    drop = 100.0 * (old - new) / old
    verb = "dropped" if drop > 0 else "gained"
    amount = f"{abs(drop):.2f}% of its rows ({old:,} → {new:,})"
    if drop > threshold + _SLACK * max(1.0, threshold):
        reason = f"{name} {verb} {amount}, more than {rule} {threshold:g}"
        return _result(table, rule, threshold, "fail", reason, -drop, old, new)
    reason = f"{name} {verb} {amount}, within {rule} {threshold:g}"
    return _result(table, rule, threshold, "pass", reason, -drop, old, new)


def _effect_name(column: Mapping[str, Any]) -> str:
    return "KS D" if column.get("test") == "ks" else "Cramér's V"


def _drift(
    table: TableSettings,
    entry: Mapping[str, Any],
    columns: list[Mapping[str, Any]],
    threshold: float,
) -> RuleResult:
    rule, name = "max_drift", f"table {table.path}"
    # Fail closed: a column that cannot be tested at both revisions (renamed, blanked, a number
    # turned text) could hide any shift.
    untestable = [c for c in columns if c.get("untestable") is True]
    hidden = entry.get("more_untestable")
    extra = hidden if isinstance(hidden, int) and not isinstance(hidden, bool) else 0
    if untestable or extra:
        parts = [f"{str(c.get('name'))[:80]} ({str(c.get('note'))[:160]})" for c in untestable[:3]]
        more = len(untestable) - len(parts) + extra
        listed = "; ".join(parts) + (f" and {more} more" if more else "")
        reason = f"{name}: cannot test for a shift: {listed}; {rule} {threshold:g} fails closed"
        return _result(table, rule, threshold, "fail", reason, float(len(untestable) + extra))
    tested = [c for c in columns if isinstance(c.get("effect"), int | float)]
    over = [
        c for c in tested
        if c.get("drifted") is True and float(c["effect"]) > threshold + _SLACK
    ]  # fmt: skip
    if over:
        worst = max(over, key=lambda c: float(c["effect"]))
        more = f" (and {len(over) - 1} more columns)" if len(over) > 1 else ""
        reason = (
            f"{name}: column {str(worst.get('name'))[:80]} shifted with {_effect_name(worst)} "
            f"{fmt(float(worst['effect']))} (adjusted p {p_text(worst.get('p_adjusted'))}), "
            f"more than {rule} {threshold:g}{more}"
        )
        return _result(table, rule, threshold, "fail", reason, float(worst["effect"]))
    if not tested:
        reason = f"{name}: no column could be tested for a shift, within {rule} {threshold:g}"
        return _result(table, rule, threshold, "pass", reason)
    worst = max(tested, key=lambda c: float(c["effect"]))
    reason = (
        f"{name}: the largest shift is {_effect_name(worst)} {fmt(float(worst['effect']))} in "
        f"{str(worst.get('name'))[:80]}, within {rule} {threshold:g} (or not significant)"
    )
    return _result(table, rule, threshold, "pass", reason, float(worst["effect"]))


def _missing(
    table: TableSettings,
    entry: Mapping[str, Any],
    columns: list[Mapping[str, Any]],
    threshold: float,
) -> RuleResult:
    rule, name = "max_missing_rate", f"table {table.path}"
    rates = [c for c in columns if isinstance(c.get("candidate_missing"), int | float)]
    if not rates:
        reason = f"{name} has no missing-value rates: {rule} cannot be judged, so it fails"
        return _result(table, rule, threshold, "fail", reason)
    worst = max(rates, key=lambda c: float(c["candidate_missing"]))
    rate = float(worst["candidate_missing"])
    text = f"{name}: column {str(worst.get('name'))[:80]} is {rate * 100:.2f}% missing"
    if rate > threshold + _SLACK:
        return _result(
            table, rule, threshold, "fail", f"{text}, more than {rule} {threshold:g}", rate
        )
    return _result(table, rule, threshold, "pass", f"{text}, within {rule} {threshold:g}", rate)
