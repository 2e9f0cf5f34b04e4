"""The report oracle suite: report.md, parsed back, says what DVC, scikit-learn and git say.

For every layout of the DVC oracle suite (tests/dvc_layouts.py: DVCLive projects among them)
the comparison compare wrote is rendered as `mlops-ci report` renders it, then read back with
tests/report/report_parse.py (never with the report's own code) and held to:

- `dvc metrics diff main --all --json`: each metric row's baseline and candidate cells;
- `dvc params diff main --json`: each param row;
- `dvc plots diff main --json`: each chart line is one (revision, file, field) series of DVC's
  data, its points equal to DVC's (or DVC's interpolated where the chart says it resampled); a
  confusion chart is scikit-learn's `recall_score(average=None)` of DVC's rows at each revision;
  every plot whose data differ between the revisions is listed by name;
- the headline's counts equal the table's statuses.

The reference pipeline (`mlops-ci pr` on the trained reference project) is held to the same,
with its ROC line against scikit-learn's `roc_curve` of the predictions and the revisions'
names against `git show`.
"""

from __future__ import annotations

import math
import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import recall_score

from mlops_ci.report import build_report
from tests.compare.test_dvc_oracle import DVC, document, observed  # noqa: F401 - the fixture
from tests.report.report_parse import ParsedChart, charts, tables, unescape

_LEGEND = re.compile(r"(baseline|candidate) (\S+) (.*?)(?: \((.+)\))?")


def _number(cell: str) -> float | None:
    try:
        return float(unescape(cell).replace("−", "-"))
    except ValueError:
        return None


def _same_value(cell: str, value: Any) -> bool:
    """A table cell shows `value` (4 significant digits for numbers, text as it is)."""
    if value is None:
        return cell.strip() in ("—", "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return unescape(cell).lower() == str(value).lower()
    if math.isnan(value) or math.isinf(value):
        return unescape(cell).lower() in (str(value).lower(), "nan", "inf", "-inf")
    shown = _number(cell)
    return shown is not None and math.isclose(shown, value, rel_tol=5e-4, abs_tol=1e-12)


def metric_cells(markdown: str) -> dict[str, tuple[str, str, str]]:
    """Every metric row (changed and unchanged tables): name -> (baseline, candidate, status)."""
    found = {}
    for t in tables(markdown):
        if t and t[0][0] == "Metric":
            status = t[0].index("Status")
            for row in t[1:]:
                name = unescape(row[0]).removesuffix(" ↑").removesuffix(" ↓")
                found[name] = (row[1], row[2], row[status])
    return found


def check_metrics(markdown: str, doc: dict, dvc: dict) -> list[str]:
    cells, bad = metric_cells(markdown), []
    names = {(r["file"], r.get("key")): r["name"] for r in doc["metrics"] if r.get("file")}
    for file, keys in dvc.items():
        for key, v in keys.items():
            name = names.get((file, key))
            if name not in cells:
                bad.append(f"metric {file}:{key} ({name}) is not in the report")
                continue
            base, cand, _ = cells[name]
            if not (_same_value(base, v.get("old")) and _same_value(cand, v.get("new"))):
                bad.append(
                    f"metric {name}: report {base} → {cand}, DVC {v.get('old')} → {v.get('new')}"
                )
    return bad


def check_headline(markdown: str) -> list[str]:
    head = unescape(markdown.split("\n#### ")[0])
    statuses = [c[2] for c in metric_cells(markdown).values()]
    bad = []
    for word in ("improved", "regressed", "inconclusive"):
        found = re.search(rf"(\d+) {word}", head)
        if found and int(found.group(1)) != sum(word in s for s in statuses):
            bad.append(f"headline says {found.group(0)}, the table has {statuses}")
    for word in ("worse", "better"):
        found = re.search(rf"(\d+) {word}", head)
        if found and int(found.group(1)) != sum(f"{word} by point value" in s for s in statuses):
            bad.append(f"headline says {found.group(0)}, the table has {statuses}")
    if "changed" in " ".join(statuses) and "by point value" not in head:
        bad.append("metrics changed without a noise estimate, the headline does not say so")
    intervals = [
        row[i]
        for t in tables(markdown)
        if t and t[0][0] == "Metric"
        for i in [next((j for j, h in enumerate(t[0]) if h.startswith("CI")), None)]
        if i is not None
        for row in t[1:]
        if row[i].strip()
    ]
    if intervals and "declare a per-sample predictions file" in head:
        bad.append("the report has intervals and still asks for a predictions file to get them")
    return bad


_DROP = re.compile(
    r"(?P<name>\S+) (?P<verb>dropped|rose) (?P<delta>[\d.]+)(?P<pct>%?) "
    r"\((?P<old>-?[\d.]+) → (?P<new>-?[\d.]+)\), more than (?P<rule>\w+) (?P<limit>[\d.]+)"
)
_BOUND = re.compile(
    r"(?P<name>\S+) is (?P<value>-?[\d.]+), (?P<side>below min|above max) (?P<limit>-?[\d.]+)"
)


def _rounded(text: str, value: float) -> bool:
    """`text` is `value` rounded to the decimals it prints."""
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10.0**-decimals + 1e-12


def check_reasons(markdown: str, doc: dict, dvc: dict) -> list[str]:
    """Each failed rule's numbers are DVC's values of the metric, and they do break the rule."""
    values = {}
    for r in doc["metrics"]:
        old = dvc.get(r.get("file"), {}).get(r.get("key"), {})
        values[r["name"]] = (old.get("old"), old.get("new"))
    reasons = [unescape(line[len("- fail: "):]) for line in markdown.split("\n#### ")[0].splitlines()
               if line.startswith("- fail: ")]  # fmt: skip
    bad = [] if reasons else ["the report names no failed rule"]
    for reason in reasons:
        if found := _DROP.match(reason):
            old, new = values.get(found["name"], (None, None))
            if old is None or new is None:
                bad.append(f"reason {reason!r}: DVC has no such metric")
                continue
            change = (
                abs(new - old) / (abs(old) if found["pct"] else 1) * (100 if found["pct"] else 1)
            )
            worse = new < old if found["verb"] == "dropped" else new > old
            if not (_rounded(found["old"], old) and _rounded(found["new"], new)
                    and _rounded(found["delta"], change) and worse
                    and change > float(found["limit"])):  # fmt: skip
                bad.append(f"reason {reason!r}: DVC {old} → {new}, a change of {change:.4g}")
        elif found := _BOUND.match(reason):
            _, new = values.get(found["name"], (None, None))
            limit = float(found["limit"])
            broken = new is not None and (new < limit if "min" in found["side"] else new > limit)
            if new is None or not (_rounded(found["value"], new) and broken):
                bad.append(f"reason {reason!r}: DVC's candidate value is {new}")
    return bad


def check_params(markdown: str, dvc: dict) -> list[str]:
    rows = {}
    for t in tables(markdown):
        if t and t[0][0] == "Param":
            rows = {unescape(r[0]): r for r in t[1:]}
    bad = []
    for keys in dvc.values():
        for key, v in keys.items():
            row = rows.get(key)
            if row is None:
                bad.append(f"param {key} is not in the report")
            elif not (_same_value(row[1], v.get("old")) and _same_value(row[2], v.get("new"))):
                bad.append(f"param {key}: report {row[1]} → {row[2]}, DVC {v}")
    return bad


def _encoding(spec: Any) -> tuple[str | None, str | None]:
    """The x and y fields of a vega-lite spec (the first layer that names both)."""
    if isinstance(spec, dict):
        enc = spec.get("encoding")
        if isinstance(enc, dict) and "field" in enc.get("x", {}) and "field" in enc.get("y", {}):
            return enc["x"]["field"], enc["y"]["field"]
        x = enc.get("x", {}).get("field") if isinstance(enc, dict) else None
        for value in spec.values():
            fx, fy = _encoding(value)
            if fy:
                return fx or x, fy
    if isinstance(spec, list):
        for value in spec:
            fx, fy = _encoding(value)
            if fy:
                return fx, fy
    return None, None


def dvc_series(entry: dict) -> dict[tuple[str, str, str], list[dict]]:
    """DVC's rows of one vega plot by (side, file name, field)."""
    out: dict[tuple[str, str, str], list[dict]] = {}
    for row in entry["content"]["data"]["values"]:
        side = "baseline" if row.get("rev") == "main" else "candidate"
        key = (side, row.get("filename") or "", row.get("field") or "")
        out.setdefault(key, []).append(row)
    return out


def _chart_lines(chart: ParsedChart) -> dict[tuple[str, str, str], list[float]]:
    lines = {}
    for (_, what), (_, values) in zip(chart.legend, chart.series, strict=True):
        found = _LEGEND.fullmatch(unescape(what))
        if not found:  # a legend that names no file: its lines cannot be told apart
            continue
        side, _, source, field = found.groups()
        lines[side, posixpath.basename(source), field or ""] = values
    return lines


def check_curve(pid: str, chart: ParsedChart, entry: dict) -> list[str]:
    fx, fy = _encoding(entry["content"])
    series = dvc_series(entry)
    lines = _chart_lines(chart)
    bad = []
    if len(lines) != len(series):
        bad.append(f"plot {pid}: {len(lines)} lines drawn, DVC has {len(series)} series")
    for key, rows in series.items():
        match = [k for k in lines if k[0] == key[0] and k[2] == key[2]
                 and (not key[1] or k[1] == key[1])]  # fmt: skip
        if len(match) != 1:
            bad.append(f"plot {pid}: DVC series {key} is not one line of the chart ({list(lines)})")
            continue
        pts = sorted((float(r[fx]), float(r[fy])) for r in rows)
        values = lines[match[0]]
        if chart.categories is not None:
            axis = [float(c) for c in chart.categories][: len(values)]
            if axis != pytest.approx([p[0] for p in pts]):
                bad.append(f"plot {pid}: x {chart.categories} != DVC {[p[0] for p in pts]}")
            if values != pytest.approx([p[1] for p in pts], rel=1e-5, abs=1e-9):
                bad.append(f"plot {pid} {key}: drawn {values} != DVC {[p[1] for p in pts]}")
        else:
            if not chart.note.startswith("resampled"):
                bad.append(f"plot {pid}: interpolated without saying so")
            grid = np.linspace(*chart.x_range, len(values))
            xs, ys = zip(*pts, strict=True)
            inner = [i for i, g in enumerate(grid) if g not in xs and 0 < i < len(grid) - 1]
            want = np.interp(grid, xs, ys)
            if not np.allclose(np.array(values)[inner], want[inner], rtol=1e-4, atol=1e-5):
                bad.append(f"plot {pid} {key}: drawn {values} != DVC interpolated {want}")
    return bad


def check_confusion(
    pid: str, chart: ParsedChart, entry: dict, file: str | None = None
) -> list[str]:
    """The chart's recall per class equals scikit-learn's on DVC's rows (of one `file`)."""
    fx, fy = _encoding(entry["content"])
    by_side = {}
    for (side, name, _), rows in dvc_series(entry).items():
        if file is None or name == file:
            by_side.setdefault(side, []).extend(rows)
    classes = chart.categories or []
    drawn = dict(zip([w for w, _ in chart.legend if "not drawn" not in w], chart.series,
                     strict=False))  # fmt: skip
    bad = []
    for side, word in (("baseline", "grey bars"), ("candidate", "blue line")):
        rows = by_side.get(side)
        if not rows:
            if not any(side in w and "not drawn" in w for w, _ in chart.legend):
                bad.append(f"plot {pid}: no {side} rows in DVC, the legend does not say so")
            continue
        y_true = [str(r[fx]) for r in rows]
        y_pred = [str(r[fy]) for r in rows]
        want = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
        got = drawn.get(word)
        if got is None or not np.allclose(got[1], want, atol=1e-5):
            bad.append(f"plot {pid} {side}: drawn {got} != scikit-learn recall {list(want)}")
    return bad


def check_plots(markdown: str, doc: dict, dvc: dict) -> list[str]:
    drawn = {unescape(c.title): c for c in charts(markdown)}
    listed = {}
    for t in tables(markdown):
        if t and t[0][0] == "Plot":
            listed = {unescape(r[0]): r for r in t[1:]}
    titles = {p["id"]: p.get("title") or p["id"] for p in doc["plots"]}
    templates = {p["id"]: str(p.get("template") or "") for p in doc["plots"]}
    bad = []
    for pid, entries in dvc.get("data", {}).items():
        for entry in entries:
            if entry["type"] != "vega":
                continue
            series = dvc_series(entry)
            sides = {k[0] for k in series}
            values = {side: sorted(json_rows(series, side)) for side in sides}
            changed = len(sides) == 1 or values.get("baseline") != values.get("candidate")
            if changed and pid not in listed:
                bad.append(f"plot {pid} changed in DVC's data, the report does not list it")
            confusion = templates.get(pid, "").startswith("confusion")
            files = sorted({k[1] for k in series})
            if confusion and len(files) > 1:  # a chart per file, never their rows pooled
                for file in files:  # DVC names a file by its base name, the report by path
                    chart = next(
                        (c for t, c in drawn.items()
                         if re.fullmatch(rf"{re.escape(titles.get(pid, pid))} \((.*/)?"
                                         rf"{re.escape(file)}\) - recall per class", t)),
                        None,
                    )  # fmt: skip
                    if chart is None:
                        bad.append(f"plot {pid}: no recall chart of {file}")
                    else:
                        bad += check_confusion(pid, chart, entry, file)
                continue
            title = titles.get(pid, pid) + (" - recall per class" if confusion else "")
            chart = drawn.get(title)
            if chart is None:
                shown = listed.get(pid, ["", "", ""])[2]
                if changed and "not drawn" not in shown and "table" not in shown:
                    bad.append(f"plot {pid}: no chart and no word why")
                continue
            bad += (check_confusion if confusion else check_curve)(pid, chart, entry)
    return bad


def json_rows(series: dict, side: str) -> list[str]:
    return [repr(sorted((k, str(v)) for k, v in r.items() if k != "rev"))
            for key, rows in series.items() if key[0] == side for r in rows]  # fmt: skip


def test_the_report_says_what_dvc_and_scikit_learn_say(observed: dict) -> None:  # noqa: F811
    doc = document(observed)
    markdown = build_report(doc, None, limit=None).full_markdown
    bad = (
        check_metrics(markdown, doc, observed["metrics"])
        + check_params(markdown, observed["params"])
        + check_plots(markdown, doc, observed["plots"])
        + check_headline(markdown)
    )
    assert bad == []


def _dvc_json(repo: Path, *args: str) -> Any:
    import json

    proc = subprocess.run([DVC, *args, "--json"], cwd=repo, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(proc.stdout or "{}")


def reference_report(repo: Path) -> tuple[str, dict]:
    """`mlops-ci pr` on a branch of the trained reference project that weakens the model."""
    import json

    from mlops_ci.cli import main
    from mlops_ci.commands.demo import set_param
    from mlops_ci.project.git import Git
    from tests.conftest import git_commit_all

    Git(repo).run("checkout", "--quiet", "-b", "tune/weaker-model")
    set_param(repo, "train.logistic_regression.C", 0.0005)
    git_commit_all(repo, "Weaker model")
    assert main(["pr", "-C", str(repo)]) == 1
    run_dir = repo / ".mlops-ci"
    doc = json.loads((run_dir / "comparison.json").read_text())
    return (run_dir / "report.md").read_text(encoding="utf-8"), doc


@pytest.mark.slow
def test_the_reference_pipelines_report_says_what_dvc_scikit_learn_and_git_say(
    trained_repo: Path,
) -> None:
    from sklearn.metrics import roc_curve

    markdown, doc = reference_report(trained_repo)
    plots = _dvc_json(trained_repo, "plots", "diff", "main", "-o", str(trained_repo / ".plots"))
    bad = (
        check_metrics(markdown, doc, _dvc_json(trained_repo, "metrics", "diff", "main", "--all"))
        + check_params(markdown, _dvc_json(trained_repo, "params", "diff", "main"))
        + check_plots(markdown, doc, plots)
        + check_headline(markdown)
        + check_reasons(markdown, doc, _dvc_json(trained_repo, "metrics", "diff", "main", "--all"))
    )
    assert bad == []
    # The candidate's ROC line is scikit-learn's curve of the predictions on disk.
    import pandas as pd

    predictions = pd.read_csv(trained_repo / "eval" / "predictions.csv")
    score = next(c for c in predictions.columns if c.startswith("y_score") or c == "score")
    fpr, tpr, _ = roc_curve(predictions["y_true"], predictions[score])
    roc = next(c for c in charts(markdown) if unescape(c.title) == "ROC")
    lines = _chart_lines(roc)
    cand = next(v for k, v in lines.items() if k[0] == "candidate")
    if roc.categories is None:
        grid = np.linspace(*roc.x_range, len(cand))
        inner = [i for i, g in enumerate(grid) if g not in fpr and 0 < i < len(grid) - 1]
        np.testing.assert_allclose(np.array(cand)[inner], np.interp(grid, fpr, tpr)[inner],
                                   atol=1e-4)  # fmt: skip
    # The revisions' names: git's short SHAs and the baseline's subject.
    head = subprocess.run(["git", "show", "-s", "--format=%h %H", "main"], cwd=trained_repo,
                          capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    first = markdown.split("#### ")[0]
    # The ref compare used: local main or origin's, whichever holds the other (equal here).
    assert re.search(rf"Baseline (origin/)?main @ \[?{head[1][:7]}\b", first), first[:400]
    draw_in_chromium(markdown, "reference-pipeline", trained_repo.parent)


def draw_in_chromium(markdown: str, name: str, tmp_path: Path) -> Path:
    """The report as GitHub shows it (GFM + Mermaid) in chromium: every chart is an xychart,
    no Mermaid error; the screenshot is kept under tests/artifacts/ (a CI artifact)."""
    import html
    import json
    import shutil

    from tests.report.test_report_mermaid import (
        ARTIFACTS,
        MERMAID_JS,
        mermaid_blocks,
        report_page,
        require,
        run_chromium,
    )

    require(shutil.which("chromium") is not None, "chromium (apt-get install chromium)")
    require(MERMAID_JS.is_file(), "npm packages in tests/js (npm ci)")
    page = tmp_path / f"{name}.html"
    page.write_text(report_page(markdown), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{name}.png"
    shot.unlink(missing_ok=True)
    # One browser run gives both the page as drawn and its picture.
    proc = run_chromium(
        page, tmp_path, "--dump-dom", f"--screenshot={shot}", "--window-size=1000,3000",
        "--hide-scrollbars",
    )  # fmt: skip
    found = re.search(r"RESULT:(\{.*?\})</pre>", proc.stdout)
    assert found, f"the page script did not finish: {proc.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    blocks = len(mermaid_blocks(markdown))
    assert result["errors"] == []
    assert (result["charts"], result["xycharts"], result["errorSvgs"]) == (blocks, blocks, 0)
    assert "Syntax error" not in proc.stdout.split('<pre id="result">')[0]
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return shot


@pytest.mark.slow
def test_each_layouts_report_draws_in_a_real_browser(
    observed: dict,  # noqa: F811
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    markdown = build_report(document(observed), None, limit=None).full_markdown
    draw_in_chromium(markdown, str(request.node.callspec.params["observed"]), tmp_path)
