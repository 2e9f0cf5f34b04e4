"""A new user's first hour on a GitLab project that already has its own `.gitlab-ci.yml` (a
lint job and its own `stages:`): `init` keeps that file and prints the lines to add, the user
adds them as printed, edits the policy, runs `init` again (both edits kept) and `validate`.
Then a regressing and an improving merge request, each judged locally by `mlops-ci pr` (the
user's working copy, its DVC caches) and by the merge request pipeline gitlab-ci-local runs
from a state with no DVC cache, against the loopback fake GitLab: the verdict the user sees
(the note's "Gate:" line, the commit status, the jobs' verdict.json) is the local one, and the
user's own job still runs in that pipeline.

The released template's URL cannot be reached here: the include points at a local copy of
this checkout's template, and the jobs use the installed mlops-ci (`MLOPS_CI_INSTALL:
installed`) under the PATH of the template's default image.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.cli import main
from mlops_ci.init import adopt
from mlops_ci.project.git import Git
from tests.commands import adopt_projects
from tests.e2e import harness
from tests.e2e.test_gitlab_ci_local import (
    MR,
    PROJECT,
    TEMPLATE,
    default_image,
    gitlab_ci_local,
    image_path,
)
from tests.fakes.gitlab import DEFAULT_TOKEN
from tests.lint import tools

pytestmark = pytest.mark.slow

# The team's pipeline before mlops-ci: one job, in a stage list of its own.
USER_PIPELINE = """\
# Our checks, on every pipeline.
stages: [lint]

lint:
  stage: lint
  script:
    - python -m compileall -q src
    - echo "lint passed on $CI_PIPELINE_SOURCE"
"""
LOCAL_TEMPLATE = "ci/mlops-ci.gitlab-ci.yml"  # where the user keeps the template's copy
# The param edit of a regressing and of an improving merge request (the ridge penalty).
CHANGES = (("alpha: 1.0", "alpha: 100.0"), ("alpha: 1.0", "alpha: 0.5"))
# The gate's verdict -> the commit status GitLab shows for it.
STATUS_OF = {"pass": "success", "neutral": "success", "fail": "failed"}
# The merge request pipeline's jobs: the user's, then mlops-ci's two.
JOBS = ("lint", "mlops-ci:merge-request", "mlops-ci:merge-request:post")
SUMMARY_LINE = re.compile(r"^\s*(PASS|FAIL)\s+(\S+)\s*$", re.MULTILINE)


def _printed_include(said: str) -> str:
    """The `include:` and `variables:` init printed for the user's `.gitlab-ci.yml`."""
    lines = said.splitlines()
    start = next(i for i, line in enumerate(lines) if "add to your .gitlab-ci.yml" in line)
    end = next(i for i in range(start, len(lines)) if "(merge them" in lines[i])
    return textwrap.dedent("\n".join(lines[start + 1 : end])) + "\n"


def _follow_init(said: str, pipeline: str) -> str:
    """The user's `.gitlab-ci.yml` once they did what init said: the template's stages added to
    theirs and the printed snippet appended, with the include pointing at their local copy and
    the mlops-ci already installed (the released URL cannot be reached from here)."""
    stages = re.search(r"lists its own `stages:`.*: add ([\w, -]+) to them", said)
    assert stages, said
    followed = pipeline.replace("stages: [lint]", f"stages: [lint, {stages.group(1)}]")
    snippet = _printed_include(said)
    remote = f"  - remote: {adopt.GITLAB_TEMPLATE_URL}\n"
    assert remote in snippet, snippet
    snippet = snippet.replace(remote, f"  - local: {LOCAL_TEMPLATE}\n")
    snippet, installs = re.subn(r"(?m)^(  MLOPS_CI_INSTALL:) .*$", r"\1 installed", snippet)
    assert installs == 1, snippet
    return followed + "\n" + snippet


def _adopt(repo: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """init, the user's steps, an edit of the policy, init again, validate; committed and
    pushed. Returns main's sha."""
    git = Git(repo)
    pipeline = repo / ".gitlab-ci.yml"
    pipeline.write_text(USER_PIPELINE)
    git.commit_all("Lint in CI")
    git.run("push", "--quiet", "origin", "main")

    capsys.readouterr()
    assert main(["init", "-C", str(repo), "--forge", "gitlab"]) == 0
    said = capsys.readouterr().out
    assert pipeline.read_text() == USER_PIPELINE, "init never replaces the user's pipeline"
    followed = _follow_init(said, USER_PIPELINE)
    pipeline.write_text(followed)
    (repo / LOCAL_TEMPLATE).parent.mkdir(parents=True)
    (repo / LOCAL_TEMPLATE).write_text(TEMPLATE.read_text())
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write(".gitlab-ci-local/\n")  # gitlab-ci-local's state, beside the repository

    policy = repo / "mlops-ci.yaml"
    rule = "mae: {direction: lower}"
    assert rule in policy.read_text()
    edited = policy.read_text().replace(rule, "mae: {direction: lower, max_drop_pct: 5}")
    policy.write_text(edited)
    assert main(["init", "-C", str(repo), "--forge", "gitlab"]) == 0
    said = capsys.readouterr().out
    assert policy.read_text() == edited, "init keeps the user's edit"
    assert pipeline.read_text() == followed, "init keeps the user's pipeline"
    assert "its own `stages:`" not in said, "the template's stages were added"
    code = main(["validate", "-C", str(repo)])
    assert code == 0, capsys.readouterr()
    sha = git.commit_all("Adopt mlops-ci")
    git.run("push", "--quiet", "origin", "main")
    return sha


def _local_verdict(run_dir: Path) -> tuple[str, dict[str, set[str]]]:
    """The verdict of `mlops-ci pr` and, per metric or table whose rules were applied, their
    outcomes."""
    verdict = json.loads((run_dir / "verdict.json").read_text())
    applied: dict[str, set[str]] = {}
    for rule in verdict["rules"]:
        if rule["outcome"] != "skipped":
            applied.setdefault(rule["metric"], set()).add(rule["outcome"])
    return verdict["verdict"], applied


@dataclass
class PipelineRun:
    """What a merge request pipeline shows the user."""

    proc: subprocess.CompletedProcess[str]
    jobs: dict[str, str]  # job -> PASS | FAIL, from gitlab-ci-local's summary
    gate: str  # the verdict on the note's "Gate:" line
    status: dict[str, Any]  # the head commit's status
    verdicts: set[str]  # of the verdict.json the jobs left as artifacts


def _merge_request_pipeline(
    repo: Path, work: Path, base_sha: str, head_sha: str, branch: str
) -> PipelineRun:
    """gitlab-ci-local runs the merge request pipeline (the user's lint job, then mlops-ci's)
    on a checkout with no DVC cache, against a fake GitLab of its own."""
    exe = tools.gitlab_ci_local()
    harness.forget_dvc_state(repo)
    with harness.fake_forge("gitlab", "--pull", f"{PROJECT}#{MR}@{head_sha}") as fake:
        variables = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{fake.url}/api/v4",
            "CI_SERVER_URL": fake.url,
            "CI_PROJECT_ID": PROJECT,
            "CI_PROJECT_URL": f"{fake.url}/group/demo",
            "CI_DEFAULT_BRANCH": "main",
            # The CI/CD variables init's next steps name: the token and a shared DVC remote.
            "MLOPS_CI_TOKEN": DEFAULT_TOKEN,
            "MLOPS_CI_REMOTE_URL": str(repo.parent / "dvc-remote"),
            "MLOPS_CI_RETRY_BASE": "0.01",
            "PATH": image_path(default_image(), work / "image"),
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(MR),
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": base_sha,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": branch,
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": head_sha,
            "CI_MERGE_REQUEST_PROJECT_ID": PROJECT,
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": PROJECT,
            "CI_COMMIT_SHA": head_sha,
        }
        proc = gitlab_ci_local(exe, repo, work, variables, *JOBS)
        state = fake.state()
    # gitlab-ci-local passes over a `--job` the pipeline lacks (the include left out): its
    # summary says which jobs ran.
    jobs = {job: result for result, job in SUMMARY_LINE.findall(proc.stdout)}
    assert sorted(jobs) == sorted(JOBS), harness.tail(proc, 120)
    assert state["violations"] == []
    project = state["projects"][PROJECT]
    (note,) = project["notes"][str(MR)]
    gate = re.search(r"^Gate: \S+ \*\*(\w+)\*\*", note["body"], re.MULTILINE)
    assert gate, note["body"][:600]
    (status,) = [s for s in project["statuses"] if s["sha"] == head_sha]
    # Both jobs' run directories (the post job judges again, with the token).
    artifacts = sorted((repo / ".gitlab-ci-local" / "artifacts").glob("*/.mlops-ci/verdict.json"))
    assert len(artifacts) == 2, harness.tail(proc, 120)
    verdicts = {json.loads(path.read_text())["verdict"] for path in artifacts}
    return PipelineRun(proc, jobs, gate.group(1), status, verdicts)


def test_an_existing_gitlab_pipeline_gets_the_local_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools.gitlab_ci_local()
    repo = adopt_projects.build("regression", tmp_path / "project")
    git = Git(repo)
    base_sha = _adopt(repo, capsys)

    branches = []
    local = []
    for i, (old, new) in enumerate(CHANGES):
        git.run("checkout", "--quiet", "main")
        branch = f"change-{i}"
        git.run("checkout", "--quiet", "-b", branch)
        text = (repo / "params.yaml").read_text()
        assert old in text
        (repo / "params.yaml").write_text(text.replace(old, new))
        branches.append((branch, git.commit_all(f"Change {i}")))
        run_dir = tmp_path / f"local-{i}"
        main(["pr", "-C", str(repo), "--run-dir", str(run_dir), "--no-post"])
        verdict, applied = _local_verdict(run_dir)
        # init's threshold, the user's own, and init's rules on the tables the stages read:
        # a change of params leaves the tables as they were, so the metrics alone decide
        tables = {"data:data/train.csv", "data:data/test.csv"}
        assert set(applied) == {"rmse", "mae", *tables}, "init's rules and the user's own"
        assert all(applied[table] == {"pass"} for table in tables), applied
        local.append(verdict)
        git.run("checkout", "--quiet", "--", ".")  # the outputs pr reproduced, not committed
    assert local == ["fail", "pass"], "the data decide: a much larger penalty, a smaller one"

    for i, (branch, head_sha) in enumerate(branches):
        git.run("checkout", "--quiet", branch)
        run = _merge_request_pipeline(repo, tmp_path / f"glci-{i}", base_sha, head_sha, branch)
        said = harness.tail(run.proc, 120)
        assert (run.gate, run.verdicts) == (local[i], {local[i]}), said
        assert (run.status["name"], run.status["status"]) == (
            "mlops-ci/diabetes-regressor",
            STATUS_OF[local[i]],
        )
        # A failed gate fails the post job, and so the pipeline; the user's own job ran in it.
        post = "FAIL" if local[i] == "fail" else "PASS"
        assert run.jobs == {
            "lint": "PASS",
            "mlops-ci:merge-request": "PASS",
            "mlops-ci:merge-request:post": post,
        }, said
        assert (run.proc.returncode == 0) == (post == "PASS"), said
        assert "lint passed on merge_request_event" in run.proc.stdout, said
