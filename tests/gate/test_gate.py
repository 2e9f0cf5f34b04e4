"""The gate: policy rules to a verdict, the policy read at the baseline, exit codes and statuses.

Rules are judged on comparison documents built here (the format of docs/documents.md); the
noise tests build their rows' intervals with the real `bootstrap_family`; the CLI tests run
`mlops-ci gate` in real git repositories, posting to the local forge and the fake GitHub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.compare.predictions import Predictions
from mlops_ci.compare.stats import bootstrap_family
from mlops_ci.gate.rules import UnknownPolicyMetric, evaluate_gate
from mlops_ci.gate.verdict import fmt
from mlops_ci.project.git import Git
from mlops_ci.project.settings import parse_settings
from tests.conftest import git_commit_all

POLICY = """\
artifact: classifier
metrics:
  accuracy: {direction: higher, min: 0.9, max_drop: 0.01}
  f1: {direction: higher, max_drop_pct: 2}
  latency_ms: {direction: lower, max: 50}
on_missing_metric: fail
on_inconclusive: neutral
"""


def row(name: str, baseline: Any, candidate: Any, **extra: Any) -> dict[str, Any]:
    delta = (
        candidate - baseline
        if isinstance(baseline, float | int) and isinstance(candidate, float | int)
        else None
    )
    direction = "lower" if "latency" in name else "higher"
    return {"name": name, "baseline": baseline, "candidate": candidate, "delta": delta,
            "direction": direction, "ci_low": None, "ci_high": None} | extra  # fmt: skip


def comparison(*rows: dict[str, Any], baseline_sha: str | None = None) -> dict[str, Any]:
    return documents.header("comparison") | {
        "artifact": "classifier",
        "confidence": 0.95,
        "baseline": {"how": "merge-base", "ref": "main", "sha": baseline_sha},
        "candidate": {"ref": "workspace", "sha": "c" * 40, "branch": "feature"},
        "metrics": list(rows),
        "params": [],
    }


def judge(policy: str, *rows: dict[str, Any], check_names: bool = False):
    """The verdict on these rows; a rule test shows only the rows it is about."""
    return evaluate_gate(comparison(*rows), parse_settings(policy), check_names=check_names)


def rows_of_policy(accuracy: tuple[Any, Any]) -> list[dict[str, Any]]:
    """Rows for every metric POLICY names: accuracy as given, f1 and latency unchanged."""
    return [row("accuracy", *accuracy), row("f1", 0.95, 0.95), row("latency_ms", 20.0, 20.0)]


def by_rule(verdict, metric: str, rule: str):
    return next(r for r in verdict.rules if r.metric == metric and r.rule == rule)


# --- rules ---------------------------------------------------------------------------------------


def test_a_drop_beyond_max_drop_fails_naming_metric_numbers_and_rule() -> None:
    verdict = judge(POLICY, row("accuracy", 0.9561, 0.9348))
    assert verdict.verdict == "fail"
    result = by_rule(verdict, "accuracy", "max_drop")
    assert result.outcome == "fail"
    assert result.reason == "accuracy dropped 0.0213 (0.9561 → 0.9348), more than max_drop 0.01"
    assert result.threshold == 0.01
    assert result.observed == pytest.approx(-0.0213)
    assert verdict.summary.startswith("accuracy dropped 0.0213")
    assert by_rule(verdict, "accuracy", "min").outcome == "pass"


def test_an_improving_change_passes() -> None:
    verdict = judge(POLICY, row("accuracy", 0.9561, 0.9649), row("f1", 0.95, 0.96),
                    row("latency_ms", 12.0, 9.5))  # fmt: skip
    assert verdict.verdict == "pass"
    assert verdict.summary == "all 4 rules passed"
    assert by_rule(verdict, "accuracy", "max_drop").reason == (
        "accuracy improved 0.0088 (0.9561 → 0.9649), within max_drop 0.01"
    )


def test_a_drop_of_exactly_max_drop_passes_despite_float_error() -> None:
    # 0.9561 - 0.9461 is 0.010000000000000009 in binary floating point.
    verdict = judge(POLICY, row("accuracy", 0.9561, 0.9461))
    assert by_rule(verdict, "accuracy", "max_drop").outcome == "pass"


def test_absolute_bounds_and_lower_is_better() -> None:
    verdict = judge(POLICY, row("accuracy", 0.91, 0.895), row("latency_ms", 40.0, 61.25))
    assert by_rule(verdict, "accuracy", "min").reason == "accuracy is 0.8950, below min 0.9"
    assert by_rule(verdict, "latency_ms", "max").reason == "latency_ms is 61.25, above max 50"
    assert verdict.verdict == "fail"
    assert len(verdict.failed) == 3  # min, max_drop (0.015 > 0.01) and max
    assert "and 2 more failing rules" in verdict.summary


def test_max_drop_pct_is_relative_to_the_baseline() -> None:
    verdict = judge(POLICY, row("f1", 0.95, 0.9262))
    result = by_rule(verdict, "f1", "max_drop_pct")
    assert result.outcome == "fail"
    assert result.reason == "f1 dropped 2.51% (0.9500 → 0.9262), more than max_drop_pct 2"
    assert judge(POLICY, row("f1", 0.95, 0.94)).verdict == "pass"  # 1.05%


def test_min_gain_requires_an_improvement() -> None:
    policy = "metrics:\n  roc_auc: {direction: higher, min_gain: 0.005}\n"
    short = by_rule(judge(policy, row("roc_auc", 0.97, 0.972)), "roc_auc", "min_gain")
    assert short.outcome == "fail"
    assert short.reason == "roc_auc improved by 0.0020 (0.9700 → 0.9720), less than min_gain 0.005"
    assert judge(policy, row("roc_auc", 0.97, 0.976)).verdict == "pass"


@pytest.mark.parametrize(
    ("choice", "outcome", "verdict"),
    [("fail", "fail", "fail"), ("neutral", "neutral", "neutral"), ("ignore", "skipped", "pass")],
)
def test_on_missing_metric(choice: str, outcome: str, verdict: str) -> None:
    policy = f"metrics:\n  accuracy: {{max_drop: 0.01}}\non_missing_metric: {choice}\n"
    result = judge(policy, row("accuracy", 0.95, None, status="removed"))
    assert result.verdict == verdict
    (rule,) = result.rules
    assert (rule.rule, rule.outcome) == ("on_missing_metric", outcome)
    assert rule.reason == (
        f"accuracy is missing from the candidate (baseline 0.9500); on_missing_metric: {choice}"
    )


def test_first_pull_request_applies_absolute_rules_only() -> None:
    verdict = judge(POLICY, row("accuracy", None, 0.88, status="added"))
    assert by_rule(verdict, "accuracy", "min").outcome == "fail"
    skipped = by_rule(verdict, "accuracy", "max_drop")
    assert skipped.outcome == "skipped"
    assert "no baseline value" in skipped.reason


@pytest.mark.parametrize(
    ("choice", "verdict"), [("neutral", "neutral"), ("fail", "fail"), ("pass", "pass")]
)
def test_significant_rule_follows_on_inconclusive_when_the_ci_disagrees(
    choice: str, verdict: str
) -> None:
    policy = (
        "metrics:\n  accuracy: {direction: higher, max_drop: 0.01, significant: true}\n"
        f"on_inconclusive: {choice}\n"
    )
    noisy = row("accuracy", 0.95, 0.935, ci_low=-0.031, ci_high=0.002)
    result = judge(policy, noisy)
    assert result.verdict == verdict
    assert result.rules[0].reason == (
        "accuracy dropped 0.0150 (0.9500 → 0.9350), more than max_drop 0.01, but the 95% CI of "
        f"the change [-0.0310, 0.0020] does not rule out noise (on_inconclusive: {choice})"
    )
    sure = row("accuracy", 0.95, 0.92, ci_low=-0.041, ci_high=-0.019)
    assert judge(policy, sure).verdict == "fail"
    assert judge(policy, sure).rules[0].reason.endswith("[-0.0410, -0.0190] agrees")


def test_significant_without_an_interval_is_judged_on_the_point_estimate() -> None:
    policy = "metrics:\n  accuracy: {max_drop: 0.01, significant: true}\n"
    verdict = judge(policy, row("accuracy", 0.95, 0.93))
    assert verdict.verdict == "fail"
    assert "judged on the point estimate" in verdict.rules[0].reason


def test_default_rule_covers_metrics_not_listed() -> None:
    policy = "metrics:\n  default: {max_drop_pct: 5}\n  accuracy: {max_drop: 0.01}\n"
    verdict = judge(policy, row("accuracy", 0.95, 0.945), row("recall", 0.9, 0.8))
    assert by_rule(verdict, "recall", "max_drop_pct").outcome == "fail"
    assert by_rule(verdict, "accuracy", "max_drop").outcome == "pass"
    assert not [r for r in verdict.rules if r.metric == "accuracy" and r.rule == "max_drop_pct"]


def test_policy_keys_match_key_paths_and_leaf_names() -> None:
    policy = "metrics:\n  f1: {max_drop: 0.01}\n"
    rows = [row("eval/metrics.json:f1", 0.9, 0.85), row("per_class.1.f1", 0.9, 0.9)]
    verdict = evaluate_gate(comparison(*rows), parse_settings(policy), check_names=True)
    assert [r.outcome for r in verdict.rules] == ["fail", "pass"]


def test_unknown_metric_name_names_file_key_and_known_metrics() -> None:
    policy = "metrics:\n  acuracy: {max_drop: 0.01}\n"
    with pytest.raises(UnknownPolicyMetric) as err:
        judge(policy, row("accuracy", 0.95, 0.95), row("f1", 0.9, 0.9), check_names=True)
    message = str(err.value)
    assert "mlops-ci.yaml: metrics.acuracy" in message
    assert "metrics that exist: accuracy, f1" in message
    assert err.value.exit_code == 2


def test_verdict_document_matches_its_schema() -> None:
    from mlops_ci.ci.untrusted import validate_document

    verdict = judge(POLICY, row("accuracy", 0.9561, 0.9348), row("latency_ms", 30.0, None))
    validate_document("verdict", verdict.to_dict())


def test_numbers_are_shown_as_reviewers_read_them() -> None:
    assert [fmt(x) for x in (0.95614, 45.2712, 1234.5, 0.0000234, 0)] == [
        "0.9561", "45.27", "1234", "2.34e-05", "0",
    ]  # fmt: skip


# --- noise: the gate on intervals from the real bootstrap ------------------------------------------

SIGNIFICANT = parse_settings(
    "metrics:\n  accuracy: {direction: higher, max_drop: 0, significant: true}\n"
)
POINT_ONLY = parse_settings("metrics:\n  accuracy: {direction: higher, max_drop: 0}\n")


def noisy_trial(seed: int, p_baseline: float, p_candidate: float, n: int):
    """Rows each right with the given probability, independently; the comparison row of them."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    sides = []
    for p in (p_baseline, p_candidate):
        right = rng.random(n) < p
        sides.append(Predictions.from_arrays(y_true, np.where(right, y_true, 1 - y_true)))
    ci = bootstrap_family(*sides, ["accuracy"], seed=seed).overall["accuracy"]
    return comparison(row("accuracy", ci.baseline, ci.candidate, ci_low=ci.low, ci_high=ci.high))


@pytest.mark.slow
def test_same_true_accuracy_is_not_failed_in_95_of_100_trials() -> None:
    trials = [noisy_trial(seed, 0.9, 0.9, n=2_000) for seed in range(100)]
    failed = sum(evaluate_gate(t, SIGNIFICANT).verdict == "fail" for t in trials)
    assert failed <= 5
    # The same rows judged on point estimates alone fail about half the time.
    assert sum(evaluate_gate(t, POINT_ONLY).verdict == "fail" for t in trials) >= 30


@pytest.mark.slow
def test_a_true_drop_of_three_points_is_failed_in_95_of_100_trials() -> None:
    failed = sum(
        evaluate_gate(noisy_trial(1000 + seed, 0.9, 0.87, n=20_000), SIGNIFICANT).verdict == "fail"
        for seed in range(100)
    )
    assert failed >= 95


# --- mlops-ci gate in a real git repository --------------------------------------------------------


@pytest.fixture
def policy_repo(tmp_path: Path) -> tuple[Path, str]:
    """A git repo whose main holds POLICY; a branch `feature` is checked out. (repo, main sha)"""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = Git(repo)
    git.run("init", "--quiet", "-b", "main")
    (repo / "mlops-ci.yaml").write_text(POLICY)
    sha = git_commit_all(repo, "Policy")
    git.run("checkout", "--quiet", "-b", "feature")
    return repo, sha


def write_comparison(repo: Path, accuracy: tuple[Any, Any], baseline_sha: str | None) -> None:
    rows = rows_of_policy(accuracy)
    documents.write(
        repo / ".mlops-ci", "comparison.json", comparison(*rows, baseline_sha=baseline_sha)
    )


def read_verdict(repo: Path) -> dict[str, Any]:
    return documents.read(repo / ".mlops-ci", "verdict.json", kind="verdict")


def test_gate_exit_1_and_failure_status_on_the_local_forge(
    policy_repo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, sha = policy_repo
    write_comparison(repo, (0.9561, 0.9348), baseline_sha=sha)
    assert main(["gate", "-C", str(repo), "--post"]) == 1
    out = capsys.readouterr().out
    assert "gate: fail — accuracy dropped 0.0213 (0.9561 → 0.9348), more than max_drop 0.01" in out
    verdict = read_verdict(repo)
    assert verdict["verdict"] == "fail"
    assert verdict["policy"] == {"revision": sha, "source": "baseline", "path": "mlops-ci.yaml",
                                 "changed": False}  # fmt: skip
    (status,) = json.loads((repo / ".mlops-ci" / "statuses.json").read_text())
    assert (status["state"], status["context"], status["sha"]) == (
        "failure", "mlops-ci/classifier", "c" * 40,
    )  # fmt: skip
    assert status["description"].startswith("fail: accuracy dropped 0.0213")


def test_gate_passes_with_exit_0(policy_repo: tuple[Path, str]) -> None:
    repo, sha = policy_repo
    write_comparison(repo, (0.9561, 0.9649), baseline_sha=sha)
    assert main(["gate", "-C", str(repo), "--post", "--json"]) == 0
    (status,) = json.loads((repo / ".mlops-ci" / "statuses.json").read_text())
    assert status["state"] == "success"


def test_neutral_verdict_is_a_success_status_saying_neutral(policy_repo: tuple[Path, str]) -> None:
    repo, sha = policy_repo
    (repo / "mlops-ci.yaml").write_text(
        POLICY.replace("on_missing_metric: fail", "on_missing_metric: neutral")
    )
    git_commit_all(repo, "Neutral on missing")
    sha = Git(repo).out("rev-parse", "HEAD")
    write_comparison(repo, (0.95, None), baseline_sha=sha)
    assert main(["gate", "-C", str(repo), "--post"]) == 0
    (status,) = json.loads((repo / ".mlops-ci" / "statuses.json").read_text())
    assert status["state"] == "success"
    assert status["description"].startswith("neutral: accuracy is missing")


def test_a_pr_that_loosens_its_threshold_is_judged_by_the_baseline_policy(
    policy_repo: tuple[Path, str],
) -> None:
    repo, sha = policy_repo
    (repo / "mlops-ci.yaml").write_text(POLICY.replace("max_drop: 0.01", "max_drop: 0.05"))
    git_commit_all(repo, "Loosen the gate")
    write_comparison(repo, (0.9561, 0.9348), baseline_sha=sha)
    assert main(["gate", "-C", str(repo)]) == 1
    verdict = read_verdict(repo)
    assert verdict["policy"]["revision"] == sha
    assert verdict["policy"]["changed"] is True
    assert verdict["rules"][1]["reason"].endswith("more than max_drop 0.01")
    # Without a baseline (first PR) the working tree's policy is all there is.
    write_comparison(repo, (0.9561, 0.9348), baseline_sha=None)
    assert main(["gate", "-C", str(repo)]) == 0
    assert read_verdict(repo)["policy"]["source"] == "working tree"


def test_policy_change_diff_is_reported(policy_repo: tuple[Path, str]) -> None:
    from mlops_ci.commands.gate import load_policy

    repo, sha = policy_repo
    (repo / "mlops-ci.yaml").write_text(POLICY.replace("max_drop: 0.01", "max_drop: 0.05"))
    policy = load_policy(repo, sha)
    assert policy.change()["changed"] is True
    assert "-  accuracy: {direction: higher, min: 0.9, max_drop: 0.01}" in policy.diff
    assert "+  accuracy: {direction: higher, min: 0.9, max_drop: 0.05}" in policy.diff


BAD_POLICIES = {
    "unknown key": ("metrics:\n  accuracy: {max_dorp: 0.01}\n", "unknown key 'metrics.accuracy.max_dorp'"),
    "wrong type": ("metrics:\n  accuracy: {max_drop: lots}\n", "metrics.accuracy.max_drop must be a number, not 'lots'"),
    "unknown metric": ("metrics:\n  acuracy: {max_drop: 0.01}\n", "metrics.acuracy names a metric that exists at neither revision; metrics that exist: accuracy"),
    "empty file": ("", "is empty"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_POLICIES))
def test_bad_policy_files_exit_2_naming_the_problem(
    case: str, policy_repo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = policy_repo
    text, expected = BAD_POLICIES[case]
    git = Git(repo)
    git.run("checkout", "--quiet", "main")
    (repo / "mlops-ci.yaml").write_text(text)
    bad = git_commit_all(repo, f"Policy with {case}")
    write_comparison(repo, (0.95, 0.95), baseline_sha=bad)
    assert main(["gate", "-C", str(repo)]) == 2
    err = capsys.readouterr().err
    assert f"mlops-ci.yaml at {bad[:12]} (the baseline)" in err
    assert expected in err
    assert not (repo / ".mlops-ci" / "verdict.json").exists()


def test_gate_without_a_comparison_says_what_to_run(tmp_path: Path, capsys) -> None:
    assert main(["gate", "-C", str(tmp_path)]) == 2
    assert "comparison.json does not exist" in capsys.readouterr().err


# --- posting to GitHub ---------------------------------------------------------------------------


def test_gate_post_on_github_status_check_run_annotations_outputs(
    policy_repo: tuple[Path, str],
    fake_github,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    repo, sha = policy_repo
    head = Git(repo).out("rev-parse", "HEAD")
    for key, value in fake_github.ci_env(tmp_path / "ci", head_sha=head, base_sha=sha).items():
        monkeypatch.setenv(key, value)
    outputs = tmp_path / "ci" / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    write_comparison(repo, (0.9561, 0.9348), baseline_sha=sha)
    assert main(["gate", "-C", str(repo), "--post"]) == 1
    out = capsys.readouterr().out
    assert (
        "::error title=mlops-ci gate (classifier)::accuracy dropped 0.0213 (0.9561 → 0.9348), "
        "more than max_drop 0.01\n" in out
    )
    gh = fake_github.repo("octo/demo")
    (status,) = gh.statuses
    assert (status["state"], status["context"], status["sha"]) == (
        "failure", "mlops-ci/classifier", head,
    )  # fmt: skip
    assert len(status["description"]) <= 140
    (check,) = gh.check_runs
    assert check["conclusion"] == "failure"
    assert check["head_sha"] == head
    text = outputs.read_text()
    assert "\nfail\n" in text
    assert "\naccuracy:max_drop\n" in text


def test_a_rule_asking_another_confidence_level_says_which_one_was_used() -> None:
    policy = "metrics:\n  accuracy: {max_drop: 0.01, significant: true, confidence: 0.99}\n"
    sure = row("accuracy", 0.95, 0.92, ci_low=-0.041, ci_high=-0.019)
    reason = judge(policy, sure).rules[0].reason
    assert reason.endswith("(the interval is at 95%, not the rule's 99%: set the top-level "
                           "confidence to change it)")  # fmt: skip


def test_annotations_cannot_be_split_by_a_metric_name() -> None:
    from mlops_ci.commands.gate import annotations

    verdict = judge("artifact: classifier\nmetrics:\n  default: {max_drop: 0.01}\n",
                    row("x\n::warning::injected,50%", 0.9, 0.8))  # fmt: skip
    (line,) = annotations(verdict)
    assert "\n" not in line
    assert line.startswith(
        "::error title=mlops-ci gate (classifier)::x%0A::warning::injected,50%25"
    )


def test_no_metrics_at_all_means_the_listed_ones_are_missing_not_misspelt() -> None:
    verdict = evaluate_gate(comparison(), parse_settings(POLICY))
    assert verdict.verdict == "fail"
    assert {(r.metric, r.rule) for r in verdict.rules} == {
        ("accuracy", "on_missing_metric"), ("f1", "on_missing_metric"),
        ("latency_ms", "on_missing_metric"),
    }  # fmt: skip


def test_a_lower_is_better_interval_is_shown_as_the_change() -> None:
    policy = "metrics:\n  log_loss: {direction: lower, max_drop: 0.01, significant: true}\n"
    worse = row("log_loss", 0.30, 0.35, ci_low=0.03, ci_high=0.07)
    result = judge(policy, worse).rules[0]
    assert result.outcome == "fail"
    assert result.reason == (
        "log_loss rose 0.0500 (0.3000 → 0.3500), more than max_drop 0.01; the 95% CI of the "
        "change [0.0300, 0.0700] agrees"
    )


# --- fail closed: the gate does not pass on inputs it cannot trust --------------------------------

NOT_NUMBERS = [
    # (value in comparison.json, how the reason shows it): compare writes NaN, inf and booleans
    # as strings; a fork's document or an in-memory comparison can hold the raw values.
    ("nan", "'nan'"), ("inf", "'inf'"), ("-inf", "'-inf'"), ("true", "'true'"),
    ("n/a", "'n/a'"), (True, "true"), (float("nan"), "nan"), (float("inf"), "inf"),
    (float("-inf"), "-inf"), (10**400, "1000000000"),
]  # fmt: skip


@pytest.mark.parametrize("side", ["candidate", "baseline"])
@pytest.mark.parametrize(("value", "shown"), NOT_NUMBERS, ids=[s for _, s in NOT_NUMBERS])
def test_a_gated_metric_that_is_not_a_finite_number_fails_naming_the_value(
    side: str, value: Any, shown: str
) -> None:
    from mlops_ci.ci.untrusted import validate_document

    values = {"baseline": 0.95, "candidate": 0.95, side: value}
    bad = {"name": "accuracy", "key": "accuracy", "file": "eval/metrics.json", "delta": None,
           "direction": "higher", "ci_low": None, "ci_high": None, "status": "changed"} | values  # fmt: skip
    verdict = judge(POLICY, bad)
    assert verdict.verdict == "fail"
    (failed,) = verdict.failed
    assert failed.metric == "accuracy"
    assert f"accuracy is {shown}" in failed.reason
    assert f"at the {side}" in failed.reason
    assert "not a number" not in verdict.summary or verdict.summary == failed.reason
    # The verdict is still a valid document: no NaN or infinity reaches verdict.json.
    document = verdict.to_dict()
    json.dumps(document, allow_nan=False)
    validate_document("verdict", document)


@pytest.mark.parametrize("status", ["unknown", "inconclusive"])
def test_an_unreadable_gated_metric_fails_with_the_error_compare_recorded(status: str) -> None:
    # Even a policy that ignores missing metrics must not pass a metric that could not be read.
    policy = POLICY.replace("on_missing_metric: fail", "on_missing_metric: ignore")
    doc = comparison(row("accuracy", 0.95, None, status=status, file="eval/metrics.json"))
    doc["errors"] = [{"file": "eval/metrics.json", "revision": "workspace",
                      "message": "not valid metrics: Expecting value: line 1 column 1 (char 0)"}]  # fmt: skip
    verdict = evaluate_gate(doc, parse_settings(policy), check_names=False)
    assert verdict.verdict == "fail"
    # accuracy, and f1 and latency_ms too: the unreadable file may hold them.
    assert {r.metric for r in verdict.failed} == {"accuracy", "f1", "latency_ms"}
    for failed in verdict.failed:
        assert "eval/metrics.json at workspace could not be read" in failed.reason
        assert "Expecting value: line 1 column 1" in failed.reason


def test_no_readable_metrics_and_a_broken_file_fail_even_when_missing_is_neutral() -> None:
    policy = POLICY.replace("on_missing_metric: fail", "on_missing_metric: neutral")
    doc = comparison()
    doc["errors"] = [{"file": "eval/metrics.json", "revision": "workspace",
                      "message": "not valid metrics: while parsing a flow mapping"}]  # fmt: skip
    verdict = evaluate_gate(doc, parse_settings(policy))
    assert verdict.verdict == "fail"
    assert "while parsing a flow mapping" in verdict.summary


def test_a_malformed_candidate_metrics_file_fails_the_gate_naming_the_parse_error(
    trained_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (trained_repo / "eval" / "metrics.json").write_text('{"accuracy": 0.97,, "f1": }')
    assert main(["compare", "-C", str(trained_repo)]) == 0
    comparison_doc = documents.read(trained_repo / ".mlops-ci", "comparison.json")
    (error,) = [e for e in comparison_doc["errors"] if e["file"] == "eval/metrics.json"]
    capsys.readouterr()
    assert main(["gate", "-C", str(trained_repo)]) == 1
    verdict = read_verdict(trained_repo)
    assert verdict["verdict"] == "fail"
    assert error["message"][:60] in verdict["summary"]
    assert "eval/metrics.json" in verdict["summary"]


# --- documents name their inputs ---------------------------------------------------------------------


def test_the_verdict_names_the_comparison_and_revisions_it_judged(
    policy_repo: tuple[Path, str],
) -> None:
    import hashlib

    repo, sha = policy_repo
    write_comparison(repo, (0.9561, 0.9649), baseline_sha=sha)
    assert main(["gate", "-C", str(repo)]) == 0
    raw = (repo / ".mlops-ci" / "comparison.json").read_bytes()
    verdict = read_verdict(repo)
    assert verdict["inputs"] == {
        "comparison.json": "sha256:" + hashlib.sha256(raw).hexdigest(),
        "baseline_sha": sha,
        "candidate_sha": "c" * 40,
        "policy_revision": sha,
    }


def test_report_does_not_show_a_verdict_judged_on_another_comparison(
    policy_repo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, sha = policy_repo
    write_comparison(repo, (0.9561, 0.9649), baseline_sha=sha)
    assert main(["gate", "-C", str(repo)]) == 0  # pass, on this comparison
    write_comparison(repo, (0.9561, 0.80), baseline_sha=sha)  # a newer one, three rules red
    assert main(["report", "-C", str(repo)]) == 0
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "✅" not in report and "**pass**" not in report
    assert "verdict.json was judged on another comparison.json" in report
    assert "mlops-ci gate" in report
    assert "verdict.json was judged on another comparison.json" in capsys.readouterr().out


def test_report_after_a_gate_that_exited_2_shows_no_earlier_verdict(
    policy_repo: tuple[Path, str],
) -> None:
    repo, sha = policy_repo
    write_comparison(repo, (0.9561, 0.9649), baseline_sha=sha)
    assert main(["gate", "-C", str(repo)]) == 0
    (repo / "mlops-ci.yaml").write_text("metrics:\n  accuracy: {max_dorp: 0.01}\n")
    bad = git_commit_all(repo, "A broken policy")
    (repo / "mlops-ci.yaml").write_text(POLICY)  # the working tree is fine; the baseline is not
    write_comparison(repo, (0.9561, 0.80), baseline_sha=bad)
    assert main(["gate", "-C", str(repo)]) == 2
    assert main(["report", "-C", str(repo)]) == 0
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "**pass**" not in report


def test_the_report_names_the_documents_it_was_rendered_from(policy_repo: tuple[Path, str]) -> None:
    repo, sha = policy_repo
    write_comparison(repo, (0.9561, 0.9348), baseline_sha=sha)
    assert main(["gate", "-C", str(repo)]) == 1
    assert main(["report", "-C", str(repo)]) == 0
    run_dir = repo / ".mlops-ci"
    report = (run_dir / "report.md").read_text()
    for name in ("comparison.json", "verdict.json"):
        assert f"{name} {documents.file_digest(run_dir / name)}" in report


# --- the policy: a typo on main is reported, a typo in a pull request fails -------------------------


def test_a_policy_typo_merged_on_main_is_reported_not_fatal_once_the_pr_fixes_it(
    policy_repo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = policy_repo
    git = Git(repo)
    git.run("checkout", "--quiet", "main")
    (repo / "mlops-ci.yaml").write_text(POLICY.replace("latency_ms:", "latency_mss:"))
    typo = git_commit_all(repo, "A typo in the policy")
    git.run("checkout", "--quiet", "-b", "fix-the-typo")
    (repo / "mlops-ci.yaml").write_text(POLICY)
    git_commit_all(repo, "Fix the typo")
    write_comparison(repo, (0.9561, 0.9649), baseline_sha=typo)
    assert main(["gate", "-C", str(repo)]) == 0
    verdict = read_verdict(repo)
    assert verdict["verdict"] == "neutral"
    (typo_rule,) = [r for r in verdict["rules"] if r["metric"] == "latency_mss"]
    assert typo_rule["outcome"] == "neutral"
    assert "metrics.latency_mss" in typo_rule["reason"]
    assert "fixes it" in typo_rule["reason"]
    assert main(["report", "-C", str(repo)]) == 0
    assert "metrics.latency\\_mss" in (repo / ".mlops-ci" / "report.md").read_text()


PR_POLICY_MISTAKES = {
    "misspelt metric": (POLICY.replace("latency_ms:", "latency_mss:"), "metrics.latency_mss"),
    "unknown rule key": (POLICY.replace("max_drop: 0.01", "max_dorp: 0.01"), "metrics.accuracy.max_dorp"),
    "not yaml": (POLICY + "metrics: [\n", "not valid YAML"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PR_POLICY_MISTAKES))
def test_a_pr_that_breaks_the_policy_fails_naming_the_exact_key(
    case: str, policy_repo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, sha = policy_repo
    text, key = PR_POLICY_MISTAKES[case]
    (repo / "mlops-ci.yaml").write_text(text)
    git_commit_all(repo, f"Policy with a {case}")
    write_comparison(repo, (0.9561, 0.9649), baseline_sha=sha)  # the metrics themselves pass
    assert main(["gate", "-C", str(repo)]) == 1
    verdict = read_verdict(repo)
    (failed,) = [r for r in verdict["rules"] if r["outcome"] == "fail"]
    assert failed["rule"] == "policy"
    assert key in failed["reason"]
    assert "mlops-ci.yaml in this change" in failed["reason"]
    assert key in capsys.readouterr().out


def test_an_interval_that_excludes_no_change_is_never_called_noise() -> None:
    """The table marks this row regressed (its interval is all below zero); the gate's reason
    must not say the interval "does not rule out noise"."""
    from mlops_ci.report import build_report
    from tests.report.report_parse import table_with, unescape

    policy = (
        "metrics:\n  accuracy: {direction: higher, max_drop: 0.01, significant: true}\n"
        "on_inconclusive: neutral\n"
    )
    real = row("accuracy", 0.95, 0.935, ci_low=-0.02, ci_high=-0.004, status="regressed")
    result = judge(policy, real)
    reason = result.rules[0].reason
    assert "does not rule out noise" not in reason
    assert reason.endswith(
        "but the 95% CI of the change [-0.0200, -0.0040] rules out noise: a real drop that may "
        "be within max_drop 0.01 (on_inconclusive: neutral)"
    )
    doc = result.to_dict()
    markdown = build_report(comparison(real), doc, limit=None).markdown
    (metric_row,) = table_with(markdown, "Metric")[1:]
    assert "regressed" in metric_row[-1]
    assert "rules out noise: a real drop" in unescape(markdown)
