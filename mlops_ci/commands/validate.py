"""`mlops-ci validate`: check `mlops-ci.yaml` against its schema and against the repository.

The schema catches wrong keys, types and ranges; the repository checks catch the typos that
would otherwise surface only at gate or deploy time: a rule for a metric no metrics file has,
a model or predictions file no stage writes, test rows that do not exist, a sweep over a
param no params file holds.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_ci.commands.init import Inspection, inspect_project
from mlops_ci.init import adopt
from mlops_ci.project.dvcfile import at_or_under
from mlops_ci.project.errors import EXIT_BAD_INPUT, EXIT_OK, ConfigError
from mlops_ci.project.settings import (
    SETTINGS_FILE,
    Settings,
    load_yaml,
    metric_aliases,
    parse_settings,
    read_settings_text,
    schema_problems,
    without_schema_errors,
)


@dataclass
class ValidateResult:
    source: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_BAD_INPUT if self.problems else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "valid": not self.problems,
            "problems": self.problems,
            "warnings": self.warnings,
            "checked": self.checked,
        }

    def summary(self) -> str:
        lines = [f"error: {p}" for p in self.problems]
        lines += [f"warning: {w}" for w in self.warnings]
        verdict = "invalid" if self.problems else "valid"
        lines.append(f"{self.source}: {verdict} (checked: {', '.join(self.checked) or 'nothing'})")
        return "\n".join(lines)


def run_validate(repo_dir: Path) -> ValidateResult:
    """Every problem of the working tree's `mlops-ci.yaml`, not only the first."""
    inspection = inspect_project(repo_dir)
    path = inspection.project.root / SETTINGS_FILE
    source = SETTINGS_FILE
    result = ValidateResult(source)
    try:
        text = read_settings_text(path, source)
        if text is None:
            raise ConfigError(f"{source} does not exist; write one with `mlops-ci init`")
        data = load_yaml(text, source)
    except ConfigError as exc:
        result.problems.append(str(exc))
        return result
    result.problems += schema_problems(data, source)
    result.checked.append("schema")
    try:
        settings = parse_settings(text, source)
    except ConfigError as exc:
        if str(exc) not in result.problems:
            result.problems.append(str(exc))
        # The repository checks still run on the keys that are right.
        try:
            rest = yaml.safe_dump(without_schema_errors(data), sort_keys=False)
            settings = parse_settings(rest, source)
        except (ConfigError, yaml.YAMLError):
            return result
    for check in (_metrics, _files, _test_data, _artifact, _sweep, _stages, _plots, _readable):
        check(settings, inspection, result)
    return result


def _suggest(name: str, known: list[str]) -> str:
    """The closest known name, case aside first (`R2` -> `r2`)."""
    folded = {k.casefold(): k for k in reversed(known)}
    close = [folded[name.casefold()]] if name.casefold() in folded else []
    close = close or difflib.get_close_matches(name.casefold(), list(folded), n=1)
    if close and close[0] in folded:
        close = [folded[close[0]]]
    return f"; did you mean {close[0]!r}?" if close else ""


def _metrics(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    names = [n for n in settings.metrics]
    if settings.sweep.rank_by:
        names.append(settings.sweep.rank_by)
    rows = inspection.metric_rows
    if not names and (rows or not inspection.found.metrics_files):
        return
    if not rows:
        declared = ", ".join(inspection.found.metrics_files)
        result.warnings.append(
            "metric names were not checked: no metrics file could be read"
            + (
                f" ({declared} are declared but not in the workspace: `dvc pull` them, or "
                "`dvc repro`)"
                if declared
                else " (run the pipeline)"
            )
        )
        return
    result.checked.append("metrics")
    known = {alias for name, key in rows for alias in metric_aliases(name, key)}
    files = ", ".join(inspection.found.metrics_files) or "the metrics files"
    where = "the workspace" if inspection.metrics_rev is None else inspection.metrics_rev
    for name in settings.metrics:
        if name not in known:
            result.problems.append(
                f"{settings.source}: metrics.{name} names no metric of {files} (read at {where})"
                + _suggest(name, sorted(known))
            )
    rank_by = settings.sweep.rank_by
    if rank_by and rank_by not in known:
        result.problems.append(
            f"{settings.source}: sweep.rank_by {rank_by!r} names no metric of {files}"
            + _suggest(rank_by, sorted(known))
        )


def _files(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    """`model` and `predictions` must be DVC outputs (the pipeline writes them)."""
    outs = inspection.outs
    for key in ("model", "predictions"):
        path = getattr(settings, key)
        if not path:
            continue
        result.checked.append(key)
        if path in outs:
            continue
        inside = [o for o in outs if at_or_under(path, [o])]
        if inside and not (inspection.project.root / inside[0]).is_dir():
            result.warnings.append(
                f"{settings.source}: {key} {path} was not checked: its directory output "
                f"{inside[0]} is not in the workspace (`dvc pull` or `dvc repro` first)"
            )
            continue
        if inspection.exists(path):
            result.warnings.append(
                f"{settings.source}: {key} {path} is not a DVC output (no stage or .dvc file "
                "records it), so the registry cannot trace it to a pipeline run"
            )
            continue
        result.problems.append(
            f"{settings.source}: {key} {path} is neither a DVC output nor a file of the "
            "repository" + _suggest(path, sorted(outs))
        )


def _test_data(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    path = settings.test_data
    verify = settings.deploy.verify
    if not path:
        if verify == "predictions":
            guess = adopt.find_test_data(
                inspection.found.stages, inspection.found.predictions_stage
            )
            hint = (
                f"set `test_data: {guess}` (the pipeline's test split)"
                if guess
                else (
                    "set `test_data:` to a CSV with an `id` column and the model's features, or "
                    "`deploy.verify: checksums` for a model without a tabular test set"
                )
            )
            result.problems.append(
                f"{settings.source}: test_data is required when deploy.verify is predictions; "
                + hint
            )
        return
    result.checked.append("test_data")
    if path in inspection.outs or inspection.exists(path):
        return
    inside = [o for o in inspection.outs if at_or_under(path, [o])]
    if inside and not (inspection.project.root / inside[0]).is_dir():
        # A file in a directory output that is not in the workspace (not pulled, not run).
        result.warnings.append(
            f"{settings.source}: test_data {path} was not checked: its directory output "
            f"{inside[0]} is not in the workspace (`dvc pull` or `dvc repro` first)"
        )
        return
    result.problems.append(
        f"{settings.source}: test_data {path} does not exist and no stage writes it"
        + _suggest(path, sorted([*inspection.outs, *inspection.files]))
    )


def _artifact(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    declared = [a.name for a in inspection.found.artifacts]
    if declared and settings.artifact not in declared:
        result.warnings.append(
            f"{settings.source}: artifact {settings.artifact!r} is not among the `artifacts:` "
            f"of dvc.yaml ({', '.join(declared)})" + _suggest(settings.artifact, declared)
        )


def _sweep(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    keys = [*settings.sweep.grid, *(k for c in settings.sweep.candidates for k in c)]
    if not keys:
        return
    result.checked.append("sweep params")
    known = {key for flat in inspection.params.values() for key in flat}
    for key in dict.fromkeys(keys):
        file, _, name = key.rpartition(":")
        in_file = inspection.params.get(file) if file else None
        if (in_file is not None and name in in_file) or (not file and name in known):
            continue
        result.problems.append(
            f"{settings.source}: sweep param {key!r} is in no params file the pipeline tracks"
            + _suggest(name, sorted(known))
        )


def _stages(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    """A registry stage named as the baseline (`stage:NAME`) must be one of promote.stages."""
    if not settings.baseline.startswith("stage:"):
        return
    result.checked.append("stages")
    stage = settings.baseline.removeprefix("stage:")
    if stage not in settings.promote.stages:
        result.problems.append(
            f"{settings.source}: baseline {settings.baseline!r} names a stage that is not in "
            f"promote.stages ({', '.join(settings.promote.stages)})"
            + _suggest(stage, list(settings.promote.stages))
        )


def _plots(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    """Every plot of dvc.yaml reads files a stage writes or the repository has: a typo there
    shows only as an empty plot in the report."""
    if not inspection.plot_files:
        return
    result.checked.append("plots")
    outs = list(inspection.outs)
    for plot, files in inspection.plot_files.items():
        for path in files:
            inside = at_or_under(path, outs)
            holds = any(at_or_under(o, [path]) for o in outs)
            if inside or holds or inspection.exists(path):
                continue
            result.problems.append(
                f"dvc.yaml: plot {plot!r} reads {path}, which no stage writes and the "
                "repository does not have" + _suggest(path, sorted(outs))
            )


def _readable(settings: Settings, inspection: Inspection, result: ValidateResult) -> None:
    """Every metrics file must be readable at the baseline from a fresh clone (CI's), or the
    gate sees unknown metrics there while a local run reads DVC's caches."""
    del settings
    result.checked.append("readable in CI")
    for path, why in inspection.unreadable_elsewhere.items():
        result.problems.append(f"dvc.yaml: metrics file {path} {why}")
