"""Existing DVC projects that have never seen mlops-ci, for `mlops-ci init` to adopt.

Each is a git repository on `main` with its pipeline reproduced and committed, its outputs
pushed to a DVC remote (`<base>/dvc-remote`, an absolute path, the project's default remote)
and a bare `<base>/origin.git`:

- `reference`: the reference pipeline (predictions file, test split, model), no mlops-ci.yaml;
- `dvclive`: a DVCLive stage whose cached directory output holds the metrics and plots;
- `regression`: scikit-learn's diabetes data and a ridge regression, no predictions file, the
  model declared in dvc.yaml's `artifacts:`;
- `directory-output`: a classifier whose model and predictions are files inside directory
  outputs, and whose metrics file echoes a param;
- `weak-regression`: the regression penalised until r2 is near zero, echoing `alpha`.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from mlops_ci.init.scaffold import init_repo, set_dvc_remote
from mlops_ci.project.git import Git
from tests.dvc_layouts import LAYOUTS, build_layout

KINDS = ("reference", "dvclive", "regression")

_PY = shlex.quote(sys.executable)
REGRESSION_FILES = {
    "params.yaml": "train:\n  alpha: 1.0\n",
    "src/prepare.py": (
        "import pathlib\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.model_selection import train_test_split\n"
        "frame = load_diabetes(as_frame=True).frame\n"
        "frame.insert(0, 'id', range(len(frame)))\n"
        "train, test = train_test_split(frame, test_size=0.25, random_state=0)\n"
        "pathlib.Path('data').mkdir(exist_ok=True)\n"
        "train.to_csv('data/train.csv', index=False)\n"
        "test.to_csv('data/test.csv', index=False)\n"
    ),
    "src/train.py": (
        "import pathlib, pickle, yaml\n"
        "import pandas as pd\n"
        "from sklearn.linear_model import Ridge\n"
        "alpha = yaml.safe_load(open('params.yaml'))['train']['alpha']\n"
        "train = pd.read_csv('data/train.csv')\n"
        "model = Ridge(alpha=alpha).fit(train.drop(columns=['id', 'target']), train['target'])\n"
        "pathlib.Path('models').mkdir(exist_ok=True)\n"
        "pickle.dump(model, open('models/regressor.pkl', 'wb'))\n"
    ),
    "src/evaluate.py": (
        "import json, pickle\n"
        "import pandas as pd\n"
        "from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score\n"
        "test = pd.read_csv('data/test.csv')\n"
        "model = pickle.load(open('models/regressor.pkl', 'rb'))\n"
        "pred = model.predict(test.drop(columns=['id', 'target']))\n"
        "json.dump({'rmse': round(mean_squared_error(test['target'], pred) ** 0.5, 6),\n"
        "           'mae': round(mean_absolute_error(test['target'], pred), 6),\n"
        "           'r2': round(r2_score(test['target'], pred), 6)},\n"
        "          open('metrics.json', 'w'))\n"
    ),
    "dvc.yaml": (
        "stages:\n"
        "  prepare:\n"
        f"    cmd: {_PY} src/prepare.py\n"
        "    deps: [src/prepare.py]\n"
        "    outs: [data/train.csv, data/test.csv]\n"
        "  train:\n"
        f"    cmd: {_PY} src/train.py\n"
        "    deps: [src/train.py, data/train.csv]\n"
        "    params: [train]\n"
        "    outs: [models/regressor.pkl]\n"
        "  evaluate:\n"
        f"    cmd: {_PY} src/evaluate.py\n"
        "    deps: [src/evaluate.py, data/test.csv, models/regressor.pkl]\n"
        "    metrics:\n"
        "      - metrics.json:\n"
        "          cache: false\n"
        "artifacts:\n"
        "  diabetes-regressor:\n"
        "    path: models/regressor.pkl\n"
        "    type: model\n"
        "    desc: Ridge regression of disease progression (scikit-learn's diabetes data)\n"
    ),
}


# A classifier whose model and predictions live inside directory outputs (`models/`, `eval/`),
# as many projects write them; its metrics file also echoes a param.
DIRECTORY_OUTPUT_FILES = {
    "params.yaml": "train:\n  C: 1.0\n",
    "src/train.py": (
        "import pathlib, pickle, yaml\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\n"
        "C = yaml.safe_load(open('params.yaml'))['train']['C']\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0)\n"
        "model = LogisticRegression(C=C, max_iter=5000).fit(X_train, y_train)\n"
        "pathlib.Path('models').mkdir(exist_ok=True)\n"
        "pickle.dump(model, open('models/model.pkl', 'wb'))\n"
        "open('models/README.txt', 'w').write('logistic regression')\n"
    ),
    "src/evaluate.py": (
        "import json, pathlib, pickle, yaml\n"
        "import pandas as pd\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.metrics import accuracy_score, f1_score\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "_, X_test, _, y_test = train_test_split(X, y, test_size=0.3, random_state=0)\n"
        "model = pickle.load(open('models/model.pkl', 'rb'))\n"
        "pred = model.predict(X_test)\n"
        "pathlib.Path('eval').mkdir(exist_ok=True)\n"
        "pd.DataFrame({'id': range(len(y_test)), 'y_true': y_test, 'y_pred': pred})"
        ".to_csv('eval/predictions.csv', index=False)\n"
        "C = yaml.safe_load(open('params.yaml'))['train']['C']\n"
        "json.dump({'accuracy': accuracy_score(y_test, pred), 'f1': f1_score(y_test, pred),\n"
        "           'C': C}, open('metrics.json', 'w'))\n"
    ),
    "dvc.yaml": (
        "stages:\n"
        "  train:\n"
        f"    cmd: {_PY} src/train.py\n"
        "    deps: [src/train.py]\n"
        "    params: [train]\n"
        "    outs: [models]\n"
        "  evaluate:\n"
        f"    cmd: {_PY} src/evaluate.py\n"
        "    deps: [src/evaluate.py, models]\n"
        "    params: [train.C]\n"
        "    outs: [eval]\n"
        "    metrics:\n"
        "      - metrics.json:\n"
        "          cache: false\n"
    ),
}


def _git(repo: Path, *args: str) -> str:
    return Git(repo).out(*args)


def _reproduce_and_push(project: Path) -> None:
    """`mlops-ci train --push`: stages see this interpreter as `python`; the run directory
    goes beside the repository, which has not ignored it yet."""
    from mlops_ci.commands.train import run_train

    run_train(project, project.parent / "run", push=True)


def _publish(repo: Path, base: Path) -> Path:
    """Commit on main, push the DVC outputs, make the bare origin."""
    Git(repo).commit_all("Trained")
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(repo), str(base / "origin.git")], check=True
    )
    _git(repo, "remote", "add", "origin", str(base / "origin.git"))
    _git(repo, "fetch", "--quiet", "origin")
    return repo


def reference_project(base: Path) -> Path:
    repo = base / "repo"
    init_repo(repo)
    (repo / "mlops-ci.yaml").unlink()
    (repo / ".gitignore").write_text("__pycache__/\n")  # no run directory line yet
    set_dvc_remote(repo, str(base / "dvc-remote"))
    _reproduce_and_push(repo)
    return _publish(repo, base)


def dvclive_project(base: Path) -> Path:
    layout = dataclasses.replace(LAYOUTS["dvclive-dir"], candidate={})
    repo = build_layout(layout, base)  # main trained; an empty `candidate` branch on top
    git = Git(repo)
    git.run("checkout", "--quiet", "main")
    git.run("branch", "--quiet", "-D", "candidate")
    set_dvc_remote(repo, str(base / "dvc-remote"))
    _reproduce_and_push(repo)
    return _publish(repo, base)


def regression_project(base: Path, files: dict[str, str] | None = None) -> Path:
    from dvc.repo import Repo

    repo = base / "repo"
    repo.mkdir(parents=True)
    Git(repo).run("init", "--quiet", "--initial-branch=main")
    for rel, text in (files or REGRESSION_FILES).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    Repo.init(str(repo)).close()
    set_dvc_remote(repo, str(base / "dvc-remote"))
    _reproduce_and_push(repo)
    return _publish(repo, base)


def directory_output_project(base: Path) -> Path:
    return regression_project(base, DIRECTORY_OUTPUT_FILES)


def weak_regression_project(base: Path) -> Path:
    """The regression with a penalty so strong that r2 is near zero, echoing `alpha`."""
    files = dict(REGRESSION_FILES, **{"params.yaml": "train:\n  alpha: 300.0\n"})
    files["src/evaluate.py"] = files["src/evaluate.py"].replace(
        "'r2': round(r2_score(test['target'], pred), 6)}",
        "'r2': round(r2_score(test['target'], pred), 6), 'alpha': model.alpha}",
    )
    return regression_project(base, files)


BUILDERS = {
    "reference": reference_project,
    "dvclive": dvclive_project,
    "regression": regression_project,
    "directory-output": directory_output_project,
    "weak-regression": weak_regression_project,
}


def build(kind: str, base: Path) -> Path:
    """A fresh existing project of `kind` under `base` (which must not exist yet)."""
    base.mkdir(parents=True)
    return BUILDERS[kind](base)


def copy(template: Path, base: Path) -> Path:
    """A private copy of a project `build` made; the DVC remote path is absolute, so the copy
    keeps using the template's remote (read-only in tests that only pull)."""
    shutil.copytree(template, base, symlinks=True)
    repo = base / "repo"
    _git(repo, "remote", "set-url", "origin", str(base / "origin.git"))
    return repo
