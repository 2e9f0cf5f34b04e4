"""`deploy.verify` and `test_data`: how a deployed bundle is checked before the switch, for
models with a tabular test set (predictions on recorded rows) and without (checksums, or the
project's own command)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mlops_ci.project.errors import ConfigError, VerificationFailed
from mlops_ci.project.git import Git
from mlops_ci.project.settings import load_settings, parse_settings
from mlops_ci.registry import bundle
from tests.conftest import policy_with


def build(repo: Path) -> Path:
    sha = Git(repo).out("rev-parse", "HEAD")
    return bundle.build_bundle(
        repo, repo / ".mlops-ci", version="v0.1.0", sha=sha, settings=load_settings(repo)
    )


def test_verify_defaults_to_predictions_and_takes_three_values() -> None:
    assert parse_settings("artifact: a\n").deploy.verify == "predictions"
    assert parse_settings("deploy: {verify: checksums}\n").deploy.verify == "checksums"
    command = parse_settings("deploy: {verify: command, verify_command: ./check.sh}\n").deploy
    assert (command.verify, command.verify_command) == ("command", "./check.sh")
    with pytest.raises(ConfigError, match=r"deploy\.verify must be one of predictions"):
        parse_settings("deploy: {verify: none}\n")


def test_checksums_only_needs_no_test_rows(trained_repo: Path) -> None:
    """A model without a tabular test set: no test_data, no predictions file at all."""
    policy_with(trained_repo, "deploy:\n  verify: checksums\n", drop="test_data")
    policy_with(trained_repo, drop="predictions")
    out = build(trained_repo)
    assert not (out / bundle.SAMPLES).exists()
    assert bundle.verify_bundle(out, env=os.environ) == {
        "checksums": "ok",
        "mode": "checksums",
        "rows": 0,
    }
    (out / "model.pkl").write_bytes(b"tampered")
    with pytest.raises(VerificationFailed, match=r"model\.pkl does not match its sha256"):
        bundle.verify_bundle(out, env=os.environ)


@pytest.mark.parametrize("passes", [True, False])
def test_a_verify_command_checks_the_bundle_without_tokens(
    trained_repo: Path, passes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = trained_repo / "check_bundle.py"
    script.write_text(
        "import os, pickle, sys\n"
        "assert 'GITHUB_TOKEN' not in os.environ, 'a write token reached the check'\n"
        "model = pickle.load(open(os.path.join(sys.argv[1], 'model.pkl'), 'rb'))\n"
        f"sys.exit(0 if {passes} and hasattr(model, 'predict') else 3)\n"
    )
    command = f"{sys.executable} {script} {{bundle}}"
    policy_with(
        trained_repo, f"deploy:\n  verify: command\n  verify_command: '{command}'\n", "test_data"
    )
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")  # the job's token, as in CI
    out = build(trained_repo)
    assert not (out / bundle.SAMPLES).exists()
    if passes:
        checked = bundle.verify_bundle(out, env=os.environ)
        assert checked["mode"] == "command" and checked["command"] == sys.executable
    else:
        with pytest.raises(VerificationFailed, match=r"deploy\.verify_command exited 3"):
            bundle.verify_bundle(out, env=os.environ)


def test_predictions_without_test_data_says_what_to_set(trained_repo: Path) -> None:
    """test_data's default is the reference pipeline's split; elsewhere the error says to set
    it or to verify by checksums."""
    policy_with(trained_repo, drop="test_data")
    (trained_repo / "dvc.yaml").write_text(
        (trained_repo / "dvc.yaml").read_text().replace("data/prepared", "data/split")
    )
    Git(trained_repo).commit_all("Move the split")
    with pytest.raises(ConfigError) as caught:
        build(trained_repo)
    message = str(caught.value)
    assert "data/prepared/test.csv does not exist" in message
    assert "deploy.verify: checksums" in message
