"""What `mlops-ci init` finds in an existing DVC project and the files it writes for it.

Pure functions: the command reads the repository (every `dvc.yaml` through `dvcfile`, the
metrics through a snapshot, the headers of candidate predictions files) and hands the facts
here; this module decides what they mean and renders `mlops-ci.yaml`, the CI files and the
`.gitignore` line. Nothing here touches the disk, so every choice is testable on its own.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlops_ci import __version__
from mlops_ci.project.dvcfile import ArtifactDecl, StagePaths
from mlops_ci.project.settings import ARTIFACT_NAME, SETTINGS_FILE

# The released mlops-ci that generated files call: the moving major tag of this version, so a
# project gets fixes without edits and never a breaking change.
REPOSITORY = "mlops-ci/mlops-ci"
RELEASE_REF = f"v{__version__.split('.')[0]}"
RAW_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{RELEASE_REF}"
SCHEMA_URL = f"{RAW_URL}/mlops_ci/project/schemas/mlops-ci.schema.json"
GITLAB_TEMPLATE_URL = f"{RAW_URL}/templates/gitlab/mlops-ci.gitlab-ci.yml"
DOCS_URL = f"https://github.com/{REPOSITORY}/blob/{RELEASE_REF}/docs/configuration.md"

RUN_DIR_IGNORE = "/.mlops-ci/"
FORGES = ("github", "gitlab")
GITHUB_WORKFLOWS = ".github/workflows"
GITLAB_CI_FILE = ".gitlab-ci.yml"

# Columns `compare` needs in a predictions file (compare/predictions.py REQUIRED_COLUMNS).
PREDICTION_COLUMNS = ("id", "y_true", "y_pred")
TABLE_SUFFIXES = (".csv", ".json", ".jsonl")
MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".h5", ".keras", ".pt", ".pth", ".onnx",
                  ".safetensors", ".cbm", ".ubj")  # fmt: skip
# DVCLive's bookkeeping, not a quality of the model.
NOT_METRICS = ("step", "epoch", "timestamp")
MAX_POLICY_METRICS = 20
HEADLINE_MAX_DROP_PCT = 5
# Scores that can be near or below zero (r2 of a weak model, a correlation): a percentage of a
# value near zero is meaningless ("dropped 107%"), so their threshold is absolute.
NEAR_ZERO_SCORES = ("r2", "explained_variance", "corr", "pearson", "spearman", "mcc", "kappa")
NEAR_ZERO = 0.1
HEADLINE_MAX_DROP = 0.02
# The error a regression is judged by, best known first.
REGRESSION_ERRORS = ("rmse", "mae", "mse", "mape")
NO_MODEL = "no model file found"
INIT_HEADER = "# Written by `mlops-ci init`"
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


@dataclass
class Detected:
    """What an existing DVC project declares, as `init` found it."""

    dvcfiles: list[str] = field(default_factory=list)
    stages: list[StagePaths] = field(default_factory=list)
    metrics_files: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # metric name -> value
    # metric name -> higher | lower, as `compare` guesses it when the policy does not say
    directions: dict[str, str] = field(default_factory=dict)
    metrics_source: str | None = None  # the revision the values were read at
    plots: list[str] = field(default_factory=list)
    confusion_plots: list[str] = field(default_factory=list)  # their per-sample rows give intervals
    tables: list[str] = field(default_factory=list)  # DVC-tracked tables a stage reads
    artifacts: list[ArtifactDecl] = field(default_factory=list)
    predictions: str | None = None
    predictions_stage: str | None = None
    test_data: str | None = None
    model: str | None = None
    model_stage: str | None = None
    requirements: str | None = None
    working_directory: str | None = None  # the DVC project's directory inside the repository
    has_dvc_remote: bool = False
    target_branch: str = "main"
    notes: list[str] = field(default_factory=list)  # what could not be found, and what to do
    # metric names that echo a tracked param (`alpha` beside `train.alpha`): not a quality
    echoed_params: dict[str, str] = field(default_factory=dict)
    dvc_remote_url: str | None = None

    @property
    def artifact(self) -> ArtifactDecl | None:
        """The default artifact: the first `artifacts:` entry whose name GTO accepts."""
        return next((a for a in self.artifacts if ARTIFACT_NAME.fullmatch(a.name)), None)

    @property
    def verify(self) -> str:
        """How a deploy can verify the model: on recorded rows when both tables exist."""
        return "predictions" if self.predictions and self.test_data else "checksums"


# --- detection --------------------------------------------------------------------------------


def outputs(stages: Iterable[StagePaths]) -> dict[str, str]:
    """Output path -> the stage that writes it."""
    return {out: stage.name for stage in stages for out in stage.outs}


def table_candidates(stages: Sequence[StagePaths]) -> list[tuple[str, str]]:
    """(path, stage) of every table a stage writes, predictions-like names first."""
    found = [
        (path, stage)
        for path, stage in outputs(stages).items()
        if path.lower().endswith(TABLE_SUFFIXES)
    ]
    return sorted(found, key=lambda item: "pred" not in posixpath.basename(item[0]).lower())


# Data rules init writes for each table a stage reads: what no intended change does (drop a
# tenth of the rows, add, remove or retype a column).
MAX_TABLES = 5
TABLE_RULES = "{max_row_drop_pct: 10, schema_unchanged: true}"


def input_tables(
    stages: Sequence[StagePaths], tracked: Mapping[str, str], predictions: str | None
) -> list[str]:
    """DVC-tracked tables (`tracked`: output path -> the stage or .dvc file that writes it)
    that a stage reads: the data a pull request may change. The predictions are results."""
    read = {dep.rstrip("/") for stage in stages for dep in stage.deps}
    found = [
        path
        for path in tracked
        if (path in read or any(path.startswith(f"{d}/") for d in read))
        and path != predictions
        and path.lower().endswith(TABLE_SUFFIXES)
    ]
    return sorted(found)[:MAX_TABLES]


def is_predictions_header(columns: Iterable[str]) -> bool:
    names = {c.strip() for c in columns}
    return all(c in names for c in PREDICTION_COLUMNS)


def find_model(stages: Sequence[StagePaths], artifact: ArtifactDecl | None) -> tuple[str, str]:
    """(path, stage) of the model file: the artifact's path, else a pickle a stage writes."""
    outs = outputs(stages)
    if artifact is not None:
        return artifact.path, outs.get(artifact.path, "")
    for path, stage in outs.items():
        if path.lower().endswith(MODEL_SUFFIXES):
            return path, stage
    return "", ""


def find_test_data(stages: Sequence[StagePaths], predictions_stage: str | None) -> str | None:
    """The test split the pipeline declares: a table named like `test` that the stage which
    writes the predictions reads (else any stage), a file or a file in a directory output."""
    ordered = sorted(stages, key=lambda s: s.name != predictions_stage)
    for stage in ordered:
        for dep in stage.deps:
            name = posixpath.basename(dep).lower()
            if "test" in name and name.endswith(".csv"):
                return dep
    return None


def policy_metrics(metrics_by_file: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Metric name -> value for the gate: numbers only, `key` where unique across files, else
    `file:key` (the names `compare` gives its rows)."""
    owners: dict[str, list[str]] = {}
    for path, flat in metrics_by_file.items():
        for key in flat:
            owners.setdefault(key, []).append(path)
    named: dict[str, Any] = {}
    for path, flat in metrics_by_file.items():
        for key, value in flat.items():
            if not key or key.rsplit(".", 1)[-1].lower() in NOT_METRICS:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            named[key if len(owners[key]) == 1 else f"{path}:{key}"] = value
    return named


def _leaf(name: str) -> str:
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1].rsplit("/", 1)[-1].lower()


def headline_metric(names: Sequence[str], directions: Mapping[str, str]) -> str | None:
    """The metric that gets a threshold: a regression's error (rmse, mae, ...), else the first
    one where higher is better."""
    for error in REGRESSION_ERRORS:
        found = next((n for n in names if _leaf(n) == error), None)
        if found:
            return found
    return next((n for n in names if directions.get(n) == "higher"), None) or next(
        iter(names), None
    )


def can_be_near_zero(name: str, value: Any) -> bool:
    leaf = _leaf(name)
    near = isinstance(value, int | float) and abs(value) < NEAR_ZERO
    return near or any(leaf == s or leaf.startswith(s + "_") for s in NEAR_ZERO_SCORES)


def forge_from_remote(url: str | None) -> str:
    return "gitlab" if url and "gitlab" in url.lower() else "github"


# --- rendering --------------------------------------------------------------------------------


def _scalar(value: str) -> str:
    """A YAML scalar for a path or name: bare when plain, else a JSON string (valid YAML)."""
    plain = _PLAIN.fullmatch(value) and yaml.safe_load(value) == value  # not `yes`, `1.0`
    return value if plain else json.dumps(value)


def _line(text: str, comment: str = "", width: int = 36) -> str:
    return f"{text.ljust(max(width, len(text) + 1))}# {comment}" if comment else text


def render_settings(found: Detected) -> str:
    """A commented `mlops-ci.yaml` for the project, with the schema modeline."""
    artifact = found.artifact
    name = artifact.name if artifact else "model"
    lines = [
        f"# yaml-language-server: $schema={SCHEMA_URL}",
        "# mlops-ci settings and gate policy, written by `mlops-ci init` from what dvc.yaml",
        "# declares. A pull request is judged by this file as it is at the baseline revision, so",
        "# a change here takes effect once merged. Check it with `mlops-ci validate`.",
        f"# Adopting and configuring: {DOCS_URL}",
        _line(
            f"artifact: {_scalar(name)}",
            "registry name (GTO); from `artifacts:` in dvc.yaml" if artifact else "registry name",
        ),
        f"target_branch: {_scalar(found.target_branch)}",
        _line("baseline: merge-base", "merge-base | base | stage:production | a git ref"),
    ]
    if found.model:
        where = f"output of stage `{found.model_stage}`" if found.model_stage else "the model file"
        lines.append(_line(f"model: {_scalar(found.model)}", where))
    else:
        lines.append("# model: models/model.pkl          # the model file a deploy ships")
    if found.predictions:
        lines.append(
            _line(
                f"predictions: {_scalar(found.predictions)}",
                "per-sample rows (id, y_true, y_pred)"
                + (f" from `{found.predictions_stage}`" if found.predictions_stage else ""),
            )
        )
    else:
        lines.append(
            "# predictions: eval/predictions.csv # per-sample id, y_true, y_pred[, y_score]:"
            " confidence intervals"
        )
    if found.test_data:
        lines.append(
            _line(f"test_data: {_scalar(found.test_data)}", "rows a deploy verifies the model on")
        )
    else:
        lines.append(
            "# test_data: data/test.csv          # id + feature columns, for deploy.verify"
        )
    lines += ["", *_render_policy(found), ""]
    if found.tables:
        lines += [
            "# Data rules, on every row of both revisions of the tables the pipeline reads.",
            "data:",
            "  tables:",
            *(f"  - path: {_scalar(t)}\n    rules: {TABLE_RULES}" for t in found.tables),
            "",
        ]
    lines += [
        "promote:",
        "  stages: [staging, production]",
        _line("  auto: staging", "the stage a merge assigns"),
        "  bump: minor",
        "deploy:",
        _line("  target: deployments/", "a directory, s3://bucket/prefix or command:PROGRAM"),
        _line(
            f"  verify: {found.verify}",
            "predictions | checksums | command"
            + ("" if found.verify == "predictions" else " (no predictions and test rows found)"),
        ),
    ]
    if artifact and artifact.desc:
        lines.append(f"intended_use: {json.dumps(artifact.desc)}")
    return "\n".join(lines) + "\n"


def _render_policy(found: Detected) -> list[str]:
    names = list(found.metrics)[:MAX_POLICY_METRICS]
    lines = [
        "# The gate: one rule per metric the pipeline writes"
        + (f" (read at {found.metrics_source})." if found.metrics_source else "."),
        "# Tighten it: min/max bound the value, max_drop / max_drop_pct / min_gain bound the",
        "# change, significant: true judges by the confidence interval (needs `predictions`).",
    ]
    if not names:
        return [
            *lines,
            "# No metric could be read yet: run the pipeline (`dvc repro`), then `mlops-ci init",
            "# --force`, or name them here.",
            "metrics:",
            "  default: {max_drop_pct: 5}        # the rule for every metric not listed",
            "on_missing_metric: fail             # fail | neutral | ignore",
            "on_inconclusive: neutral            # fail | neutral | pass",
        ]
    echoed = [n for n in names if n in found.echoed_params]
    names = [n for n in names if n not in found.echoed_params]
    headline = headline_metric(names, found.directions)
    lines.append("metrics:")
    for name in names:
        rule = f"direction: {found.directions.get(name, 'higher')}"
        value = found.metrics[name]
        if name == headline and can_be_near_zero(name, value):
            rule += f", max_drop: {HEADLINE_MAX_DROP}"
        elif name == headline:
            rule += f", max_drop_pct: {HEADLINE_MAX_DROP_PCT}"
        lines.append(_line(f"  {_scalar(name)}: {{{rule}}}", f"now {value:.6g}"))
    lines += [
        f"  # {_scalar(name)}: echoes the param {found.echoed_params[name]}; not gated"
        for name in echoed
    ]
    lines += [
        _line("on_missing_metric: fail", "fail | neutral | ignore"),
        _line("on_inconclusive: neutral", "fail | neutral | pass"),
    ]
    return lines


def _with(found: Detected, *, main: bool) -> list[str]:
    """`with:` inputs of a reusable workflow call for what the project has."""
    inputs = []
    if found.working_directory:
        inputs.append(f"working-directory: {_scalar(found.working_directory)}")
    if found.requirements:
        inputs.append(f"requirements: {_scalar(found.requirements)}")
    if not found.has_dvc_remote:
        # Without a shared DVC remote nothing can be pulled or pushed; see the next steps.
        inputs.append("pull: false")
        if main:
            inputs.append("push: false")
    return inputs


def _call(job: str, workflow: str, permissions: str, inputs: list[str], condition: str = "") -> str:
    lines = ["jobs:", f"  {job}:"]
    if condition:
        lines.append(f"    if: {condition}")
    lines += [
        f"    uses: {REPOSITORY}/.github/workflows/{workflow}@{RELEASE_REF}",
        f"    permissions: {permissions}",
    ]
    if inputs:
        lines += ["    with:", *[f"      {i}" for i in inputs]]
    return "\n".join(lines) + "\n"


PR_WORKFLOW = "mlops-ci-pr"


def render_github_workflows(found: Detected) -> dict[str, str]:
    """Workflow path -> text: pull requests, their fork-safe half, and (when a model file is
    known) the merge-to-main release."""
    branch = found.target_branch
    header = "# Written by `mlops-ci init`; calls the released mlops-ci workflows.\n"
    files = {
        f"{GITHUB_WORKFLOWS}/mlops-ci-pr.yml": header
        + "# Train, compare with the baseline, gate, and post one living report per pull request.\n"
        + f"name: {PR_WORKFLOW}\n"
        + f"on:\n  pull_request:\n    branches: [{_scalar(branch)}]\n"
        + _call(
            "mlops-ci",
            "reusable-pr.yml",
            "{contents: read, pull-requests: write, statuses: write}",
            _with(found, main=False),
        ),
        f"{GITHUB_WORKFLOWS}/mlops-ci-pr-report.yml": header
        + "# Pull requests from forks get a read-only token: this trusted half posts their report.\n"
        + "name: mlops-ci-pr-report\n"
        + f"on:\n  workflow_run:\n    workflows: [{PR_WORKFLOW}]\n    types: [completed]\n"
        + _call(
            "publish",
            "reusable-pr-report.yml",
            "{actions: read, contents: read, pull-requests: write, statuses: write}",
            [],
            "github.event.workflow_run.head_repository.full_name != github.repository",
        ),
    }
    if found.model:
        files[f"{GITHUB_WORKFLOWS}/mlops-ci-main.yml"] = (
            header
            + "# A merge gates against production, registers, promotes and deploys the model.\n"
            + "name: mlops-ci-main\n"
            + f"on:\n  push:\n    branches: [{_scalar(branch)}]\n"
            + _call(
                "release",
                "reusable-main.yml",
                "{contents: write, statuses: write, deployments: write}",
                _with(found, main=True),
            )
        )
    return files


def gitlab_variables(found: Detected) -> list[str]:
    lines = [f'  MLOPS_CI_INSTALL: "mlops-ci=={__version__}"']
    if found.requirements:
        lines.append(f"  MLOPS_CI_REQUIREMENTS: {json.dumps(found.requirements)}")
    if not found.has_dvc_remote:
        lines += ['  MLOPS_CI_PULL: "false"', '  MLOPS_CI_PUSH: "false"']
    return lines


def render_gitlab_ci(found: Detected) -> str:
    """A `.gitlab-ci.yml` that includes the released template."""
    lines = [
        f"{INIT_HEADER}: the released mlops-ci template for merge requests and the",
        "# default branch. Set MLOPS_CI_TOKEN (api scope) and MLOPS_CI_PUSH_TOKEN",
        "# (write_repository) as masked CI/CD variables.",
        "include:",
        f"  - remote: {GITLAB_TEMPLATE_URL}",
        "variables:",
        *gitlab_variables(found),
    ]
    return "\n".join(lines) + "\n"


def gitignore_text(current: str | None) -> str:
    """`.gitignore` with the run directory ignored (unchanged when it already is)."""
    text = current or ""
    entries = {line.strip() for line in text.splitlines()}
    if entries & {RUN_DIR_IGNORE, ".mlops-ci/", ".mlops-ci", "/.mlops-ci"}:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "# mlops-ci run directory\n" + RUN_DIR_IGNORE + "\n"


def planned_files(found: Detected, forge: str) -> dict[str, str]:
    """Every file `init` writes (repository-relative path -> text), `.gitignore` excluded."""
    files = {SETTINGS_FILE: render_settings(found)}
    if forge == "gitlab":
        files[GITLAB_CI_FILE] = render_gitlab_ci(found)
    else:
        files.update(render_github_workflows(found))
    return files


def next_steps(found: Detected, forge: str) -> list[str]:
    """What the user does after `init`, most important first."""
    steps = [*found.notes]
    unreachable = unreachable_remote(found.dvc_remote_url)
    if unreachable:
        steps.append(
            f"the default DVC remote ({found.dvc_remote_url}) {unreachable}, and the workflows "
            "pull and push by default: use a remote every runner reaches (s3://, gs://, "
            "azure://, ssh://...), or set "
            + ("`pull: false` / `push: false`" if forge == "github" else "MLOPS_CI_PULL/PUSH")
            + " (then stages are rerun, not restored)"
        )
    if not found.has_dvc_remote:
        steps.append(
            "add a DVC remote all runners share (`dvc remote add -d storage s3://...`, or "
            "`remote: {url: ...}` in mlops-ci.yaml) and push to it, then drop `pull: false`"
            + (" / `push: false`" if forge == "github" else " (MLOPS_CI_PULL/PUSH)")
        )
    if forge == "gitlab":
        steps.append("set MLOPS_CI_TOKEN and MLOPS_CI_PUSH_TOKEN as masked CI/CD variables")
    else:
        steps.append(
            "protect the target branch and require the status check `mlops-ci/"
            + (found.artifact.name if found.artifact else "model")
            + "`"
        )
    if not found.predictions and found.confusion_plots:
        steps.append(
            "confidence intervals for accuracy, precision, recall and f1 come from the per-sample "
            f"rows of the confusion plot {found.confusion_plots[0]} (one test file, never pooled"
            " with train); `mlops-ci init --predictions PATH` uses a predictions file instead, "
            "and `mlops-ci noise --repeat 5` measures noise bands for the other metrics"
        )
    elif not found.predictions:
        steps.append(
            "for confidence intervals, have a stage write per-sample predictions (columns "
            "id, y_true, y_pred) and run `mlops-ci init --predictions PATH`, or log a confusion "
            'matrix with DVCLive (`log_sklearn_plot("confusion_matrix", ...)`); without them, '
            "`mlops-ci noise --repeat 5` measures run-to-run noise bands"
        )
    if found.model:
        steps.append(
            "deploy.target is `deployments/`, a directory of the job's workspace that a CI "
            "runner throws away: set an s3:// prefix or `command:PROGRAM` to keep deployments"
        )
    steps.append("run `mlops-ci validate`, commit the files and open a pull request")
    return steps


def unreachable_remote(url: str | None) -> str | None:
    """Why a CI runner cannot use this DVC remote URL, or None when it may."""
    if url is None:
        return None
    if url.startswith("file://") or "://" not in url:
        return "is a path on this machine, which a CI runner does not have"
    if url.startswith(("http://", "https://")):
        return "is HTTP, which DVC reads but usually cannot push to"
    return None
