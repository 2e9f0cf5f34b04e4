"""The retrain run's claims, checked on the trusted side before anything is pushed.

`retrain --reproduce-only` runs the repository's stages without a token and uploads
`retrain.json` and `retrain.bundle`. Whatever ran there could have written both, so the
publishing half believes neither about what to push: it takes only *file contents* from the
bundle, and only for paths it can vouch for itself:

- the base is the target branch's tip that the trusted job fetched, whatever `retrain.json`
  says; a run made on another base is refused (rerun it);
- the change is the difference between that base and the bundle's tree, and it must be exactly
  the `changed_files` the run reported;
- every changed path is a `dvc.lock`, a `.dvc` file, a params file the base's `dvc.yaml` files
  declare, or a git-tracked output of theirs (`cache: false` metrics, plots, outs); and every
  such output's new bytes are what the new `dvc.lock` records for it (its md5): DVC's record
  of what changed;
- every new file is a regular, non-executable file (no symlink, no submodule).

The commit itself (tree, author, message, parent) is made by the trusted side from the checked
contents (`commands/retrain.py`); the bundle's commit object is never pushed.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci.untrusted.inventory import entry_point
from mlops_ci.ci.untrusted.text import inert_line
from mlops_ci.project.dvcfile import (
    DEFAULT_PARAMS_FILE,
    Declarations,
    at_or_under,
    declare,
    load_pipeline_yaml,
    lock_entries,
    stage_paths,
    stage_wdirs,
)
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git

MAX_BUNDLE = 512 * 1024 * 1024  # git-tracked outputs only: DVC's data never travels in git
REGULAR = "100644"
DELETED = "000000"
FETCHED_REF = "refs/mlops-ci/retrain"
_CONTROL_IN_PATH = re.compile(r"[\x00-\x1f\x7f]")


class RetrainRefused(ConfigError):
    """The retrain run's change is not one the trusted side can vouch for: nothing is pushed."""


@dataclass(frozen=True)
class FileChange:
    path: str
    mode: str  # REGULAR, or DELETED
    blob: str | None  # the new content's object id (None when deleted)


@dataclass
class RetrainChange:
    """A change the trusted side checked: its base and the files to commit on it."""

    base_sha: str
    files: list[FileChange] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


def _say(path: str) -> str:
    return inert_line(path, 200)


@entry_point("retrain.json and retrain.bundle from the reproduce job")
def check_retrain_change(
    git: Git, run_dir: Path, doc: dict[str, Any], *, base_sha: str, branch: str
) -> RetrainChange:
    """The files of the bundle's change that may go on `base_sha` (the target branch's tip the
    trusted job fetched); RetrainRefused naming what is wrong otherwise. `doc` is retrain.json,
    already schema-checked (`run_dir.read_document`)."""
    if doc.get("base_sha") != base_sha:
        raise RetrainRefused(
            f"retrain.json was made on {inert_line(str(doc.get('base_sha')), 13)}, but the target branch's "
            f"tip is {base_sha[:12]}: nothing pushed. Rerun `mlops-ci retrain` on the tip"
        )
    fetched = _fetch_bundle(git, run_dir / "retrain.bundle", branch)
    diff = _tree_diff(git, base_sha, fetched)
    claimed = {str(p) for p in doc.get("changed_files") or []}
    found = {c.path for c in diff}
    if claimed != found:
        extra, missing = sorted(found - claimed), sorted(claimed - found)
        raise RetrainRefused(
            "the bundle's change differs from the files retrain.json reports"
            + (f"; not reported: {', '.join(_say(p) for p in extra[:10])}" if extra else "")
            + (f"; reported but unchanged: {', '.join(_say(p) for p in missing[:10])}" if missing else "")
            + ". Nothing pushed"
        )  # fmt: skip
    odd_names = [c.path for c in diff if _CONTROL_IN_PATH.search(c.path)]
    if odd_names:
        raise RetrainRefused(
            f"{', '.join(_say(p) for p in odd_names[:10])}: a path with a control character "
            "or line break is no file DVC writes. Nothing pushed"
        )
    allowed = _retrain_paths(git, base_sha)
    refused = [c.path for c in diff if not allowed.allows(c.path)]
    if refused:
        raise RetrainRefused(
            f"the retrain change touches {', '.join(_say(p) for p in refused[:10])}, which is no "
            "dvc.lock, .dvc file, declared params file or git-tracked output of the target "
            "branch's dvc.yaml. Nothing pushed"
        )
    odd = [c.path for c in diff if c.mode not in (REGULAR, DELETED)]
    if odd:
        raise RetrainRefused(
            f"{', '.join(_say(p) for p in odd[:10])} would not be a regular file (a symlink, "
            "an executable or a submodule). Nothing pushed"
        )
    _check_recorded(git, fetched, diff, allowed)
    return RetrainChange(base_sha, diff)


def _fetch_bundle(git: Git, bundle: Path, branch: str) -> str:
    try:
        info = os.lstat(bundle)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"retrain.json reports a change but {bundle} is missing; upload the run directory "
            "of `mlops-ci retrain --reproduce-only` whole"
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise RetrainRefused(f"{bundle} is not a regular file (symlinks are refused)")
    if info.st_size > MAX_BUNDLE:
        raise RetrainRefused(f"{bundle} is {info.st_size:,} bytes, over {MAX_BUNDLE:,}")
    proc = git.run("bundle", "verify", "--quiet", str(bundle), check=False)
    if proc.returncode != 0:
        raise ConfigError(
            f"{bundle} is not a git bundle this clone can read: {proc.stderr.strip()}"
        )
    got = git.run(
        "fetch", "--quiet", "--no-tags", str(bundle), f"+refs/heads/{branch}:{FETCHED_REF}",
        check=False,
    )  # fmt: skip
    if got.returncode != 0:
        raise RetrainRefused(f"{bundle} holds no branch {branch}: {got.stderr.strip()[:300]}")
    return git.out("rev-parse", FETCHED_REF)


def _tree_diff(git: Git, base: str, commit: str) -> list[FileChange]:
    """Every file that differs between the two commits' trees (whatever the commit's history)."""
    out = git.run("diff-tree", "-r", "-z", "--no-renames", base, commit).stdout
    fields = out.split("\0")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(":"):
            continue
        _old_mode, new_mode, _old, new, _status = meta[1:].split(" ")
        blob = None if new_mode == DELETED else new
        changes.append(FileChange(path, new_mode, blob))
    return changes


@dataclass
class _RetrainPaths:
    params: set[str]
    outputs: set[str]  # git-tracked at the base: files or directories
    locks: dict[str, dict[str, str]]  # dvc.lock path -> the stage wdirs of its dvc.yaml

    def allows(self, path: str) -> bool:
        name = posixpath.basename(path)
        if name == "dvc.lock" or (name.endswith(".dvc") and name != ".dvc"):
            return not path.startswith(".dvc/")
        return path in self.params or self.is_output(path)

    def is_output(self, path: str) -> bool:
        return at_or_under(path, self.outputs)


def _retrain_paths(git: Git, base: str) -> _RetrainPaths:
    """What the base's (trusted) `dvc.yaml` files declare: params files and stage outputs."""
    files = git.list_files(base)
    tracked = set(files)
    decl = Declarations()
    outputs: set[str] = set()
    locks: dict[str, dict[str, str]] = {}
    for dvcfile in (p for p in files if posixpath.basename(p) == "dvc.yaml"):
        data = load_pipeline_yaml(git.show(base, dvcfile) or b"", dvcfile)
        declare(decl, dvcfile, data)
        for stage in stage_paths(data, dvcfile):
            outputs.update(stage.outs)
        locks[posixpath.join(posixpath.dirname(dvcfile), "dvc.lock")] = stage_wdirs(data, dvcfile)
    outputs.update(decl.metrics)
    params = set(decl.params)
    if DEFAULT_PARAMS_FILE in tracked:
        params.add(DEFAULT_PARAMS_FILE)
    # Git-tracked outputs only: a cached output lives in DVC's cache, never in the change.
    git_outputs = {o for o in outputs if o in tracked or any(at_or_under(t, [o]) for t in tracked)}
    return _RetrainPaths(params, git_outputs, locks)


def _check_recorded(git: Git, commit: str, diff: list[FileChange], paths: _RetrainPaths) -> None:
    """Each changed output's new bytes have the md5 the new `dvc.lock` records for it."""
    recorded: dict[str, str] = {}
    for lock, wdirs in paths.locks.items():
        text = git.show(commit, lock)
        for entry in lock_entries(text, posixpath.dirname(lock), wdirs):
            if entry.role == "out" and entry.md5:
                recorded[entry.path] = entry.md5
    for change in diff:
        if not paths.is_output(change.path) or change.path in paths.params:
            continue
        if change.blob is None:
            raise RetrainRefused(f"the retrain change deletes {_say(change.path)}. Nothing pushed")
        data = git.show(commit, change.path) or b""
        if recorded.get(change.path) != hashlib.md5(data).hexdigest():  # noqa: S324 - DVC's
            raise RetrainRefused(
                f"{_say(change.path)} in the bundle is not what the new dvc.lock records for it "
                "(md5 differs or it is not recorded). Nothing pushed"
            )
