"""DVC's own functional scenarios for `metrics/params/plots diff` and `show` as the oracle.

The situations DVC's tests set up (tests/func/metrics, tests/func/params, tests/func/plots in
DVC's repository) are rebuilt from a table (`tests/dvc_scenarios.py`): a real git repository
whose baseline commit is tagged `scenario-baseline`, then changes left in the workspace (or
committed). Each is run through DVC, in-process through its own CLI entry point (`dvc metrics
diff TAG --all --json`, `dvc params diff TAG --all --json`, `dvc plots diff TAG --json`) and
its API for what the CLI only sums up as "failed to load some ..." (`repo.metrics.diff` and
`repo.params.diff` name the revision and file), and through `mlops-ci compare --baseline TAG`.
The answers are compared key by key:

- metrics: every (file, key) with its old and new value, as `as_pairs` normalises them, and
  `delta` against DVC's `diff`;
- a metric's status: `unknown` exactly where DVC could not load its file at either revision
  (a file the baseline neither has nor records is absent there, not unreadable), else
  added/removed where DVC has no old/new value, else none of those three;
- params: every (file, name) DVC reports changed, with old and new value and `diff`;
- plots: the ids DVC renders; for each Vega plot, the points (revision, y field, x, y) of
  every y field;
- errors: every file (or revision) DVC could not read is named in comparison.json's errors.

A scenario on which mlops-ci differs on purpose is listed in `DIFFERENCES` with the reason
(README's "What is read" says it too), and the test holds that it still differs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.compare.test_dvc_oracle import as_pairs, differences
from tests.dvc_scenarios import SCENARIOS, Scenario

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

BASE = "scenario-baseline"  # a tag; `base` means the target branch to compare
_GIT_IDENTITY = ["-c", "user.name=scenarios", "-c", "user.email=scenarios@example.invalid"]


@contextlib.contextmanager
def _inside(path: Path) -> Iterator[None]:
    cwd = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *_GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True)


def _write(root: Path, files: Mapping[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        path = root / rel
        if content is None:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _dvc(project: Path, *args: str) -> tuple[int, str]:
    """DVC's CLI, in-process (a `dvc` process costs a second of imports per call)."""
    from dvc.cli import main as dvc_main

    out = io.StringIO()
    # DVC_TEST, as DVC's own tests run its CLI: without it `--json` output goes through
    # colorama's deinit, which puts back the stdout colorama first saw.
    env = contextlib.ExitStack()
    if "DVC_TEST" not in os.environ:
        os.environ["DVC_TEST"] = "1"
        env.callback(os.environ.pop, "DVC_TEST", None)
    with env, _inside(project), contextlib.redirect_stdout(out):
        code = dvc_main(["-q", *args] if args[0] not in {"metrics", "params", "plots"} else args)
    return code, out.getvalue()


def _dvc_json(project: Path, *args: str) -> Any:
    """DVC's `--json` answer; None when the command fails outright (DVC exits 255)."""
    code, out = _dvc(project, *args, "--json")
    return json.loads(out or "{}") if code == 0 else None


def build(scenario: Scenario, base: Path) -> Path:
    """The baseline committed (and tagged `base`), then the candidate's changes."""
    repo = base / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _write(repo, scenario.base)
    if scenario.init:
        _dvc(repo, "init")
    for step in scenario.base_steps:
        code, _ = _dvc(repo, *step)
        assert code == 0, f"dvc {step} failed at the baseline"
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "baseline", "--allow-empty")
    _git(repo, "tag", BASE)
    _write(repo, scenario.work)
    for step in scenario.work_steps:
        code, _ = _dvc(repo, *step)
        assert code == 0, f"dvc {step} failed at the candidate"
    for rel in scenario.remove_after:
        _write(repo, {rel: None})
    if scenario.commit:
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "candidate")
    return repo


def _dvc_errors(project: Path, kind: str) -> dict[str, dict[str, str]]:
    """rev -> file -> error type DVC met reading metrics or params (the API's `errors`,
    which the CLI only sums up as "failed to load some ...")."""
    from dvc.repo import Repo

    try:
        with _inside(project), Repo(str(project)) as repo:
            result = getattr(repo, kind).diff(a_rev=BASE, all=True)
    except Exception as exc:  # DVC stops outright (a duplicated key): no revision read
        return {"*": {"": type(exc).__name__}}
    errors: dict[str, dict[str, str]] = {}
    for rev, per_rev in (result.get("errors") or {}).items():
        if isinstance(per_rev, Exception):
            errors[rev] = {"": type(per_rev).__name__}
        else:
            errors[rev] = {str(f): type(e).__name__ for f, e in per_rev.items()}
    return errors


def observe(scenario: Scenario, base: Path) -> dict[str, Any]:
    from mlops_ci.cli import main

    project = build(scenario, base)
    run_dir = base / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["compare", "-C", str(project), "--run-dir", str(run_dir), "--baseline", BASE])
    doc_path = run_dir / "comparison.json"
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", BASE], cwd=project, capture_output=True, text=True
    ).stdout.split()
    records = "".join(
        subprocess.run(["git", "show", f"{BASE}:{p}"], cwd=project, capture_output=True,
                       text=True).stdout
        for p in listed if p.endswith((".dvc", "dvc.lock"))
    )  # fmt: skip
    return {
        "compare_exit": code,
        "doc": json.loads(doc_path.read_text()) if code == 0 and doc_path.exists() else None,
        "baseline_files": listed,
        "baseline_records": records,
        "metrics": _dvc_json(project, "metrics", "diff", BASE, "--all"),
        "metrics_errors": _dvc_errors(project, "metrics"),
        "params": _dvc_json(project, "params", "diff", BASE, "--all"),
        "params_errors": _dvc_errors(project, "params"),
        "plots": _dvc_json(project, "plots", "diff", BASE, "-o", str(base / "dvc_plots")),
    }


# --- what each side says ----------------------------------------------------------------------


def _unreadable(seen: Mapping[str, Any], kind: str) -> set[tuple[str, str]]:
    """(revision, file) DVC could not read ("" for the whole revision). A file the baseline
    neither has in git nor records in a `dvc.lock`/`.dvc` file is absent there, not unreadable
    (DVC says FileNotFoundError for both)."""
    found = set()
    for rev, files in seen[f"{kind}_errors"].items():
        for file, error in files.items():
            never = file not in seen["baseline_files"] and file not in seen["baseline_records"]
            if not (rev == BASE and error == "FileNotFoundError" and never):
                found.add((rev, file))
    return found


def _covers(error_file: str, file: str) -> bool:
    return error_file in ("", file) or file.startswith(error_file + "/")


def _changed(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What `dvc params diff` without `--all` prints: DVC drops pairs whose values are equal."""
    return {
        f: kept
        for f, keys in entries.items()
        if (kept := {k: v for k, v in keys.items() if v["old"] != v["new"]})
    }


def check(seen: Mapping[str, Any]) -> list[str]:
    """Every way mlops-ci's answer differs from DVC's for one scenario."""
    doc = seen["doc"]
    if doc is None:
        return [f"compare exited {seen['compare_exit']}"]
    found: list[str] = []
    errors = {(e["revision"], e["file"]) for e in doc["errors"]}
    ours_err = {file for _rev, file in errors}
    for kind in ("metrics", "params"):
        unreadable = _unreadable(seen, kind)
        for rev, file in unreadable:  # every file DVC could not read is named
            if file and not any(_covers(e, file) for e in ours_err):
                found.append(f"errors: DVC could not read {kind} {file} at {rev}: {ours_err}")
            if not file and not errors:
                found.append(f"errors: DVC could not read the {kind} of {rev}; compare has none")
        if seen[kind] is None:  # DVC failed outright: nothing read may look read
            rows = doc["metrics"] if kind == "metrics" else doc["params"]
            if kind == "metrics" and any(r["status"] != "unknown" for r in rows):
                found.append(f"metrics: DVC failed outright; compare's rows {rows}")
            continue
        key = "key" if kind == "metrics" else "name"
        rows = {(r["file"], r[key]): r for r in doc[kind]}
        dvc = seen[kind] if kind == "metrics" else _changed(seen[kind])
        ours = (
            doc[kind] if kind == "metrics" else [r for r in doc[kind] if r["change"] != "unchanged"]
        )
        found += [f"{kind} {d}" for d in differences(as_pairs(ours), as_pairs(dvc))]
        for file, keys in dvc.items():
            for name, entry in keys.items():
                row = rows.get((file, name))
                if row is None:
                    continue
                ours_diff = row.get("delta" if kind == "metrics" else "diff")
                if "diff" in entry and not _same_number(ours_diff, entry["diff"]):
                    found.append(f"{kind} {file}: {name}: diff {ours_diff} != DVC {entry['diff']}")
                if kind != "metrics":
                    continue
                bad = any(_covers(f, file) for _rev, f in unreadable)
                expected = (
                    "unknown" if bad else "added" if entry["old"] is None
                    else "removed" if entry["new"] is None else None
                )  # fmt: skip
                status = row["status"]
                if status != expected and (expected or status in {"unknown", "added", "removed"}):
                    found.append(f"metrics {file}: {name}: status {status}, DVC read {entry}")
    # Plots: ids, points, and the revisions DVC could not read.
    plots = seen["plots"] or {}
    dvc_plots = plots.get("data", {})
    items = {item["id"]: item for item in doc["plots"]}
    if set(items) != set(dvc_plots):
        found.append(f"plots: ids {sorted(items)} != DVC {sorted(dvc_plots)}")
    for pid in set(items) & set(dvc_plots):
        found += [f"plots {pid}: {d}" for d in plot_points_differ(items[pid], dvc_plots[pid])]
    plot_errors = {
        (e["rev"], e.get("source") or "")
        for e in plots.get("errors", [])
        if not (e["rev"] == BASE and e.get("type") == "FileNotFoundError"
                and (e.get("source") or "") not in seen["baseline_files"])
    }  # fmt: skip
    ours_revs = {"workspace" if rev == "workspace" else BASE for rev, _file in errors}
    for rev, file in plot_errors:
        if rev not in ours_revs or (file and not any(_covers(e, file) for e in ours_err)):
            found.append(f"plots: DVC could not read {file or 'plots'} at {rev}; ours: {errors}")
    return found


def _same_number(ours: Any, dvc: Any) -> bool:
    if ours is None or isinstance(ours, str):
        return False
    return abs(float(ours) - float(dvc)) <= 1e-9 * max(1.0, abs(float(dvc)))


def _num(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def plot_points_differ(item: Mapping[str, Any], renders: list[Mapping[str, Any]]) -> list[str]:
    """DVC's Vega points (revision, y field, x, y) against compare's rows, for line plots."""
    if item.get("kind") == "image" or str(item.get("template")).startswith("confusion"):
        return []
    ys = str(item.get("y_fields") or item.get("y")).split(", ")
    dvc: set[tuple] = set()
    for render in renders:
        content = render.get("content") or {}
        x = (content.get("encoding") or {}).get("x", {}).get("field")
        values = (content.get("data") or {}).get("values")
        if render.get("type") != "vega" or not x or not isinstance(values, list):
            continue
        for row in values:
            # Several y fields: DVC adds `field` and `dvc_inferred_y_value`; one: the row's own.
            field = row.get("field", item.get("y"))
            value = row.get("dvc_inferred_y_value", row.get(str(field)))
            dvc.add((row.get("rev"), str(field), _num(row.get(x)), _num(value)))
    if not dvc:
        return []
    ours = {
        (rev, field, _num(row.get(item["x"])), _num(row.get(field)))
        for rev, side in ((BASE, "baseline"), ("workspace", "candidate"))
        for row in item.get(side) or []
        for field in ys
    }
    found = []
    if {p[1] for p in dvc} != set(ys):
        found.append(f"y fields {ys}, DVC draws {sorted({p[1] for p in dvc})}")
    if ours != dvc:
        found.append(f"points only compare: {sorted(ours - dvc)}; only DVC: {sorted(dvc - ours)}")
    return found


# Scenarios on which mlops-ci differs from DVC on purpose: why (README's "What is read").
DIFFERENCES: dict[str, str] = {
    "metrics-nan-and-inf": "a delta that is NaN or infinite is null: JSON has neither, and a "
    "number the gate cannot judge must not look like one",
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_agrees_with_dvc(name: str, tmp_path: Path) -> None:
    found = check(observe(SCENARIOS[name], tmp_path))
    if name in DIFFERENCES:
        assert found, f"{name} now agrees with DVC: drop it from DIFFERENCES ({DIFFERENCES[name]})"
    else:
        assert not found, f"{name} differs from DVC:\n" + "\n".join(found)


def test_the_table_covers_metrics_params_and_plots() -> None:
    kinds = {name.split("-")[0] for name in SCENARIOS}
    assert kinds == {"metrics", "params", "plots"} and len(SCENARIOS) >= 75


def test_an_empty_repository_is_an_error_where_dvc_shows_nothing(tmp_path: Path) -> None:
    """No commit at all: `dvc metrics diff` prints `{}`; compare has no baseline to gate
    against and says so (exit 2), on purpose."""
    from mlops_ci.cli import main

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _dvc(repo, "init")
    _write(repo, {"dvc.yaml": "metrics: [m.json]\n", "m.json": '{"acc": 0.5}'})
    assert _dvc_json(repo, "metrics", "diff", "HEAD") == {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["compare", "-C", str(repo), "--run-dir", str(tmp_path / "run")])
    assert code == 2


def test_names_are_the_projects_whatever_the_working_directory(tmp_path: Path) -> None:
    """DVC names files relative to the directory it runs in; comparison.json names them from
    the DVC project's root, so a policy and a report read the same names wherever CI runs."""
    from mlops_ci.cli import main

    scenario = SCENARIOS["metrics-top-level-in-subdir"]
    project = build(scenario, tmp_path)
    dvc = _dvc_json(project / "dir", "metrics", "diff", BASE)
    assert set(dvc) == {"my_metrics.yaml"}
    with _inside(project / "dir"), contextlib.redirect_stdout(io.StringIO()):
        assert main(["compare", "--run-dir", str(tmp_path / "run"), "--baseline", BASE]) == 0
    doc = json.loads((tmp_path / "run" / "comparison.json").read_text())
    assert {r["file"] for r in doc["metrics"]} == {"dir/my_metrics.yaml"}
