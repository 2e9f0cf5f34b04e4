"""Image plots (`*.png` that a stage writes and `dvc.yaml` declares as plots): compared by
content, listed in the report with their status, both revisions' files in the run directory;
never uploaded to an image host."""

from __future__ import annotations

import json
from pathlib import Path

import cmarkgfm
from cmarkgfm.cmark import Options

from mlops_ci.cli import main
from tests.dvc_layouts import LAYOUTS, build_layout


def test_image_plots_are_listed_by_status_and_kept_in_the_run_directory(tmp_path: Path) -> None:
    project = build_layout(LAYOUTS["plots-images"], tmp_path)
    run_dir = tmp_path / "run"
    assert main(
        ["compare", "-C", str(project), "--baseline", "main", "--run-dir", str(run_dir)]
    ) in (0, 1)
    comparison = json.loads((run_dir / "comparison.json").read_text())
    images = {p["id"]: p for p in comparison["plots"] if p.get("kind") == "image"}
    assert images, comparison["plots"]
    statuses = {p["status"] for p in images.values()}
    assert "changed" in statuses and "unchanged" in statuses  # roc.png keeps its shade
    for plot in images.values():
        for side in ("baseline", "candidate"):
            saved = run_dir / plot[f"{side}_file"]
            assert saved.is_file() and saved.read_bytes().startswith(b"\x89PNG")
        assert (plot["baseline_digest"] == plot["candidate_digest"]) == (
            plot["status"] == "unchanged"
        )
    assert main(["report", "-C", str(project), "--run-dir", str(run_dir)]) == 0
    report = (run_dir / "report.md").read_text()
    html = cmarkgfm.github_flavored_markdown_to_html(report, options=Options.CMARK_OPT_UNSAFE)
    for pid in images:
        assert pid in html
    assert "<img" not in html  # listed and kept as files, never linked to an outside host
    assert "images/" in report
