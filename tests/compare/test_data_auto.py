"""Tables nobody declared: a pull request that changes DVC-tracked CSVs (a `dvc add`ed file,
a stage's file output, files in a stage's directory output) shows their rows at both revisions
with no `data:` section at all; a byte budget leaves the rest out and the report says so.
Real git, real DVC, the commands as processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compare.data_project import MLOPS_CI, DataProject, table

pytestmark = pytest.mark.integration  # builds real DVC projects of its own


def _change(tmp_path: Path, policy: str) -> DataProject:
    repo = DataProject.create(tmp_path / "repo", table(1000), policy)
    repo.git("checkout", "-qb", "candidate")
    repo.write_table("data/raw.csv", table(1000, seed=1).iloc[:900])
    repo.add("data/raw.csv")
    repo.repro()
    repo.commit("a smaller raw table")
    return repo


def test_changed_dvc_tables_are_profiled_without_being_declared(tmp_path: Path):
    repo = _change(tmp_path, "artifact: model\n")
    repo.run(MLOPS_CI, "compare", "--baseline", "main")
    repo.run(MLOPS_CI, "report")
    comparison = json.loads((repo.root / ".mlops-ci" / "comparison.json").read_text())
    tables = {t["path"]: t for t in comparison["data"]["tables"]}
    assert set(tables) == {"data/raw.csv", "out/train.csv", "out/parts/a.csv", "out/parts/b.csv"}
    rows = {p: (t["baseline"]["rows"], t["candidate"]["rows"]) for p, t in tables.items()}
    assert rows == {"data/raw.csv": (1000, 900), "out/train.csv": (1000, 900),
                    "out/parts/a.csv": (500, 450), "out/parts/b.csv": (500, 450)}  # fmt: skip
    assert all(t["auto"] and t["status"] == "changed" for t in tables.values())
    assert comparison["data"]["auto"]["left_out"] == []
    report = (repo.root / ".mlops-ci" / "report.md").read_text()
    assert "1,000 → 900" in report and "out/parts/a.csv" in report


def test_plotted_outputs_are_the_models_not_its_data(tmp_path: Path):
    """A table dvc.yaml declares as a plot (here a plotted directory) is left out with the
    reason; the same table declared under data.tables is profiled."""
    for policy, plotted_left_out in (
        ("artifact: model\n", True),
        ("artifact: model\ndata:\n  tables: [out/parts/a.csv]\n", False),
    ):
        root = tmp_path / ("undeclared" if plotted_left_out else "declared")
        repo = DataProject.create(root / "repo", table(1000), policy)
        dvc_yaml = (repo.root / "dvc.yaml").read_text()
        repo.write("dvc.yaml", dvc_yaml + "plots:\n  - out/parts\n")
        repo.commit("plot the parts")
        repo.git("checkout", "-qb", "candidate")
        repo.write_table("data/raw.csv", table(1000, seed=1).iloc[:900])
        repo.add("data/raw.csv")
        repo.repro()
        repo.commit("a smaller raw table")
        repo.run(MLOPS_CI, "compare", "--baseline", "main")
        data = json.loads((repo.root / ".mlops-ci" / "comparison.json").read_text())["data"]
        tables = {t["path"] for t in data["tables"]}
        left = {e["path"]: e["reason"] for e in data["auto"]["left_out"]}
        if plotted_left_out:
            assert tables == {"data/raw.csv", "out/train.csv"}
            assert set(left) == {"out/parts/a.csv", "out/parts/b.csv"}
            assert left["out/parts/a.csv"].startswith("a plot (dvc.yaml declares it)")
            repo.run(MLOPS_CI, "report")
            report = (repo.root / ".mlops-ci" / "report.md").read_text()
            assert "its plots): out/parts/a.csv, out/parts/b.csv. Declare one" in report
            # The oracle: the files DVC itself plots (both changed) are what the line names.
            (line,) = [x for x in report.splitlines() if x.startswith("Not profiled, being")]
            named = line.split("(its plots): ", 1)[1].split(". Declare one")[0].split(", ")
            assert sorted(named) == dvc_plot_files(repo.root)
            assert "**Table out/parts/a.csv**" not in report
        else:
            assert tables == {"data/raw.csv", "out/train.csv", "out/parts/a.csv"}
            assert set(left) == {"out/parts/b.csv"}


def test_the_byte_budget_leaves_tables_out_and_says_why(tmp_path: Path):
    policy = "artifact: model\ndata:\n  tables: [data/raw.csv]\n  max_auto_bytes: 30000\n"
    repo = _change(tmp_path, policy)
    repo.run(MLOPS_CI, "compare", "--baseline", "main")
    repo.run(MLOPS_CI, "report")
    comparison = json.loads((repo.root / ".mlops-ci" / "comparison.json").read_text())
    tables = {t["path"]: t for t in comparison["data"]["tables"]}
    assert "auto" not in tables["data/raw.csv"]  # declared
    left = {e["path"]: e["reason"] for e in comparison["data"]["auto"]["left_out"]}
    assert "out/train.csv" in left and "data.max_auto_bytes" in left["out/train.csv"]
    assert set(tables) | set(left) == {
        "data/raw.csv", "out/train.csv", "out/parts/a.csv", "out/parts/b.csv"}  # fmt: skip
    report = (repo.root / ".mlops-ci" / "report.md").read_text()
    assert "**Table out/train.csv**: not profiled" in report
    assert "declare it under data.tables" in report


def test_auto_false_profiles_only_what_is_declared(tmp_path: Path):
    repo = _change(tmp_path, "artifact: model\ndata: {auto: false}\n")
    repo.run(MLOPS_CI, "compare", "--baseline", "main")
    comparison = json.loads((repo.root / ".mlops-ci" / "comparison.json").read_text())
    assert comparison["data"]["tables"] == [] and "auto" not in comparison["data"]


def test_a_new_test_split_of_the_reference_pipeline_shows_both_row_counts(trained_repo: Path):
    """No `data:` section: the prepare stage's directory output changed, so its tables are
    profiled and the report shows their rows at both revisions (sklearn's split sizes)."""
    from sklearn.model_selection import train_test_split

    from mlops_ci.cli import main
    from mlops_ci.commands.demo import set_param
    from mlops_ci.project.git import Git
    from tests.conftest import git_commit_all

    assert "data" not in yaml_keys(trained_repo / "mlops-ci.yaml")
    Git(trained_repo).run("checkout", "--quiet", "-b", "split")
    set_param(trained_repo, "data.test_size", 0.3)
    assert main(["train", "-C", str(trained_repo)]) == 0
    git_commit_all(trained_repo, "A larger test split")
    assert main(["compare", "-C", str(trained_repo), "--baseline", "main"]) == 0
    assert main(["report", "-C", str(trained_repo)]) == 0
    run_dir = trained_repo / ".mlops-ci"
    tables = {t["path"]: t for t in json.loads((run_dir / "comparison.json").read_text())
              ["data"]["tables"]}  # fmt: skip
    sizes = {s: [len(p) for p in train_test_split(range(569), test_size=s)] for s in (0.25, 0.3)}
    test = tables["data/prepared/test.csv"]
    assert (test["baseline"]["rows"], test["candidate"]["rows"]) == (sizes[0.25][1], sizes[0.3][1])
    train = tables["data/prepared/train.csv"]
    assert (train["baseline"]["rows"], train["candidate"]["rows"]) == (
        sizes[0.25][0], sizes[0.3][0])  # fmt: skip
    report = (run_dir / "report.md").read_text()
    assert f"**Table data/prepared/test.csv**: 🔁 changed · rows {sizes[0.25][1]} → " in report
    # The model's predictions changed too; they are its output, which the intervals compare.
    left = {e["path"]: e["reason"] for e in json.loads((run_dir / "comparison.json").read_text())
            ["data"]["auto"]["left_out"]}  # fmt: skip
    assert "eval/predictions.csv" not in tables
    assert left["eval/predictions.csv"].startswith("the model's predictions")
    assert (
        "Not profiled, being the model's outputs that the report compares elsewhere (its "
        "predictions file): eval/predictions.csv. Declare one under data.tables"
    ) in report


def dvc_plot_files(root: Path) -> list[str]:
    """The data files DVC's own `plots show` reads in the workspace."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return sorted(repo.plots.show()["workspace"]["sources"]["data"])


def yaml_keys(path: Path) -> set[str]:
    import yaml

    return set(yaml.safe_load(path.read_text()) or {})
