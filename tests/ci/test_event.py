"""Reading the CI event from the environment, and `ci.json` as untrusted input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.ci.event import (
    CiEvent,
    InvalidCiMetadata,
    read_ci_event,
    read_ci_metadata,
    write_ci_metadata,
)
from mlops_ci.forge import detect_forge
from mlops_ci.forge.local import LocalForge

HEAD, BASE, OTHER = "a" * 40, "b" * 40, "c" * 40


def github_env(tmp_path: Path, event: str, payload: dict) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REPOSITORY": "octo/demo",
        "GITHUB_SERVER_URL": "https://ghe.example.invalid",
        "GITHUB_RUN_ID": "99",
        "GITHUB_SHA": HEAD,
    }


def pr_payload(head_repo: str = "octo/demo") -> dict:
    return {
        "number": 5,
        "pull_request": {
            "number": 5,
            "head": {"ref": "feat", "sha": HEAD, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "sha": BASE, "repo": {"full_name": "octo/demo"}},
        },
    }


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_github_pull_request(tmp_path, event):
    ev = read_ci_event(github_env(tmp_path, event, pr_payload()))
    assert ev == CiEvent(
        forge="github",
        event_name=event,
        pr_number=5,
        base_ref="main",
        base_sha=BASE,
        head_ref="feat",
        head_sha=HEAD,
        repository="octo/demo",
        run_url="https://ghe.example.invalid/octo/demo/actions/runs/99",
        is_fork=False,
        server_url="https://ghe.example.invalid",
    )


def test_github_fork_pull_request(tmp_path):
    ev = read_ci_event(github_env(tmp_path, "pull_request", pr_payload("stranger/demo")))
    assert ev.is_fork
    assert ev.pr_number == 5


def test_github_push_uses_before_and_after(tmp_path):
    payload = {"ref": "refs/heads/main", "before": BASE, "after": HEAD}
    ev = read_ci_event({**github_env(tmp_path, "push", payload), "GITHUB_REF": "refs/heads/main"})
    assert (ev.pr_number, ev.base_sha, ev.head_sha, ev.head_ref) == (None, BASE, HEAD, "main")
    new_branch = {**payload, "before": "0" * 40}
    assert read_ci_event(github_env(tmp_path, "push", new_branch)).base_sha is None


def test_workflow_run_takes_the_pr_from_the_untrusted_metadata(tmp_path):
    untrusted = read_ci_event(github_env(tmp_path, "pull_request", pr_payload("stranger/demo")))
    run_dir = tmp_path / "artifact"
    write_ci_metadata(run_dir, untrusted)
    payload = {
        "workflow_run": {
            "event": "pull_request",
            "head_sha": HEAD,
            "head_branch": "feat",
            "pull_requests": [],  # GitHub leaves it empty for forks
            "html_url": "https://ghe.example.invalid/octo/demo/actions/runs/98",
            "head_repository": {"full_name": "stranger/demo"},
            "repository": {"full_name": "octo/demo"},
        }
    }
    ev = read_ci_event(github_env(tmp_path, "workflow_run", payload), run_dir)
    assert (ev.event_name, ev.pr_number, ev.head_sha, ev.base_sha) == (
        "workflow_run",
        5,
        HEAD,
        BASE,
    )
    assert ev.is_fork
    assert ev.run_url.endswith("/runs/98")
    # A run directory from another run is refused.
    payload["workflow_run"]["head_sha"] = OTHER
    with pytest.raises(InvalidCiMetadata, match="does not belong to this run"):
        read_ci_event(github_env(tmp_path, "workflow_run", payload), run_dir)


def test_gitlab_merge_request_pipeline():
    env = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "12",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": BASE,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat",
        "CI_MERGE_REQUEST_PROJECT_ID": "1",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "2",
        "CI_COMMIT_SHA": HEAD,
        "CI_PROJECT_PATH": "group/demo",
        "CI_PIPELINE_URL": "https://gl.example.invalid/group/demo/-/pipelines/3",
        "CI_SERVER_URL": "https://gl.example.invalid",
    }
    ev = read_ci_event(env)
    assert (ev.forge, ev.pr_number, ev.base_sha, ev.base_ref, ev.head_ref, ev.head_sha) == (
        "gitlab",
        12,
        BASE,
        "main",
        "feat",
        HEAD,
    )
    assert ev.is_fork
    assert ev.repository == "group/demo"
    assert ev.run_url.endswith("/pipelines/3")


def test_local_and_override():
    assert read_ci_event({}) == CiEvent(forge="local", event_name="local")
    assert read_ci_event({"GITHUB_ACTIONS": "true", "MLOPS_CI_FORGE": "local"}).forge == "local"


def test_detect_local_forge(tmp_path):
    assert isinstance(detect_forge({}, tmp_path), LocalForge)


def test_ci_metadata_round_trip(tmp_path):
    event = CiEvent(
        "github", "pull_request", 5, "main", BASE, "feat", HEAD, "octo/demo", "u", True, "s"
    )
    write_ci_metadata(tmp_path, event)
    back = read_ci_metadata(tmp_path)
    assert back.pr_number == 5
    assert back.head_sha == HEAD
    assert back.is_fork
    assert back.run_url is None  # links never come from the untrusted side


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pr_number", "5; rm -rf /"),
        ("pr_number", "٥"),  # a digit, but not an ASCII one
        ("pr_number", -3),
        ("pr_number", True),
        ("pr_number", 5.5),
        ("head_sha", "A" * 40),
        ("head_sha", "a" * 39),
        ("head_sha", ["a" * 40]),
        ("base_ref", "main\n::set-output name=x::y"),
        ("is_fork", "false"),
        ("forge", "bitbucket"),
        ("schema_version", 2),
    ],
)
def test_ci_metadata_rejects_hostile_fields(tmp_path, field, value):
    write_ci_metadata(tmp_path, CiEvent("github", "pull_request", 5, head_sha=HEAD))
    doc = json.loads((tmp_path / "ci.json").read_text())
    doc[field] = value
    (tmp_path / "ci.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidCiMetadata):
        read_ci_metadata(tmp_path)


def test_ci_metadata_accepts_digit_strings(tmp_path):
    write_ci_metadata(tmp_path, CiEvent("github", "pull_request", 5, head_sha=HEAD))
    doc = json.loads((tmp_path / "ci.json").read_text())
    (tmp_path / "ci.json").write_text(json.dumps({**doc, "pr_number": "17"}))
    assert read_ci_metadata(tmp_path).pr_number == 17


def test_reading_the_event_imports_no_http_library():
    code = (
        "import sys, mlops_ci.forge as f, mlops_ci.ci.event as e;"
        " e.read_ci_event({}); f.detect_forge({}, '.');"
        "print('requests' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
