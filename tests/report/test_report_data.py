"""The report's Data section rendered from comparison documents with real data shapes: it keeps
to its size budget however many tables and paths changed, and hostile names stay inert text
(checked with GitHub's own renderer)."""

from __future__ import annotations

import cmarkgfm
from cmarkgfm.cmark import Options

from mlops_ci.ci import documents
from mlops_ci.report.data_section import MAX_SECTION_CHARS, data_section_text
from mlops_ci.report.render import build_report


def _comparison(tables: int, columns: int, paths: int, name: str = "col") -> dict:
    column = {
        "change": "dtype", "baseline_dtype": "int64", "candidate_dtype": "str",
        "baseline_missing": 0.0, "candidate_missing": 0.25, "test": "chi2", "effect": 0.4,
        "p_value": 0.0, "p_adjusted": 0.0, "drifted": True, "note": None,
        "new_categories": ["@everyone", "<script>"],
    }  # fmt: skip
    return documents.header("comparison") | {
        "baseline": {"how": "merge-base", "sha": "a" * 40},
        "candidate": {"ref": "workspace", "sha": "b" * 40},
        "metrics": [], "params": [], "plots": [], "stages": [], "errors": [], "warnings": [],
        "data": {
            "inputs": {"baseline": "a" * 40, "candidate": "workspace"},
            "sample_rows": 50_000, "fdr": 0.01,
            "files": {
                "source": "dvc diff", "more_rows": 0, "baseline_bytes": 10, "candidate_bytes": 20,
                "counts": {"added": paths, "deleted": 0, "modified": 0, "renamed": 0},
                "rows": [{"path": f"data/{name}{i}.csv", "change": "added",
                          "candidate_size": 20, "candidate_nfiles": None} for i in range(paths)],
            },
            "tables": [
                {"path": f"data/t{i}.csv", "status": "changed", "errors": [],
                 "baseline": {"rows": 100, "columns": columns}, "row_change_pct": -10.0,
                 "candidate": {"rows": 90, "columns": columns},
                 "columns": [column | {"name": f"{name}{j}"} for j in range(columns)],
                 "label": {"column": name, "classes": [{"class": "@x", "baseline": 0.5,
                                                         "candidate": 0.4}]}}
                for i in range(tables)
            ],
        },
    }  # fmt: skip


def test_the_section_keeps_to_its_budget_with_many_tables_and_paths():
    text, _ = data_section_text(_comparison(100, 60, 500))
    assert len(text) <= MAX_SECTION_CHARS
    assert "in comparison.json" in text
    small, _ = data_section_text(_comparison(1, 3, 2))
    assert "col2" in small and "data/col1.csv" in small  # nothing cut when it fits


def _with_outputs(comparison: dict, paths: list[str], output: object = "plot") -> dict:
    """Undeclared tables left out as the model's outputs (compare/data_auto.py)."""
    comparison["data"]["auto"] = {"max_bytes": 1, "more_left_out": 0, "left_out": [
        {"path": p, "reason": "a plot", "output": output} for p in paths]}  # fmt: skip
    return comparison


def test_the_models_outputs_share_one_bounded_line():
    paths = [f"dvclive/plots/metrics/{'m' * 100}{i}.tsv" for i in range(50)]
    text, _ = data_section_text(_with_outputs(_comparison(100, 60, 500), paths))
    assert len(text) <= MAX_SECTION_CHARS
    (line,) = [x for x in text.splitlines() if x.startswith("Not profiled, being the model's")]
    assert paths[9] in line and paths[10] not in line and "and 40 more in comparison.json" in line
    assert "**Table dvclive" not in text


def test_the_outputs_line_names_only_the_kinds_left_out():
    def line(entries: list[tuple[str, object]]) -> str:
        comparison = _comparison(1, 2, 1)
        comparison["data"]["auto"] = {"max_bytes": 1, "more_left_out": 0, "left_out": [
            {"path": p, "reason": "an output", "output": k} for p, k in entries]}  # fmt: skip
        text, _ = data_section_text(comparison)
        (found,) = [x for x in text.splitlines() if x.startswith("Not profiled, being")]
        return found

    assert "elsewhere (its plots): dvclive/plots/a.tsv." in line([("dvclive/plots/a.tsv", "plot")])
    assert "elsewhere (its predictions file): p.csv." in line([("p.csv", "predictions")])
    both = line([("p.csv", "predictions"), ("a.tsv", "plot")])
    assert "elsewhere (its predictions file, its plots): p.csv, a.tsv." in both
    # A kind the schema refuses names none.
    assert "elsewhere: x.csv." in line([("x.csv", ["not a kind"])])


def test_hostile_names_are_inert_in_the_rendered_report():
    name = "| @team <img src=x> **b** #12 www.evil.example"
    comparison = _with_outputs(_comparison(1, 2, 1, name=name), [name], output=[name])
    report = build_report(comparison, limit=65_536)
    html = cmarkgfm.github_flavored_markdown_to_html(
        report.markdown, options=Options.CMARK_OPT_UNSAFE
    )
    assert "<img" not in html and "<script>" not in html and "<strong>b</strong>" not in html
    assert 'href="http://www.evil' not in html
    rows = [r.split("</tr>")[0] for r in html.split("<tr>")[1:]]
    column_rows = [r for r in rows if "team" in r and "<td" in r]
    # Column table (8 cells), file table (4 cells): the name never splits a cell.
    assert column_rows and all(r.count("<td") in (4, 8) for r in column_rows)
    assert "#### Data" in report.markdown
    assert "compares elsewhere: " in report.markdown  # the forged entry is on the line, inert
