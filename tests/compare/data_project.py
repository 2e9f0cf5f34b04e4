"""A small real git + DVC project whose data changes between `main` and a branch: tables
tracked with `dvc add` (a file and a directory), a stage with a file and a directory output.

    repo = DataProject.create(tmp_path / "repo", rows=table(1000))
    repo.write_table("data/raw.csv", table(900)); repo.add("data/raw.csv"); repo.repro()

DVC runs in-process (as in tests/dvc_layouts.py): a `dvc` process costs a second of imports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

BIN = Path(sys.executable).parent
MLOPS_CI = str(BIN / "mlops-ci")
DVC = str(BIN / "dvc")
IDENTITY = ["-c", "user.name=data", "-c", "user.email=data@example.invalid"]

PREPARE = """\
import os
lines = open("data/raw.csv").read().splitlines(keepends=True)
header, rows = lines[0], lines[1:]
os.makedirs("out/parts", exist_ok=True)
half = len(rows) // 2
open("out/parts/a.csv", "w").writelines([header, *rows[:half]])
open("out/parts/b.csv", "w").writelines([header, *rows[half:]])
open("out/train.csv", "w").writelines([header, *rows])
with open("metrics.json", "w") as fh:
    fh.write('{"rows": %d}' % len(rows))
"""

# The stage runs under this interpreter (stdlib only), not whatever `python` is first on PATH.
DVC_YAML = """\
stages:
  prepare:
    cmd: {python} prepare.py
    deps: [data/raw.csv, prepare.py]
    outs: [out/train.csv, out/parts]
    metrics: [{{metrics.json: {{cache: false}}}}]
"""


def table(n: int, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """`n` rows: an id, two numbers, a category and a binary label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(n),
        "x": rng.normal(loc=shift, size=n).round(6),
        "y": rng.integers(0, 100, size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "label": rng.integers(0, 2, size=n),
    })  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip


@contextlib.contextmanager
def inside(path: Path) -> Iterator[None]:
    logger, cwd = logging.getLogger("dvc"), Path.cwd()
    level = logger.level
    logger.setLevel(logging.WARNING)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)
        logger.setLevel(level)


@dataclass
class DataProject:
    root: Path

    @classmethod
    def create(
        cls, root: Path, rows: pd.DataFrame, policy: str = "artifact: model\n"
    ) -> DataProject:
        from dvc.repo import Repo

        root.mkdir(parents=True)
        project = cls(root)
        project.git("init", "-q", "-b", "main")
        with inside(root):
            Repo.init(root).close()
        (root / "prepare.py").write_text(PREPARE)
        (root / "dvc.yaml").write_text(DVC_YAML.format(python=shlex.quote(sys.executable)))
        (root / "mlops-ci.yaml").write_text(policy)
        project.write_table("data/raw.csv", rows)
        project.add("data/raw.csv")
        project.repro()
        project.commit("baseline data")
        return project

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *IDENTITY, *args], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-qm", message)

    def write_table(self, rel: str, frame: pd.DataFrame, **options: object) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, **options)  # type: ignore[arg-type]

    def write(self, rel: str, text: str | None) -> None:
        path = self.root / rel
        if text is None:
            path.unlink()
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def add(self, *targets: str) -> None:
        from dvc.repo import Repo

        with inside(self.root), Repo(self.root) as repo:
            repo.add(list(targets))

    def remove(self, target: str) -> None:
        from dvc.repo import Repo

        with inside(self.root), Repo(self.root) as repo:
            repo.remove(target, outs=True)

    def repro(self) -> None:
        from dvc.repo import Repo

        with inside(self.root), Repo(self.root) as repo:
            repo.reproduce()

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        """A command line (`mlops-ci ...`, `dvc ...`) in the project; checked against `ok`."""
        proc = subprocess.run(list(args), cwd=self.root, env=env(), capture_output=True, text=True)
        assert proc.returncode in ok, (
            f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
        return proc
