"""act runs release.yml for a version tag on a copy of this repository, up to (not including)
the upload: the sdist and the wheel are built, the built wheel (not the checkout, not an editable
install) is installed in a fresh virtual environment and runs `mlops-ci demo` to the end, the
publish step is reached with exactly those two files (a stand-in lists them, uploads nothing),
and the major tag `v0` moves to the release commit on origin.

Offline: the wheel is installed without resolving its dependencies (PIP_NO_DEPS), which this
venv's site-packages provide through PYTHONPATH; the real workflow installs them from PyPI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from mlops_ci import __version__
from mlops_ci.project.git import Git
from tests.e2e import harness
from tests.lint import tools

pytestmark = pytest.mark.slow


def source_copy(dest: Path) -> Path:
    """This repository as it is on disk (tracked and new files, nothing ignored), committed,
    tagged v<version> and pushed to a bare origin."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=harness.ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    repo = dest / "repo"
    for raw in filter(None, listed):
        name = raw.decode()
        src = harness.ROOT / name
        if src.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    git = Git(repo)
    git.run("init", "--quiet", "--initial-branch=main")
    git.commit_all("Release")
    git.run("tag", "--annotate", "--message", "release", f"v{__version__}")
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(repo), str(dest / "origin.git")], check=True
    )
    git.run("remote", "add", "origin", str(dest / "origin.git"))
    return repo


def dependencies_only(dest: Path) -> Path:
    """This venv's site-packages without mlops-ci itself (links), standing in for PyPI."""
    dest.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not re.match(r"(__editable__[._])?mlops_ci", entry.name):
            (dest / entry.name).symlink_to(entry)
    return dest


def test_release_builds_tests_the_built_wheel_and_stops_before_the_upload(tmp_path: Path):
    act_bin = tools.act()
    repo = source_copy(tmp_path / "src")
    tag = f"v{__version__}"
    event = {
        "ref": f"refs/tags/{tag}",
        "ref_type": "tag",
        "repository": {"full_name": harness.REPOSITORY, "default_branch": "main"},
    }
    env = {"PIP_NO_DEPS": "1", "PYTHONPATH": str(dependencies_only(tmp_path / "deps"))}
    with harness.fake_forge("github") as fake:
        act = harness.Act(act_bin, repo, fake)
        proc = act.run("push", event, workflow="release.yml", work=tmp_path / "w", env=env)
    assert proc.returncode == 0, harness.tail(proc, 120)
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    built = f"mlops_ci-{__version__}.tar.gz and mlops_ci-{__version__}-py3-none-any.whl"
    assert f"Successfully built {built}" in out
    # The package ran from the wheel installed in the fresh venv...
    assert re.search(r"wheel-venv/lib/python3\.\d+/site-packages/mlops_ci/__init__\.py", out)
    # ...through the demo's last step (its closing summary names the registry's tags).
    assert "registry:" in out
    assert "Success - Main Test the built wheel in a clean environment" in out
    uploaded = (tmp_path / "w" / "artifacts" / "pypi-upload.txt").read_text().split()
    assert sorted(uploaded) == sorted(
        [f"mlops_ci-{__version__}.tar.gz", f"mlops_ci-{__version__}-py3-none-any.whl"]
    )
    origin = Git(tmp_path / "src" / "origin.git")
    assert origin.out("rev-parse", "v0^{commit}") == Git(repo).out("rev-parse", f"{tag}^{{commit}}")
