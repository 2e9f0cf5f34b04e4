"""Run this repository's workflows with real local runners: act (GitHub Actions) and
gitlab-ci-local (GitLab CI), against the loopback fake forges started as separate processes.

act copies the repository (tracked and untracked files, not ignored ones) into a workspace and
runs the steps on this host (`-P ubuntu-latest=-self-hosted`); the remote actions the workflows
use are replaced by the tiny composite stand-ins in `stand-ins/`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.init.scaffold import set_dvc_remote
from mlops_ci.project.git import Git
from tests.fakes.github import DEFAULT_TOKEN

ROOT = Path(__file__).parents[2]
STAND_INS = Path(__file__).parent / "stand-ins"
REMOTE_ACTIONS = {
    "actions/checkout@v4": STAND_INS / "checkout",
    "actions/setup-python@v5": STAND_INS / "setup-python",
    "actions/cache@v4": STAND_INS / "cache",
    "actions/upload-artifact@v4": STAND_INS / "upload-artifact",
    "actions/download-artifact@v4": STAND_INS / "download-artifact",
    "pypa/gh-action-pypi-publish@release/v1": STAND_INS / "pypi-publish",
}
REPOSITORY = "octo/classifier"
RUN_TIMEOUT = 300


@dataclass
class FakeServer:
    """A fake forge in its own process (act and gitlab-ci-local reach it over loopback)."""

    proc: subprocess.Popen[str]
    url: str

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_fake/state", timeout=10) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def fake_forge(kind: str, *args: str) -> Iterator[FakeServer]:
    """`python -m tests.fakes.<kind> *args` for the length of the block."""
    fake = _start_fake(kind, *args)
    try:
        yield fake
    finally:
        fake.stop()


def _start_fake(kind: str, *args: str) -> FakeServer:
    proc = subprocess.Popen(
        [sys.executable, "-m", f"tests.fakes.{kind}", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the fake {kind} did not start (printed {url!r})")
    return FakeServer(proc, url)


def post_json(fake: FakeServer, path: str, body: dict[str, Any], token: str = DEFAULT_TOKEN) -> Any:
    """What another workflow would have posted to the fake forge before the run under test."""
    request = urllib.request.Request(
        f"{fake.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def commit_all(repo: Path, message: str) -> str:
    return Git(repo).commit_all(message)


def make_ci_repo(trained_template: Path, dest: Path, workflows: list[str]) -> Path:
    """A copy of the trained reference project that carries this repo's actions and workflows
    (as a user repo would), on `main`, pushed to its bare `origin`."""
    shutil.copytree(trained_template, dest, symlinks=True)
    repo = dest / "repo"
    git = Git(repo)
    git.run("remote", "set-url", "origin", str(dest / "origin.git"))
    # act's workspace is elsewhere: the DVC remote must not be relative to the repo.
    set_dvc_remote(repo, str(dest / "dvc-remote"))
    shutil.copytree(ROOT / "actions", repo / "actions")
    (repo / ".github" / "workflows").mkdir(parents=True)
    for name in workflows:
        shutil.copy(ROOT / ".github" / "workflows" / name, repo / ".github" / "workflows" / name)
    commit_all(repo, "Add mlops-ci workflows")
    git.run("push", "--quiet", "origin", "main")
    return repo


def forget_dvc_state(repo: Path) -> None:
    """Leave the repository as a fresh clone has it: no DVC cache, no outputs, nothing ignored.
    (act copies only what git does not ignore anyway; this makes it hold whatever act does.)"""
    Git(repo).run("clean", "-fdXq")
    assert not (repo / ".dvc" / "cache").exists()


def runner_env(work: Path) -> dict[str, str]:
    """The host environment runners start with: this venv first on PATH, private caches."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CACHE_HOME"] = str(work / "xdg-cache")
    env["XDG_CONFIG_HOME"] = str(work / "xdg-config")
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("CI", None)
    return env


@dataclass
class Act:
    """act bound to one repository and one fake GitHub; each `run` is one workflow run."""

    exe: str
    repo: Path
    fake: FakeServer
    token: str = DEFAULT_TOKEN

    def run(
        self,
        event_name: str,
        payload: dict[str, Any],
        *,
        workflow: str,
        work: Path,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        work.mkdir(parents=True, exist_ok=True)
        event = work / f"{event_name}.json"
        event.write_text(json.dumps(payload))
        store = work / "artifacts"
        store.mkdir(exist_ok=True)
        env = {
            **(env or {}),
            "GITHUB_API_URL": self.fake.url,
            "GITHUB_SERVER_URL": self.fake.url,
            "GITHUB_REPOSITORY": REPOSITORY,
            # Use the mlops-ci of this venv instead of reinstalling it on every run.
            "MLOPS_CI_INSTALL": "installed",
            "MLOPS_CI_ARTIFACT_STORE": str(store),
            "MLOPS_CI_RETRY_BASE": "0.01",
        }
        cmd = [self.exe, event_name, "-W", f".github/workflows/{workflow}", "-e", str(event)]
        cmd += ["-P", "ubuntu-latest=-self-hosted"]
        for name, value in env.items():
            cmd += ["--env", f"{name}={value}"]
        cmd += ["-s", f"GITHUB_TOKEN={self.token}"]
        for name, path in REMOTE_ACTIONS.items():
            cmd += ["--local-repository", f"{name}={path}"]
        return subprocess.run(
            cmd,
            cwd=self.repo,
            env=runner_env(work),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )


def tail(proc: subprocess.CompletedProcess[str], lines: int = 80) -> str:
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    return "\n".join(text.splitlines()[-lines:])
