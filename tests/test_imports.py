"""What each command imports: the paths that do not need DVC, pandas, scikit-learn or the PNG
renderer must not load them (each costs 0.1-0.5 s of every CI job). Checked in a fresh
interpreter per command, on the trained reference project with a changed parameter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.project.git import Git

HEAVY = ("dvc", "pandas", "sklearn", "scipy", "vl_convert", "dvc_render", "matplotlib")

PROBE = """
import json, sys
from mlops_ci.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
top = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "modules": top}), file=sys.__stderr__)
"""


def loaded(repo: Path, *argv: str, **env: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    last = proc.stderr.strip().splitlines()[-1]
    result = json.loads(last)
    return result["code"], set(result["modules"])


@pytest.fixture(scope="module")
def changed_repo(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import copy_project

    repo = copy_project(trained_template, tmp_path_factory.mktemp("imports") / "reference")
    Git(repo).run("checkout", "-q", "-b", "change")
    return repo


def test_help_loads_nothing_heavy(changed_repo: Path) -> None:
    code, modules = loaded(changed_repo, "--help")
    assert code == 0
    assert not modules & {*HEAVY, "numpy", "yaml", "ruamel", "jsonschema", "requests", "jinja2"}


def test_compare_bootstraps_and_loads_nothing_heavy(changed_repo: Path) -> None:
    """The intervals need numpy; DVC, pandas and scikit-learn stay out."""
    code, modules = loaded(changed_repo, "compare", "--baseline", "main")
    assert code == 0
    assert "numpy" in modules  # the bootstrap
    assert not modules & set(HEAVY), modules & set(HEAVY)
    document = json.loads((changed_repo / ".mlops-ci" / "comparison.json").read_text())
    assert document["family"]["interval_members"] >= 5  # the intervals were bootstrapped


def test_report_without_png_loads_no_renderer(changed_repo: Path) -> None:
    assert loaded(changed_repo, "compare", "--baseline", "main")[0] == 0
    code, modules = loaded(changed_repo, "report")
    assert code == 0
    assert not modules & {*HEAVY, "numpy"}, modules & {*HEAVY, "numpy"}


def test_gate_loads_nothing_heavy(changed_repo: Path) -> None:
    assert loaded(changed_repo, "compare", "--baseline", "main")[0] == 0
    code, modules = loaded(changed_repo, "gate")
    assert code in (0, 1)  # a verdict either way
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_compare_without_predictions_loads_no_numpy(tmp_path: Path) -> None:
    """Metrics and params alone need no statistics: numpy (~0.1 s) stays out too."""
    repo = tmp_path / "metrics-only"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("metrics:\n  - m.json\nparams:\n  - params.yaml\n")
    (repo / "params.yaml").write_text("lr: 0.1\n")
    (repo / "m.json").write_text('{"acc": 0.9, "loss": 0.3}')
    Git(repo).commit_all("baseline")
    (repo / "m.json").write_text('{"acc": 0.8, "loss": 0.3}')
    (repo / "params.yaml").write_text("lr: 0.2\n")
    code, modules = loaded(repo, "compare", "--baseline", "main")
    assert code == 0
    assert not modules & {*HEAVY, "numpy"}, modules & {*HEAVY, "numpy"}
    code, modules = loaded(repo, "gate")
    assert code in (0, 1)
    assert not modules & {*HEAVY, "numpy"}, modules & {*HEAVY, "numpy"}


def test_pr_trains_in_a_child_so_dvc_never_shares_a_process_with_numpy(
    changed_repo: Path,
) -> None:
    """`pr` leaves DVC to the training process: the job's peak memory is the larger of the
    two processes, not their sum, and the comparison's modules load while the stages run."""
    code, modules = loaded(
        changed_repo, "pr", "--no-post", "--baseline", "main", "-S", "train.seed=7"
    )
    assert code in (0, 1)  # a verdict either way
    assert "numpy" in modules and "jinja2" in modules
    assert not modules & {"dvc", "dvc_data", "pandas", "sklearn"}
