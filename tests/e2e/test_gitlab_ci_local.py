"""gitlab-ci-local (4.73.0) runs the GitLab template on a copy of the reference project, against
the loopback fake GitLab, job by job in fresh build directories (no DVC cache carried between
jobs; a local directory is the shared DVC remote):

- the default branch's pipeline trains, gates, pushes outputs and run-cache, promotes a version
  to staging with its tags pushed (through MLOPS_CI_PUSH_TOKEN and MLOPS_CI_PUSH_URL, in the
  promote job only) and deploys it;
- a merge request pipeline then trains without any token (0 stages run: all restored), and the
  separate post job leaves one note whose headline is the verdict and one commit status.

The jobs run under the shell executor with PATH stripped to what the template's default image
(`MLOPS_CI_IMAGE`) ships, by the image's documented content, so a default image without git
fails here as it would under the Docker executor.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.project.git import Git
from tests.e2e import harness
from tests.fakes.gitlab import DEFAULT_TOKEN
from tests.lint import tools

pytestmark = pytest.mark.slow
PROJECT = "42"
MR = 7
TEMPLATE = harness.ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"

# What the images ship, from their documented content (Docker Official Images): every Debian
# image has the base system; `python:<v>-slim` is debian:<suite>-slim plus CPython only (no
# git); `python:<v>-<suite>` is built FROM buildpack-deps:<suite>, which adds curl and wget
# (`-curl`), git, mercurial, openssh-client, subversion and procps (`-scm`) and a toolchain.
DEBIAN_BASE = (
    "bash", "sh", "env", "cat", "ls", "rm", "mkdir", "cp", "mv", "ln", "chmod", "touch",
    "sed", "grep", "tar", "gzip", "find", "xargs", "sort", "head", "tail", "date", "id",
    "uname", "dirname", "basename", "readlink", "realpath", "tr", "cut", "wc", "sleep",
    "printf", "echo", "test", "true", "false", "base64", "mktemp", "tee", "stat",
)  # fmt: skip
BUILDPACK_DEPS = ("curl", "wget", "git", "ssh", "ps", "gcc", "make", "patch", "xz")
IMAGE_CONTENTS = {
    "python:3.11-slim": DEBIAN_BASE,
    "python:3.11-bookworm": DEBIAN_BASE + BUILDPACK_DEPS,
}
# CPython and what the jobs' `pip install mlops-ci` adds to /usr/local/bin: this venv's.
PYTHON_AND_INSTALL = ("python", "python3", "pip", "mlops-ci", "dvc", "gto")


def image_path(image: str, where: Path) -> str:
    """A PATH holding only what `image` ships (links to this host's copies)."""
    bin_dir = where / image.replace(":", "_").replace("/", "_")
    bin_dir.mkdir(parents=True)
    venv_bin = Path(sys.executable).parent
    for name in IMAGE_CONTENTS[image]:
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    for name in PYTHON_AND_INSTALL:
        (bin_dir / name).symlink_to(venv_bin / name)
    return str(bin_dir)


def default_image() -> str:
    return yaml.safe_load(TEMPLATE.read_text())["variables"]["MLOPS_CI_IMAGE"]


def gitlab_ci_local(
    exe: Path, repo: Path, work: Path, variables: dict[str, str], *jobs: str
) -> subprocess.CompletedProcess[str]:
    cmd = [str(exe), "--force-shell-executor", "--no-color"]
    for name, value in variables.items():
        cmd += ["--variable", f"{name}={value}"]
    cmd += ["--ignore-predefined-vars", ",".join(variables)]
    for job in jobs:
        cmd += ["--job", job]
    return subprocess.run(
        cmd,
        cwd=repo,
        env=harness.runner_env(work),
        capture_output=True,
        text=True,
        timeout=harness.RUN_TIMEOUT,
        check=False,
    )


def gitlab_repo(trained_template: Path, project: Path) -> Path:
    """The trained project as a user's GitLab repository: the template included by its
    `.gitlab-ci.yml` (using the installed mlops-ci), committed."""
    repo = harness.make_ci_repo(trained_template, project, [])
    (repo / "templates" / "gitlab").mkdir(parents=True)
    (repo / "templates" / "gitlab" / TEMPLATE.name).write_text(TEMPLATE.read_text())
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n  - local: templates/gitlab/mlops-ci.gitlab-ci.yml\n"
        "variables:\n  MLOPS_CI_INSTALL: installed\n"
    )
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write("\n.gitlab-ci-local/\n")
    harness.commit_all(repo, "Add the mlops-ci GitLab template")
    return repo


def test_gitlab_main_then_merge_request_on_fresh_jobs(trained_template: Path, tmp_path: Path):
    exe = tools.gitlab_ci_local()
    project = tmp_path / "project"
    repo = gitlab_repo(trained_template, project)
    git = Git(repo)
    before = git.out("rev-parse", "HEAD~1")
    main_sha = git.out("rev-parse", "HEAD")
    git.run("push", "--quiet", "origin", "main")
    harness.forget_dvc_state(repo)
    remote = tmp_path / "shared-remote"
    remote.mkdir()
    origin = project / "origin.git"

    with harness.fake_forge("gitlab", "--pull", f"{PROJECT}#{MR}@{main_sha}") as fake:
        common = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{fake.url}/api/v4",
            "CI_SERVER_URL": fake.url,
            "CI_PROJECT_ID": PROJECT,
            "CI_PROJECT_URL": f"{fake.url}/group/demo",
            "CI_DEFAULT_BRANCH": "main",
            "MLOPS_CI_TOKEN": DEFAULT_TOKEN,
            "MLOPS_CI_REMOTE_URL": str(remote),
            "MLOPS_CI_RETRY_BASE": "0.01",
            # The Docker executor's image contract: only what the default image ships.
            "PATH": image_path(default_image(), tmp_path / "image"),
        }
        main = {
            **common,
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_REF_NAME": "main",
            "CI_COMMIT_SHA": main_sha,
            "CI_COMMIT_BEFORE_SHA": before,
            # Only the promote job may push tags: a push URL and a token, given to git there.
            "MLOPS_CI_PUSH_TOKEN": "push-token-for-tags",
            "MLOPS_CI_PUSH_URL": str(origin),
        }
        proc = gitlab_ci_local(
            exe,
            repo,
            tmp_path / "glci-main",
            main,
            "mlops-ci:main",
            "mlops-ci:promote",
            "mlops-ci:staging",
        )
        assert proc.returncode == 0, harness.tail(proc, 120)
        assert "3 ran" in proc.stdout, "main trains from scratch"
        assert "pushed outputs and run-cache to the DVC remote" in proc.stdout
        assert (remote / "runs").is_dir()
        tags = Git(origin).out("tag", "--list").split()
        assert [t for t in tags if t.startswith("classifier@v")], tags
        assert [t for t in tags if t.startswith("classifier#staging#")], tags
        state = fake.state()["projects"][PROJECT]
        assert [d["sha"] for d in state["deployments"]] == [main_sha]
        assert [s["sha"] for s in state["statuses"]] == [main_sha]

        git.run("checkout", "--quiet", "-b", "feature")
        (repo / "NOTES.md").write_text("The pipeline is as it was.\n")
        head_sha = harness.commit_all(repo, "Add notes")
        mr = {
            **common,
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(MR),
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": main_sha,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": head_sha,
            "CI_MERGE_REQUEST_PROJECT_ID": PROJECT,
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": PROJECT,
            "CI_COMMIT_SHA": head_sha,
        }
        proc = gitlab_ci_local(
            exe,
            repo,
            tmp_path / "glci-mr",
            mr,
            "mlops-ci:merge-request",
            "mlops-ci:merge-request:post",
        )
        assert proc.returncode == 0, harness.tail(proc, 120)
        state = fake.state()

        # A person moves production by hand (`gto assign`, then a push of the tag): the tag's
        # pipeline runs mlops-ci:registry, which deploys that gated version to production.
        git.run("fetch", "--quiet", "--tags", "origin")
        version = next(t for t in Git(origin).out("tag", "--list").split() if "@v" in t)
        subprocess.run(
            [str(Path(sys.executable).with_name("gto")), "assign", "classifier",
             "--version", version.split("@", 1)[1], "--stage", "production"],
            cwd=repo, check=True, capture_output=True,
        )  # fmt: skip
        tag = next(t for t in git.out("tag", "--list").split() if "#production#" in t)
        git.run("push", "--quiet", "origin", f"refs/tags/{tag}")
        tagged = {**common, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": tag}
        registry = gitlab_ci_local(exe, repo, tmp_path / "glci-tag", tagged, "mlops-ci:registry")
        assert registry.returncode == 0, harness.tail(registry, 120)
        deployed = fake.state()["projects"][PROJECT]["deployments"]
        assert [(d["sha"], d["environment"]["name"]) for d in deployed] == [
            (main_sha, "staging"),
            (main_sha, "production"),
        ]
    assert state["violations"] == []
    project_state = state["projects"][PROJECT]
    (note,) = project_state["notes"][str(MR)]
    assert "mlops-ci-report:classifier" in note["body"]
    lines = [line for line in note["body"].splitlines() if line.strip()]
    title = next(i for i, line in enumerate(lines) if line.startswith("### "))
    assert lines[title + 1].startswith("Gate: "), note["body"][:400]
    statuses = [s for s in project_state["statuses"] if s["sha"] == head_sha]
    assert len(statuses) == 1
    assert statuses[0]["name"] == "mlops-ci/classifier"
    # Nothing re-runs on a fresh runner: main pushed what the unchanged pipeline needs.
    summary = [
        line for line in proc.stdout.splitlines() if " in " in line and " s (mlops-ci" in line
    ]
    assert summary and all(" ran" not in line for line in summary), summary


def test_an_image_without_git_fails_the_image_contract(trained_template: Path, tmp_path: Path):
    """The contract bites: python:3.11-slim (the template's old default) has no git."""
    assert default_image() in IMAGE_CONTENTS, "record the default image's documented content"
    assert "git" in IMAGE_CONTENTS[default_image()]
    exe = tools.gitlab_ci_local()
    repo = gitlab_repo(trained_template, tmp_path / "project")
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": str(MR),
        "MLOPS_CI_PULL": "false",
        "PATH": image_path("python:3.11-slim", tmp_path / "image"),
    }
    proc = gitlab_ci_local(exe, repo, tmp_path / "glci", variables, "mlops-ci:merge-request")
    assert proc.returncode != 0
    assert "git is not installed or not on PATH" in proc.stdout, harness.tail(proc)
