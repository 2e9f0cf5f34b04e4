"""The CLI frame: start-up cost, options, exit codes, the demo, and the reference project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from mlops_ci.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('dvc', 'pandas', 'sklearn', 'numpy', 'requests', 'jinja2') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_the_console_script_ends_while_a_library_keeps_a_thread_pool(tmp_path: Path) -> None:
    """DVC, fsspec and s3fs leave `ThreadPoolExecutor`s open; the interpreter ends their
    workers at shutdown, so the command must exit the ordinary way, not wait for them."""
    code = (
        "import sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "pool = ThreadPoolExecutor(1)\n"
        "pool.submit(int).result()\n"
        "from mlops_ci.cli import entry\n"
        "sys.argv = ['mlops-ci', 'validate', '-C', sys.argv[1]]\n"
        "entry()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "absent")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "not inside a git repository" in proc.stderr


@pytest.mark.parametrize(
    "command", ["train", "compare", "report", "gate", "pr", "promote", "deploy", "rollback", "demo"]
)
def test_every_command_takes_the_common_options(command: str) -> None:
    args = build_parser().parse_args(
        [command, "-C", "x", "--run-dir", "r", "--json", "--traceback"]
    )
    assert (args.repo, args.run_dir, args.json, args.traceback) == ("x", "r", True, True)


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: mlops-ci" in capsys.readouterr().out


def test_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--no-such-option"])
    assert info.value.code == 2


def test_root_project_is_the_reference_project() -> None:
    # The repository is its own first user: its pipeline must be the one the demo and tests run.
    for name in ("dvc.yaml", "params.yaml", "mlops-ci.yaml"):
        assert (ROOT / name).read_text() == (ROOT / "mlops_ci" / "reference" / name).read_text()


@pytest.mark.slow
def test_demo_runs_the_flow(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--workdir", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    assert "tune/regularisation exit 0, tune/too-much-regularisation exit 1" in out
    run_dir = tmp_path / "repo" / ".mlops-ci"
    for name in ("train.json", "comparison.json", "verdict.json", "report.md", "comment.md"):
        assert (run_dir / name).exists(), name
    assert any((tmp_path / "dvc-remote").rglob("*"))
    tags = subprocess.run(
        ["git", "tag", "--list"], cwd=tmp_path / "repo", capture_output=True, text=True, check=True
    ).stdout.split()
    assert "classifier@v0.2.0" in tags
    assert any(tag.startswith("classifier#staging#") for tag in tags)
    assert (tmp_path / "repo" / "deployments").is_dir()
    # The local sweep: three candidates, each trained in its own clone, ranked in one report.
    board = json.loads((run_dir / "leaderboard.json").read_text())
    assert [row["rank"] for row in board["rows"]] == [1, 2, 3]
    assert "sweep:             exit 0" in out


def test_the_repository_is_its_own_dvc_project() -> None:
    from mlops_ci.project.dvc import open_repo, pipeline_stages

    # One pipeline: the packaged template under mlops_ci/reference/ is .dvcignore'd.
    with open_repo(ROOT) as repo:
        assert pipeline_stages(repo) == ["prepare", "train", "evaluate"]
    assert (ROOT / "dvc.lock").is_file()
    assert (ROOT / "eval" / "metrics.json").is_file()  # main's metrics: every PR's baseline
