"""The diff of `mlops-ci compare`: the candidate's metrics, params and plots beside the baseline's.

Rows follow docs/documents.md. A metric whose delta has a bootstrap confidence interval is
improved/regressed only when the interval excludes zero; otherwise inconclusive.

`compare` takes the project, the resolved baseline and the settings and hands the document
back; it reads no environment and writes no file (commands/compare.py does both).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.compare.baseline import Baseline
from mlops_ci.compare.snapshot import Project, Snapshot, metric_names, take_snapshot
from mlops_ci.gate.policy import Policy, load_policy
from mlops_ci.project.dvc import RemoteFetcher
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git
from mlops_ci.project.settings import Settings

# Names that mean "lower is better" when mlops-ci.yaml does not say (documented in README).
LOWER_IS_BETTER = ("loss", "error", "rmse", "mae", "mse", "latency", "time", "duration")
# Below this, a numeric change is float noise from rounding, not a change.
_EPSILON = 1e-12


def default_direction(name: str) -> str:
    leaf = name.rsplit(":", 1)[-1].lower()
    return "lower" if any(word in leaf for word in LOWER_IS_BETTER) else "higher"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _display(value: Any) -> Any:
    """Numbers stay numbers; NaN, inf and other scalars become strings; JSON has no NaN."""
    if value is None or is_number(value):
        return value
    if isinstance(value, float):
        return str(value)
    if isinstance(value, bool):
        return value  # as DVC reports it
    return value if isinstance(value, str) else str(value)


def metric_rows(
    baseline: Snapshot, candidate: Snapshot, settings: Settings, cis: Mapping[str, Any]
) -> list[dict[str, Any]]:
    names = metric_names([baseline, candidate])
    # A metric named as a param is the param echoed into the metrics file (`alpha`): a change
    # of it is neither better nor worse unless the policy gives it a direction.
    echoed = {
        k.rsplit(".", 1)[-1] for s in (baseline, candidate) for p in s.params.values() for k in p
    }
    rows = []
    for (path, key), name in sorted(names.items(), key=lambda item: item[1]):
        base = baseline.metrics.get(path, {}).get(key)
        cand = candidate.metrics.get(path, {}).get(key)
        rule = settings.rule_for(name, key)
        direction = rule.direction if rule and rule.direction else None
        if direction is None and key.rsplit(".", 1)[-1] not in echoed:
            direction = default_direction(key)
        row: dict[str, Any] = {
            "name": name, "file": path, "key": key,
            "baseline": _display(base), "candidate": _display(cand),
            "delta": None, "rel_delta": None, "direction": direction,
            "ci_low": None, "ci_high": None, "ci_method": None,
        }  # fmt: skip
        if base is None and cand is None:
            continue
        # Unreadable is not absent: a file DVC declares but nobody can read is "unknown",
        # never "added"/"removed" (an added metric would slip past max_drop).
        if baseline.unreadable(path) or candidate.unreadable(path):
            row["status"] = "unknown"
        elif base is None:
            row["status"] = "added"
        elif cand is None:
            row["status"] = "removed"
        elif is_number(base) and is_number(cand):
            delta = float(cand) - float(base)
            row["delta"] = delta
            row["rel_delta"] = delta / abs(base) if base else None
            ci = cis.get(key.rsplit(".", 1)[-1])
            row["status"] = _numeric_status(delta, direction, ci)
            if ci is not None:
                row.update(ci_low=ci.low, ci_high=ci.high, ci_method=ci.method)
        else:
            row["status"] = "unchanged" if _display(base) == _display(cand) else "changed"
            # DVC gives booleans a `diff` as the numbers they are (true -> false: -1); they
            # stay changed/unchanged, never improved or regressed.
            row["delta"] = dvc_diff(base, cand)
        rows.append(row)
    return rows


def _numeric_status(delta: float, direction: str | None, ci: Any) -> str:
    if ci is not None:  # the interval decides (stats.DeltaCI knows each metric's direction)
        if ci.regressed():
            return "regressed"
        if ci.improved():
            return "improved"
        return "unchanged" if abs(delta) <= _EPSILON else "inconclusive"
    if abs(delta) <= _EPSILON:
        return "unchanged"
    if direction is None:  # an echoed param: a change, neither better nor worse
        return "changed"
    better = delta > 0 if direction == "higher" else delta < 0
    return "improved" if better else "regressed"


def dvc_diff(old: Any, new: Any) -> float | None:
    """DVC's `diff` of two values (dvc/utils/diff.py `_diff_vals`): given for any two ints or
    floats, booleans included; None where JSON could not carry it (NaN, infinity)."""
    if not all(isinstance(v, int | float) for v in (old, new)):
        return None
    delta = new - old
    return delta if math.isfinite(delta) else None


# A list param is shown, and compared, in the form DVC gives it: Python's str() of the list
# (dvc/utils/diff.py `format_dict`), so [1, 2] -> [1.0, 2.0] is a change, as DVC reports it.
# The document holds at most this much of it.
MAX_PARAM_TEXT = 512


def _param_value(value: Any) -> Any:
    """A param as DVC shows it: scalars keep their type, a list is its text; what JSON lacks
    becomes text."""
    if value is None or isinstance(value, bool | str) or is_number(value):
        return value
    if isinstance(value, list):
        text = str(value)
        return text if len(text) <= MAX_PARAM_TEXT else text[: MAX_PARAM_TEXT - 3] + "..."
    if isinstance(value, dict):
        return {str(k): _param_value(v) for k, v in value.items()}
    return str(value)


def params_changes(baseline: Snapshot, candidate: Snapshot) -> list[dict[str, Any]]:
    """What `dvc params diff` reports: a key missing and a key set to null are alike; lists
    compare by their text, as DVC compares them."""
    changes = []
    for path in sorted(set(baseline.params) | set(candidate.params)):
        old, new = baseline.params.get(path, {}), candidate.params.get(path, {})
        for key in sorted(set(old) | set(new)):
            before, after = old.get(key), new.get(key)
            if _dvc_form(before) == _dvc_form(after):
                continue
            change = "added" if before is None else "removed" if after is None else "changed"
            if baseline.unreadable(path) or candidate.unreadable(path):
                change = "unknown"  # unreadable is neither added nor removed
            row = {"name": key, "file": path, "baseline": _param_value(before),
                   "candidate": _param_value(after), "change": change}  # fmt: skip
            if (delta := dvc_diff(before, after)) is not None:
                row["diff"] = delta
            changes.append(row)
    return changes


def _dvc_form(value: Any) -> Any:
    return str(value) if isinstance(value, list) else value


IMAGES_DIR = "images"  # image plots of both revisions, in the run directory (never a public host)


def _image_files(
    pid: str,
    base: Mapping[str, Any] | None,
    cand: Mapping[str, Any] | None,
    images: dict[str, bytes],
) -> dict[str, str]:
    """The names under the run directory of an image plot of each revision; its bytes go into
    `images` (name -> bytes) for the command to write."""
    import re

    stem, ext = os.path.splitext(pid)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.")[:80] or "plot"
    saved = {}
    for side, entry in (("baseline", base), ("candidate", cand)):
        data = (entry or {}).get("bytes")
        if data is not None:
            name = f"{IMAGES_DIR}/{safe}.{side}{ext.lower()}"
            images[name] = data
            saved[f"{side}_file"] = name
    return saved


def plots(
    baseline: Snapshot, candidate: Snapshot, images: dict[str, bytes] | None = None
) -> list[dict[str, Any]]:
    """Every plot `dvc plots diff` shows, with its status between the revisions; image plots
    are compared by digest, and with `images` their bytes are collected there by file name."""
    out = []
    for pid in [*candidate.plots, *(p for p in baseline.plots if p not in candidate.plots)]:
        base, cand = baseline.plots.get(pid), candidate.plots.get(pid)
        either = cand or base or {}
        item: dict[str, Any] = {
            "id": pid, "title": either.get("title"), "template": either.get("template"),
            "kind": either.get("kind"),
        }  # fmt: skip
        if either.get("kind") == "image":
            old, new = (base or {}).get("digest"), (cand or {}).get("digest")
            item.update(baseline_digest=old, candidate_digest=new)
            if images is not None:
                item.update(_image_files(pid, base, cand, images))
        else:
            old, new = (base or {}).get("rows") or [], (cand or {}).get("rows") or []
            x = (cand or {}).get("x") or (base or {}).get("x")
            y = (cand or {}).get("y") or (base or {}).get("y")
            item.update(x=x, y=y, baseline=old, candidate=new)
            if fields := (cand or {}).get("y_fields") or (base or {}).get("y_fields"):
                item["y_fields"] = fields
        # A plot whose data could not be read at a revision is not added, removed or the same.
        item["status"] = (
            "unknown" if (base or {}).get("unreadable") or (cand or {}).get("unreadable")
            else "added" if base is None else "removed" if cand is None
            else "unchanged" if old == new else "changed"
        )  # fmt: skip
        out.append(item)
    return out


def baseline_policy(
    repo_dir: Path, baseline_sha: str | None, warnings: list[str], git: Git | None = None
) -> Policy | None:
    """The policy the gate will apply: directions and the predictions path come from it.
    None when it cannot be read: the gate reports that (exit 2); the comparison goes on."""
    try:
        return load_policy(repo_dir, baseline_sha, git)
    except ConfigError as exc:
        warnings.append(f"the baseline's policy is unreadable, using the working tree's: {exc}")
        return None


def _data(
    project: Project,
    baseline_sha: str | None,
    settings: Settings,
    local: Settings,
    fetch: RemoteFetcher,
    warnings: list[str],
    snapshots: tuple[Snapshot, Snapshot],
) -> dict[str, Any] | None:
    """The data section (compare/data.py): tables declared by the baseline's policy, plus those
    only this change declares (shown, not gated: rules come from the baseline). A failure here
    is recorded in the section, where a data rule that needs it fails closed."""
    from mlops_ci.compare.data import data_section

    try:
        section = data_section(
            project, baseline_sha, settings.data, extra_tables=local.data.tables, fetch=fetch,
            readers=(snapshots[0].files, snapshots[1].files), predictions=settings.predictions,
        )  # fmt: skip
    except Exception as exc:  # the metrics comparison must survive a data file it cannot read
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        warnings.append(f"the data section could not be computed: {reason}")
        return {"error": reason, "files": None, "tables": []}
    for table in (section or {}).get("tables") or []:
        for error in table["errors"]:
            warnings.append(
                f"data table {table['path']} at {error['revision'][:12]}: {error['message']}"
            )
    return section


@dataclass
class Comparison:
    """What `compare` hands back: the document, the baseline's policy it read (for the gate)
    and the image plots to save beside the document (name under the run directory -> bytes)."""

    document: dict[str, Any]
    policy: Policy | None
    images: dict[str, bytes] = field(default_factory=dict)


def compare(
    project: Project,
    baseline: Baseline,
    local: Settings,
    *,
    target_branch: str,
    branch: str | None,
    fetch: RemoteFetcher,
    run_dir: Path | None = None,
) -> Comparison:
    """Compare the workspace of `project` with the resolved `baseline`.

    `local` is the working tree's settings; the baseline's policy, when readable, decides the
    rest. `branch` is the candidate's branch; `fetch` reads what the DVC cache lacks from the
    remote. `run_dir` is only read: the stages of train.json and noise.json's repeats."""
    repo_dir, git = project.git_top, project.git
    target = target_branch
    warnings: list[str] = [baseline.note] if baseline.note else []
    policy = baseline_policy(repo_dir, baseline.sha, warnings, git)
    settings = policy.settings if policy else local
    cand = take_snapshot(project, None, predictions_path=settings.predictions, fetch=fetch)
    if baseline.sha:
        base = take_snapshot(
            project, baseline.sha, predictions_path=settings.predictions, fetch=fetch
        )
        if not base.has_lock:
            warnings.append(
                f"the baseline {baseline.sha[:12]} has no dvc.lock: it was never reproduced"
            )
    else:
        base = Snapshot(rev="none")
    warnings += [
        f"{path} is declared at the baseline but was never produced there (no dvc.lock entry)"
        for path in base.absent
    ]
    if baseline.sha and not base.metrics and cand.metrics and not base.errors:
        warnings.append("the baseline has no metrics: every metric is new")
    # Intervals that hold together, noise bands from the target branch, slices (decide.py).
    from mlops_ci.compare.decide import Judgement

    judgement = Judgement.of(git, target, baseline.sha, base, cand, settings, warnings, run_dir)
    train_doc = (
        documents.read(run_dir, "train.json", kind="train", required=False) if run_dir else None
    )
    data = _data(project, baseline.sha, settings, local, fetch, warnings, (base, cand))
    cis = judgement.intervals
    images: dict[str, bytes] = {}
    document = documents.header("comparison") | {
        "created_at": documents.now(),
        "artifact": settings.artifact,
        "target_branch": target,
        "confidence": settings.confidence,
        "baseline": baseline.to_dict(),
        "candidate": {
            "ref": "workspace",
            "sha": git.head_sha(),
            "branch": branch,
            "dirty": git.is_dirty(),
        },
        "metrics": judgement.decide(metric_rows(base, cand, settings, cis)),
        "params": params_changes(base, cand),
        "plots": plots(base, cand, images),
        "stages": train_doc["stages"] if train_doc else [],
        "policy_change": policy.change() if policy else {"changed": False, "diff": ""},
        "errors": base.errors + cand.errors,
        "warnings": warnings,
        **judgement.document(),
        "data": data,
    }
    return Comparison(document, policy, images)
