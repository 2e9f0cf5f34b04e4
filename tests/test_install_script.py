"""The setup action's installer (actions/setup/install.sh): uv when it can be had, else pip,
and the log says which. Each case installs a small wheel into a fresh virtual environment."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "actions" / "setup" / "install.sh"

pytestmark = pytest.mark.slow


def _wheel(where: Path) -> Path:
    """A one-module wheel, built by hand so that no build backend is fetched."""
    path = where / "tiny_pkg-1.0-py3-none-any.whl"
    files = {
        "tiny_pkg.py": "VALUE = 42\n",
        "tiny_pkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tiny-pkg\nVersion: 1.0\n",
        "tiny_pkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tiny_pkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in {**files, "tiny_pkg-1.0.dist-info/RECORD": record}.items():
            zf.writestr(name, text)
    return path


def _install(tmp_path: Path, uv: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MLOPS_CI_UV": uv,
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--no-index", str(_wheel(tmp_path))],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return proc, venv / "bin" / "python"


def _imports(python: Path) -> bool:
    code = "import tiny_pkg; assert tiny_pkg.VALUE == 42"
    return subprocess.run([str(python), "-c", code], check=False).returncode == 0


def test_the_pinned_uv_installs_and_says_so(tmp_path: Path) -> None:
    proc, python = _install(tmp_path, "")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installing with uv" in proc.stdout
    assert _imports(python)


def test_pip_does_the_work_when_uv_cannot_be_had(tmp_path: Path) -> None:
    proc, python = _install(tmp_path, "uv==0.0.0.dev0-no-such-version")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "could not be installed; falling back to pip" in proc.stdout
    assert "installing with pip" in proc.stdout
    assert _imports(python)


def test_none_installs_with_pip_alone(tmp_path: Path) -> None:
    proc, python = _install(tmp_path, "none")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installing with pip" in proc.stdout and "installing with uv" not in proc.stdout
    assert _imports(python)
