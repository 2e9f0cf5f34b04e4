"""DVC is the oracle: `mlops-ci compare` must read every layout the way DVC's own CLI does.

For each project in `tests/dvc_layouts.py` (a real git repo, `dvc repro` on `main` and on the
branch `candidate`), run at the candidate's workspace, from the DVC project root:

    mlops-ci compare --baseline main --json -C <project>
    dvc metrics diff main --all --json     {file: {key: {"old", "new", "diff"?}}}
    dvc params diff main --json            {file: {key: {"old", "new", "diff"?}}}
    dvc plots diff main --json             {"data": {id: [{"type": "vega"|"image", ...}]},
                                            "errors"?: [{"rev", "type", "msg", ...}]}

and compare these fields of comparison.json, key by key:

- `metrics[]`: `file` and `key` (DVC's path from the project root and its dotted key) with
  `baseline` and `candidate` against DVC's `old` and `new`, for every pair DVC reports
  (unchanged ones too) and no other pair; and `status`: `unknown` where DVC could not read the
  file at that revision, `added` where DVC has no old value, `removed` where it has no new one,
  none of those three where it has both.
- `params[]` whose `change` is added/removed/changed: `file`, `name`, `baseline` and
  `candidate` against `dvc params diff` (changed keys only). Should the document also carry
  unchanged rows (`change: unchanged`), every row is checked against `--all` as well.
- `plots[]`: the set of `id`s against the ids DVC renders (plot definition names, file paths,
  each file of a directory plot, image plots); every item has a `kind` or a `template`, and a
  `kind`, when present, is `image` exactly for DVC's image plots.
- `errors[]` (`file`, `revision`): the revisions at which DVC could not read a declared metrics
  or plots file (in no cache, say) are the revisions comparison.json names in its errors, and
  every metrics file DVC could not read is named there. A file that simply does not exist at a
  revision (a first pull request) is no error for DVC's purposes here, only absent.

Values are compared after one normalisation (`as_pairs`): JSON cannot carry NaN or infinity,
so their usual spellings count as those numbers; DVC prints a list as Python's `str()` of it,
so a list in comparison.json is compared in that form. Numbers are compared exactly (DVC's
JSON is the float's repr); booleans are not numbers and strings are not booleans.

Each layout is built and observed once per session (once per run under xdist: workers share
the result through a file lock), so the four tests of a layout cost one build.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.dvc_layouts import LAYOUTS, Layout, build_layout

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

DVC = str(Path(sys.executable).parent / "dvc")
CHANGES = ("added", "removed", "changed")
# `dvc metrics diff` says this on stderr, and nothing in its JSON, when it could not read.
DVC_LOAD_FAILED = "failed to load some metrics"
NON_FINITE = ("nan", "inf", "-inf", "infinity", "-infinity")  # how a document may spell them


@pytest.fixture(scope="session", params=list(LAYOUTS))
def observed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What compare and DVC's CLI print for one layout; see `observe`."""
    layout = LAYOUTS[request.param]
    for module in layout.needs:  # tests/README.md: required in CI, skipped locally
        if importlib.util.find_spec(module) is None and os.environ.get("CI") != "true":
            pytest.skip(f"{layout.name} needs the {module} package")
    # Under xdist each worker has its own basetemp; their parent is shared by the run.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    with _locked(shared / "dvc-oracle" / f"{layout.name}.lock"):
        cached = shared / "dvc-oracle" / f"{layout.name}.json"
        if not cached.exists():
            try:
                result = observe(layout, cached.parent / layout.name)
            except Exception as exc:
                # Kept, so the layout's other tests (maybe on another worker) fail with it
                # instead of building again.
                result = {"error": f"{exc!r}\n{getattr(exc, 'stderr', '') or ''}"[-3000:]}
            cached.write_text(json.dumps(result), encoding="utf-8")
        return json.loads(cached.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _json(proc: subprocess.CompletedProcess[str], what: str) -> Any:
    assert proc.returncode == 0, f"{what} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)  # Python's json reads DVC's NaN and Infinity


def observe(layout: Layout, base: Path) -> dict[str, Any]:
    """Build `layout`, then run compare and the DVC oracles at the candidate's workspace."""
    project = build_layout(layout, base)
    compare = _run(
        [sys.executable, "-m", "mlops_ci.cli", "compare", "-C", str(project),
         "--run-dir", str(base / "run"), "--baseline", "main", "--json"],
        project,
    )  # fmt: skip
    doc = json.loads(compare.stdout) if compare.returncode == 0 else None
    metrics = _run([DVC, "metrics", "diff", "main", "--all", "--json"], project)
    # `-o` outside the project: DVC writes image plots into the output directory.
    plots = _run([DVC, "plots", "diff", "main", "--json", "-o", str(base / "dvc_plots")], project)
    full = doc is not None and any(p.get("change") == "unchanged" for p in doc["params"])
    return {
        "compare": {"exit": compare.returncode, "stderr": compare.stderr[-3000:], "doc": doc},
        "metrics": _json(metrics, "dvc metrics diff"),
        # Per-file read errors: only `dvc metrics show` names them, and only for branches.
        "metrics_show": _json(_run([DVC, "metrics", "show", "-a", "--json"], project), "show")
        if DVC_LOAD_FAILED in metrics.stderr
        else {},
        "params": _json(_run([DVC, "params", "diff", "main", "--json"], project), "params"),
        "params_all": _json(
            _run([DVC, "params", "diff", "main", "--all", "--json"], project), "params --all"
        )
        if full
        else None,
        "plots": _json(plots, "dvc plots diff"),
        "diff": _diff_json(_run([DVC, "diff", "main", "--json", "--show-hash"], project)),
    }


def _diff_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, f"dvc diff exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout or "{}")  # nothing changed: DVC may print nothing


def as_pairs(source: Mapping[str, Any] | list[Mapping[str, Any]]) -> dict[tuple, tuple]:
    """The one normalisation: DVC's `{file: {key: {old, new}}}` or comparison.json rows
    (`file`, `key` or `name`, `baseline`, `candidate`) as `{(file, key): (old, new)}`."""

    def comparable(value: Any) -> Any:
        if isinstance(value, bool):
            return ("bool", value)
        if isinstance(value, str) and value.lower() in NON_FINITE:
            value = float(value)  # JSON has no NaN/inf: a document may spell them
        if isinstance(value, int | float):
            return ("nan",) if math.isnan(value) else ("number", value)
        if isinstance(value, list):
            return ("text", str(value))  # DVC prints a list value as Python's str() of it
        return None if value is None else ("text", value)

    if isinstance(source, Mapping):
        items = [(f, k, v["old"], v["new"]) for f, keys in source.items() for k, v in keys.items()]
    else:
        items = [(r["file"], r.get("key", r.get("name")), r["baseline"], r["candidate"])
                 for r in source]  # fmt: skip
    return {(f, k): (comparable(old), comparable(new)) for f, k, old, new in items}


def differences(ours: Mapping[tuple, Any], dvc: Mapping[tuple, Any]) -> list[str]:
    lines = []
    for pair in sorted(set(ours) | set(dvc), key=str):
        where = f"{pair[0]}: {pair[1]}"
        if pair not in ours:
            lines.append(f"{where}: DVC reports {dvc[pair]}, compare has no row")
        elif pair not in dvc:
            lines.append(f"{where}: compare reports {ours[pair]}, DVC does not")
        elif ours[pair] != dvc[pair]:
            lines.append(f"{where}: compare {ours[pair]} != DVC {dvc[pair]}")
    return lines


def document(observed: Mapping[str, Any]) -> dict[str, Any]:
    assert "error" not in observed, f"building or observing the layout failed: {observed['error']}"
    compare = observed["compare"]
    assert compare["doc"] is not None, f"compare exited {compare['exit']}:\n{compare['stderr']}"
    return compare["doc"]


def dvc_unreadable(observed: Mapping[str, Any]) -> set[tuple[str, str | None]]:
    """(revision, file) DVC could not read: "main" or "workspace"; file None when DVC's
    plots error names no file. A file missing at a revision is absent, not unreadable."""

    def absent(error: Mapping[str, Any]) -> bool:
        return error["type"] == "FileNotFoundError" and "No such file" in error["msg"]

    found: set[tuple[str, str | None]] = set()
    for revs, result in observed["metrics_show"].items():
        for rev in {"main", "workspace"} & set(revs.split(",")):  # `-a` joins a commit's branches
            if "error" in result:
                found.add((rev, None))
            for path, entry in result.get("data", {}).items():
                if "error" in entry and not absent(entry["error"]):
                    found.add((rev, path))
    for error in observed["plots"].get("errors", []):
        if not absent(error):
            found.add(("main" if error["rev"] == "main" else "workspace", None))
    return found


def ours_unreadable(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    baseline = {doc["baseline"].get("sha"), doc["baseline"].get("ref"), "main"} - {None}
    return {
        ("main" if error["revision"] in baseline else "workspace", error["file"])
        for error in doc["errors"]
    }


def test_dvc_sees_the_layout(observed: dict) -> None:
    """No vacuous layout: DVC reports a changed param and metrics or plots for each one."""
    assert "error" not in observed, observed["error"]
    assert observed["params"], "dvc params diff reports no change"
    assert observed["metrics"] or observed["plots"].get("data"), "DVC sees no metrics or plots"


def test_metrics_equal_dvc_metrics_diff(observed: dict) -> None:
    diffs = differences(as_pairs(document(observed)["metrics"]), as_pairs(observed["metrics"]))
    assert not diffs, "metrics differ from `dvc metrics diff --all`:\n" + "\n".join(diffs)


def test_metric_status_follows_what_dvc_read(observed: dict) -> None:
    rows = {(r["file"], r["key"]): r for r in document(observed)["metrics"]}
    unreadable = dvc_unreadable(observed)
    wrong = []
    for pair, (old, new) in as_pairs(observed["metrics"]).items():
        if pair not in rows:
            continue  # test_metrics_equal_dvc_metrics_diff reports it
        if ("main", pair[0]) in unreadable or ("workspace", pair[0]) in unreadable:
            expected = {"unknown"}
        elif old is None:
            expected = {"added"}
        elif new is None:
            expected = {"removed"}
        else:
            expected = {"improved", "regressed", "unchanged", "inconclusive", "within-noise",
                        "changed"}  # fmt: skip
        if rows[pair]["status"] not in expected:
            wrong.append(f"{pair[0]}: {pair[1]}: status {rows[pair]['status']}, not {expected}")
    assert not wrong, "\n".join(wrong)


def test_unreadable_revisions_are_named_as_dvc_names_them(observed: dict) -> None:
    dvc, ours = dvc_unreadable(observed), ours_unreadable(document(observed))
    assert {rev for rev, _ in ours} == {rev for rev, _ in dvc}, (
        f"DVC could not read {sorted(dvc, key=str)}; comparison.json errors: {sorted(ours)}"
    )
    missing = {(rev, path) for rev, path in dvc if path is not None} - ours
    assert not missing, f"DVC could not read {missing}; comparison.json errors: {ours}"


def test_params_equal_dvc_params_diff(observed: dict) -> None:
    rows = document(observed)["params"]
    changed = [row for row in rows if row.get("change") in CHANGES]
    diffs = differences(as_pairs(changed), as_pairs(observed["params"]))
    assert not diffs, "params differ from `dvc params diff`:\n" + "\n".join(diffs)
    if observed["params_all"] is not None:
        diffs = differences(as_pairs(rows), as_pairs(observed["params_all"]))
        assert not diffs, "params differ from `dvc params diff --all`:\n" + "\n".join(diffs)


def test_plots_equal_dvc_plots_diff(observed: dict) -> None:
    items = {item["id"]: item for item in document(observed)["plots"]}
    kinds = {
        plot_id: {p["type"] for p in renders}
        for plot_id, renders in observed["plots"].get("data", {}).items()
    }
    assert set(items) == set(kinds), (
        f"only DVC: {sorted(set(kinds) - set(items))}; only compare: {sorted(set(items) - set(kinds))}"
    )
    for plot_id, item in items.items():
        assert "kind" in item or "template" in item, item
        if "kind" in item:
            assert (item["kind"] == "image") == ("image" in kinds[plot_id]), (plot_id, item["kind"])


def test_data_files_equal_dvc_diff(observed: dict) -> None:
    """The data section's file table: change, path and hash of every entry `dvc diff` prints,
    from the records when the workspace holds what they say, else from DVC itself."""
    from tests.compare.test_data_files_oracle import _normal, _ours

    files = (document(observed).get("data") or {}).get("files")
    assert files is not None, "compare wrote no file-level data table"
    assert _ours(files["rows"]) == _normal(observed["diff"]), files.get("source")
