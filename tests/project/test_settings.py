"""`mlops-ci.yaml` that is hostile or broken: every case is exit 2 with a message naming the
file (and the key), never a crash, a hang or a silently dropped rule.

The settings are read by `mlops-ci gate` on a comparison without a baseline (so the working
tree's policy applies); cases that could exhaust memory run as a subprocess with a 500 MB limit.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings import parse_settings

MEMORY_LIMIT = 500 * 1024 * 1024


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A directory with a comparison (no baseline) for `mlops-ci gate` to judge."""
    repo = tmp_path / "repo"
    repo.mkdir()
    documents.write(
        repo / ".mlops-ci",
        "comparison.json",
        documents.header("comparison")
        | {
            "artifact": "model",
            "baseline": {"how": "merge-base", "ref": "main", "sha": None},
            "candidate": {"ref": "workspace", "sha": None},
            "metrics": [
                {"name": "accuracy", "baseline": None, "candidate": 0.9, "status": "added"}
            ],
        },
    )
    return repo


def gate_in_subprocess(repo: Path) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "mlops_ci.cli", "gate", "-C", str(repo)],
        capture_output=True,
        text=True,
        timeout=20,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


HOSTILE = {
    "binary": (b"\x00\x01\xfe\xff" * 64, "mlops-ci.yaml is not UTF-8 text"),
    "deep": (b"metrics: " + b"[" * 5000 + b"]" * 5000, "mlops-ci.yaml nests deeper than"),
    "deep-block": (
        b"".join(b" " * i + b"k:\n" for i in range(1000)),
        "mlops-ci.yaml nests deeper than",
    ),
    "duplicate rule": (
        b"metrics:\n  accuracy: {min: 0.9}\n  accuracy: {max_drop: 0.01}\n",
        "duplicate key 'metrics.accuracy'",
    ),
    "duplicate top-level": (
        b"metrics:\n  accuracy: {min: 0.9}\nartifact: a\nmetrics:\n  f1: {min: 0.5}\n",
        "duplicate key 'metrics'",
    ),
    "duplicate in a rule": (
        b"metrics:\n  accuracy: {min: 0.9, min: 0.1}\n",
        "duplicate key 'metrics.accuracy.min'",
    ),
    "artifact with #": (b"artifact: 'model#prod'\n", "artifact must be a GTO name"),
    "artifact with @": (b"artifact: model@v1\n", "artifact must be a GTO name"),
    "artifact with space": (b"artifact: my model\n", "artifact must be a GTO name"),
    "artifact not ascii": ("artifact: modèle\n".encode(), "artifact must be a GTO name"),
    "stage with #": (b"promote: {stages: ['prod#1'], auto: null}\n", "promote.stages"),
    "a list": (b"- a\n- b\n", "mlops-ci.yaml must be a mapping"),
    "an alias bomb": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
            for i in range(12)
        ),
        "mlops-ci.yaml",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_settings_exit_2_naming_file_and_key(
    case: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, expected = HOSTILE[case]
    (repo / "mlops-ci.yaml").write_bytes(data)
    assert main(["gate", "-C", str(repo)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert len(err) < 2000
    assert not (repo / ".mlops-ci" / "verdict.json").exists()


def test_a_directory_named_mlops_ci_yaml_is_exit_2(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "mlops-ci.yaml").mkdir()
    assert main(["gate", "-C", str(repo)]) == 2
    assert "mlops-ci.yaml is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["/dev/zero", "huge"])
def test_endless_or_huge_settings_are_refused_without_reading_them(repo: Path, target: str) -> None:
    if target == "huge":
        path = repo / "huge.yaml"
        with open(path, "wb") as fh:
            fh.truncate(2 * 1024 * 1024 * 1024)  # sparse: 2 GiB of NUL bytes
        target = str(path)
    (repo / "mlops-ci.yaml").symlink_to(target)
    proc = gate_in_subprocess(repo)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "mlops-ci.yaml" in proc.stderr
    assert "not a regular file" in proc.stderr or "over the" in proc.stderr


@pytest.mark.parametrize(
    "name",
    ["model", "classifier-v2", "a", "team/model_1", "x9", "-model", "model-", "my model",
     "model#prod", "model@v1", "mödel", "a//b", "model_", "9", "", "a:b", "a.b"],
)  # fmt: skip
def test_artifact_names_follow_gto_exactly(name: str) -> None:
    from gto.constants import name_re

    from mlops_ci.project.settings import ARTIFACT_NAME

    gto_accepts = bool(name_re.search(name)) and "\n" not in name
    if gto_accepts:
        assert parse_settings(f"artifact: '{name}'\n").artifact == name
        assert ARTIFACT_NAME.fullmatch(name)
    else:
        with pytest.raises(ConfigError, match="artifact must be a GTO name"):
            parse_settings(f"artifact: '{name}'\n")
