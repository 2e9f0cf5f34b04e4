"""Shared fixtures: an isolated environment, and real git + DVC repos of the reference project.

Training the reference pipeline is the expensive part, so it happens once per session
(`trained_template`); each test gets its own copy (`trained_repo`), which costs a directory copy.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dvc  # noqa: F401 - DVC binds its log handler to the streams of the moment it is

#                 first imported: import it now, not inside a test whose captured streams close.
import pytest

from mlops_ci.commands.train import run_train
from mlops_ci.init.scaffold import init_repo, set_dvc_remote
from mlops_ci.project.git import Git

# `import dvc` above: DVC binds its log handler to the streams of the moment it is first
# imported; import it at collection, not inside a test whose captured streams then close.

pytest_plugins = ["tests.fakes.plugin"]  # fake_github / fake_gitlab loopback forges

# The inner loop (`pytest -m "not integration"`) leaves out what needs the trained reference
# project, a fake forge, S3, or a real runner: tests that use these fixtures, tests under
# tests/e2e, `slow` tests (simulations, runners) and modules that mark themselves
# `integration` (real DVC projects of their own).
INTEGRATION_FIXTURES = frozenset(
    {"trained_template", "trained_repo", "fake_github", "fake_gitlab", "moto_s3", "observed"}
)  # `observed`: the DVC oracle suite's layouts, built and read by DVC


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        in_e2e = "e2e" in item.path.parts
        if in_e2e or fixtures & INTEGRATION_FIXTURES or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.integration)


# Variables of the CI we may be running in: the code under test must see a plain local machine.
_LEAKY_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_", "MLOPS_CI_")


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """HOME, git config and DVC's config/cache dirs point into a temp dir; no analytics."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(_LEAKY_PREFIXES) or key == "GITHUB_ACTIONS":
            del os.environ[key]
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_AUTHOR_NAME": "Test Author",
            "GIT_AUTHOR_EMAIL": "author@example.invalid",
            "GIT_COMMITTER_NAME": "Test Committer",
            "GIT_COMMITTER_EMAIL": "committer@example.invalid",
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
        }
    )
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def git_commit_all(repo: Path, message: str) -> str:
    return Git(repo).commit_all(message)


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference project trained on `main`, outputs pushed to a local DVC remote.

    Layout: <base>/repo (the working copy), <base>/dvc-remote, <base>/origin.git (bare clone).
    """
    base = tmp_path_factory.mktemp("reference")
    repo = base / "repo"
    init_repo(repo)
    set_dvc_remote(repo, "../../dvc-remote")
    run_train(repo, repo / ".mlops-ci", push=True)
    git_commit_all(repo, "Train the reference model")
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(repo), str(base / "origin.git")], check=True
    )
    Git(repo).run("remote", "add", "origin", str(base / "origin.git"))
    Git(repo).run("fetch", "--quiet", "origin")
    return base


def copy_project(template: Path, base: Path) -> Path:
    """A private copy of a project made by a session fixture: repo, DVC remote and bare origin;
    returns the repo. The DVC remote is relative already; git's origin is repointed."""
    shutil.copytree(template, base, symlinks=True)
    repo = base / "repo"
    Git(repo).run("remote", "set-url", "origin", str(base / "origin.git"))
    return repo


REFERENCE_DEPLOY = "deploy:\n  target: deployments/\n"  # the reference policy's deploy section


def policy_with(repo: Path, deploy: str | None = None, drop: str = "") -> None:
    """Edit a reference project's mlops-ci.yaml: its deploy section becomes `deploy` (when given),
    and lines starting with `drop` go."""
    path = repo / "mlops-ci.yaml"
    text = path.read_text()
    if deploy is not None:
        assert REFERENCE_DEPLOY in text, f"{path} has not the reference policy's deploy section"
        text = text.replace(REFERENCE_DEPLOY, deploy)
    if drop:
        text = "".join(line for line in text.splitlines(True) if not line.startswith(drop))
    path.write_text(text)


@pytest.fixture
def trained_repo(trained_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained reference project (repo, DVC remote and bare origin)."""
    return copy_project(trained_template, tmp_path / "reference")


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on loopback; required when CI=true."""
    if os.environ.get("CI") == "true":
        server_module = importlib.import_module("moto.server")
    else:
        server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
    try:
        yield endpoint
    finally:
        server.stop()
