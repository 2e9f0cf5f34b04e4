"""Waivers from the review: the command parser (hostile comments), the re-judging, the rendering
(escaped, checked with GitHub's own markdown renderer), and `mlops-ci review` against the fake
GitHub: who may waive (the permission endpoint), what happens when it does not answer, and
how a later gate run finds the waiver again only for the same head."""

from __future__ import annotations

import json
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.commands.review import run_review
from mlops_ci.commands.waivers import apply_review
from mlops_ci.forge import detect_forge
from mlops_ci.gate.verdict import RuleResult, Verdict
from mlops_ci.gate.waivers import (
    BadCommand,
    Waiver,
    acceptable_targets,
    ack_marker,
    apply_waivers,
    parse_command,
    reset_waivers,
    verdict_from_dict,
)
from mlops_ci.report.waivers import decode_payload, encode_payload, splice_waivers, waivers_block
from tests.fakes.github import DEFAULT_LOGIN, FakeGitHub

REPO = "octo/demo"
PR = 7
HEAD = "a" * 40
NEW_HEAD = "c" * 40
MAINTAINER_TOKEN = "ghp_maintainer"
READER_TOKEN = "ghp_reader"


def failing_verdict(head: str | None = HEAD) -> Verdict:
    rules = [
        RuleResult("accuracy", "max_drop", 0.01, 0.03, "fail", "accuracy dropped 0.03, max 0.01"),
        RuleResult("f1", "min", 0.9, 0.95, "pass", "f1 is 0.95, at least min 0.9"),
        RuleResult("latency_ms", "readable", None, None, "fail", "latency_ms cannot be judged"),
    ]
    return Verdict("fail", "accuracy dropped", rules, artifact="classifier", head_sha=head)


def html(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


# --- the parser ----------------------------------------------------------------------------------


def test_parse_accept_with_a_reason():
    cmd = parse_command("/mlops-ci accept accuracy  smaller model,\n 3x faster ")
    assert (cmd.target, cmd.reason) == ("accuracy", "smaller model, 3x faster")


@pytest.mark.parametrize("body", ["LGTM", "see /mlops-ci accept x y", "/mlops-cifoo accept a b"])
def test_what_is_not_a_command_is_ignored(body):
    assert parse_command(body) is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("/mlops-ci", "the only command"),
        ("/mlops-ci reject accuracy no", "got `reject`"),
        ("/mlops-ci accept accuracy", "a reason is required"),
        ("/mlops-ci accept " + "x" * 201 + " why", "1 to 200 characters"),
    ],
)
def test_bad_commands_say_what_to_write(body, says):
    with pytest.raises(BadCommand, match=says):
        parse_command(body)


def test_hostile_reasons_stay_inert_in_the_report():
    evil = (
        "/mlops-ci accept `accuracy` **bold** [x](https://evil.example) ![i](https://t.example/p)"
        " <img src=x onerror=alert(1)> @octo/team #12 --> ` ``` 🙂 ÿ\u202e " + "long " * 400
    )
    cmd = parse_command(evil)
    assert cmd.target == "accuracy", "backticks around the target are the reviewer's quoting"
    assert len(cmd.reason) <= 1000 and cmd.reason.endswith("…")
    verdict = failing_verdict()
    waiver = Waiver(cmd.target, "@mallory", "2026-11-30T10:00:00Z", cmd.reason, HEAD, None, "1")
    apply_waivers(verdict, [waiver], HEAD)
    rendered = html(waivers_block(verdict.to_dict()))
    assert "Waived" in rendered
    for bad in ("<a ", "<img", "<strong>bold", "<code>``", "@octo/team"):
        assert bad not in rendered, bad
    assert "&lt;img src=x" in rendered, "HTML is shown as text"
    record = encode_payload(verdict.to_dict())
    assert record.count("-->") == 1 and record.endswith(" -->"), "the reason cannot end it early"


# --- re-judging ----------------------------------------------------------------------------------


def test_a_waiver_for_this_head_passes_and_for_another_is_named():
    verdict = failing_verdict()
    assert acceptable_targets(verdict) == ["accuracy", "max_drop"], "readable is fail-closed"
    given = Waiver("max_drop", "maint", "t", "trade-off", HEAD, "u", "1")
    notes = apply_waivers(verdict, [given], HEAD)
    assert notes == [] and verdict.rules[0].outcome == "waived"
    assert verdict.verdict == "fail", "latency_ms is unreadable: no waiver passes it"
    verdict = failing_verdict()
    verdict.rules.pop()
    apply_waivers(verdict, [given], HEAD)
    assert verdict.verdict == "pass" and "waived in review" in verdict.summary
    doc = verdict.to_dict()
    assert doc["waivers"][0]["who"] == "maint" and doc["rules"][0]["waived_by"]
    again = verdict_from_dict(doc)
    reset_waivers(again)
    assert again.verdict == "fail" and again.rules[0].outcome == "fail"
    notes = apply_waivers(again, [given], NEW_HEAD)
    assert again.verdict == "fail"
    assert notes == [f"waiver for {HEAD[:12]} no longer applies (max_drop)"]


def test_fail_closed_rules_cannot_be_accepted():
    verdict = failing_verdict()
    apply_waivers(verdict, [Waiver("latency_ms", "m", "t", "why", HEAD)], HEAD)
    assert verdict.rules[2].outcome == "fail" and verdict.waivers == []


def test_the_payload_round_trips_and_tampering_reads_as_none():
    doc = failing_verdict().to_dict()
    payload = encode_payload(doc)
    assert decode_payload("report\n" + payload) == doc
    assert decode_payload(payload.replace("mlops-ci-verdict ", "mlops-ci-verdict AAAA")) is None
    assert decode_payload("<!-- mlops-ci-verdict !!! -->") is None


def test_splice_replaces_the_gate_line_the_block_and_the_record():
    doc = failing_verdict().to_dict()
    body = (
        f"<!-- m -->\n### mlops-ci report\n\nGate: ❌ **fail**: x\n\ntable\n{encode_payload(doc)}\n"
    )
    verdict = failing_verdict()
    verdict.rules.pop()
    apply_waivers(verdict, [Waiver("accuracy", "maint", "t", "ok", HEAD)], HEAD)
    new = verdict.to_dict()
    once = splice_waivers(body, new, encode_payload(new))
    twice = splice_waivers(once, new, encode_payload(new))
    assert once == twice, "splicing again replaces, never adds"
    assert "Gate: ✅ **pass**" in once and once.count("**Waived**") == 1 and "table" in once
    assert decode_payload(once) == new


# --- `mlops-ci review` against the fake GitHub ---------------------------------------------------


def review_env(fake: FakeGitHub, tmp_path: Path, author: str, body: str) -> dict[str, str]:
    env = fake.ci_env(tmp_path, repo=REPO, pr=PR, head_sha=HEAD)
    token = {"maint": MAINTAINER_TOKEN, "reader": READER_TOKEN}[author]
    comment = fake._create_comment(fake.repo(REPO), PR, body, author)
    event = tmp_path / "issue_comment.json"
    event.write_text(
        json.dumps(
            {
                "action": "created",
                "issue": {"number": PR, "pull_request": {"url": "x"}},
                "comment": {
                    "id": comment["id"],
                    "body": body,
                    "user": {"login": author},
                    "created_at": comment["created_at"],
                    "html_url": comment["html_url"],
                },
            }
        )
    )
    assert token
    return env | {"GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": str(event)}


@pytest.fixture
def pr_with_report(fake_github: FakeGitHub) -> FakeGitHub:
    """A pull request whose gate run posted a failing report for HEAD."""
    fake_github.add_token(MAINTAINER_TOKEN, "maint")
    fake_github.add_token(READER_TOKEN, "reader")
    fake_github.set_permission("maint", "maintain")
    fake_github.set_permission("reader", "read")
    verdict = failing_verdict()
    verdict.rules.pop()
    doc = verdict.to_dict()
    body = (
        "<!-- mlops-ci-report:classifier:pr -->\n### mlops-ci report: classifier\n\n"
        f"Gate: ❌ **fail**: accuracy dropped\n\n| metric |\n|---|\n{encode_payload(doc)}\n"
    )
    fake_github.add_pull(REPO, PR, head_sha=HEAD)
    fake_github._create_comment(fake_github.repo(REPO), PR, body, DEFAULT_LOGIN)
    return fake_github


def report_comment(fake: FakeGitHub) -> dict:
    return next(
        c for c in fake.comments_on(REPO, PR) if "mlops-ci-report:" in c["body"] and c["id"]
    )


def test_a_maintainer_accepts_and_the_status_passes(pr_with_report, tmp_path):
    fake = pr_with_report
    env = review_env(fake, tmp_path, "maint", "/mlops-ci accept accuracy worth it @octo")
    run_dir = tmp_path / ".mlops-ci"
    result = run_review(tmp_path, run_dir, env=env)
    assert (result.outcome, result.status_state) == ("waived", "success")
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["waivers"][0]["who"] == "maint"
    assert verdict["waivers"][0]["head_sha"] == HEAD
    body = report_comment(fake)["body"]
    assert "Gate: ✅ **pass**" in body and "**Waived**" in body
    assert decode_payload(body)["verdict"] == "pass"
    reply = fake.comments_on(REPO, PR)[-1]
    assert (
        reply["user"]["login"] == DEFAULT_LOGIN
        and ack_marker(
            env and json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())["comment"]["id"], HEAD
        )
        in reply["body"]
    )
    assert "@octo" not in html(reply["body"]).replace("@\u200b", ""), "no mention"
    (status,) = fake.repo(REPO).statuses
    assert (status["sha"], status["state"]) == (HEAD, "success")

    # A later gate run (same head) finds the waiver again; after a push it is named, not applied.
    forge = detect_forge(env, run_dir)
    forge.use_pull_request(PR)
    same = failing_verdict()
    same.rules.pop()
    apply_review(same, forge, PR, HEAD)
    assert same.verdict == "pass" and same.waivers[0]["target"] == "accuracy"
    moved = failing_verdict(NEW_HEAD)
    moved.rules.pop()
    apply_review(moved, forge, PR, NEW_HEAD)
    assert moved.verdict == "fail"
    assert moved.stale_waivers == [f"waiver for {HEAD[:12]} no longer applies (accuracy)"]
    assert "no longer applies" in waivers_block(moved.to_dict())


def test_a_reader_gets_a_reply_and_nothing_changes(pr_with_report, tmp_path):
    fake = pr_with_report
    before = report_comment(fake)["body"]
    env = review_env(fake, tmp_path, "reader", "/mlops-ci accept accuracy because")
    result = run_review(tmp_path, tmp_path / ".mlops-ci", env=env)
    assert result.outcome == "refused" and not (tmp_path / ".mlops-ci" / "verdict.json").exists()
    assert "write access" in fake.comments_on(REPO, PR)[-1]["body"]
    assert report_comment(fake)["body"] == before and fake.repo(REPO).statuses == []
    # Nor does a later gate run take it: the permission is checked again there.
    forge = detect_forge(env, tmp_path / ".mlops-ci")
    verdict = failing_verdict()
    verdict.rules.pop()
    apply_review(verdict, forge, PR, HEAD)
    assert verdict.verdict == "fail" and verdict.waivers == []


def test_a_permission_check_that_fails_fails_closed(pr_with_report, tmp_path):
    fake = pr_with_report
    env = review_env(fake, tmp_path, "maint", "/mlops-ci accept accuracy because")
    env["MLOPS_CI_RETRY_BASE"] = "0.001"
    fake.fail_next(10, status=502, method="GET")
    forge = detect_forge(env, tmp_path / ".mlops-ci")
    result = run_review(tmp_path, tmp_path / ".mlops-ci", env=env, forge=forge)
    assert (result.outcome, result.exit_code) == ("refused", 3)
    assert "could not be checked" in fake.comments_on(REPO, PR)[-1]["body"]
    assert fake.repo(REPO).statuses == [] and "Waived" not in report_comment(fake)["body"]
    verdict = failing_verdict()
    fake.fail_next(10, status=502, method="GET")
    apply_review(verdict, forge, PR, HEAD)
    assert verdict.verdict == "fail" and "none applied" in verdict.stale_waivers[0]


def test_an_unknown_target_gets_the_list_of_what_can_be_accepted(pr_with_report, tmp_path):
    fake = pr_with_report
    env = review_env(fake, tmp_path, "maint", "/mlops-ci accept `f1` [x](http://e.x)")
    result = run_review(tmp_path, tmp_path / ".mlops-ci", env=env)
    reply = fake.comments_on(REPO, PR)[-1]["body"]
    assert result.outcome == "replied" and fake.repo(REPO).statuses == []
    assert "no failing metric or rule" in reply and "`accuracy`" in reply and "`max_drop`" in reply


# --- GitLab: the gate reads the notes when it runs -----------------------------------------------


def test_gitlab_gate_takes_a_developers_note_for_the_head_it_was_written_on(fake_gitlab, tmp_path):
    from mlops_ci.commands.gate import review_waivers

    env = fake_gitlab.ci_env(head_sha=HEAD)
    fake_gitlab.push("42", PR, HEAD, "2026-01-01T10:00:00.000Z")
    fake_gitlab.set_permission("dev", 30)
    fake_gitlab.set_permission("guest", 10)
    say = "/mlops-ci accept accuracy worth it"
    fake_gitlab.note_at("42", PR, say, "guest", "2026-01-01T11:00:00.000Z")
    fake_gitlab.note_at("42", PR, say, "dev", "2026-01-01T11:00:00.000Z")
    fake_gitlab.note_at("42", PR, say, "stranger", "2026-01-01T11:00:00.000Z")

    verdict = failing_verdict()
    verdict.rules.pop()
    review_waivers(verdict, tmp_path, env)
    assert verdict.verdict == "pass", verdict.stale_waivers
    assert [w["who"] for w in verdict.waivers] == ["dev"], "only Developer or more may waive"

    # Without a token (the job that trains) nothing is asked and nothing waived.
    quiet = failing_verdict()
    quiet.rules.pop()
    review_waivers(quiet, tmp_path, fake_gitlab.ci_env(head_sha=HEAD, token=None))
    assert quiet.verdict == "fail" and quiet.head_sha == HEAD

    # A push after the note: the rerun's gate names the waiver and fails again.
    fake_gitlab.push("42", PR, NEW_HEAD, "2026-01-01T12:00:00.000Z")
    moved = failing_verdict(NEW_HEAD)
    moved.rules.pop()
    review_waivers(moved, tmp_path, fake_gitlab.ci_env(head_sha=NEW_HEAD))
    assert moved.verdict == "fail"
    assert moved.stale_waivers == [f"waiver for {HEAD[:12]} no longer applies (accuracy)"]


# --- main: the merged pull request's waivers reach the model card --------------------------------


def test_mains_gate_carries_the_merged_pull_requests_waivers_into_the_model_card(
    fake_github, tmp_path
):
    from mlops_ci.commands.gate import review_waivers
    from mlops_ci.registry.bundle import render_model_card

    merge = "d" * 40
    fake_github.add_token(MAINTAINER_TOKEN, "maint")
    fake_github.set_permission("maint", "admin")
    env = fake_github.ci_env(tmp_path, repo=REPO, pr=None, head_sha=merge, event="push")
    fake_github.add_pull(REPO, 9, head_sha=HEAD, state="closed", merge_commit_sha=merge)
    repo = fake_github.repo(REPO)
    old = fake_github._create_comment(repo, 9, "/mlops-ci accept f1 for the old head", "maint")
    new = fake_github._create_comment(repo, 9, "/mlops-ci accept accuracy **ok** @team", "maint")
    fake_github._create_comment(repo, 9, "ok\n\n" + ack_marker(old["id"], "e" * 40), DEFAULT_LOGIN)
    fake_github._create_comment(repo, 9, "ok\n\n" + ack_marker(new["id"], HEAD), DEFAULT_LOGIN)

    verdict = Verdict("pass", "all rules passed", [], artifact="classifier")
    review_waivers(verdict, tmp_path, env)
    assert verdict.verdict == "pass" and verdict.head_sha is None
    (carried,) = verdict.to_dict()["pr_waivers"]
    assert (carried["pr"], carried["target"], carried["head_sha"]) == (9, "accuracy", HEAD)

    card = render_model_card(
        {
            "artifact": "classifier",
            "version": "v1.0.0",
            "sha": merge,
            "created_at": "2026-01-03T00:00:00Z",
            "model_file": "model.pkl",
            "model_format": "pickle",
            "tool_version": "0",
            "intended_use": None,
            "verdict": {"verdict": "pass", "summary": "ok"},
            "waivers": verdict.to_dict()["pr_waivers"],
            "metrics": [],
            "baseline_ref": None,
            "confidence": 0.95,
            "params": [],
            "lineage": [],
            "sample_rows": 0,
            "samples_file": "samples.csv",
            "checksums_file": "checksums.txt",
        }
    )
    assert "Waived in the review of pull request #9" in card and "accuracy" in card
    rendered = html(card)
    assert "<strong>ok" not in rendered and "@team" not in rendered
