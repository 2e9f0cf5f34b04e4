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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_ci import documents
from mlops_ci.errors import ConfigError
from mlops_ci.settings import DEFAULT_KEY, MetricRule, Settings, metric_aliases

CHECK_CONCLUSION = {"pass": "success", "fail": "failure", "neutral": "neutral"}
STATUS_STATE = {"pass": "success", "fail": "failure", "neutral": "success"}


class UnknownPolicyMetric(ConfigError):
    """The policy names a metric that exists at neither revision (a typo would gate nothing)."""


@dataclass(frozen=True)
class PolicySource:
    """Where the policy was read: `baseline` (the normal case), `working tree` (no baseline:
    the first pull request) or `defaults` (no policy file at that revision)."""

    revision: str | None
    source: str
    path: str = "mlops-ci.yaml"
    changed: bool = False


@dataclass
class RuleResult:
    metric: str
    rule: str
    threshold: float | None
    observed: float | None
    outcome: str
    reason: str
    baseline: float | None = None
    candidate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    significant: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verdict:
    verdict: str
    summary: str
    rules: list[RuleResult]
    artifact: str | None = None
    baseline_sha: str | None = None
    candidate_sha: str | None = None
    policy: PolicySource = field(default_factory=lambda: PolicySource(None, "defaults"))

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.rules if r.outcome == "fail"]

    @property
    def neutral(self) -> list[RuleResult]:
        return [r for r in self.rules if r.outcome == "neutral"]

    def to_dict(self) -> dict[str, Any]:
        return documents.header("verdict") | {
            "artifact": self.artifact,
            "verdict": self.verdict,
            "summary": self.summary,
            "baseline_sha": self.baseline_sha,
            "candidate_sha": self.candidate_sha,
            "policy": asdict(self.policy),
            "rules": [r.to_dict() for r in self.rules],
        }


# --- numbers in reasons -------------------------------------------------------------------------


def fmt(x: float) -> str:
    """A value as a reviewer reads it: 0.9561, 45.27, 1234, 2.3e-05."""
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax >= 1000:
        return f"{x:.0f}"
    if ax >= 1:
        return f"{x:.4g}"
    if ax >= 0.001:
        return f"{x:.4f}"
    return f"{x:.3g}"


def _threshold(x: float) -> str:
    # Thresholds are shown as the user wrote them (0.01, not 0.0100).
    return f"{x:g}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --- matching policy keys to comparison rows ------------------------------------------------------


def _aliases(row: Mapping[str, Any]) -> list[str]:
    return metric_aliases(str(row.get("name", "")), row.get("key") or None)


def check_policy_metrics(settings: Settings, comparison: Mapping[str, Any]) -> None:
    """Raise UnknownPolicyMetric for a policy metric found at neither revision.

    A comparison without any metric rows (the metrics file could not be read) proves nothing
    about names, so those metrics count as missing instead (`on_missing_metric`).
    """
    rows = [r for r in comparison.get("metrics") or [] if isinstance(r, Mapping)]
    if not rows:
        return
    known = {a for r in rows for a in _aliases(r)}
    unknown = [name for name in settings.metrics if name not in known]
    if unknown:
        shown = ", ".join(sorted(str(r.get("name")) for r in rows)[:30])
        raise UnknownPolicyMetric(
            f"{settings.source}: metrics.{unknown[0]} names a metric that exists at neither "
            f"revision; metrics that exist: {shown}. Fix the name, or use "
            f"metrics.{DEFAULT_KEY} for a rule that applies to every metric not listed"
        )


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
        reason += (
            f", but the {ci_text} does not rule out noise (on_inconclusive: {on_inconclusive})"
        )
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
        threshold=threshold,
        observed=observed,
        outcome=outcome,
        reason=reason,
        baseline=row.baseline,
        candidate=row.candidate,
        ci_low=row.ci_low,
        ci_high=row.ci_high,
        significant=significant,
    )


def judge_row(
    row: Mapping[str, Any], rule: MetricRule, settings: Settings, *, listed: bool, level: str = ""
) -> Iterator[RuleResult]:
    """Every result of one rule on one comparison row."""
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
    if r.candidate is None:
        if row.get("candidate") is not None:  # a string or boolean: nothing to compare
            yield _result(r, "value", None, None, "skipped", f"{r.name} is not a number")
            return
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
) -> Verdict:
    """The verdict of `settings` (the policy) on `comparison` (a comparison.json document)."""
    if check_names:
        check_policy_metrics(settings, comparison)
    rows = [r for r in comparison.get("metrics") or [] if isinstance(r, Mapping)]
    level = _level(comparison)
    results: list[RuleResult] = []
    for row in rows:
        key = settings.policy_key(str(row.get("name", "")), row.get("key") or None)
        rule = settings.metrics[key] if key is not None else settings.default_rule
        if rule is None:
            continue
        results.extend(judge_row(row, rule, settings, listed=key is not None, level=level))
    if not rows:
        # No metrics could be read at all: the listed ones are missing (see check_policy_metrics).
        for name, rule in settings.metrics.items():
            if rule.has_thresholds():
                results.extend(judge_row({"name": name}, rule, settings, listed=True))
    outcomes = {r.outcome for r in results}
    verdict = "fail" if "fail" in outcomes else "neutral" if "neutral" in outcomes else "pass"
    baseline = comparison.get("baseline") or {}
    candidate = comparison.get("candidate") or {}
    return Verdict(
        verdict=verdict,
        summary=_summary(verdict, results),
        rules=results,
        artifact=str(comparison.get("artifact") or settings.artifact),
        baseline_sha=baseline.get("sha") if isinstance(baseline, Mapping) else None,
        candidate_sha=candidate.get("sha") if isinstance(candidate, Mapping) else None,
        policy=policy or PolicySource(None, "defaults"),
    )


def format_verdict(verdict: Verdict) -> str:
    """The terminal summary: the verdict, then one line per judged rule, worst first."""
    marks = {"fail": "✗", "neutral": "~", "pass": "✓", "skipped": "-"}
    order = {o: i for i, o in enumerate(("fail", "neutral", "pass", "skipped"))}
    where = verdict.policy.source + (
        f" {verdict.policy.revision[:12]}" if verdict.policy.revision else ""
    )
    lines = [
        f"gate: {verdict.verdict} — {verdict.summary}",
        f"policy: {verdict.policy.path} "
        f"({where}){'; changed in this pull request, applies after merge' if verdict.policy.changed else ''}",
    ]
    for r in sorted(verdict.rules, key=lambda r: order[r.outcome]):
        lines.append(f"  {marks[r.outcome]} {r.outcome:<7} {r.reason}")
    return "\n".join(lines)
