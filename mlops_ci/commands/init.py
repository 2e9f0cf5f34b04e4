"""`mlops-ci init`: adopt mlops-ci in an existing DVC repository.

Reads what the project declares (every `dvc.yaml`, as `compare` reads them; the metrics as a
snapshot of the workspace reads them), then merges `mlops-ci.yaml` (the user's keys are kept,
the missing ones added), writes the CI files for the forge that are missing and the
`.gitignore` line. Running it twice writes nothing the second time.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from mlops_ci.compare.diff import default_direction
from mlops_ci.compare.snapshot import Project, RevisionFiles, metric_names, take_snapshot
from mlops_ci.init import adopt, adopt_gitlab
from mlops_ci.init.settings_merge import Merged, merge_settings
from mlops_ci.project import dvcfile
from mlops_ci.project.errors import ConfigError, GitError, NotADvcRepo, NotAGitRepo
from mlops_ci.project.git import Git
from mlops_ci.project.settings import parse_settings

MAX_HEADER_BYTES = 64 * 1024


@dataclass
class Inspection:
    """An existing DVC project as `init` and `validate` see it (paths project-relative)."""

    project: Project
    found: adopt.Detected
    files: set[str]  # what git and .dvcignore leave visible in the working tree
    outs: dict[str, str]  # DVC output -> the stage (or .dvc file) that records it
    metric_rows: set[tuple[str, str]]  # (row name, key path) as `compare` names them
    params: dict[str, set[str]]  # params file -> flat keys
    metrics_rev: str | None  # where the metrics were read: None (workspace) or HEAD
    plot_files: dict[str, list[str]] = field(default_factory=dict)  # plot id -> its data files
    # metrics files no other revision can read from a fresh clone, and the fix for each
    unreadable_elsewhere: dict[str, str] = field(default_factory=dict)

    def exists(self, path: str) -> bool:
        return path in self.files or (self.project.root / path).exists()


def inspect_project(repo_dir: Path) -> Inspection:
    """Everything `init` and `validate` need to know about the project at `repo_dir`."""
    try:
        top = Git(repo_dir).toplevel()
    except GitError as exc:
        raise NotAGitRepo(f"{repo_dir} is not inside a git repository: {exc}") from exc
    project = Project.find(repo_dir, top)
    if not (project.root / ".dvc").is_dir():
        raise NotADvcRepo(f"{repo_dir} is not a DVC project (no .dvc/); run `dvc init` first")
    reader = RevisionFiles(project, None)
    pipelines = [p for p in reader.files if posixpath.basename(p) == "dvc.yaml"]
    if (project.root / "dvc.yaml").is_file():
        pipelines = list(dict.fromkeys(["dvc.yaml", *pipelines]))
    if not pipelines:
        raise ConfigError(
            f"{project.root} has no dvc.yaml: mlops-ci runs a DVC pipeline; declare its stages "
            "first (`dvc stage add ...`), then rerun `mlops-ci init`"
        )
    found = adopt.Detected(dvcfiles=pipelines)
    decl = dvcfile.Declarations()
    for path in pipelines:
        raw = (project.root / path).read_bytes()
        data = dvcfile.load_pipeline_yaml(raw, path) or {}
        if dvcfile.is_templated(data, raw):
            from mlops_ci.project.dvc import resolve_templated

            data, _ = resolve_templated(project.root, None, path)
        dvcfile.declare(decl, path, data)
        found.stages += dvcfile.stage_paths(data, path)
        found.artifacts += dvcfile.artifacts(data, path)
    found.metrics_files = list(dict.fromkeys(decl.metrics))
    # A model or predictions file inside a directory output is found as compare finds it.
    found.stages = [
        replace(stage, outs=tuple(f for out in stage.outs for f in _inside(reader, out)))
        for stage in found.stages
    ]
    found.plots = [name for _, name, _, _ in decl.plots]
    found.confusion_plots = [
        name for _, name, props, _ in decl.plots
        if str(props.get("template") or "").startswith("confusion")
    ]  # fmt: skip
    outs = adopt.outputs(found.stages)
    for path in reader.files:
        if path.endswith(".dvc") and not path.startswith(".dvc/"):
            text = (project.root / path).read_bytes()
            outs.update({e.path: path for e in dvcfile.dvcfile_entries(text, path)})

    snap, rev = take_snapshot(project, None, predictions_path=None), None
    if not snap.metrics and Git(top).head_sha():
        snap, rev = take_snapshot(project, "HEAD", predictions_path=None), "HEAD"
    found.metrics = adopt.policy_metrics(snap.metrics)
    found.metrics_source = rev or "workspace"
    found.directions = {name: default_direction(name) for name in found.metrics}
    names = metric_names([snap])
    rows = {(names[(path, key)], key) for path, flat in snap.metrics.items() for key in flat}
    params = {path: set(flat) for path, flat in snap.params.items()}

    _find_predictions(project.root, found)
    found.tables = adopt.input_tables(found.stages, outs, found.predictions)
    if found.predictions:
        found.test_data = adopt.find_test_data(found.stages, found.predictions_stage)
        if found.test_data and not _has_id_column(project.root / found.test_data):
            found.notes.append(
                f"{found.test_data} has no `id` column to join with the predictions; give it "
                "one to verify deploys on its rows (deploy.verify: predictions)"
            )
            found.test_data = None
    found.model, found.model_stage = adopt.find_model(found.stages, found.artifact)
    if not found.model:
        found.notes.append(
            f"{adopt.NO_MODEL} (no `artifacts:` in dvc.yaml, no .pkl/.joblib output): rerun "
            "`mlops-ci init --model PATH` (your other settings are kept) for the main workflow"
        )
    if not found.metrics and found.metrics_files:
        found.notes.append(
            f"no metric could be read: {', '.join(found.metrics_files)} (declared in dvc.yaml) "
            "are not in the workspace; `dvc pull` them (or `dvc repro`), then rerun "
            "`mlops-ci init` (it adds them, keeping your settings)"
        )
    elif not found.metrics:
        found.notes.append(
            "no metric could be read: declare `metrics:` in dvc.yaml and run the pipeline "
            "(`dvc repro`), then rerun `mlops-ci init` (it adds them, keeping your settings)"
        )
    found.echoed_params = _echoed_params(snap.params, found.metrics)
    requirements = project.root / "requirements.txt"
    if requirements.is_file():
        found.requirements = "requirements.txt"  # the workflows install it from the project
    found.working_directory = project.prefix or None
    found.dvc_remote_url = _default_remote_url(project.root)
    found.has_dvc_remote = found.dvc_remote_url is not None
    found.target_branch = _target_branch(Git(top))
    plot_files = {
        name: [name] if path_id else [f for k in ("y", "x") for f in _files_of(props.get(k))]
        for _, name, props, path_id in decl.plots
    }
    unreadable = unreadable_elsewhere(
        found.metrics_files, decl.uncached, set(reader.files), project.root
    )
    found.notes += [f"{path} {why}" for path, why in unreadable.items()]
    return Inspection(
        project, found, set(reader.files), outs, rows, params, rev, plot_files, unreadable
    )


NOT_IN_GIT = (
    "is declared `cache: false` and git ignores it: the baseline of a pull request cannot read "
    "it from a fresh clone (DVC reads such a file from git only), so every metric in it is "
    "unknown in CI. Commit it (take it out of .gitignore, `git add` it), or drop `cache: false` "
    "and `dvc push` it"
)


def unreadable_elsewhere(
    metrics_files: list[str], uncached: set[str], visible: set[str], root: Path
) -> dict[str, str]:
    """Metrics files a fresh clone cannot read at another revision: `cache: false` outputs
    in the workspace that git ignores. Cached outputs are read from the DVC remote."""
    return {
        path: NOT_IN_GIT
        for path in metrics_files
        if dvcfile.at_or_under(path, uncached)
        and (root / path).exists()
        and not any(dvcfile.at_or_under(f, [path]) for f in visible)
    }


def _inside(reader: RevisionFiles, out: str) -> list[str]:
    """An output and, for a directory in the workspace, the files DVC sees in it."""
    if not (reader.project.root / out).is_dir():
        return [out]
    return list(dict.fromkeys([out, *reader.expand(out)]))


def _files_of(fields: Any) -> list[str]:
    """The data files of a top-level plot's `x`/`y` mapping (a plain field name has none)."""
    return [str(f) for f in fields] if isinstance(fields, dict) else []


def _find_predictions(root: Path, found: adopt.Detected) -> None:
    """The first table a stage writes whose header has id, y_true and y_pred."""
    for path, stage in adopt.table_candidates(found.stages):
        columns = _columns(root / path)
        if columns is not None and adopt.is_predictions_header(columns):
            found.predictions, found.predictions_stage = path, stage
            return
        if columns is not None and {"y_true", "y_pred", "label", "prediction"} & set(columns):
            found.notes.append(
                f"{path} looks like predictions but lacks {', '.join(adopt.PREDICTION_COLUMNS)}"
                " columns; name them so to get confidence intervals (`predictions:`)"
            )


def _columns(path: Path) -> list[str] | None:
    """The column names of a CSV, JSON (records) or JSON Lines table; None if unreadable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAX_HEADER_BYTES)
    except OSError:
        return None
    text = head.decode("utf-8", "replace")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return [c.strip().strip('"') for c in text.splitlines()[0].split(",")] if text else None
        if suffix == ".jsonl":
            first = json.loads(text.splitlines()[0])
        else:
            data: Any = json.loads(path.read_bytes()) if len(head) < MAX_HEADER_BYTES else None
            first = data[0] if isinstance(data, list) and data else None
    except (ValueError, IndexError, OSError):
        return None
    return [str(k) for k in first] if isinstance(first, dict) else None


def _has_id_column(path: Path) -> bool:
    columns = _columns(path)
    return columns is not None and "id" in columns


def _default_remote_url(root: Path) -> str | None:
    """The default DVC remote's URL ("" when it has none); None without a default remote."""
    from mlops_ci.project.dvc import open_repo

    with open_repo(root) as repo:
        name = repo.config.get("core", {}).get("remote")
        if not name:
            return None
        return str(repo.config.get("remote", {}).get(name, {}).get("url") or "")


def _echoed_params(params: dict[str, dict[str, Any]], names: dict[str, Any]) -> dict[str, str]:
    """Policy metric names whose key and value equal a tracked param's (a training script
    that logs `alpha` beside its scores): a setting, not a quality of the model."""
    by_key: dict[str, tuple[str, Any]] = {}
    for flat in params.values():
        for key, value in flat.items():
            by_key.setdefault(key, (key, value))
            by_key.setdefault(key.rsplit(".", 1)[-1], (key, value))
    echoed = {}
    for name, value in names.items():
        param, param_value = by_key.get(name.rsplit(":", 1)[-1], (None, None))
        if param and param_value == value and not isinstance(value, bool):
            echoed[name] = param
    return echoed


def _target_branch(git: Git) -> str:
    """origin's default branch, else the branch checked out, else main."""
    head = git.out("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False)
    if head.startswith("refs/remotes/origin/"):
        return head.removeprefix("refs/remotes/origin/")
    current = git.current_branch()
    return current if current in ("main", "master", "trunk", "develop") else "main"


def detect_forge(repo_dir: Path) -> str:
    """The forge the origin names; a project that already has a `.gitlab-ci.yml` and an origin
    that names neither (a self-hosted GitLab, a local path) is a GitLab project."""
    url = Git(repo_dir).out("remote", "get-url", "origin", check=False)
    named = adopt.forge_from_remote(url)
    unnamed = named == "github" and "github" not in (url or "").lower()
    return "gitlab" if unnamed and (repo_dir / adopt.GITLAB_CI_FILE).is_file() else named


@dataclass
class InitResult:
    forge: str
    found: adopt.Detected
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files that exist with other content
    settings: Merged | None = None
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        found, merged = self.found, self.settings
        return {
            "forge": self.forge,
            "written": self.written,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "settings": {
                "kept": merged.kept if merged else [],
                "added": merged.added if merged else [],
                "set": merged.set if merged else [],
            },
            "detected": {
                "dvcfiles": found.dvcfiles,
                "stages": [s.name for s in found.stages],
                "metrics_files": found.metrics_files,
                "metrics": sorted(found.metrics),
                "plots": found.plots,
                "artifact": found.artifact.name if found.artifact else None,
                "model": found.model,
                "predictions": found.predictions,
                "test_data": found.test_data,
                "verify": found.verify,
                "dvc_remote": found.has_dvc_remote,
            },
            "next_steps": self.steps,
        }

    def summary(self) -> str:
        found, merged = self.found, self.settings
        lines = [
            f"pipeline: {len(found.stages)} stage(s) in {', '.join(found.dvcfiles)}",
            f"metrics:  {len(found.metrics)} in {', '.join(found.metrics_files) or '-'}",
            f"plots:    {len(found.plots)}",
            f"model:    {found.model or '-'}"
            + (f" (artifact {found.artifact.name})" if found.artifact else ""),
            f"predictions: {found.predictions or '-'}   test_data: {found.test_data or '-'}",
            "",
        ]
        if merged and (merged.kept or merged.set):
            lines.append(f"{adopt.SETTINGS_FILE}: yours, merged")
            lines += [f"  {verb} {', '.join(keys)}" for verb, keys in
                      (("kept ", merged.kept), ("set  ", merged.set), ("added", merged.added))
                      if keys]  # fmt: skip
            lines.append("")
        lines += [f"wrote     {path}" for path in self.written]
        lines += [f"unchanged {path}" for path in self.unchanged]
        lines += [f"kept      {path} (yours; --force rewrites it)" for path in self.kept]
        lines += ["", "next steps:"]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        return "\n".join(lines)


def run_init(
    repo_dir: Path,
    *,
    forge: str | None = None,
    force: bool = False,
    model: str | None = None,
    predictions: str | None = None,
    test_data: str | None = None,
) -> InitResult:
    """Detect, then merge `mlops-ci.yaml` (every key the user set is kept) and write the CI
    files that are missing. `model`, `predictions`, `test_data`: the user's choice, set in
    mlops-ci.yaml whatever it held. `force` rewrites CI files that differ from init's, except
    a `.gitlab-ci.yml` init did not write (the lines to add to it are printed instead)."""
    inspection = inspect_project(repo_dir)
    found, root = inspection.found, inspection.project.git_top
    forge = forge or detect_forge(root)
    if forge not in adopt.FORGES:
        raise ConfigError(f"--forge must be one of {', '.join(adopt.FORGES)}, not {forge!r}")
    explicit = {
        key: value
        for key, value in (("model", model), ("predictions", predictions), ("test_data", test_data))
        if value
    }
    settings_path = posixpath.join(inspection.project.prefix, adopt.SETTINGS_FILE)
    existing_path = root / settings_path
    existing = existing_path.read_text(encoding="utf-8") if existing_path.is_file() else ""
    _take_user_choices(found, existing, explicit)
    try:
        merged = merge_settings(existing, adopt.render_settings(found), explicit)
    except ValueError as exc:
        raise ConfigError(f"{settings_path}: {exc}; fix or remove it, then rerun init") from exc
    parse_settings(merged.text)  # a bug if it fails: the user's keys were valid or are kept
    result = InitResult(forge, found, settings=merged if existing else None)
    result.steps = adopt.next_steps(found, forge)
    planned: dict[str, str] = {settings_path: merged.text}
    planned.update(
        (path, text)
        for path, text in adopt.planned_files(found, forge).items()
        if path != adopt.SETTINGS_FILE
    )
    gitignore = root / ".gitignore"
    current = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else None
    planned[".gitignore"] = adopt.gitignore_text(current)
    for path, text in planned.items():
        target = root / path
        now = target.read_text(encoding="utf-8", errors="replace") if target.is_file() else None
        if now == text or (path == settings_path and now is not None and not merged.changed):
            result.unchanged.append(path)
            continue
        if now is not None and path not in (settings_path, ".gitignore"):
            if path == adopt.GITLAB_CI_FILE and not adopt_gitlab.written_by_init(now):
                result.kept.append(path)
                result.steps[:0] = adopt_gitlab.gitlab_include_steps(found, now)
                continue
            if not force:
                result.kept.append(path)
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        result.written.append(path)
    return result


def _take_user_choices(found: adopt.Detected, existing: str, explicit: dict[str, str]) -> None:
    """What the user chose (options first, then their mlops-ci.yaml) wins over detection: the
    workflows and next steps follow it (a `model:` they set gets the release workflow)."""
    try:
        current = yaml.safe_load(existing) if existing.strip() else None
    except yaml.YAMLError:
        current = None
    chosen = {**(current if isinstance(current, dict) else {}), **explicit}
    for key in ("model", "predictions", "test_data"):
        value = chosen.get(key)
        if isinstance(value, str) and value:
            if key == "model" and not found.model:
                found.notes = [n for n in found.notes if not n.startswith(adopt.NO_MODEL)]
            setattr(found, key, value)
