"""Deploy, verify before the switch, roll back: local directory, S3 (moto on loopback), command."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.ci.output import outputs_from_run_dir
from mlops_ci.cli import main
from mlops_ci.commands import deploy as deploy_command
from mlops_ci.commands import promote
from mlops_ci.commands.demo import set_param
from mlops_ci.commands.train import run_train
from mlops_ci.project.errors import VerificationFailed
from mlops_ci.project.git import Git
from mlops_ci.registry import bundle, targets
from mlops_ci.registry.deploy import deploy_bundle
from tests.conftest import copy_project, git_commit_all
from tests.registry.test_bundle import commit_model_out_of_step

GTO = str(Path(sys.executable).with_name("gto"))


@pytest.fixture(scope="session")
def two_versions_template(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained reference project plus a second trained commit (a smaller C)."""
    base = tmp_path_factory.mktemp("two-versions") / "reference"
    shutil.copytree(trained_template, base, symlinks=True)
    repo = base / "repo"
    Git(repo).run("remote", "set-url", "origin", str(base / "origin.git"))
    set_param(repo, "train.logistic_regression.C", 0.05)
    run_train(repo, repo / ".mlops-ci")
    git_commit_all(repo, "Regularise more")
    Git(repo).run("push", "--quiet", "origin", "HEAD:main")
    return base


@pytest.fixture
def repo(two_versions_template: Path, tmp_path: Path) -> Path:
    """A private copy with v0.1.0 (HEAD~1) and v0.2.0 (HEAD) registered and in staging."""
    repo = copy_project(two_versions_template, tmp_path / "reference")
    promote.promote(repo, repo / ".mlops-ci", rev="HEAD~1", push=True)
    promote.promote(repo, repo / ".mlops-ci", push=True)
    return repo


def current(repo: Path, env: str = "staging") -> str:
    return os.readlink(repo / "deployments" / "classifier" / env / "current")


def deployments(repo: Path) -> list[dict]:
    return json.loads((repo / ".mlops-ci" / "deployments.json").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_versions_side_by_side_and_an_atomic_switch(repo: Path) -> None:
    run_dir = repo / ".mlops-ci"
    first = deploy_command.deploy(repo, run_dir, version="v0.1.0")
    assert (first.previous, first.environment, first.state) == (None, "staging", "success")
    assert current(repo) == "versions/v0.1.0"
    second = deploy_command.deploy(repo, run_dir)  # the version at HEAD
    assert (second.version, second.previous, second.verification["mismatches"]) == (
        "v0.2.0",
        "v0.1.0",
        0,
    )
    assert current(repo) == "versions/v0.2.0"
    versions = repo / "deployments/classifier/staging/versions"
    assert sorted(p.name for p in versions.iterdir()) == ["v0.1.0", "v0.2.0"]
    for version in ("v0.1.0", "v0.2.0"):
        subprocess.run(
            ["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=versions / version, check=True
        )
    meta = json.loads((repo / "deployments/classifier/staging/current/metadata.json").read_text())
    assert meta["git_sha"] == Git(repo).head_sha()
    assert [(d["version"], d["environment"], d["state"]) for d in deployments(repo)] == [
        ("v0.1.0", "staging", "success"),
        ("v0.2.0", "staging", "success"),
    ]
    # Promoting to production deploys to the production environment beside staging.
    promote.promote(repo, run_dir, stage="production")
    assert deploy_command.deploy(repo, run_dir).environment == "production"
    assert current(repo, "production") == "versions/v0.2.0"
    assert current(repo) == "versions/v0.2.0"


def test_a_corrupted_bundle_is_refused_before_the_switch(repo: Path) -> None:
    run_dir = repo / ".mlops-ci"
    deploy_command.deploy(repo, run_dir, version="v0.1.0")
    built = bundle.build_bundle(repo, run_dir, version="v0.2.0", sha=Git(repo).head_sha())
    model = built / "model.pkl"
    model.write_bytes(model.read_bytes()[:-10])
    target = targets.LocalTarget(repo / "deployments")
    with pytest.raises(VerificationFailed, match=r"model\.pkl does not match its sha256"):
        deploy_bundle(
            built, target, artifact="classifier", environment="staging", version="v0.2.0",
            env=os.environ,
        )  # fmt: skip
    assert current(repo) == "versions/v0.1.0"
    assert not (repo / "deployments/classifier/staging/versions/v0.2.0").exists()


def test_a_model_that_predicts_differently_is_refused(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = repo / ".mlops-ci"
    deploy_command.deploy(repo, run_dir)
    commit_model_out_of_step(repo, monkeypatch)
    assert promote.promote(repo, run_dir).version == "v0.3.0"
    assert main(["deploy", "-C", str(repo)]) == 2
    assert "predicts differently from the recorded predictions" in capsys.readouterr().err
    assert current(repo) == "versions/v0.2.0"
    assert not (repo / "deployments/classifier/staging/versions/v0.3.0").exists()
    assert [(d["version"], d["state"]) for d in deployments(repo)][-1] == ("v0.3.0", "failure")
    assert json.loads((run_dir / "deployment.json").read_text())["state"] == "failure"


def test_rollback_restores_the_previous_files_and_records_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = repo / ".mlops-ci"
    deploy_command.deploy(repo, run_dir, version="v0.1.0")
    v1_model = sha256(repo / "deployments/classifier/staging/current/model.pkl")
    deploy_command.deploy(repo, run_dir)
    assert sha256(repo / "deployments/classifier/staging/current/model.pkl") != v1_model
    tags_before = set(Git(repo).tags())
    capsys.readouterr()
    assert main(["rollback", "-C", str(repo), "--stage", "staging", "--push", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["registry"]["from_version"], doc["registry"]["to_version"]) == ("v0.2.0", "v0.1.0")
    assert current(repo) == "versions/v0.1.0"
    live = repo / "deployments/classifier/staging/current"
    assert sha256(live / "model.pkl") == v1_model
    assert json.loads((live / "metadata.json").read_text())["git_sha"] == Git(repo).rev_parse(
        "HEAD~1"
    )
    # New tags only: the history is all still there, and gto agrees on the stage.
    assert tags_before < set(Git(repo).tags())
    shown = subprocess.run(
        [GTO, "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(shown)["classifier"]["stage"]["staging"] == "v0.1.0"
    last = deployments(repo)[-1]
    assert (last["version"], last["environment"], last["state"]) == ("v0.1.0", "staging", "success")


def test_a_command_target_gets_the_verified_bundle(repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "ship.py"
    script.write_text(
        "import json, os, sys\n"
        "out = {'argv': sys.argv[1:], 'version': os.environ['MLOPS_CI_VERSION'],\n"
        "       'files': sorted(os.listdir(sys.argv[-1])),\n"
        "       'tokens': sorted(k for k in os.environ if k.endswith('TOKEN'))}\n"
        "open(os.environ['SHIP_LOG'], 'w').write(json.dumps(out))\n"
    )
    log = tmp_path / "ship.json"
    target = (
        f"command:{shlex.quote(sys.executable)} {shlex.quote(str(script))} --env {{environment}} "
        + shlex.quote('{"dry_run": true}')
    )
    result = deploy_command.deploy(
        repo,
        repo / ".mlops-ci",
        target=target,
        env={**os.environ, "SHIP_LOG": str(log), "GITHUB_TOKEN": "t", "MLOPS_CI_TOKEN": "t"},
    )
    shipped = json.loads(log.read_text())
    assert shipped["tokens"] == []  # the target is the repository's program: no write token
    assert shipped["argv"][:3] == ["--env", "staging", '{"dry_run": true}']
    assert shipped["version"] == "v0.2.0"
    assert set(shipped["files"]) == {
        "model.pkl",
        "metadata.json",
        "model-card.md",
        "samples.csv",
        "SHA256SUMS",
    }
    assert result.verification["mismatches"] == 0
    # What the promote and deploy actions hand to later steps comes from these documents.
    outputs = outputs_from_run_dir(repo / ".mlops-ci")
    assert (outputs["version"], outputs["stage"]) == ("v0.2.0", "staging")
    assert outputs["deploy-url"] == result.location


def test_s3_deploy_against_moto_on_loopback(repo: Path, moto_s3: str) -> None:
    import boto3

    run_dir = repo / ".mlops-ci"
    first = deploy_command.deploy(repo, run_dir, target="s3://models/serving", version="v0.1.0")
    assert first.location == "s3://models/serving/classifier/staging/versions/v0.1.0"
    second = deploy_command.deploy(repo, run_dir, target="s3://models/serving")
    assert second.previous == "v0.1.0"
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="models")["Contents"]}
    for version in ("v0.1.0", "v0.2.0"):
        prefix = f"serving/classifier/staging/versions/{version}/"
        assert {k[len(prefix) :] for k in keys if k.startswith(prefix)} == {
            "model.pkl",
            "metadata.json",
            "model-card.md",
            "samples.csv",
            "SHA256SUMS",
        }
    pointer = s3.get_object(Bucket="models", Key="serving/classifier/staging/current.json")
    assert json.loads(pointer["Body"].read())["version"] == "v0.2.0"
    # A damaged object at the target is caught on redeploy and replaced by a fresh upload.
    s3.put_object(
        Bucket="models", Key="serving/classifier/staging/versions/v0.1.0/model.pkl", Body=b"junk"
    )
    again = deploy_command.deploy(repo, run_dir, target="s3://models/serving", version="v0.1.0")
    assert (again.reused, again.previous) == (False, "v0.2.0")
    body = s3.get_object(
        Bucket="models", Key="serving/classifier/staging/versions/v0.1.0/model.pkl"
    )
    assert body["Body"].read() != b"junk"


def two_deployments(repo: Path) -> list[str]:
    """v0.1.0, then v0.2.0, deployed to staging: what a rollback starts from. Returns the tags."""
    run_dir = repo / ".mlops-ci"
    deploy_command.deploy(repo, run_dir, version="v0.1.0")
    deploy_command.deploy(repo, run_dir)
    return sorted(Git(repo).tags())


def gto_stage(repo: Path, stage: str = "staging") -> str | None:
    shown = subprocess.run(
        [GTO, "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(shown)["classifier"]["stage"].get(stage)


def test_a_rollback_whose_deploy_fails_leaves_the_registry_as_it_was(
    repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The mistake: rollback wrote (and pushed) its tags, then the deploy failed: the registry
    # said v0.1.0 was in staging while v0.2.0 was live, and a rerun refused ("nothing to roll
    # back to").
    tags_before = two_deployments(repo)
    capfd.readouterr()
    assert main(["rollback", "-C", str(repo), "--push", "--target", "command:false"]) == 3
    assert sorted(Git(repo).tags()) == tags_before
    assert gto_stage(repo) == "v0.2.0"
    assert "the registry is unchanged" in capfd.readouterr().err
    assert current(repo) == "versions/v0.2.0"
    # Once the target works, the same command rolls back.
    assert main(["rollback", "-C", str(repo), "--push"]) == 0
    assert (gto_stage(repo), current(repo)) == ("v0.1.0", "versions/v0.1.0")


def test_a_rollback_whose_tags_cannot_be_pushed_switches_the_deployment_back(
    repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tags_before = two_deployments(repo)
    hook = repo.parent / "origin.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'tags are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    capfd.readouterr()
    assert main(["rollback", "-C", str(repo), "--push"]) == 3
    err = capfd.readouterr().err
    assert "tags are frozen today" in err and "switched back to v0.2.0" in err
    assert sorted(Git(repo).tags()) == tags_before
    assert (gto_stage(repo), current(repo)) == ("v0.2.0", "versions/v0.2.0")


def test_a_fresh_clone_deploys_from_the_configured_remote(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A fresh runner: no DVC cache, and the committed relative remote does not resolve there.
    run_train(repo, repo / ".mlops-ci", push=True)  # main's job pushed v0.2.0's outputs
    clone = tmp_path / "runner" / "work" / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(repo.parent / "origin.git"), str(clone)], check=True
    )
    assert not (clone / "models" / "model.pkl").exists()
    capfd.readouterr()
    code = main(["deploy", "-C", str(clone)])
    err = capfd.readouterr().err
    assert code in (2, 3), err
    assert "unexpected error" not in err and "dvc pull" in err
    monkeypatch.setenv("MLOPS_CI_REMOTE_URL", str(repo.parent / "dvc-remote"))
    assert main(["deploy", "-C", str(clone)]) == 0
    assert current(clone) == "versions/v0.2.0"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_command_target_that_hangs_is_stopped(repo: Path, tmp_path: Path) -> None:
    # The mistake: a `command:` target had no timeout; a hung upload held the job for hours.
    script = tmp_path / "hang.py"
    script.write_text(
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "open(os.environ['PIDS'], 'w').write(f'{os.getpid()} {child.pid}')\n"
        "time.sleep(600)\n"
    )
    pids = tmp_path / "pids"
    env = {**os.environ, "PIDS": str(pids), "MLOPS_CI_DEPLOY_TIMEOUT": "2"}
    target = f"command:{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    mlops_ci = str(Path(sys.executable).with_name("mlops-ci"))
    proc = subprocess.run(
        [mlops_ci, "deploy", "-C", str(repo), "--target", target],
        capture_output=True, text=True, env=env, timeout=90, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "did not finish within 2 s" in proc.stderr
    for pid in map(int, pids.read_text().split()):  # the program and what it started
        assert not alive(pid)
    assert json.loads((repo / ".mlops-ci" / "deployment.json").read_text())["state"] == "failure"


def test_a_rollback_whose_second_tag_fails_leaves_no_tag_and_the_old_version_live(
    repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # git cannot write the assignment (its ref is locked by another git process): the
    # unassignment alone would already move the stage, so it must not stay either.
    tags_before = two_deployments(repo)
    (repo / ".git" / "refs" / "tags" / "classifier#staging#4.lock").write_text("")
    capfd.readouterr()
    assert main(["rollback", "-C", str(repo)]) == 2
    assert sorted(Git(repo).tags()) == tags_before
    assert (gto_stage(repo), current(repo)) == ("v0.2.0", "versions/v0.2.0")
    err = capfd.readouterr().err
    assert "cannot create tag classifier#staging#4" in err and "switched back to v0.2.0" in err
