"""act chains the real parts of a review: pr.yml judges a pull request (failing under main's
policy) and posts its report; review.yml, triggered by a comment, re-judges that verdict with a
maintainer's waiver (status success, recorded in verdict.json and the report), answers a reader
and changes nothing; after a new push pr.yml's rerun fails again and says the waiver no longer
applies. One fixture runs the chain once; the tests read what it left.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.project.git import Git
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow
PR = 7
MAINTAINER, READER = "maint", "reader"
TOKENS = {MAINTAINER: "ghp_maintainer_token", READER: "ghp_reader_token"}


@dataclass
class Chain:
    head: str
    new_head: str
    after_pr: dict[str, Any]
    after_reader: dict[str, Any]
    after_maintainer: dict[str, Any]
    after_push: dict[str, Any]
    reader_comment: dict[str, Any]
    maintainer_comment: dict[str, Any]
    review_verdict: dict[str, Any]
    rerun_verdict: dict[str, Any]
    logs: str


def pr_payload(head: str, base: str) -> dict[str, Any]:
    side = {"repo": {"full_name": harness.REPOSITORY}}
    return {
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "head": {"ref": "feature/smaller", "sha": head, **side},
            "base": {"ref": "main", "sha": base, **side},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }


def comment_payload(comment: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": {"number": PR, "pull_request": {"url": f"/pulls/{PR}"}},
        "comment": comment,
        "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
    }


def repo_state(state: dict[str, Any]) -> dict[str, Any]:
    return state["repos"][harness.REPOSITORY]


def comments(state: dict[str, Any]) -> list[dict[str, Any]]:
    return repo_state(state)["comments"].get(str(PR), [])


def report(state: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in comments(state) if "<!-- mlops-ci-report:" in c["body"]]
    return found


def statuses(state: dict[str, Any], sha: str) -> list[str]:
    return [s["state"] for s in repo_state(state)["statuses"] if s["sha"] == sha]


def record(body: str) -> dict[str, Any]:
    found = re.search(r"<!-- mlops-ci-verdict ([A-Za-z0-9+/=]+) -->", body)
    assert found, "the report carries its verdict"
    return json.loads(zlib.decompress(base64.b64decode(found.group(1))))


@pytest.fixture(scope="module")
def chain(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    act_bin = tools.act()
    tmp = tmp_path_factory.mktemp("review")
    repo = harness.make_ci_repo(trained_template, tmp / "project", ["pr.yml", "review.yml"])
    git = Git(repo)
    # main's policy (read at the baseline) asks for more accuracy than the model has.
    policy = repo / "mlops-ci.yaml"
    policy.write_text(
        policy.read_text().replace("min: 0.9, max_drop: 0.01", "min: 0.999, max_drop: 0.01")
    )
    base = harness.commit_all(repo, "Ask for more accuracy")
    git.run("push", "--quiet", "origin", "main")
    git.run("checkout", "--quiet", "-b", "feature/smaller")
    (repo / "NOTES.md").write_text("A smaller model.\n")
    head = harness.commit_all(repo, "Notes")
    args = ["--pull", f"{harness.REPOSITORY}#{PR}@{head}"]
    for login, token in TOKENS.items():
        args += ["--token", f"{token}={login}"]
    args += ["--permission", f"{MAINTAINER}=maintain", "--permission", f"{READER}=read"]
    logs: list[str] = []
    with harness.fake_forge("github", *args) as fake:
        act = harness.Act(act_bin, repo, fake)

        def run(event: str, payload: dict[str, Any], workflow: str, name: str) -> Path:
            proc = act.run(event, payload, workflow=workflow, work=tmp / name)
            logs.append(harness.tail(proc, 40))
            return tmp / name / "artifacts"

        run("pull_request", pr_payload(head, base), "pr.yml", "pr")
        after_pr = fake.state()
        path = f"/repos/{harness.REPOSITORY}/issues/{PR}/comments"
        reader_comment = harness.post_json(
            fake, path, {"body": "/mlops-ci accept accuracy @everyone **now**"}, TOKENS[READER]
        )
        run("issue_comment", comment_payload(reader_comment), "review.yml", "review-reader")
        after_reader = fake.state()
        maintainer_comment = harness.post_json(
            fake,
            path,
            {"body": "/mlops-ci accept accuracy a 3x smaller model is worth `0.4` points"},
            TOKENS[MAINTAINER],
        )
        store = run(
            "issue_comment", comment_payload(maintainer_comment), "review.yml", "review-maint"
        )
        after_maintainer = fake.state()
        review_verdict = json.loads((store / "mlops-ci-review" / "verdict.json").read_text())
        # A new push: the same pull request, a new head; pr.yml runs again.
        (repo / "NOTES.md").write_text("A smaller model, retuned.\n")
        new_head = harness.commit_all(repo, "Retune")
        harness.post_json(
            fake, "/_fake/pull", {"repo": harness.REPOSITORY, "number": PR, "head_sha": new_head}
        )
        store = run("pull_request", pr_payload(new_head, base), "pr.yml", "pr-2")
        after_push = fake.state()
        rerun_verdict = json.loads((store / "mlops-ci-run" / "verdict.json").read_text())
    return Chain(
        head,
        new_head,
        after_pr,
        after_reader,
        after_maintainer,
        after_push,
        reader_comment,
        maintainer_comment,
        review_verdict,
        rerun_verdict,
        "\n---\n".join(logs),
    )


def test_the_pull_request_fails_under_mains_policy(chain: Chain):
    assert chain.after_pr["violations"] == []
    assert statuses(chain.after_pr, chain.head)[-1] == "failure", chain.logs
    assert record(report(chain.after_pr)["body"])["head_sha"] == chain.head


def test_a_reader_gets_a_reply_and_the_status_stays_failure(chain: Chain):
    state = chain.after_reader
    assert state["violations"] == []
    reply = comments(state)[-1]
    assert reply["user"]["login"] == "github-actions[bot]", chain.logs
    assert "write access" in reply["body"] and "nothing changed" in reply["body"]
    assert statuses(state, chain.head) == statuses(chain.after_pr, chain.head)
    assert report(state)["body"] == report(chain.after_pr)["body"]


def test_a_maintainer_waives_and_the_status_turns_success(chain: Chain):
    state = chain.after_maintainer
    assert state["violations"] == []
    assert statuses(state, chain.head)[-1] == "success", chain.logs
    (waiver,) = chain.review_verdict["waivers"]
    assert chain.review_verdict["verdict"] == "pass"
    assert (waiver["who"], waiver["head_sha"], waiver["target"]) == (
        MAINTAINER,
        chain.head,
        "accuracy",
    )
    assert waiver["comment_url"] == chain.maintainer_comment["html_url"]
    body = report(state)["body"]
    assert report(state)["id"] == report(chain.after_pr)["id"], "updated in place"
    assert "**Waived**" in body and "Gate: ✅ **pass**" in body
    assert record(body)["waivers"] == chain.review_verdict["waivers"]


def test_after_a_new_push_the_waiver_is_gone(chain: Chain):
    state = chain.after_push
    assert state["violations"] == []
    assert statuses(state, chain.new_head)[-1] == "failure", chain.logs
    assert chain.rerun_verdict["verdict"] == "fail"
    assert "waivers" not in chain.rerun_verdict
    stale = f"waiver for {chain.head[:12]} no longer applies (accuracy)"
    assert chain.rerun_verdict["stale_waivers"] == [stale]
    body = report(state)["body"]
    assert "no longer applies" in body and "**Waived**" not in body
