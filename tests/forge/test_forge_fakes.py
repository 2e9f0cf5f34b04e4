"""The fakes themselves: the committed OpenAPI subset is GitHub's, and the fakes hold to it."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.fakes import openapi
from tests.fakes.github import DEFAULT_TOKEN

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10
_spec = importlib.util.spec_from_file_location(
    "extract_github_openapi", ROOT / "scripts" / "extract_github_openapi.py"
)
extractor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(extractor)

PACKAGE_CANDIDATES = [
    os.environ.get("OCTOKIT_OPENAPI_DIR", ""),
    str(ROOT / "tests/openapi/node_modules/@octokit/openapi"),  # pinned in its package.json
]


def octokit_package() -> Path | None:
    for candidate in PACKAGE_CANDIDATES:
        if candidate and (Path(candidate) / extractor.SOURCE_FILE).exists():
            return Path(candidate)
    return None


def test_subset_matches_a_fresh_extraction():
    package = octokit_package()
    if package is None:
        message = (
            f"@octokit/openapi@{extractor.PINNED_VERSION} not installed: "
            "`npm ci --prefix tests/openapi` (or set OCTOKIT_OPENAPI_DIR to its folder)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert extractor.extract_package(package) == openapi.SUBSET_PATH.read_text(), (
        "tests/openapi/github-rest-subset.json is stale: rerun scripts/extract_github_openapi.py"
    )


def test_subset_holds_every_operation_the_project_uses():
    subset = openapi.load_subset()
    assert subset["info"]["x-operations"] == list(extractor.OPERATIONS)
    found = {op.operation_id for op in openapi.operations()}
    assert found == set(extractor.OPERATIONS)
    assert subset["info"]["x-source"] == "@octokit/openapi@23.0.2 generated/api.github.com.json"


def test_fake_rejects_requests_outside_the_description(fake_github):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {DEFAULT_TOKEN}"
    url = f"{fake_github.url}/repos/o/r"
    bad = session.post(f"{url}/issues/1/comments", json={"text": "wrong field"})
    assert bad.status_code == 422
    assert "'body' is a required property" in bad.json()["message"]
    assert session.get(f"{url}/issues/1/comments", params={"perpage": 100}).status_code == 422
    assert session.post(f"{url}/statuses/{'a' * 40}", json={"state": "passed"}).status_code == 422
    assert session.get(f"{url}/not-an-endpoint").status_code == 404
    assert len(fake_github.violations) == 4
    fake_github.violations.clear()  # expected here; any other test would fail on them


def test_response_validation_catches_a_drifting_fake():
    op, _ = openapi.match("GET", "/repos/o/r/issues/comments/5")
    good = openapi.synthesize_component("issue-comment")
    assert openapi.validate_response(op, 200, good) == []
    broken = {k: v for k, v in good.items() if k != "user"}
    assert any(
        "'user' is a required property" in p for p in openapi.validate_response(op, 200, broken)
    )


def test_fake_github_answers_401_to_a_wrong_token(fake_github):
    answer = requests.get(
        f"{fake_github.url}/repos/o/r/issues/1/comments",
        timeout=TIMEOUT,
        headers={"Authorization": "Bearer nope"},
    )
    assert answer.status_code == 401
    assert answer.json()["message"] == "Bad credentials"


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_fake_runs_standalone_and_dumps_its_state(tmp_path, forge):
    state_file = tmp_path / "state.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            f"tests.fakes.{forge}",
            "--port",
            "0",
            "--state-file",
            str(state_file),
            "--token",
            "tok=mlops-bot",
            "--pull",
            f"{'octo/demo' if forge == 'github' else '42'}#7@{'a' * 40}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        if forge == "github":
            made = requests.post(
                f"{url}/repos/octo/demo/issues/7/comments",
                timeout=TIMEOUT,
                json={"body": "hello"},
                headers={"Authorization": "token tok"},
            )
        else:
            made = requests.post(
                f"{url}/api/v4/projects/42/merge_requests/7/notes",
                timeout=TIMEOUT,
                json={"body": "hello"},
                headers={"PRIVATE-TOKEN": "tok"},
            )
        assert made.status_code == 201
        assert requests.post(f"{url}/_fake/knobs", timeout=TIMEOUT, json={"fail_next": 1}).ok
        assert (
            requests.get(
                f"{url}/user", timeout=TIMEOUT, headers={"Authorization": "token tok"}
            ).status_code
            == 502
        )
        assert requests.post(f"{url}/_fake/dump", timeout=TIMEOUT).ok
        assert "hello" in state_file.read_text()
        live = requests.get(f"{url}/_fake/state", timeout=TIMEOUT).json()
        assert live["violations"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert "hello" in json.dumps(json.loads(state_file.read_text()))


def test_fakes_enforce_the_body_limits(fake_github, fake_gitlab):
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    url = f"{fake_github.url}/repos/o/r/issues/1/comments"
    too_long = requests.post(url, json={"body": "x" * 65_537}, headers=headers, timeout=TIMEOUT)
    assert too_long.status_code == 422
    assert "maximum is 65536 characters" in too_long.json()["errors"][0]["message"]
    ok = requests.post(url, json={"body": "x" * 65_536}, headers=headers, timeout=TIMEOUT)
    assert ok.status_code == 201
    fake_gitlab.add_pull("42", 1, head_sha="a" * 40)
    note = requests.post(
        f"{fake_gitlab.url}/api/v4/projects/42/merge_requests/1/notes",
        json={"body": "x" * 1_000_001},
        headers={"PRIVATE-TOKEN": "glpat-fake-project-token"},
        timeout=TIMEOUT,
    )
    assert note.status_code == 400
    assert "maximum is 1000000 characters" in str(note.json()["message"])
