"""Opening or updating one pull/merge request per head branch, on the fake GitHub (checked
against GitHub's OpenAPI description) and the fake GitLab, and as a file on the local forge."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_ci.forge import detect_forge

BRANCH = "mlops-ci/retrain/classifier"


def test_github_opens_then_updates_one_labelled_pull_request(fake_github, tmp_path: Path):
    env = fake_github.ci_env(tmp_path, repo="octo/demo", pr=None, event="schedule")
    fake_github.add_pull("octo/demo", 3, head_sha="c" * 40, head_ref="other")  # not ours
    forge = detect_forge(env, tmp_path / "run")
    first = forge.upsert_pull_request(
        head=BRANCH, base="main", title="Retrain", body="one", labels=["mlops-ci:retrain"]
    )
    second = forge.upsert_pull_request(
        head=BRANCH, base="main", title="Retrain again", body="two", labels=["mlops-ci:retrain"]
    )
    assert first.created and not second.created and first.number == second.number != 3
    assert second.labels == ("mlops-ci:retrain",)
    pull = fake_github.state()["repos"]["octo/demo"]["pulls"][first.number]
    assert (pull["head_ref"], pull["title"], pull["body"]) == (BRANCH, "Retrain again", "two")
    assert pull["labels"] == ["mlops-ci:retrain"]
    lookups = [r for r in fake_github.requests if r.method == "GET" and r.path.endswith("/pulls")]
    assert lookups and all(r.query["head"] == f"octo:{BRANCH}" for r in lookups)
    # Comments then go to that pull request, not the (absent) one of the event.
    forge.use_pull_request(first.number)
    forge.upsert_comment("report", "mlops-ci-report:classifier:retrain")
    assert len(fake_github.comments_on("octo/demo", first.number)) == 1


def test_gitlab_opens_then_updates_one_labelled_merge_request(fake_gitlab, tmp_path: Path):
    env = fake_gitlab.ci_env(mr=None)
    forge = detect_forge(env, tmp_path / "run")
    first = forge.upsert_pull_request(
        head=BRANCH, base="main", title="Retrain", body="one", labels=["mlops-ci:retrain"]
    )
    second = forge.upsert_pull_request(
        head=BRANCH, base="main", title="Retrain", body="two", labels=["mlops-ci:retrain"]
    )
    assert first.created and not second.created and first.number == second.number
    mr = fake_gitlab.state()["projects"]["42"]["mrs"][first.number]
    assert (mr["source_branch"], mr["description"], mr["labels"]) == (
        BRANCH,
        "two",
        ["mlops-ci:retrain"],
    )
    forge.use_pull_request(first.number)
    forge.upsert_comment("report", "mlops-ci-report:classifier:retrain")
    assert len(fake_gitlab.notes_on("42", first.number)) == 1


def test_local_forge_records_the_pull_request_in_the_run_directory(tmp_path: Path):
    forge = detect_forge({}, tmp_path)
    first = forge.upsert_pull_request(head=BRANCH, base="main", title="T", body="one", labels=["x"])
    second = forge.upsert_pull_request(head=BRANCH, base="main", title="T", body="two")
    assert first.created and not second.created and first.number == second.number == 1
    (pull,) = json.loads((tmp_path / "pulls.json").read_text())
    assert (pull["head"], pull["body"], pull["labels"]) == (BRANCH, "two", ["x"])
