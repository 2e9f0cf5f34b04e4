"""Policy rules to a Verdict: pure, the comparison and the settings in, the verdict out.

    verdict = evaluate_gate(comparison, settings, policy=PolicySource("a1b2c3…", "baseline"))
    verdict.verdict          # "pass" | "fail" | "neutral"
    verdict.rules[0].reason  # "accuracy dropped 0.0213 (0.9561 → 0.9348), more than max_drop 0.01"

Every threshold rule is judged on the *worsening* w of a metric (how much worse the candidate is
than the baseline, in the metric's direction; negative when it improved):

- max_drop fails when w > max_drop; max_drop_pct when 100·w/|baseline| > max_drop_pct;
  min_gain when w > -min_gain (the improvement falls short of it);
- with `significant: true` the rule fails only when the whole confidence interval of w lies beyond
  the threshold; when only the point estimate does, the rule is inconclusive and follows
  `on_inconclusive`. Without an interval in the row, the point estimate decides (fail closed).
- min and max are absolute bounds on the candidate's value.

Fail closed: a gated metric whose value is not a finite number (NaN, inf, a string,
a boolean, `1e400`), that compare could not read (status `unknown`, or an error recorded for its
file), fails its rule with the value or the error in the reason; it is never skipped into a pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_ci.compare.wording import interval_finding
from mlops_ci.gate.verdict import (  # noqa: F401 - re-exported: the gate's public names
    CHECK_CONCLUSION,
    STATUS_STATE,
    PolicySource,
    RuleResult,
    Verdict,
    fmt,
    format_verdict,
)
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings import (
    DEFAULT_KEY,
    SETTINGS_FILE,
    MetricRule,
    Settings,
    metric_aliases,
)


class UnknownPolicyMetric(ConfigError):
    """The policy names a metric that exists at neither revision (a typo would gate nothing)."""


# --- numbers in reasons -------------------------------------------------------------------------


def _threshold(x: float) -> str:
    # Thresholds are shown as the user wrote them (0.01, not 0.0100).
    return f"{x:g}"


def _number(value: Any) -> float | None:
    """A finite number as a float, else None (NaN, inf, 10**400, strings, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range
        return None
    return number if math.isfinite(number) else None


def _shown(value: Any) -> str:
    """A value the gate cannot judge, as the reason shows it (short, whatever its size)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value[:40]) + ("…" if len(value) > 40 else "")
    if isinstance(value, float):
        return repr(value)  # nan, inf, -inf
    if isinstance(value, int):
        digits = str(value)
        return digits if len(digits) <= 20 else f"{digits[:10]}… ({len(digits)} digits)"
    return f"a {type(value).__name__}"


def _unjudgeable(value: Any) -> bool:
    return value is not None and _number(value) is None


# --- matching policy keys to comparison rows ------------------------------------------------------


def _key(row: Mapping[str, Any]) -> str | None:
    key = row.get("key")
    return key if isinstance(key, str) and key else None


def _aliases(row: Mapping[str, Any]) -> list[str]:
    return metric_aliases(str(row.get("name", "")), _key(row))


def unknown_policy_metrics(settings: Settings, rows: list[Mapping[str, Any]]) -> list[str]:
    """Metrics the policy names that no row of the comparison has (by any alias)."""
    known = {a for r in rows for a in _aliases(r)}
    return [name for name in settings.metrics if name not in known]


def check_policy_metrics(settings: Settings, comparison: Mapping[str, Any]) -> None:
    """Raise UnknownPolicyMetric for a policy metric found at neither revision.

    A comparison without any metric rows (the metrics file could not be read) proves nothing
    about names, so those metrics count as missing instead (`on_missing_metric`).
    """
    rows = _rows(comparison)
    if not rows or _errors(comparison):
        return
    unknown = unknown_policy_metrics(settings, rows)
    if unknown:
        raise UnknownPolicyMetric(
            f"{settings.source}: metrics.{unknown[0]} names a metric that exists at neither "
            f"revision; metrics that exist: {_names(rows)}. Fix the name, or use "
            f"metrics.{DEFAULT_KEY} for a rule that applies to every metric not listed; a "
            f"change that fixes {SETTINGS_FILE} is judged without the misspelt rule"
        )


def _names(rows: list[Mapping[str, Any]]) -> str:
    return ", ".join(sorted(str(r.get("name")) for r in rows)[:30])


def _rows(comparison: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    metrics = comparison.get("metrics")
    return [r for r in metrics if isinstance(r, Mapping)] if isinstance(metrics, list) else []


def _errors(comparison: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    errors = comparison.get("errors")
    return [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []


# Errors about these files leave every metric of that revision unread.
_PIPELINE_FILES = ("dvc.yaml", "dvc.lock")


def _errors_for(row: Mapping[str, Any], errors: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The comparison's errors about the file `row` comes from (or the whole pipeline)."""
    file = row.get("file")
    if not isinstance(file, str) or not file:
        name = str(row.get("name", ""))
        file = name.split(":", 1)[0] if ":" in name else None
    return [e for e in errors if e.get("file") in (file, None, *_PIPELINE_FILES)]


def _error_text(errors: list[Mapping[str, Any]]) -> str:
    parts = []
    for e in errors[:3]:
        where = " at ".join(str(e.get(k))[:80] for k in ("file", "revision") if e.get(k))
        parts.append(f"{where or 'a file'} could not be read: {str(e.get('message'))[:300]}")
    more = f" (and {len(errors) - 3} more errors)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


# --- judging one row ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    name: str
    direction: str
    baseline: float | None
    candidate: float | None
    ci_low: float | None
    ci_high: float | None
    level: str  # "95% " for reasons

    @property
    def worsening(self) -> float:
        # Only asked of rows with both values.
        delta = (self.candidate or 0.0) - (self.baseline or 0.0)
        return -delta if self.direction == "higher" else delta

    @property
    def worsening_ci(self) -> tuple[float, float] | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        if self.direction == "higher":
            return -self.ci_high, -self.ci_low
        return self.ci_low, self.ci_high

    def arrow(self) -> str:
        return f"({fmt(self.baseline or 0.0)} → {fmt(self.candidate or 0.0)})"

    def moved(self, amount: str) -> str:
        """'accuracy dropped 0.0213' / 'accuracy improved 0.0100', for the direction."""
        if self.worsening > 0:
            verb = "dropped" if self.direction == "higher" else "rose"
        elif self.worsening < 0:
            verb = "improved"
        else:
            return f"{self.name} is unchanged"
        return f"{self.name} {verb} {amount}"


def _slack(*values: float | None) -> float:
    # 0.9561 - 0.9461 is 0.010000000000000009: a drop of exactly max_drop must pass.
    return 1e-9 * max([1.0] + [abs(v) for v in values if v is not None])


def _relative_rule(
    row: _Row, rule_name: str, threshold: float, significant: bool, on_inconclusive: str
) -> RuleResult:
    """max_drop, max_drop_pct or min_gain on a row with both values."""
    w, interval = row.worsening, row.worsening_ci
    scale, unit = 1.0, ""
    if rule_name == "max_drop_pct":
        if row.baseline == 0:
            reason = f"{row.name} is 0 at the baseline: a change in percent is undefined"
            return _result(row, rule_name, threshold, None, "skipped", reason, significant)
        scale, unit = 100.0 / abs(row.baseline), "%"
    w, limit = w * scale, (-threshold if rule_name == "min_gain" else threshold)
    interval = (interval[0] * scale, interval[1] * scale) if interval else None
    observed = -w  # the signed change in the rule's unit: negative is worse
    shown = f"{abs(w):.2f}%" if unit else fmt(abs(w))
    beyond = w > limit + _slack(limit, row.baseline, row.candidate) * scale
    if rule_name == "min_gain":
        what = f"{row.name} improved by {fmt(-w)} {row.arrow()}"
        bad_text, ok_text = "less than", "at least"
    else:
        what = f"{row.moved(shown)} {row.arrow()}"
        bad_text, ok_text = "more than", "within"
    rule_text = f"{rule_name} {_threshold(threshold)}"
    ci_text = ""
    if interval is not None and row.ci_low is not None and row.ci_high is not None:
        # Shown as the change (candidate - baseline), like the report's CI column.
        lo, hi = row.ci_low * scale, row.ci_high * scale
        lo_s, hi_s = (f"{lo:.2f}%", f"{hi:.2f}%") if unit else (fmt(lo), fmt(hi))
        ci_text = f"{row.level}CI of the change [{lo_s}, {hi_s}]"
    if not beyond:
        reason = f"{what}, {ok_text} {rule_text}"
        return _result(row, rule_name, threshold, observed, "pass", reason, significant)
    reason = f"{what}, {bad_text} {rule_text}"
    if significant and interval is not None:
        if interval[0] > limit:
            reason += f"; the {ci_text} agrees"
            return _result(row, rule_name, threshold, observed, "fail", reason, significant)
        # The same words as the table's status: an interval that excludes no change is a
        # real drop even when it does not show the drop beyond the threshold.
        finding = interval_finding(*interval)
        if interval[0] > 0:
            finding += f" that may be {ok_text} {rule_text}"
        reason += f", but the {ci_text} {finding} (on_inconclusive: {on_inconclusive})"
        outcome = {"fail": "fail", "neutral": "neutral", "pass": "pass"}[on_inconclusive]
        return _result(row, rule_name, threshold, observed, outcome, reason, significant)
    if significant:
        reason += " (no confidence interval for this metric: judged on the point estimate)"
    return _result(row, rule_name, threshold, observed, "fail", reason, significant)


def _result(
    row: _Row,
    rule: str,
    threshold: float | None,
    observed: float | None,
    outcome: str,
    reason: str,
    significant: bool = False,
) -> RuleResult:
    return RuleResult(
        metric=row.name,
        rule=rule,
        threshold=_number(threshold),
        observed=_number(observed),  # JSON has no infinity: an overflowed change is None
        outcome=outcome,
        reason=reason,
        baseline=row.baseline,
        candidate=row.candidate,
        ci_low=row.ci_low,
        ci_high=row.ci_high,
        significant=significant,
    )


def judge_row(
    row: Mapping[str, Any],
    rule: MetricRule,
    settings: Settings,
    *,
    listed: bool,
    level: str = "",
    errors: list[Mapping[str, Any]] | None = None,
) -> Iterator[RuleResult]:
    """Every result of one rule on one comparison row; `errors`: compare's errors about the
    row's file, which leave the row untrustworthy."""
    r = _Row(
        name=str(row.get("name")),
        direction=rule.direction or str(row.get("direction") or "higher"),
        baseline=_number(row.get("baseline")),
        candidate=_number(row.get("candidate")),
        ci_low=_number(row.get("ci_low")),
        ci_high=_number(row.get("ci_high")),
        level=level,
    )
    if not rule.has_thresholds():
        if listed:
            reason = f"{r.name}: {r.direction} is better; no threshold, so not gated"
            yield _result(r, "direction", None, None, "skipped", reason)
        return
    if errors or row.get("status") == "unknown":
        why = _error_text(errors) if errors else "compare could not read it (status unknown)"
        reason = f"{r.name} cannot be judged: {why}"
        yield _result(r, "readable", None, None, "fail", reason)
        return
    for side in ("candidate", "baseline"):
        if _unjudgeable(row.get(side)):
            reason = (
                f"{r.name} is {_shown(row.get(side))} at the {side}, not a finite number: "
                "the gate cannot judge it, so the rule fails"
            )
            yield _result(r, "value", None, None, "fail", reason)
            return
    if r.candidate is None:
        choice = settings.on_missing_metric
        outcome = {"fail": "fail", "neutral": "neutral", "ignore": "skipped"}[choice]
        was = f" (baseline {fmt(r.baseline)})" if r.baseline is not None else ""
        reason = f"{r.name} is missing from the candidate{was}; on_missing_metric: {choice}"
        yield _result(r, "on_missing_metric", None, None, outcome, reason)
        return
    if rule.min is not None:
        ok = r.candidate >= rule.min - _slack(rule.min)
        reason = f"{r.name} is {fmt(r.candidate)}, {'at least' if ok else 'below'} min"
        yield _result(r, "min", rule.min, r.candidate, _ok(ok), f"{reason} {_threshold(rule.min)}")
    if rule.max is not None:
        ok = r.candidate <= rule.max + _slack(rule.max)
        reason = f"{r.name} is {fmt(r.candidate)}, {'at most' if ok else 'above'} max"
        yield _result(r, "max", rule.max, r.candidate, _ok(ok), f"{reason} {_threshold(rule.max)}")
    for name in ("max_drop", "max_drop_pct", "min_gain"):
        threshold = getattr(rule, name)
        if threshold is None:
            continue
        if r.baseline is None:
            reason = f"{r.name} has no baseline value to compare with: {name} not applied"
            yield _result(r, name, threshold, None, "skipped", reason)
            continue
        result = _relative_rule(r, name, threshold, rule.significant, settings.on_inconclusive)
        if rule.significant and r.ci_low is not None and _other_level(rule, level):
            # Intervals are computed once per comparison, at the top-level confidence.
            result.reason += (
                f" (the interval is at {level.strip()}, not the rule's "
                f"{rule.confidence * 100:g}%: set the top-level confidence to change it)"
            )
        yield result


def judge_worst_slice(
    row: Mapping[str, Any],
    rule: MetricRule,
    comparison: Mapping[str, Any],
    settings: Settings,
    level: str = "",
) -> RuleResult:
    """`worst_slice_drop`: no gated slice may lose more than the threshold. With `significant`,
    a slice fails only when its whole (simultaneous) interval is beyond the threshold; when only
    its point estimate is, the rule is inconclusive and follows `on_inconclusive`."""
    name, threshold = str(row.get("name")), float(rule.worst_slice_drop or 0.0)
    r = _Row(name, rule.direction or str(row.get("direction") or "higher"), None, None, None,
             None, level)  # fmt: skip
    if _number(row.get("baseline")) is None:
        reason = f"{name} has no baseline value to compare with: worst_slice_drop not applied"
        return _result(r, "worst_slice_drop", threshold, None, "skipped", reason)
    leaf = str(row.get("key") or name).rsplit(".", 1)[-1]
    slices = comparison.get("slices")
    rows = slices.get("rows") if isinstance(slices, Mapping) else None
    found = []
    for s in rows if isinstance(rows, list) else []:
        if not isinstance(s, Mapping) or s.get("gated") is not True:
            continue
        for m in s.get("metrics") or []:
            if (
                isinstance(m, Mapping)
                and m.get("name") == leaf
                and _number(m.get("delta")) is not None
            ):
                found.append((s, m))
    if not found:
        reason = (
            f"{name} has no gated slices to judge (set slices: in {SETTINGS_FILE}, with "
            "predictions at both revisions): the gate cannot tell, so the rule fails"
        )
        return _result(r, "worst_slice_drop", threshold, None, "fail", reason)
    higher = r.direction == "higher"

    def worsening(m: Mapping[str, Any]) -> float:
        delta = float(m["delta"])
        return -delta if higher else delta

    def least_worsening(m: Mapping[str, Any]) -> float | None:  # the interval's best end
        low, high = _number(m.get("ci_low")), _number(m.get("ci_high"))
        if low is None or high is None:
            return None
        return -high if higher else low

    s, m = max(found, key=lambda sm: worsening(sm[1]))
    w = worsening(m)
    where = f"{s.get('column')}={s.get('value')}"
    observed = -w
    if w <= threshold + _slack(threshold):
        reason = (
            f"{name}: the worst of {len(found)} slices is {where}, "
            f"{'dropped' if w > 0 else 'changed'} {fmt(abs(w))}, within worst_slice_drop "
            f"{_threshold(threshold)}"
        )
        return _result(r, "worst_slice_drop", threshold, observed, "pass", reason,
                       rule.significant)  # fmt: skip
    reason = f"{name} dropped {fmt(w)} in slice {where}, more than worst_slice_drop {_threshold(threshold)}"
    if not rule.significant:
        return _result(r, "worst_slice_drop", threshold, observed, "fail", reason)
    sure = [(sm, least_worsening(sm[1])) for sm in found]
    beyond = [(sm, lw) for sm, lw in sure if lw is not None and lw > threshold]
    if beyond:
        (s2, m2), lw = max(beyond, key=lambda x: x[1])
        where2 = f"{s2.get('column')}={s2.get('value')}"
        reason = (
            f"{name} dropped {fmt(worsening(m2))} in slice {where2}; its {level}simultaneous "
            f"interval says at least {fmt(lw)}, more than worst_slice_drop {_threshold(threshold)}"
        )
        return _result(r, "worst_slice_drop", threshold, -worsening(m2), "fail", reason, True)
    choice = settings.on_inconclusive
    reason += (
        f", but no slice's {level}simultaneous interval rules out noise (on_inconclusive: {choice})"
    )
    return _result(r, "worst_slice_drop", threshold, observed, choice, reason, True)


def _ok(ok: bool) -> str:
    return "pass" if ok else "fail"


def _other_level(rule: MetricRule, level: str) -> bool:
    return rule.confidence is not None and level != f"{rule.confidence * 100:g}% "


def _level(comparison: Mapping[str, Any]) -> str:
    confidence = _number(comparison.get("confidence"))
    return f"{confidence * 100:g}% " if confidence and 0 < confidence < 1 else ""


def _summary(outcome: str, rules: list[RuleResult]) -> str:
    worst = [r for r in rules if r.outcome == outcome]
    if outcome in ("fail", "neutral") and worst:
        more = len(worst) - 1
        tail = f" (and {more} more {'failing' if outcome == 'fail' else 'neutral'} rule"
        return worst[0].reason + (f"{tail}{'s' if more > 1 else ''})" if more else "")
    judged = [r for r in rules if r.outcome == "pass"]
    if not judged:
        return "no rule of the policy applied to these metrics"
    return f"all {len(judged)} rule{'s' if len(judged) != 1 else ''} passed"


def evaluate_gate(
    comparison: Mapping[str, Any],
    settings: Settings,
    *,
    policy: PolicySource | None = None,
    check_names: bool = True,
    proposed: Settings | None = None,
    proposed_error: str | None = None,
) -> Verdict:
    """The verdict of `settings` (the policy) on `comparison` (a comparison.json document).

    `proposed` / `proposed_error`: the change's own `mlops-ci.yaml` when it differs from the
    applied one (parsed, or why it does not parse); it applies after merge, so it is checked
    now (`check_proposed_policy`), and a misspelt metric in the applied policy that it fixes is
    reported instead of stopping the gate.
    """
    rows = _rows(comparison)
    errors = _errors(comparison)
    results: list[RuleResult] = []
    changes_policy = proposed is not None or proposed_error is not None
    if check_names and not changes_policy:
        check_policy_metrics(settings, comparison)
    unknown = unknown_policy_metrics(settings, rows)
    if rows and not errors and changes_policy:
        results += _fixed_names(settings, unknown, rows, proposed)
    level = _level(comparison)
    judged_files: set[str] = set()
    for row in rows:
        key = settings.policy_key(str(row.get("name", "")), _key(row))
        rule = settings.metrics[key] if key is not None else settings.default_rule
        if rule is None:
            continue
        judged_files.add(str(row.get("file")))
        results.extend(
            judge_row(
                row, rule, settings, listed=key is not None, level=level,
                errors=_errors_for(row, errors),
            )
        )  # fmt: skip
        if rule.worst_slice_drop is not None:
            results.append(judge_worst_slice(row, rule, comparison, settings, level))
    if errors:
        results += _unread_metrics(settings, unknown if rows else list(settings.metrics), errors,
                                   judged_files)  # fmt: skip
    elif not rows:
        # No metrics could be read at all: the listed ones are missing (see check_policy_metrics).
        for name, rule in settings.metrics.items():
            if rule.has_thresholds():
                results.extend(judge_row({"name": name}, rule, settings, listed=True))
    from mlops_ci.gate.data_rules import judge_data

    results += judge_data(comparison, settings)  # data rules, read at the baseline too
    results += check_proposed_policy(proposed, proposed_error, comparison)
    outcomes = {r.outcome for r in results}
    verdict = "fail" if "fail" in outcomes else "neutral" if "neutral" in outcomes else "pass"
    baseline = comparison.get("baseline") or {}
    candidate = comparison.get("candidate") or {}
    baseline_sha = baseline.get("sha") if isinstance(baseline, Mapping) else None
    candidate_sha = candidate.get("sha") if isinstance(candidate, Mapping) else None
    return Verdict(
        verdict=verdict,
        summary=_summary(verdict, results),
        rules=results,
        # The trusted settings name the artifact (status context, check, marker), never the
        # comparison: a fork's comparison.json is the fork's to write.
        artifact=settings.artifact,
        baseline_sha=baseline_sha if isinstance(baseline_sha, str) else None,
        candidate_sha=candidate_sha if isinstance(candidate_sha, str) else None,
        policy=policy or PolicySource(None, "defaults"),
    )


def _fixed_names(
    settings: Settings,
    unknown: list[str],
    rows: list[Mapping[str, Any]],
    proposed: Settings | None,
) -> list[RuleResult]:
    """Rules of the applied policy that name no metric, in a change that edits the policy:
    reported (neutral), so the change that fixes a merged typo is not stopped by it."""
    results = []
    for name in unknown:
        if proposed is not None and name not in proposed.metrics:
            status = f"this change's {SETTINGS_FILE} fixes it, so the rule is not applied"
        else:
            status = f"this change's {SETTINGS_FILE} does not fix it yet"
        reason = (
            f"{settings.source}: metrics.{name} names a metric that exists at neither revision "
            f"(metrics that exist: {_names(rows)}); {status}"
        )
        results.append(RuleResult(name, "policy", None, None, "neutral", reason))
    return results


def _unread_metrics(
    settings: Settings,
    unknown: list[str],
    errors: list[Mapping[str, Any]],
    judged_files: set[str],
) -> list[RuleResult]:
    """Fail closed on what the errors may hide: a listed metric with no row, or (under a
    default rule) any metric of a file no judged row came from."""
    results = []
    for name in unknown:
        rule = settings.metrics[name]
        if rule.has_thresholds():
            reason = f"{name} cannot be judged: {_error_text(errors)}"
            results.append(RuleResult(name, "readable", None, None, "fail", reason))
    default = settings.default_rule
    if default is not None and default.has_thresholds():
        hidden = [e for e in errors if str(e.get("file")) not in judged_files]
        if hidden:
            reason = f"metrics under metrics.{DEFAULT_KEY} cannot be judged: {_error_text(hidden)}"
            results.append(RuleResult(DEFAULT_KEY, "readable", None, None, "fail", reason))
    return results


def check_proposed_policy(
    proposed: Settings | None, proposed_error: str | None, comparison: Mapping[str, Any]
) -> list[RuleResult]:
    """The change's own `mlops-ci.yaml` (it applies after merge): its errors fail the change,
    naming the key, so a typo never lands on the target branch."""
    after = "it applies after merge, so fix it in this change"
    if proposed_error is not None:
        return [
            RuleResult(SETTINGS_FILE, "policy", None, None, "fail", f"{proposed_error}; {after}")
        ]
    if proposed is None:
        return []
    rows = [r for r in _rows(comparison) if r.get("candidate") is not None]
    if not rows or _errors(comparison):
        return []  # names cannot be checked against metrics that could not be read
    results = []
    for name in unknown_policy_metrics(proposed, rows):
        reason = (
            f"{proposed.source}: metrics.{name} names a metric this change does not have "
            f"(its metrics: {_names(rows)}); {after}"
        )
        results.append(RuleResult(name, "policy", None, None, "fail", reason))
    return results
