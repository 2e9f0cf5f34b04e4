"""What the benchmark scripts share: this venv's tools, a quiet environment, a trained repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
MLOPS_CI = str(BIN / "mlops-ci")
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}  # fmt: skip


def sh(cmd: list[str], cwd: Path, **env: str) -> str:
    """Run `cmd` in `cwd`; its stdout. Fails loudly: a benchmark of a failing command is void."""
    proc = subprocess.run(
        cmd, cwd=cwd, env={**ENV, **env}, check=True, capture_output=True, text=True
    )
    return proc.stdout


def trained_repo(base: Path, *overrides: str) -> Path:
    """The reference project at `base/repo`, trained (with `-S` overrides) and committed."""
    repo = base / "repo"
    code = f"from pathlib import Path; from mlops_ci.project.scaffold import init_repo; init_repo(Path({str(repo)!r}))"
    sh([sys.executable, "-c", code], base)
    sh([MLOPS_CI, "train", *[arg for o in overrides for arg in ("-S", o)]], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "Train"], repo)
    return repo
