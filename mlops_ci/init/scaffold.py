"""Lay out the reference project (pipeline, params, policy, stage code) in a directory.

`mlops-ci demo` and the tests start from this: a real git + DVC repository that runs the same
pipeline as this project's own root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_ci.project.git import Git

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # mlops_ci/
REFERENCE_DIR = PACKAGE_DIR / "reference"
PROJECT_FILES = ("dvc.yaml", "params.yaml", "mlops-ci.yaml")
STAGE_MODULES = ("__init__.py", "common.py", "prepare.py", "train.py", "evaluate.py")

GITIGNORE = """\
# mlops-ci run directory and local deploy target
/.mlops-ci/
/deployments/
__pycache__/
"""

# In a project of its own the stage code is the package `pipeline/`, not `mlops_ci.pipeline`:
# a copied `mlops_ci/` at the repository root would shadow the installed mlops-ci.
STAGE_PACKAGE = "pipeline"


def project_dvc_yaml() -> str:
    """The reference `dvc.yaml` as a project of its own runs it (stage code in `pipeline/`)."""
    text = (REFERENCE_DIR / "dvc.yaml").read_text()
    return text.replace("mlops_ci.pipeline.", f"{STAGE_PACKAGE}.").replace(
        "mlops_ci/pipeline/", f"{STAGE_PACKAGE}/"
    )


def write_reference_project(dest: Path) -> None:
    """Write the project files and the stage code into `dest` (created if needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copyfile(REFERENCE_DIR / name, dest / name)
    (dest / "dvc.yaml").write_text(project_dvc_yaml())
    stage_dir = dest / STAGE_PACKAGE
    stage_dir.mkdir(parents=True, exist_ok=True)
    for name in STAGE_MODULES:
        shutil.copyfile(PACKAGE_DIR / "pipeline" / name, stage_dir / name)
    (dest / ".gitignore").write_text(GITIGNORE)


def init_repo(dest: Path, *, branch: str = "main") -> Git:
    """`git init` + `dvc init` + the reference project, committed on `branch`."""
    from dvc.repo import Repo

    git = Git(dest)
    dest.mkdir(parents=True, exist_ok=True)
    git.run("init", "--quiet", f"--initial-branch={branch}")
    write_reference_project(dest)
    Repo.init(str(dest))
    git.commit_all("Reference pipeline")
    return git


def set_dvc_remote(repo_dir: Path, url: str, *, name: str = "local") -> None:
    """Add `url` as the default DVC remote in the committed `.dvc/config`.

    A relative local path is resolved by DVC against `.dvc/`, so `../../dvc-remote` stays
    right for every clone made beside the repository.
    """
    from dvc.repo import Repo

    from mlops_ci.project.dvc import set_remote

    with Repo(str(repo_dir)) as repo:
        set_remote(repo, name, url, level="repo")
