"""Sweeps: plan -> one separate clone per candidate (as separate runners) -> collect, one comment."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlops_ci.cli import main
from mlops_ci.commands.sweep import plan
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git
from mlops_ci.project.settings import parse_settings

MLOPS_CI = str(Path(sys.executable).parent / "mlops-ci")

SWEEP = """
sweep:
  grid:
    train.logistic_regression.C: [0.01, 0.1, 1.0, 10.0]
  candidates:
    - {train.model: random_forest, train.random_forest.n_estimators: 20}
    - {train.model: gradient_boosting, train.gradient_boosting.n_estimators: 20}
  rank_by: accuracy
"""


def test_plan_expands_the_grid_then_the_list_without_duplicates() -> None:
    settings = parse_settings(
        "sweep:\n  grid:\n    a.x: [1, 2]\n    b: [true, 'n a']\n"
        "  candidates:\n    - {a.x: 1, b: true}\n    - {c: null}\n"
    )
    candidates = plan(settings)
    assert [c.id for c in candidates] == ["c01", "c02", "c03", "c04", "c05"]
    assert [dict(c.params) for c in candidates] == [
        {"a.x": 1, "b": True}, {"a.x": 1, "b": "n a"}, {"a.x": 2, "b": True},
        {"a.x": 2, "b": "n a"}, {"c": None},
    ]  # fmt: skip
    assert candidates[1].overrides() == ["a.x=1", 'b="n a"']
    assert candidates[4].overrides() == ["c=null"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("artifact: x\n", "has no `sweep:` candidates"),
        ("sweep: {grid: {a: []}}\n", "non-empty list"),
        ("sweep: {grid: {a: [1, 2, 3]}, max_candidates: 2}\n", "more than sweep.max_candidates"),
        ("sweep: {candidates: [3]}\n", "list of mappings"),
        ("sweep: {grdi: {}}\n", "unknown key 'sweep.grdi'"),
    ],
)
def test_bad_sweep_settings(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(parse_settings(text))


def test_plan_writes_the_matrix_as_a_github_output(
    trained_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_ci.ci import output as ci_output

    (trained_repo / "mlops-ci.yaml").write_text(
        (trained_repo / "mlops-ci.yaml").read_text() + SWEEP
    )
    assert main(["sweep", "plan", "-C", str(trained_repo)]) == 0
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert ci_output.main(["outputs", "--run-dir", str(trained_repo / ".mlops-ci")]) == 0
    text = output.read_text()
    matrix = json.loads(text.split("matrix<<", 1)[1].split("\n", 2)[1])
    assert [m["candidate"] for m in matrix["include"]] == [f"c0{i}" for i in range(1, 7)]
    assert "count<<" in text


def _run_candidate(origin: Path, remote: Path, workdir: Path, candidate: str) -> Path:
    """One matrix job on its own runner: a fresh clone, restore from the shared remote, run.

    The remote comes in as a CI job's setting would (MLOPS_CI_REMOTE_URL), not from the
    project's committed DVC config.
    """
    clone = workdir / candidate
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", "sweep", str(origin), str(clone)], check=True
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLOPS_CI_REMOTE_URL": str(remote),
    }
    proc = subprocess.run(
        [MLOPS_CI, "sweep", "run", "--candidate", candidate, "--pull", "-C", str(clone)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return clone / ".mlops-ci"


@pytest.mark.slow  # six candidates trained on six clones
def test_six_candidates_on_separate_clones_give_one_ranked_comment(
    trained_repo: Path, tmp_path: Path, fake_github, monkeypatch: pytest.MonkeyPatch
) -> None:
    git = Git(trained_repo)
    git.run("checkout", "--quiet", "-b", "sweep")
    (trained_repo / "mlops-ci.yaml").write_text(
        (trained_repo / "mlops-ci.yaml").read_text() + SWEEP
    )
    head = git.commit_all("Sweep the regularisation and two other models")
    git.run("push", "--quiet", "origin", "sweep")
    origin = trained_repo.parent / "origin.git"
    remote = trained_repo.parent / "dvc-remote"

    ids = [f"c0{i}" for i in range(1, 7)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # two runners at a time on two cores
        run_dirs = list(
            pool.map(lambda c: _run_candidate(origin, remote, tmp_path / "runners", c), ids)
        )

    downloads = tmp_path / "downloads"
    for candidate, run_dir in zip(ids, run_dirs, strict=True):
        shutil.copytree(run_dir, downloads / f"mlops-ci-sweep-{candidate}")
    stages = json.loads((run_dirs[2] / "candidate.json").read_text())["stages"]
    # c03 is main's own params: every stage comes back from the shared run-cache.
    assert {s["status"] for s in stages} == {"restored"}

    for key, value in fake_github.ci_env(tmp_path / "job", head_sha=head).items():
        monkeypatch.setenv(key, value)
    code = main(["sweep", "collect", "-C", str(trained_repo), "--post", "--from", str(downloads)])

    state = fake_github.state()
    assert state["violations"] == []
    repo = state["repos"]["octo/demo"]
    comments = [c for c in repo["comments"]["7"] if "mlops-ci-report:classifier:sweep" in c["body"]]
    assert len(comments) == 1
    body = comments[0]["body"]
    table = [line for line in body.splitlines() if line.startswith("| ") and " | c0" in line]
    assert len(table) == 6
    ranks = [int(line.split("|")[1]) for line in table]
    assert ranks == [1, 2, 3, 4, 5, 6]
    values = [float(line.split("|")[4]) for line in table]
    assert values == sorted(values, reverse=True)  # accuracy: higher first
    board = json.loads((trained_repo / ".mlops-ci" / "leaderboard.json").read_text())
    assert board["best"] == board["rows"][0]["candidate"]
    assert {r["verdict"] for r in board["rows"]} <= {"pass", "fail", "neutral"}
    verdict = json.loads((trained_repo / ".mlops-ci" / "verdict.json").read_text())
    assert verdict["verdict"] == board["rows"][0]["verdict"]
    assert code == (1 if verdict["verdict"] == "fail" else 0)
    statuses = [s for s in repo["statuses"] if s["context"] == "mlops-ci/classifier/sweep"]
    assert len(statuses) == 1
    assert statuses[0]["sha"] == head


def test_a_huge_grid_is_refused_before_it_is_built(tmp_path: Path) -> None:
    # The mistake: 9 keys of 9 values is 387,420,489 candidates; building them first grew past
    # 10 GB. Run in a child capped at 2 GiB of address space, so a regression fails, not the host.
    grid = "".join(f"    k{i}: [{', '.join(str(v) for v in range(9))}]\n" for i in range(9))
    (tmp_path / "mlops-ci.yaml").write_text("sweep:\n  grid:\n" + grid)
    proc = subprocess.run(
        [MLOPS_CI, "sweep", "plan", "-C", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "387420489 candidates, more than sweep.max_candidates (64)" in proc.stderr


def test_a_sweep_posts_under_its_own_status_context(
    trained_repo: Path, tmp_path: Path, fake_github, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mistake: a sweep's verdict set the PR gate's own status `mlops-ci/<artifact>`, so a
    # sweep's best candidate could turn a required check green or red.
    git = Git(trained_repo)
    git.run("checkout", "--quiet", "-b", "sweep")
    with (trained_repo / "mlops-ci.yaml").open("a") as fh:
        fh.write("sweep:\n  grid:\n    train.logistic_regression.C: [1.0]\n")
    head = git.commit_all("Sweep main's own params")
    git.run("push", "--quiet", "origin", "sweep")
    run_dir = _run_candidate(
        trained_repo.parent / "origin.git", trained_repo.parent / "dvc-remote", tmp_path, "c01"
    )
    for key, value in fake_github.ci_env(tmp_path / "job", head_sha=head).items():
        monkeypatch.setenv(key, value)
    main(["sweep", "collect", "-C", str(trained_repo), "--post", "--from", str(run_dir)])
    state = fake_github.state()
    assert state["violations"] == []
    contexts = [s["context"] for s in state["repos"]["octo/demo"]["statuses"]]
    assert contexts == ["mlops-ci/classifier/sweep"]
