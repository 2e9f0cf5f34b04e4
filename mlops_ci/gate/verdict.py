"""The gate's result: the verdict document (`verdict.json`, docs/documents.md) and its terminal
form. `gate` computes it; `flow`, `untrusted` and `sweep` post it; this module only holds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.gate.policy import PolicySource

CHECK_CONCLUSION = {"pass": "success", "fail": "failure", "neutral": "neutral"}
STATUS_STATE = {"pass": "success", "fail": "failure", "neutral": "success"}


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
    # Set when a reviewer's waiver turned this failure into `waived` (gate/waivers.py).
    waived_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        if doc["waived_by"] is None:
            del doc["waived_by"]
        return doc


@dataclass
class Verdict:
    verdict: str
    summary: str
    rules: list[RuleResult]
    artifact: str | None = None
    baseline_sha: str | None = None
    candidate_sha: str | None = None
    policy: PolicySource = field(default_factory=lambda: PolicySource(None, "defaults"))
    # What it was computed from (docs/documents.md): the digest of comparison.json and the
    # revisions; a consumer refuses a verdict whose comparison.json changed since.
    inputs: dict[str, str | None] = field(default_factory=dict)
    # A fork's run: its numbers come from the fork's own job, so the verdict only advises.
    advisory: bool = False
    # The pull request's head the verdict was judged for, and the review's waivers for it
    # (gate/waivers.py); waivers given for an earlier head are only named, never applied.
    head_sha: str | None = None
    waivers: list[dict[str, Any]] = field(default_factory=list)
    stale_waivers: list[str] = field(default_factory=list)
    # On the target branch: the waivers of the merged pull request's final head, carried into
    # the bundle's metadata and model card (never applied to this verdict).
    pr_waivers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.rules if r.outcome == "fail"]

    @property
    def neutral(self) -> list[RuleResult]:
        return [r for r in self.rules if r.outcome == "neutral"]

    def to_dict(self) -> dict[str, Any]:
        return (
            documents.header("verdict")
            | {
                "artifact": self.artifact,
                "verdict": self.verdict,
                "summary": self.summary,
                "baseline_sha": self.baseline_sha,
                "candidate_sha": self.candidate_sha,
                "policy": asdict(self.policy),
                "inputs": dict(self.inputs),
                "advisory": self.advisory,
                "rules": [r.to_dict() for r in self.rules],
            }
            | self._review()
        )

    def _review(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"head_sha": self.head_sha} if self.head_sha else {}
        if self.waivers:
            doc["waivers"] = list(self.waivers)
        if self.stale_waivers:
            doc["stale_waivers"] = list(self.stale_waivers)
        if self.pr_waivers:
            doc["pr_waivers"] = list(self.pr_waivers)
        return doc


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


def format_verdict(verdict: Verdict) -> str:
    """The terminal summary: the verdict, then one line per judged rule, worst first."""
    marks = {"fail": "✗", "neutral": "~", "waived": "!", "pass": "✓", "skipped": "-"}
    order = {o: i for i, o in enumerate(("fail", "neutral", "waived", "pass", "skipped"))}
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
