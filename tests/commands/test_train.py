"""`mlops-ci train` on real git + DVC repositories of the reference project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlops_ci.cli import main
from mlops_ci.commands.demo import set_param
from mlops_ci.project.git import Git


def train(repo: Path, *args: str) -> tuple[int, dict]:
    code = main(["train", "-C", str(repo), *args])
    document = json.loads((repo / ".mlops-ci" / "train.json").read_text())
    return code, document


def statuses(document: dict) -> dict[str, str]:
    return {stage["name"]: stage["status"] for stage in document["stages"]}


def test_second_train_runs_no_stage(trained_repo: Path) -> None:
    code, document = train(trained_repo)
    assert code == 0
    assert statuses(document) == {
        "prepare": "unchanged",
        "train": "unchanged",
        "evaluate": "unchanged",
    }
    assert document["schema_version"] == 1 and document["kind"] == "train"


def test_train_params_rerun_train_and_evaluate_only(trained_repo: Path) -> None:
    before = json.loads((trained_repo / "eval/metrics.json").read_text())
    set_param(trained_repo, "train.logistic_regression.C", 0.01)
    code, document = train(trained_repo)
    assert code == 0
    assert statuses(document) == {"prepare": "unchanged", "train": "ran", "evaluate": "ran"}
    after = json.loads((trained_repo / "eval/metrics.json").read_text())
    assert after["accuracy"] != before["accuracy"] or after["log_loss"] != before["log_loss"]
    assert all(stage["duration_s"] >= 0 for stage in document["stages"])


def test_reverted_params_restore_from_run_cache(trained_repo: Path) -> None:
    set_param(trained_repo, "train.logistic_regression.C", 0.01)
    train(trained_repo)
    Git(trained_repo).run("checkout", "--", "params.yaml")
    _, document = train(trained_repo)
    assert statuses(document)["train"] == "restored"
    assert {s["source"] for s in document["stages"] if s["status"] == "restored"} == {"run-cache"}


def test_fresh_clone_with_pull_restores_every_stage(trained_repo: Path, tmp_path: Path) -> None:
    clone = trained_repo.parent / "fresh-clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(trained_repo.parent / "origin.git"), str(clone)], check=True
    )
    assert not (clone / "models" / "model.pkl").exists()
    code, document = train(clone, "--pull")
    assert code == 0
    assert document["pulled"] is True
    assert set(statuses(document).values()) == {"restored"}, document["stages"]
    assert (clone / "models" / "model.pkl").exists()
    assert (clone / "eval" / "predictions.csv").exists()


def test_push_fills_the_remote(trained_repo: Path) -> None:
    set_param(trained_repo, "train.logistic_regression.C", 0.3)
    remote = trained_repo.parent / "dvc-remote"
    before = {p for p in remote.rglob("*") if p.is_file()}
    code, document = train(trained_repo, "--push")
    assert code == 0 and document["pushed"] is True
    after = {p for p in remote.rglob("*") if p.is_file()}
    assert len(after - before) >= 3  # new model, predictions, run-cache entries


def test_failing_stage_names_stage_and_keeps_finished_outputs(
    trained_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    set_param(trained_repo, "data.test_size", 0.3)
    set_param(trained_repo, "train.model", "no_such_model")
    code = main(["train", "-C", str(trained_repo)])
    err = capfd.readouterr().err
    assert code == 2
    assert "stage 'train' failed" in err
    assert "train.model must be one of" in err  # the tail of the stage's own output
    document = json.loads((trained_repo / ".mlops-ci/train.json").read_text())
    assert statuses(document) == {"prepare": "ran", "train": "failed", "evaluate": "skipped"}
    assert "output_tail" in document
    lock = yaml.safe_load((trained_repo / "dvc.lock").read_text())
    assert lock["stages"]["prepare"]["params"]["params.yaml"]["data"]["test_size"] == 0.3


def test_outside_a_git_repo(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "-C", str(tmp_path)]) == 2
    assert "not inside a git repository" in capfd.readouterr().err


def test_outside_a_dvc_repo(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    Git(tmp_path).run("init", "--quiet")
    assert main(["train", "-C", str(tmp_path)]) == 2
    assert "not a DVC project" in capfd.readouterr().err


def test_broken_dvc_yaml(trained_repo: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (trained_repo / "dvc.yaml").write_text("stages:\n  train:\n    cmd: [unclosed\n")
    assert main(["train", "-C", str(trained_repo)]) == 2
    err = capfd.readouterr().err
    assert "dvc.yaml" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_set_refuses_a_params_file_outside_the_repository(
    trained_repo: Path, where: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # The attack: `-S FILE:KEY=VALUE` naming a file beside (or behind a symlink out of) the repo.
    outside = trained_repo.parent / "outside.yaml"
    outside.write_text("key: 0\n")
    if where == "parent":
        spec = "../outside.yaml:key=1"
    elif where == "absolute":
        spec = f"{outside}:key=1"
    else:
        (trained_repo / "link.yaml").symlink_to(outside)
        spec = "link.yaml:key=1"
    assert main(["train", "-C", str(trained_repo), "-S", spec]) == 2
    assert "outside the repository" in capfd.readouterr().err
    assert outside.read_text() == "key: 0\n"


def test_ctrl_c_during_a_stage_exits_130(trained_repo: Path) -> None:
    # A stage that waits; Ctrl-C in a terminal sends SIGINT to the whole foreground group.
    started = trained_repo / "started"
    pipeline = yaml.safe_load((trained_repo / "dvc.yaml").read_text())
    pipeline["stages"]["wait"] = {
        "cmd": "python -c \"import time; open('started', 'w').close(); time.sleep(120)\""
    }
    (trained_repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    mlops_ci = Path(sys.executable).with_name("mlops-ci")
    proc = subprocess.Popen(
        [str(mlops_ci), "train", "-C", str(trained_repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for _ in range(600):
            if started.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), proc.communicate()[1][-2000:]
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert "fix the stage" not in err
