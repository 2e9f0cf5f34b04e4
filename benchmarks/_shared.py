"""What the benchmark scripts share: this venv's tools, a quiet environment, a trained repo."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent  # this venv: dvc and the test tools
TIME = "/usr/bin/time"  # GNU time (Debian package `time`): the measured process's own peak RSS
REPO = Path(__file__).resolve().parents[1]


def package_source(base: Path) -> Path:
    """The files a wheel of this checkout is built from, copied to `base/source` (apart from
    the checkout's build/ and caches)."""
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "mlops_ci", source / "mlops_ci", ignore=shutil.ignore_patterns("__pycache__")
    )
    return source


def _install_wheel() -> Path:
    """mlops-ci as users get it (`pip install`, the setup action): built from this checkout
    and installed, byte-compiled, into a venv of its own that borrows this venv's
    site-packages for its dependencies. Run from the editable checkout instead, every process
    would pay for the editable install's import hook (it loads at startup and is asked about
    every import) and, under PYTHONDONTWRITEBYTECODE=1, compile every module from source:
    costs no user pays."""
    home = Path(tempfile.mkdtemp(prefix="mlops-ci-bench-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    source = package_source(home)
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "lib" / version / "site-packages" / "_bench_deps.pth").write_text(f"{site}\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv / "bin"


MLOPS_CI = str(_install_wheel() / "mlops-ci")
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


def trained_repo(base: Path, *overrides: str, history: int = 1) -> Path:
    """The reference project at `base/repo`, trained (with `-S` overrides) and committed.

    `history` > 1: main gets that many commits in all, each after retraining with the same
    inputs (`dvc repro -f`), so the training time differs between them as it does on a real
    main: compare reads them for noise bands and the report for its trend.
    """
    repo = base / "repo"
    code = f"from pathlib import Path; from mlops_ci.init.scaffold import init_repo; init_repo(Path({str(repo)!r}))"
    sh([sys.executable, "-c", code], base)
    sh([MLOPS_CI, "train", *[arg for o in overrides for arg in ("-S", o)]], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "Train"], repo)
    for n in range(2, history + 1):
        sh([str(BIN / "dvc"), "repro", "-q", "-f", "-s", "train"], repo)
        sh(["git", "add", "-A"], repo)
        sh(["git", "commit", "-qm", f"Retrain ({n} of {history})", "--allow-empty"], repo)
    return repo


@dataclass
class Sample:
    """One whole-process run: wall seconds, CPU seconds (user + system) and peak RSS (MiB): the
    largest resident set of the process or any of its children (git, a stage's training), as
    the kernel reports it to wait4."""

    wall: float
    cpu: float
    rss_mib: float


def measured(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,), **env: str) -> Sample:
    """Run `cmd` to the end, checked (exit codes `ok`). Peak RSS and CPU come from GNU time
    around it: a child forked from this (large) benchmark process would otherwise be charged
    with the parent's pages it had before exec."""
    with tempfile.NamedTemporaryFile("r") as usage, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-q", "-f", "%M %U %S", "-o", usage.name, *cmd],
            cwd=cwd, env={**ENV, **env}, stdout=subprocess.DEVNULL, stderr=err, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode not in ok:
            err.seek(0)
            raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        rss_kib, user, system = usage.read().split()[-3:]
    return Sample(wall, float(user) + float(system), int(rss_kib) / 1024)


def run_sequence(cmds: list[list[str]], cwd: Path, **env: str) -> Sample:
    """Several whole processes one after another: summed times, the largest peak RSS."""
    samples = [measured(cmd, cwd, **env) for cmd in cmds]
    return Sample(
        sum(s.wall for s in samples), sum(s.cpu for s in samples), max(s.rss_mib for s in samples)
    )


def alternate(
    sides: dict[str, Callable[[int], Sample]], runs: int, warmups: int = 1
) -> dict[str, list[Sample]]:
    """Each side's run `i` (warm-ups first, on both sides), the sides taking turns so a slow
    moment of a shared machine falls on both. A side gets the run number so it can vary its
    work the same way the other side does."""
    for i in range(warmups):
        for run in sides.values():
            run(-1 - i)
    samples: dict[str, list[Sample]] = {name: [] for name in sides}
    for i in range(runs):
        order = list(sides.items()) if i % 2 == 0 else list(reversed(sides.items()))
        for name, run in order:
            samples[name].append(run(i))
    return samples


def spread(values: list[float]) -> str:
    """min/median/max as the closing notes quote them."""
    return f"{min(values):.3f}/{statistics.median(values):.3f}/{max(values):.3f}"


def ratio_line(label: str, ours: list[Sample], peer: list[Sample], goal: float) -> tuple[str, bool]:
    """`peer median / our median` against `goal`, with both sides' spreads."""
    ratio = statistics.median(s.wall for s in peer) / statistics.median(s.wall for s in ours)
    met = ratio >= goal
    text = (
        f"{label}: ours {spread([s.wall for s in ours])} s vs peer "
        f"{spread([s.wall for s in peer])} s (min/median/max) -> {ratio:.2f}x "
        f"(goal >= {goal}x): {'met' if met else 'NOT met'}"
    )
    return text, met
