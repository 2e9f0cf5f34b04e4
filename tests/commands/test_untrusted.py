"""The fork path: `mlops-ci publish` (what pr-report.yml runs) on a run directory that an
untrusted pull request job uploaded. Tampered documents are rejected before anything is posted,
HTML in names is neutralised because the report is rendered anew, and nothing in the directory
is executed or posted as is.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.ci.untrusted import (
    DOCUMENTS,
    UntrustedInputRejected,
    load_untrusted_run_dir,
    validate_document,
)
from mlops_ci.cli import main
from mlops_ci.project.errors import EXIT_BAD_INPUT, EXIT_OK

REPO = "octo/demo"
FORK = "mallory/demo"
HEAD = "c" * 40
BASE = "b" * 40
PR = 7


def comparison_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "kind": "comparison",
        "tool_version": "0.1.0",
        "created_at": "2026-11-27T00:00:00+00:00",
        "artifact": "classifier",
        "target_branch": "main",
        "confidence": 0.95,
        "baseline": {"how": "merge-base", "ref": "main", "sha": BASE, "subject": "Train"},
        "candidate": {"ref": "workspace", "sha": HEAD, "branch": "feature/x", "dirty": False},
        "metrics": [
            {
                "name": "accuracy",
                "file": "eval/metrics.json",
                "key": "accuracy",
                "baseline": 0.95,
                "candidate": 0.96,
                "delta": 0.01,
                "rel_delta": 0.0105,
                "direction": "higher",
                "ci_low": -0.004,
                "ci_high": 0.021,
                "ci_method": "paired-bootstrap",
                "status": "inconclusive",
            }
        ],
        "params": [
            {
                "name": "train.C",
                "file": "params.yaml",
                "baseline": 1.0,
                "candidate": 2.0,
                "change": "changed",
            }
        ],
        "plots": [],
        "stages": [{"name": "train", "status": "ran", "duration_s": 2.5}],
        "policy_change": {"changed": False, "diff": ""},
        "errors": [],
        "warnings": [],
    }
    doc.update(overrides)
    return doc


def verdict_doc() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "verdict",
        "tool_version": "0.1.0",
        "artifact": "classifier",
        "verdict": "pass",
        "summary": "all 1 rules passed",
        "baseline_sha": BASE,
        "candidate_sha": HEAD,
        "policy": {"revision": BASE, "path": "mlops-ci.yaml"},
        "rules": [
            {
                "metric": "accuracy",
                "rule": "min",
                "threshold": 0.9,
                "observed": 0.96,
                "outcome": "pass",
                "reason": "accuracy 0.96 ≥ min 0.9",
            }
        ],
    }


def ci_doc(pr: int = PR, head: str = HEAD) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "ci",
        "forge": "github",
        "event_name": "pull_request",
        "pr_number": pr,
        "base_ref": "main",
        "base_sha": BASE,
        "head_ref": "feature/x",
        "head_sha": head,
        "repository": REPO,
        "run_url": None,
        "is_fork": True,
        "server_url": None,
    }


def write_run_dir(path: Path, comparison: Any = None, **docs: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    files = {
        "comparison.json": comparison_doc() if comparison is None else comparison,
        "verdict.json": verdict_doc(),
        "ci.json": ci_doc(),
        **docs,
    }
    for name, data in files.items():
        if data is not None:
            text = data if isinstance(data, (str, bytes)) else json.dumps(data)
            mode = "wb" if isinstance(text, bytes) else "w"
            with open(path / name, mode) as fh:
                fh.write(text)
    return path


@pytest.fixture
def trusted_env(
    fake_github, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted_checkout: Path
) -> dict[str, str]:
    """The environment of pr-report.yml's job: a workflow_run event for a fork's `pr` run."""
    fake_github.add_pull(REPO, PR, head_sha=HEAD, base_sha=BASE)
    fake_github.add_pull(REPO, 8, head_sha="d" * 40, base_sha=BASE)
    env = fake_github.ci_env(tmp_path / "job", repo=REPO, pr=None, head_sha=HEAD, event="push")
    event = {
        "workflow_run": {
            "id": 99,
            "name": "pr",
            "event": "pull_request",
            "head_sha": HEAD,
            "head_branch": "feature/x",
            # GitHub leaves this empty for pull requests from forks.
            "pull_requests": [],
            "head_repository": {"full_name": FORK},
            "repository": {"full_name": REPO},
        }
    }
    event_path = tmp_path / "job" / "workflow_run.json"
    event_path.write_text(json.dumps(event))
    env.update(GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=str(event_path))
    env["GITHUB_WORKFLOW"] = "pr-report"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


POLICY = "artifact: classifier\nmetrics:\n  accuracy: {direction: higher, min: 0.9}\n"


@pytest.fixture
def trusted_checkout(tmp_path: Path) -> Path:
    """The default branch pr-report.yml checks out: its mlops-ci.yaml is the policy."""
    repo = tmp_path / "trusted"
    repo.mkdir()
    (repo / "mlops-ci.yaml").write_text(POLICY)
    return repo


def publish(run_dir: Path, *extra: str) -> int:
    repo = run_dir.parent / "trusted"
    return main(["publish", "-C", str(repo), "--run-dir", str(run_dir), "--sha", HEAD, *extra])


def posted(fake_github) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    repo = fake_github.repo(REPO)
    return fake_github.comments_on(REPO, PR), list(repo.statuses)


# --- the good path ------------------------------------------------------------------------------


def test_valid_run_dir_posts_one_comment_and_one_status(fake_github, trusted_env, tmp_path, capsys):
    run_dir = write_run_dir(tmp_path / "untrusted-run")

    assert publish(run_dir) == EXIT_OK
    assert publish(run_dir) == EXIT_OK  # a re-run updates, never duplicates

    comments, statuses = posted(fake_github)
    assert len(comments) == 1
    summary = capsys.readouterr().out.splitlines()[-3:]
    assert summary[0].startswith(f"validated {run_dir}; report rendered anew (")
    assert summary[1] == f"comment on #{PR}: {comments[0]['html_url']}"
    assert summary[2] == f"status success on {HEAD}"
    assert "accuracy" in comments[0]["body"]
    assert [s["state"] for s in statuses] == ["success", "success"]
    assert {s["sha"] for s in statuses} == {HEAD}
    assert statuses[0]["context"] == "mlops-ci/classifier"
    assert len(statuses[0]["description"]) <= 140


def test_a_forged_verdict_is_ignored_the_trusted_policy_judges(fake_github, trusted_env, tmp_path):
    doc = comparison_doc()
    doc["metrics"][0].update(candidate=0.5, delta=-0.45, status="regressed")
    forged = {**verdict_doc(), "verdict": "pass", "summary": "trust me"}
    run_dir = write_run_dir(tmp_path / "run", doc, **{"verdict.json": forged})

    assert publish(run_dir) == EXIT_OK

    comments, statuses = posted(fake_github)
    assert [s["state"] for s in statuses] == ["failure"]
    assert "trust me" not in statuses[0]["description"]
    assert "trust me" not in comments[0]["body"]


def test_comment_uses_the_pr_workflows_marker(fake_github, trusted_env, tmp_path):
    # The same marker `pr` would use (workflow_run.name), so a PR never gets two reports.
    publish(write_run_dir(tmp_path / "run"))
    body = posted(fake_github)[0][0]["body"]
    assert "mlops-ci-report:classifier:pr -->" in body
    assert ":pr-report -->" not in body


# --- tampered comparison.json -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        ({"metrics": "everything improved"}, "at metrics"),
        ({"metrics": [{"name": "accuracy", "status": "awesome"}]}, "at metrics/0/status"),
        ({"schema_version": 2}, "at schema_version"),
        ({"baseline": {"sha": "$(curl evil)"}}, "at baseline/sha"),
        ({"metrics": [{"name": "x" * 5000, "status": "improved"}]}, "at metrics/0/name"),
        ({"warnings": ["w"] * 500}, "at warnings"),
        ({"extra": {"nested": ["objects"]}}, "at extra"),
        (
            {"data": {"auto": {"left_out": [{"path": "data/x.csv", "output": "secret"}]}}},
            "at data/auto/left_out/0/output",
        ),
    ],
)
def test_schema_invalid_comparison_is_rejected_and_nothing_posted(
    fake_github, trusted_env, tmp_path, capsys, tamper, where
):
    run_dir = write_run_dir(tmp_path / "run", comparison_doc(**tamper))

    assert publish(run_dir) == EXIT_BAD_INPUT

    err = capsys.readouterr().err
    assert "comparison.json does not match the comparison schema" in err
    assert where in err
    assert len(err) < 4000  # an attacker's huge value is not echoed back
    assert posted(fake_github) == ([], [])


def test_ten_megabyte_body_is_rejected_before_parsing(fake_github, trusted_env, tmp_path, capsys):
    # Not even JSON: if it were parsed, the error would say so; it must be refused by size.
    run_dir = write_run_dir(tmp_path / "run", b"[" * (10 * 1024 * 1024))

    started = time.perf_counter()
    assert publish(run_dir) == EXIT_BAD_INPUT
    elapsed = time.perf_counter() - started

    err = capsys.readouterr().err
    assert "10,485,760 bytes, over the 4,194,304-byte limit" in err
    assert "it was not read" in err
    assert "not valid JSON" not in err
    assert elapsed < 2
    assert posted(fake_github) == ([], [])


@pytest.mark.parametrize(
    "body",
    [
        '{"schema_version": 1, "kind": "comparison", "metrics": [], "baseline": {}, '
        '"candidate": {}, "confidence": NaN}',
        '{"schema_version": 1, "kind": "comparison", "kind": "verdict", "metrics": [], '
        '"baseline": {}, "candidate": {}}',
        "[" * 5000 + "]" * 5000,
        b"\xff\xfe not utf-8",
    ],
    ids=["nan", "duplicate-key", "deep-nesting", "not-utf8"],
)
def test_ambiguous_json_is_rejected(fake_github, trusted_env, tmp_path, capsys, body):
    run_dir = write_run_dir(tmp_path / "run", body)
    assert publish(run_dir) == EXIT_BAD_INPUT
    assert "comparison.json" in capsys.readouterr().err
    assert posted(fake_github) == ([], [])


def test_html_in_names_is_neutralised(fake_github, trusted_env, tmp_path):
    evil = '<img src=x onerror="alert(1)">'
    script = "<script>alert(document.cookie)</script>"
    doc = comparison_doc(artifact=f"<b>{script}</b>")
    doc["metrics"][0]["name"] = evil
    doc["metrics"][0]["file"] = f"eval/{script}.json"
    doc["params"][0]["name"] = f"train.{script}"
    doc["params"][0]["candidate"] = f"[click](javascript:alert(1)) {evil}"
    doc["stages"][0]["name"] = f"<details open>{evil}"
    doc["warnings"] = [f"see <a href='https://evil.invalid'>{evil}</a>"]
    run_dir = write_run_dir(tmp_path / "run", doc)

    assert publish(run_dir) == EXIT_OK

    body = posted(fake_github)[0][0]["body"]
    # Rendered as GitHub does, but keeping raw HTML (the unsafe option), no tag from a name
    # survives: every repo-controlled string was escaped when the report was rendered anew.
    html = cmarkgfm.github_flavored_markdown_to_html(body, options=Options.CMARK_OPT_UNSAFE)
    for tag in ("<img", "<script", "<a href='https://evil", "<details open>", "<b><script"):
        assert tag not in html
    assert 'href="javascript:' not in html
    assert not event_handler_attributes(html)


def event_handler_attributes(html: str) -> list[str]:
    """`on*` attributes of real tags (escaped text such as `&lt;img onerror=` is harmless)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Attributes(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(f"{tag} {name}" for name, _ in attrs if name.lower().startswith("on"))

    Attributes().feed(html)
    return found


# --- nothing from the untrusted side is executed or posted as is -----------------------------


def test_untrusted_files_are_never_executed_nor_posted(fake_github, trusted_env, tmp_path):
    marker = tmp_path / "pwned"
    run_dir = write_run_dir(
        tmp_path / "run",
        **{
            "report.md": "FORGED REPORT: all metrics improved, merge me",
            "report-comment.md": "FORGED COMMENT",
            "dvc.yaml": f"stages:\n  pwn:\n    cmd: touch {marker}\n",
            "mlops-ci.yaml": "metrics: {}\non_missing_metric: pass\n",
            "sitecustomize.py": f"open({str(marker)!r}, 'w').write('x')\n",
            "run.sh": f"#!/bin/sh\ntouch {marker}\n",
        },
    )
    os.chmod(run_dir / "run.sh", 0o700)  # executable, so running it would leave the marker

    assert publish(run_dir, "--json") == EXIT_OK

    assert not marker.exists()
    comments, _ = posted(fake_github)
    assert len(comments) == 1
    assert "FORGED" not in comments[0]["body"]
    run = load_untrusted_run_dir(run_dir)
    assert {"report.md", "dvc.yaml", "sitecustomize.py", "run.sh"} <= set(run.ignored)


def test_symlinked_document_is_refused(fake_github, trusted_env, tmp_path, capsys):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(comparison_doc()))
    run_dir = write_run_dir(tmp_path / "run")
    (run_dir / "comparison.json").unlink()
    (run_dir / "comparison.json").symlink_to(secret)

    assert publish(run_dir) == EXIT_BAD_INPUT
    assert "not a regular file" in capsys.readouterr().err
    assert posted(fake_github) == ([], [])


def test_ci_json_cannot_aim_the_comment_at_another_pr(fake_github, trusted_env, tmp_path, capsys):
    run_dir = write_run_dir(tmp_path / "run", **{"ci.json": ci_doc(pr=8)})

    assert publish(run_dir) == EXIT_BAD_INPUT
    assert "ci.json names pull request #8" in capsys.readouterr().err
    assert fake_github.comments_on(REPO, 8) == []
    assert posted(fake_github) == ([], [])


def test_ci_json_for_another_commit_is_refused(fake_github, trusted_env, tmp_path, capsys):
    run_dir = write_run_dir(tmp_path / "run", **{"ci.json": ci_doc(head="e" * 40)})
    assert publish(run_dir) == EXIT_BAD_INPUT
    assert "does not belong to this run" in capsys.readouterr().err
    assert posted(fake_github) == ([], [])


def test_missing_comparison_says_what_to_do(tmp_path, capsys, trusted_checkout):
    run_dir = write_run_dir(tmp_path / "run", **{"comparison.json": None})
    assert publish(run_dir, "--no-post") == EXIT_BAD_INPUT
    assert "comparison.json is missing" in capsys.readouterr().err


def test_no_post_renders_without_a_forge(tmp_path, capsys, trusted_checkout):
    run_dir = write_run_dir(tmp_path / "run")
    out = tmp_path / "out" / "report.md"
    assert publish(run_dir, "--no-post", "--output", str(out)) == 0
    assert "accuracy" in out.read_text()
    assert "not posted" in capsys.readouterr().out


# --- the schemas themselves -------------------------------------------------------------------


def test_documented_examples_validate():
    validate_document("comparison", comparison_doc())
    validate_document("verdict", verdict_doc())
    validate_document("ci", ci_doc())
    train = {
        "schema_version": 1,
        "kind": "train",
        "tool_version": "0.1.0",
        "repo_sha": HEAD,
        "pulled": False,
        "pushed": False,
        "duration_s": 4.2,
        "stages": [
            {"name": "prepare", "status": "unchanged", "duration_s": 0.01},
            {"name": "evaluate", "status": "restored", "source": "run-cache", "duration_s": 0.3},
        ],
    }
    validate_document("train", train)
    with pytest.raises(UntrustedInputRejected, match="stages/0/status"):
        validate_document("train", {**train, "stages": [{"name": "x", "status": "exploded"}]})


def test_every_document_has_a_schema_with_limits():
    schemas = Path(__file__).parents[2] / "mlops_ci" / "project" / "schemas"
    for kind, max_bytes, _required in DOCUMENTS.values():
        text = (schemas / f"{kind}.schema.json").read_text()
        assert '"maxLength"' in text
        assert '"maxProperties"' in text
        assert max_bytes <= 4 * 1024 * 1024


def test_ci_json_cannot_choose_the_commit_that_gets_the_status(
    fake_github, trusted_env, tmp_path, capsys
):
    # A trusted event that names no head SHA, no --sha: ci.json's SHA must not stand in.
    event_path = Path(trusted_env["GITHUB_EVENT_PATH"])
    event = json.loads(event_path.read_text())
    del event["workflow_run"]["head_sha"]
    event_path.write_text(json.dumps(event))
    forged = {**ci_doc(head="e" * 40), "pr_number": None}
    run_dir = write_run_dir(tmp_path / "run", **{"ci.json": forged})
    repo = run_dir.parent / "trusted"

    assert main(["publish", "-C", str(repo), "--run-dir", str(run_dir)]) == EXIT_BAD_INPUT
    assert "pass --sha" in capsys.readouterr().err
    assert fake_github.repo(REPO).statuses == []
    assert posted(fake_github) == ([], [])


# --- fail closed, and names from trusted settings only ------------------------------------------


def test_publish_without_the_repository_policy_never_posts_success(
    fake_github, trusted_env, tmp_path, capsys
):
    # The trusted job forgot to check out the repository: there is no policy to judge by.
    (tmp_path / "trusted" / "mlops-ci.yaml").unlink()
    doc = comparison_doc()
    doc["metrics"][0].update(candidate=0.5, delta=-0.45, status="regressed")
    run_dir = write_run_dir(tmp_path / "run", doc)

    assert publish(run_dir) == EXIT_BAD_INPUT

    _, statuses = posted(fake_github)
    assert [s["state"] for s in statuses] == ["failure"]
    assert "no mlops-ci.yaml" in statuses[0]["description"]
    err = capsys.readouterr().err
    assert "no mlops-ci.yaml in the trusted checkout" in err
    assert "check out the base repository" in err


def test_1e400_in_a_forks_comparison_fails_the_gate(fake_github, trusted_env, tmp_path):
    # 1e400 is valid JSON; Python reads it as infinity, which is "at least min 0.9".
    text = json.dumps(comparison_doc()).replace('"candidate": 0.96', '"candidate": 1e400')
    assert "1e400" in text
    run_dir = write_run_dir(tmp_path / "run", text)

    assert publish(run_dir) == EXIT_OK

    _, statuses = posted(fake_github)
    assert [s["state"] for s in statuses] == ["failure"]
    assert "accuracy is inf at the candidate" in statuses[0]["description"]


def test_a_fork_cannot_name_the_status_context_check_run_or_comment_marker(
    fake_github, trusted_env, tmp_path
):
    for artifact in ("@everyone", "other-artifact"):
        doc = comparison_doc(artifact=artifact)
        assert publish(write_run_dir(tmp_path / artifact, doc)) == EXIT_OK

    comments, statuses = posted(fake_github)
    assert {s["context"] for s in statuses} == {"mlops-ci/classifier"}  # the trusted settings'
    assert {c["name"] for c in fake_github.repo(REPO).check_runs} <= {"mlops-ci/classifier"}
    assert len(comments) == 1  # one marker, whatever the fork writes
    assert "mlops-ci-report:classifier:pr -->" in comments[0]["body"]


def test_a_forks_verdict_is_posted_as_advisory(fake_github, trusted_env, tmp_path):
    assert publish(write_run_dir(tmp_path / "run")) == EXIT_OK
    comments, statuses = posted(fake_github)
    assert statuses[0]["description"].startswith("advisory (fork): pass: ")
    assert "Advisory" in comments[0]["body"]
    assert "numbers come from the fork's own job" in comments[0]["body"]


def test_a_fork_that_drops_a_gated_metric_fails(fake_github, trusted_env, tmp_path):
    # The fork renames the gated row away; the trusted policy still gates accuracy.
    (tmp_path / "trusted" / "mlops-ci.yaml").write_text(POLICY + "on_missing_metric: ignore\n")
    doc = comparison_doc()
    doc["metrics"][0].update(name="acc", key="acc")
    assert publish(write_run_dir(tmp_path / "run", doc)) == EXIT_OK

    _, statuses = posted(fake_github)
    assert [s["state"] for s in statuses] == ["failure"]
    assert "accuracy is missing from the fork's comparison.json" in statuses[0]["description"]
