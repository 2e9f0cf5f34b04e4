"""The review's hidden records, attacked as a pull request author would: a forged verdict record
in the policy diff (fork and same repository), and a metric name that is an acknowledgement of
ours. Each test is the attack end to end against the fake GitHub; the status must stay failure."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_ci.commands.review import run_review
from mlops_ci.commands.waivers import apply_review
from mlops_ci.forge import detect_forge
from mlops_ci.gate.verdict import RuleResult, Verdict
from mlops_ci.gate.waivers import ack_marker
from mlops_ci.report import build_report
from mlops_ci.report.waivers import decode_payload, encode_payload
from tests.commands.test_untrusted import FORK, comparison_doc, publish, write_run_dir
from tests.fakes.github import DEFAULT_LOGIN, FakeGitHub
from tests.gate.test_waivers import MAINTAINER_TOKEN, PR, REPO, review_env

HEAD_FORK = "c" * 40  # the head tests.commands.test_untrusted publishes for
HEAD = "a" * 40


def forged_record(head: str) -> str:
    """A complete, well-formed verdict record for `head` in which only `latency` fails."""
    forged = Verdict(
        "fail",
        "latency regressed",
        [RuleResult("latency", "max", 10.0, 12.0, "fail", "latency 12 > max 10")],
        artifact="classifier",
        head_sha=head,
    )
    return encode_payload(forged.to_dict())


def statuses(fake: FakeGitHub) -> list[str]:
    return [s["state"] for s in fake.repo(REPO).statuses]


def maintainer(fake: FakeGitHub) -> None:
    fake.add_token(MAINTAINER_TOKEN, "maint")
    fake.set_permission("maint", "maintain")


def test_a_forged_record_in_a_forks_policy_diff_never_turns_its_status_green(
    fake_github, trusted_env, tmp_path
):
    # The fork's accuracy is 0.50 under the trusted min 0.9; its policy diff carries a record
    # for its own head in which only `latency` fails.
    doc = comparison_doc(
        policy_change={"changed": True, "diff": "+# tuned\n" + forged_record(HEAD_FORK) + "\n"}
    )
    doc["metrics"][0].update(candidate=0.5, delta=-0.45, status="regressed")
    assert publish(write_run_dir(tmp_path / "untrusted-run", doc)) == 0
    assert statuses(fake_github) == ["failure"]
    (report,) = [c for c in fake_github.comments_on(REPO, PR) if "mlops-ci-report:" in c["body"]]

    maintainer(fake_github)
    env = review_env(fake_github, tmp_path / "review", "maint", "/mlops-ci accept latency fine")
    fake_github.repo(REPO).pulls[PR].update(head_sha=HEAD_FORK, head_repo=FORK)
    result = run_review(tmp_path, tmp_path / "review" / ".mlops-ci", env=env)

    assert statuses(fake_github) == ["failure"], "the fork's head is not marked success"
    assert result.outcome == "refused" and result.status_state is None
    assert "fork" in fake_github.comments_on(REPO, PR)[-1]["body"]
    assert "<!-- mlops-ci-verdict" not in report["body"], "no record was rendered from the diff"
    assert decode_payload(report["body"]) is None


def test_a_forged_record_cannot_hide_a_same_repository_pull_requests_fail_closed_rule(
    fake_github, tmp_path
):
    # The real verdict of HEAD: latency fails (waivable), accuracy is unreadable (fail-closed).
    real = Verdict(
        "fail",
        "accuracy cannot be judged",
        [
            RuleResult("latency", "max", 10.0, 12.0, "fail", "latency 12 > max 10"),
            RuleResult("accuracy", "readable", None, None, "fail", "accuracy cannot be judged"),
        ],
        artifact="classifier",
        head_sha=HEAD,
    )
    doc = comparison_doc(
        policy_change={"changed": True, "diff": "+# tuned\n" + forged_record(HEAD) + "\n"}
    )
    report = build_report(doc, real.to_dict(), limit=65_536, marker_id="pr")
    maintainer(fake_github)
    env = review_env(fake_github, tmp_path, "maint", "/mlops-ci accept latency fine")
    fake_github._create_comment(fake_github.repo(REPO), PR, report.markdown, DEFAULT_LOGIN)

    result = run_review(tmp_path, tmp_path / ".mlops-ci", env=env)

    assert statuses(fake_github) == ["failure"]
    assert result.outcome == "waived"
    assert result.verdict["verdict"] == "fail", "accuracy stays failed: the real record was read"


def test_a_metric_named_like_our_acknowledgement_is_no_acknowledgement(fake_github, tmp_path):
    maintainer(fake_github)
    env = review_env(fake_github, tmp_path, "maint", "/mlops-ci accept nothing-here because")
    repo = fake_github.repo(REPO)
    # A maintainer's accept command that the review never acknowledged (it ran for no head).
    old = fake_github._create_comment(repo, PR, "/mlops-ci accept latency fine", "maint")
    name = ack_marker(old["id"], HEAD)  # the metric's name is our acknowledgement of it
    verdict = Verdict(
        "fail",
        "two rules failed",
        [
            RuleResult("latency", "max", 10.0, 12.0, "fail", "latency 12 > max 10"),
            RuleResult(name, "min", 0.9, 0.5, "fail", "the name fails"),
        ],
        artifact="classifier",
        head_sha=HEAD,
    )
    body = (
        "<!-- mlops-ci-report:classifier:pr -->\n### mlops-ci report: classifier\n\n"
        f"Gate: ❌ **fail**: two rules failed\n\n{encode_payload(verdict.to_dict())}\n"
    )
    fake_github._create_comment(repo, PR, body, DEFAULT_LOGIN)

    # The reply lists what can be accepted, the metric's name among them, in a code span.
    result = run_review(tmp_path, tmp_path / ".mlops-ci", env=env)
    assert result.outcome == "replied"
    reply = fake_github.comments_on(REPO, PR)[-1]["body"]

    # A later gate run for HEAD must not count the old command as accepted for HEAD.
    forge = detect_forge(env, tmp_path / ".mlops-ci")
    later = Verdict(
        "fail",
        "latency regressed",
        [RuleResult("latency", "max", 10.0, 12.0, "fail", "latency 12 > max 10")],
        artifact="classifier",
    )
    apply_review(later, forge, PR, HEAD)
    assert later.verdict == "fail" and later.waivers == []
    assert "mlops-ci-waiver" not in reply and "<!--" not in reply
    assert json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())["comment"]["id"] != old["id"]
