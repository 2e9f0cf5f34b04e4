"""Adopt, then run: `mlops-ci init` on three existing DVC projects (the reference pipeline, a
DVCLive stage with a directory output, a regression without a predictions file), the files it
wrote committed as they are, and a pull request run by act through the generated workflow,
which calls the released reusable workflow (`mlops-ci/mlops-ci/...@v0`, served from this
checkout) against the loopback fake GitHub.

The released workflow installs mlops-ci from its own checkout, as it does on GitHub: here into
a runner venv that borrows this venv's dependencies (a `.pth` file), so the test venv is never
touched and nothing is downloaded but the build backend.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.cli import main
from mlops_ci.init import adopt
from mlops_ci.project.git import Git
from mlops_ci.project.settings import parse_settings
from tests.commands import adopt_projects
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow
PR = 11

# The change each pull request makes: a param the pipeline reads, so the PR trains.
CHANGES = {
    "reference": ("params.yaml", "C: 1.0", "C: 0.5"),
    "dvclive": ("params.yaml", "lr: 0.1", "lr: 0.12"),
    "regression": ("params.yaml", "alpha: 1.0", "alpha: 0.5"),
}


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A runner venv (the released workflow pip-installs mlops-ci into it) and the release: the
    files of this checkout that git does not ignore, as a tag of the repository holds them."""
    base = tmp_path_factory.mktemp("runner")
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    site = next((base / "venv" / "lib").glob("python*/site-packages"))
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    release = base / "release"
    files = Git(harness.ROOT).out("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, files.split("\0")):
        source = harness.ROOT / rel
        if source.is_file():
            (release / rel).parent.mkdir(parents=True, exist_ok=True)
            (release / rel).write_bytes(source.read_bytes())
    return {"bin": base / "venv" / "bin", "release": release}


def act_pull_request(
    act: str, repo: Path, fake: harness.FakeServer, payload: dict[str, Any], work: Path,
    runner: dict[str, Path],
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    work.mkdir(parents=True)
    event = work / "pull_request.json"
    event.write_text(json.dumps(payload))
    store = work / "artifacts"
    store.mkdir()
    env = {
        "GITHUB_API_URL": fake.url,
        "GITHUB_SERVER_URL": fake.url,
        "GITHUB_REPOSITORY": harness.REPOSITORY,
        "MLOPS_CI_ARTIFACT_STORE": str(store),
        "MLOPS_CI_RETRY_BASE": "0.01",
    }
    cmd = [act, "pull_request", "-W", ".github/workflows/mlops-ci-pr.yml", "-e", str(event)]
    cmd += ["-P", "ubuntu-latest=-self-hosted", "-s", f"GITHUB_TOKEN={harness.DEFAULT_TOKEN}"]
    for name, value in env.items():
        cmd += ["--env", f"{name}={value}"]
    released = {f"{adopt.REPOSITORY}@{adopt.RELEASE_REF}": runner["release"]}
    for name, path in {**harness.REMOTE_ACTIONS, **released}.items():
        cmd += ["--local-repository", f"{name}={path}"]
    host = harness.runner_env(work)
    host["PATH"] = f"{runner['bin']}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        cmd, cwd=repo, env=host, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.parametrize("kind", adopt_projects.KINDS)
def test_init_then_a_pull_request_through_the_generated_workflow(
    kind: str, runner: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    act = tools.act()
    repo = adopt_projects.build(kind, tmp_path / kind)
    git = Git(repo)
    assert main(["init", "-C", str(repo)]) == 0
    capsys.readouterr()
    artifact = parse_settings((repo / "mlops-ci.yaml").read_text()).artifact
    base_sha = git.commit_all("Adopt mlops-ci")  # exactly what init wrote, no hand edit
    git.run("push", "--quiet", "origin", "main")
    harness.forget_dvc_state(repo)  # a fresh clone: no DVC cache, no outputs

    git.run("checkout", "--quiet", "-b", "tune")
    name, old, new = CHANGES[kind]
    text = (repo / name).read_text()
    assert old in text
    (repo / name).write_text(text.replace(old, new))
    head_sha = git.commit_all("Tune a param")
    payload = {
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "head": {"ref": "tune", "sha": head_sha, "repo": {"full_name": harness.REPOSITORY}},
            "base": {"ref": "main", "sha": base_sha, "repo": {"full_name": harness.REPOSITORY}},
        },
        "repository": {"full_name": harness.REPOSITORY},
    }
    work = tmp_path / "act"
    with harness.fake_forge("github", "--pull", f"{harness.REPOSITORY}#{PR}@{head_sha}") as fake:
        proc = act_pull_request(act, repo, fake, payload, work, runner)
        state = fake.state()
    assert proc.returncode == 0, harness.tail(proc, 120)
    assert state["violations"] == []
    uploaded = work / "artifacts" / "mlops-ci-run"
    train = json.loads((uploaded / "train.json").read_text())
    assert any(s["status"] == "ran" for s in train["stages"]), "the changed param retrains"
    comparison = json.loads((uploaded / "comparison.json").read_text())
    gated = set(parse_settings((repo / "mlops-ci.yaml").read_text()).metrics)
    rows = {m["name"]: m for m in comparison["metrics"]}
    assert gated <= set(rows), (gated, sorted(rows))
    assert all(rows[n]["baseline"] is not None for n in gated), "main's metrics were read"
    (comment,) = state["repos"][harness.REPOSITORY]["comments"][str(PR)]
    assert "Gate: " in comment["body"]
    # The run is announced before training: `pending` first, then the verdict, one context.
    pending, status = state["repos"][harness.REPOSITORY]["statuses"]
    assert (pending["sha"], pending["context"], pending["state"]) == (
        head_sha,
        f"mlops-ci/{artifact}",
        "pending",
    )
    assert (status["sha"], status["context"], status["state"]) == (
        head_sha,
        f"mlops-ci/{artifact}",
        "success",
    )
    # The setup action's installer ran (it runs only when the workflow installs mlops-ci),
    # with uv, or pip when uv cannot be had; the job succeeded, so the install did.
    assert re.search(r"installing with (uv|pip): ", proc.stdout), (
        "the released workflow installed it"
    )
