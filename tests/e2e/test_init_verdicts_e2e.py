"""A new user's first hour, on projects unlike the reference pipeline: `init`, an edit of the
policy, `init` again (the edit kept), `validate`, then a regressing and an improving pull
request, each run locally with `mlops-ci pr` (the user's working copy, its DVC caches) and by
act through the generated workflow from a fresh clone: the verdicts are the same.

Projects: a classifier whose model and predictions are inside directory outputs; a regression
whose r2 is near zero; a regression whose `cache: false` metrics file git ignores (the local
run-cache holds the baseline's values, a fresh clone does not: both sides say it cannot be read).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.project.git import Git
from tests.commands import adopt_projects
from tests.e2e import harness
from tests.e2e.test_init_e2e import PR, act_pull_request, runner  # noqa: F401 - a fixture
from tests.lint import tools

pytestmark = pytest.mark.slow

# kind -> the project it builds, the param edit of a regressing and of an improving PR
PROJECTS = {
    "directory-output": ("directory-output", ("C: 1.0", "C: 0.0001"), ("C: 1.0", "C: 1.5")),
    "weak-regression": (
        "weak-regression",
        ("alpha: 300.0", "alpha: 3000.0"),
        ("alpha: 300.0", "alpha: 3.0"),
    ),
    "ignored-metrics": ("regression", ("alpha: 1.0", "alpha: 100.0"), ("alpha: 1.0", "alpha: 0.5")),
}
EXPECTED = {  # (regressing, improving) verdicts where the data decide them
    "ignored-metrics": ("fail", "fail"),  # the baseline's metrics cannot be read: fail closed
}


def _adopt(kind: str, repo: Path, capsys: pytest.CaptureFixture[str]) -> str:
    git = Git(repo)
    if kind == "ignored-metrics":
        (repo / ".gitignore").write_text("metrics.json\n")
        git.run("rm", "--quiet", "--cached", "metrics.json")
    assert main(["init", "-C", str(repo)]) == 0
    policy = repo / "mlops-ci.yaml"
    edited = policy.read_text().replace("on_inconclusive: neutral", "on_inconclusive: fail")
    policy.write_text(edited)
    assert main(["init", "-C", str(repo)]) == 0
    assert policy.read_text() == edited, "init keeps the user's edit"
    capsys.readouterr()
    code = main(["validate", "-C", str(repo)])
    said = capsys.readouterr().err
    assert code == (2 if kind == "ignored-metrics" else 0), said
    sha = git.commit_all("Adopt mlops-ci")
    git.run("push", "--quiet", "origin", "main")
    return sha


def _verdict(run_dir: Path) -> str:
    """The gate's verdict, or `undecided` when the gate could not decide (exit 2, no verdict:
    an unreadable baseline fails closed)."""
    path = run_dir / "verdict.json"
    return json.loads(path.read_text())["verdict"] if path.is_file() else "undecided"


@pytest.mark.parametrize("kind", list(PROJECTS))
def test_local_and_ci_verdicts_are_the_same(
    kind: str,
    runner: dict[str, Path],  # noqa: F811 - the shared fixture, imported above
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    act = tools.act()
    builder, *changes = PROJECTS[kind]
    repo = adopt_projects.build(builder, tmp_path / kind)
    git = Git(repo)
    base_sha = _adopt(kind, repo, capsys)
    verdicts = []
    for i, (old, new) in enumerate(changes):
        git.run("checkout", "--quiet", "main")
        git.run("checkout", "--quiet", "-b", f"change-{i}")
        text = (repo / "params.yaml").read_text()
        assert old in text
        (repo / "params.yaml").write_text(text.replace(old, new))
        head_sha = git.commit_all(f"Change {i}")
        local_dir = tmp_path / f"local-{i}"
        main(["pr", "-C", str(repo), "--run-dir", str(local_dir), "--no-post"])
        local = _verdict(local_dir)
        # What CI has: a fresh clone, no DVC cache, no outputs. The user's working copy keeps
        # its caches for the next change.
        git.run("checkout", "--quiet", "--", ".")
        fresh = tmp_path / f"clone-{i}"
        git.run("clone", "--quiet", str(repo), str(fresh))
        assert not (fresh / ".dvc" / "cache").exists()
        payload = {
            "action": "synchronize",
            "number": PR,
            "pull_request": {
                "number": PR,
                "head": {"ref": f"change-{i}", "sha": head_sha,
                         "repo": {"full_name": harness.REPOSITORY}},
                "base": {"ref": "main", "sha": base_sha,
                         "repo": {"full_name": harness.REPOSITORY}},
            },
            "repository": {"full_name": harness.REPOSITORY},
        }  # fmt: skip
        work = tmp_path / f"act-{i}"
        with harness.fake_forge(
            "github", "--pull", f"{harness.REPOSITORY}#{PR}@{head_sha}"
        ) as fake:
            proc = act_pull_request(act, fresh, fake, payload, work, runner)
        ci_dir = work / "artifacts" / "mlops-ci-run"
        assert (ci_dir / "comparison.json").is_file(), harness.tail(proc, 120)
        ci = _verdict(ci_dir)
        assert (proc.returncode == 0) == (ci in ("pass", "neutral")), harness.tail(proc, 60)
        assert ci == local, (kind, i, harness.tail(proc, 60))
        verdicts.append(ci)
    if kind in EXPECTED:
        assert tuple(verdicts) == EXPECTED[kind]
