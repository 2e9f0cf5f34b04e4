"""The trend from real git history, PNG files from DVC's templates, and `mlops-ci report` end to
end on a real repository (run directory, job summary, --output, terminal form)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.ci import documents
from mlops_ci.ci.untrusted import validate_document
from mlops_ci.cli import main
from mlops_ci.compare.decide import trend_document
from mlops_ci.compare.noise import read_history
from mlops_ci.project.errors import EXIT_SERVICE
from mlops_ci.project.git import Git
from mlops_ci.report import build_report, key_metrics, read_trend, write_report
from mlops_ci.report.fit import size
from mlops_ci.report.png import png_name, render_pngs, vega_lite_spec
from mlops_ci.report.trend import carried_trend
from tests.fakes.github import FakeGitHub
from tests.report.test_report_inputs import make_comparison, make_verdict, many_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_dir_with(tmp_path: Path, comparison: dict) -> Path:
    """A run directory holding `comparison` as comparison.json, as `compare` leaves it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "comparison.json").write_text(json.dumps(comparison))
    return run_dir


def commit(repo: Path, message: str) -> str:
    git = Git(repo)
    git.run("add", "--all")
    git.run("commit", "--quiet", "-m", message)
    return git.out("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A repo whose `main` committed eval/metrics.json 12 times, with other commits between."""
    repo = tmp_path_factory.mktemp("trend") / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)
    (repo / "eval").mkdir()
    shas = []
    for i in range(12):
        metrics = {"accuracy": 0.90 + i / 100, "f1": 0.80 + i / 200, "nested": {"auc": 0.5}}
        if i == 5:
            metrics = "{not json"  # a broken commit leaves a gap, not an error
        text = metrics if isinstance(metrics, str) else json.dumps(metrics)
        (repo / "eval" / "metrics.json").write_text(text)
        shas.append(commit(repo, f"Train #{i} @team"))
        (repo / "README.md").write_text(f"docs {i}\n")
        commit(repo, f"Docs {i}")
    return repo, shas


def test_trend_reads_the_last_commits_that_touched_the_metrics(
    history: tuple[Path, list[str]],
) -> None:
    repo, shas = history
    comparison = make_comparison()
    metrics = key_metrics(comparison, ["accuracy", "f1"])
    assert [m["name"] for m in metrics] == ["accuracy", "f1"]
    trend = read_trend(Git(repo), "main", metrics, commits=10)
    assert [p.sha for p in trend.points] == shas[2:]  # oldest first; docs commits skipped
    assert trend.points[-1].values == {"accuracy": pytest.approx(1.01), "f1": pytest.approx(0.855)}
    assert trend.points[3].values == {"accuracy": None, "f1": None}  # the broken file
    report = build_report(comparison, None, limit=None, trend=trend)
    assert "#### Trend on main" in report.markdown
    trend_md = report.markdown.split("#### Trend on main")[1]
    assert trend_md.count("```mermaid") == 2
    assert '"PR"' in trend_md
    assert shas[2][:7] in trend_md
    assert "@team" not in trend_md
    # nothing to read: no trend section, no error
    assert read_trend(Git(repo), "no-such-branch", metrics).points == []
    assert read_trend(Git(repo), "main", []).points == []


def test_the_comparison_carries_the_trend_read_with_the_noise_bands(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """compare reads the branch's history once, for noise bands and trend alike; the report
    shows the carried trend without reading git, and it equals the trend read from git."""
    repo, shas = history
    followed = {("eval/metrics.json", k): k for k in ("accuracy", "f1", "roc_auc")}
    read = read_history(Git(repo), "main", list(followed), commits=20, baseline_sha=shas[-1])
    carried = trend_document(read, followed, 10)
    assert carried is not None
    comparison = make_comparison(plots=[]) | {"trend": carried}
    validate_document("comparison", json.loads(json.dumps(comparison)))
    metrics = key_metrics(comparison, ["accuracy", "f1"])
    from_git = read_trend(Git(repo), "main", metrics, commits=10)
    assert carried_trend(carried, metrics, 10) == from_git
    assert [p.sha for p in from_git.points] == shas[2:]
    # a metric the comparison did not follow sends the report to git
    other = [{"name": "precision", "file": "eval/metrics.json", "key": "precision"}]
    assert carried_trend(carried, other, 10) is None
    # no repository at all: the report still draws the carried trend
    run_dir = run_dir_with(tmp_path, comparison)
    empty = tmp_path / "not-a-repo"
    empty.mkdir()
    assert main(["report", "-C", str(empty), "--run-dir", str(run_dir)]) == 0
    trend_md = (run_dir / "report.md").read_text().split("#### Trend on main")[1]
    assert shas[-1][:7] in trend_md and shas[1][:7] not in trend_md


def test_trend_is_dropped_second_when_shrinking(history: tuple[Path, list[str]]) -> None:
    repo, _ = history
    comparison = make_comparison()
    trend = read_trend(Git(repo), "main", key_metrics(comparison))
    report = build_report(comparison, None, limit=None, trend=trend)
    sizes = {s.key: size(s.text) for s in report.sections}
    full = size(report.full_markdown)
    # room for the footer's note (~200 characters) but not for the plots
    without_plots, dropped = report.fitted(full - sizes["plots"] + 300)
    assert dropped == ["plots (3 charts)"]
    assert "Trend on main" in without_plots
    _, dropped = report.fitted(full - sizes["plots"] - sizes["trend"] + 300)
    assert dropped == ["plots (3 charts)", "trend"]


@pytest.mark.parametrize("commits", [4, 3, 0])
def test_trend_commits_setting_sets_how_far_back_the_trend_reads(
    history: tuple[Path, list[str]], tmp_path: Path, commits: int
) -> None:
    source, shas = history
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    (repo / "mlops-ci.yaml").write_text(f"trend_commits: {commits}\n")
    run_dir = run_dir_with(tmp_path, make_comparison(plots=[]))
    assert main(["report", "-C", str(repo), "--run-dir", str(run_dir)]) == 0
    report = (run_dir / "report.md").read_text()
    if commits == 0:
        assert "#### Trend" not in report
        return
    trend = report.split("#### Trend on main")[1]
    shown = [sha for sha in shas if sha[:7] in trend]
    assert shown == shas[-commits:]  # the branch's last `commits` metric commits, no more
    assert f"{commits} commits of main, then PR" in trend  # the title counts the branch's


def test_png_files_from_dvc_templates(tmp_path: Path) -> None:
    plots = make_comparison()["plots"]
    result = render_pngs(plots, tmp_path / "plots")
    assert result.notes == []
    assert [p.name for p in result.files] == [
        "eval-plots-roc.png",
        "eval-plots-prc.png",
        "eval-plots-confusion.png",
    ]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in result.files)
    assert png_name("../../etc/passwd") == "etc-passwd.png"
    assert png_name("<script>.json") == "script.png"
    broken = render_pngs([{"id": "bad", "template": "no-such-template"}], tmp_path / "more")
    assert broken.files == []
    assert "bad.png: not rendered" in broken.notes[0]


def test_without_vl_convert_the_report_says_how_to_get_pngs(tmp_path: Path) -> None:
    """The `charts` extra is optional: with vl_convert unimportable (as in an install without
    it), the report carries a note instead of PNG files, and nothing fails."""
    script = f"""
import json, sys
from pathlib import Path
sys.modules["vl_convert"] = None  # `import vl_convert` now raises ImportError
from mlops_ci.report import build_report, write_report
from mlops_ci.report.render import revision_labels
from mlops_ci.report.write import write_pngs
from tests.report.test_report_inputs import make_comparison
comparison = make_comparison()
pngs = write_pngs(Path({str(tmp_path)!r}), comparison["plots"], revision_labels(comparison))
report = build_report(comparison, None, limit=None, pngs=pngs)
write_report(Path({str(tmp_path)!r}), report)
print(json.dumps(report.markdown))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    markdown = json.loads(proc.stdout)
    assert "PNG plots were not rendered" in markdown and "to get them in the run" in markdown
    assert "PNG files in the run directory" not in markdown
    assert "```mermaid" in markdown  # the inline charts do not need it
    assert not (tmp_path / "plots").exists()
    assert "install the `charts` extra" in (tmp_path / "plots-notes.txt").read_text()


def test_report_command_writes_every_destination(
    history: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = history
    run_dir = run_dir_with(tmp_path, make_comparison())
    # The verdict names the comparison it judged (documents name their inputs).
    judged = {"comparison.json": documents.file_digest(run_dir / "comparison.json")}
    (run_dir / "verdict.json").write_text(json.dumps(make_verdict() | {"inputs": judged}))
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    output = tmp_path / "out" / "report.md"

    code = main(["report", "-C", str(repo), "--run-dir", str(run_dir), "--output", str(output)])
    assert code == 0
    full = (run_dir / "report.md").read_text()
    assert full.startswith("<!-- mlops-ci-report:classifier:")
    assert "#### Trend on main" in full
    assert "❌ **fail**" in full
    assert (run_dir / "report-comment.md").read_text() == full  # small: nothing dropped
    assert output.read_text() == full
    # no CI around: the local forge keeps the summary in the run directory
    assert summary.read_text() == "earlier step\n"
    assert (run_dir / "summary.md").read_text().startswith("<!-- mlops-ci-report")
    # PNGs only when asked: the comment draws its charts with Mermaid.
    assert not (run_dir / "plots").exists()
    assert "PNG" not in full


def test_png_files_only_when_asked_and_at_most_the_limit(
    history: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = history
    run_dir = run_dir_with(tmp_path, make_comparison())
    assert main(["report", "-C", str(repo), "--run-dir", str(run_dir), "--png"]) == 0
    drawn = ["eval-plots-confusion.png", "eval-plots-prc.png", "eval-plots-roc.png"]
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == drawn
    assert "PNG files in the run directory under plots/" in (run_dir / "report.md").read_text()
    assert not (run_dir / "plots-notes.txt").exists()

    shutil.rmtree(run_dir / "plots")
    monkeypatch.setenv("MLOPS_CI_PNG", "1")  # how a CI setting asks, without editing the job
    assert main(["report", "-C", str(repo), "--run-dir", str(run_dir)]) == 0
    assert [p.name for p in (run_dir / "plots").iterdir()] == ["eval-plots-roc.png"]
    notes = (run_dir / "plots-notes.txt").read_text()
    assert "2 of 3 plots were not drawn as PNG (limit 1" in notes
    report = (run_dir / "report.md").read_text()
    assert "plots/: eval-plots-roc.png" in report and "2 of 3 plots were not drawn" in report
    monkeypatch.setenv("MLOPS_CI_PNG", "many")
    assert main(["report", "-C", str(repo), "--run-dir", str(run_dir)]) == 2


def test_a_confusion_png_counts_the_counted_rows() -> None:
    """comparison.json holds a confusion matrix as counts; DVC's template counts raw rows, which
    would draw every cell as 1. The spec sums `count` instead, per revision."""
    counted = [{"actual": "0", "predicted": "0", "count": 52}, {"actual": "1", "predicted": "0",
               "count": 3}]  # fmt: skip
    plot = {"id": "Confusion", "template": "confusion", "x": "actual", "y": "predicted",
            "baseline": counted, "candidate": counted}  # fmt: skip
    spec = vega_lite_spec(plot, "abc1234", "abc1234")
    aggregates = [op for t in spec["spec"]["transform"] for op in t.get("aggregate") or []]
    assert aggregates == [{"op": "sum", "field": "count", "as": "xy_count"}]
    revs = {row["rev"] for row in spec["data"]["values"]}
    assert revs == {"abc1234", "abc1234 (workspace)"}  # two facets, not one
    raw = next(p for p in make_comparison()["plots"] if p.get("template") == "confusion")
    raw_spec = vega_lite_spec(raw, "a", "b")  # raw rows: DVC's own count stays
    assert raw_spec["spec"]["transform"][0]["aggregate"][0] == {"op": "count", "as": "xy_count"}


def test_report_command_prints_terminal_form_and_json(
    history: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = history
    run_dir = run_dir_with(tmp_path, make_comparison())
    assert main(["report", "-C", str(repo), "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mlops-ci report: classifier\n")
    assert "accuracy" in out
    assert main(["report", "-C", str(repo), "--run-dir", str(run_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"] == str(run_dir / "report.md")
    assert doc["dropped"] == []


def test_report_command_without_comparison_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "-C", str(tmp_path), "--run-dir", str(tmp_path / "run")]) == 2
    assert "mlops-ci compare" in capsys.readouterr().err


def test_write_report_keeps_full_and_fitted(tmp_path: Path) -> None:
    report = build_report(make_comparison(metrics=many_metrics(3000), plots=[]), None, limit=65_536)
    path = write_report(tmp_path, report)
    assert path == tmp_path / "report.md"
    assert len(path.read_text()) > 65_536 >= len((tmp_path / "report-comment.md").read_text())
    assert not (tmp_path / "plots").exists()


def test_report_post_upserts_one_sticky_comment_on_github(
    history: tuple[Path, list[str]],
    tmp_path: Path,
    fake_github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, _ = history
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    comparison = make_comparison(metrics=many_metrics(10_000))
    (run_dir / "comparison.json").write_text(json.dumps(comparison))
    for key, value in fake_github.ci_env(tmp_path / "ci").items():
        monkeypatch.setenv(key, value)
    argv = ["report", "-C", str(repo), "--run-dir", str(run_dir), "--post"]
    assert main(argv) == 0
    assert main(argv) == 0  # the second run updates the same comment
    comments = fake_github.comments_on("octo/demo", 7)
    assert len(comments) == 1
    body = comments[0]["body"]
    assert len(body) <= 65_536
    assert "Shortened to fit the 65,536-character limit" in body
    assert body.startswith("<!-- mlops-ci-report:classifier:")
    step_summary = (tmp_path / "ci" / "step-summary.md").read_text()
    assert len(step_summary.encode()) <= 1024 * 1024
    assert "unchanged metric" in step_summary
    assert "/commit/" + comparison["candidate"]["sha"] in body  # SHAs link to the forge

    fake_github.fail_next(50, status=502)
    code = main(argv)
    assert code == EXIT_SERVICE
    assert (run_dir / "report.md").is_file()  # the report is saved all the same


def test_report_post_on_a_push_saves_the_report_and_notes_there_is_no_pull_request(
    history: tuple[Path, list[str]],
    tmp_path: Path,
    fake_github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, _ = history
    run_dir = run_dir_with(tmp_path, make_comparison(plots=[]))
    for key, value in fake_github.ci_env(tmp_path / "ci", pr=None, event="push").items():
        monkeypatch.setenv(key, value)
    argv = ["report", "-C", str(repo), "--run-dir", str(run_dir), "--post", "--json"]

    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["comment_url"] is None
    assert [n for n in doc["notes"] if n.startswith("no pull request to comment on")]
    assert (run_dir / "report.md").is_file()
    assert "mlops-ci report" in (tmp_path / "ci" / "step-summary.md").read_text()
    assert fake_github.comments_on("octo/demo", 7) == []
