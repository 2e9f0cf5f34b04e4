"""`mlops_ci.ci.output`: how the package hands outputs, env and masks back to the runner."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from mlops_ci.ci.output import (
    export_credentials,
    format_heredoc,
    input_env_name,
    main,
    outputs_from_run_dir,
    read_input,
    write_outputs,
)
from mlops_ci.project.errors import ConfigError


def parse_runner_file(text: str) -> dict[str, str]:
    """Read a $GITHUB_OUTPUT file the way the runner does (`name<<DELIM` ... `DELIM`)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        name, sep, delimiter = line.partition("<<")
        assert sep, f"not a heredoc line: {line!r}"
        end = lines.index(delimiter, i + 1)
        values[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return values


def test_input_env_names():
    assert input_env_name("fetch-baseline") == "MLOPS_CI_INPUT_FETCH_BASELINE"
    env = {"MLOPS_CI_INPUT_POST": " true ", "MLOPS_CI_INPUT_RUN_DIR": ""}
    assert read_input("run-dir", ".mlops-ci", env) == ".mlops-ci"
    assert read_input("post", environ=env) == "true"


def test_outputs_use_a_random_delimiter_that_values_cannot_forge(tmp_path: Path):
    out = tmp_path / "output.txt"
    # A value that tries to close its block and smuggle in `verdict=pass`.
    hostile = "line one\nghadelimiter_0\nverdict<<EOF\npass\nEOF"
    assert write_outputs({"summary": hostile, "verdict": "fail"}, {"GITHUB_OUTPUT": str(out)})
    text = out.read_text()
    assert parse_runner_file(text) == {"summary": hostile, "verdict": "fail"}
    delimiters = re.findall(r"^[a-z]+<<(ghadelimiter_[0-9a-f]{32})$", text, re.M)
    assert len(set(delimiters)) == 2  # one fresh delimiter per value
    assert format_heredoc("a", "x") != format_heredoc("a", "x")


def test_outside_github_nothing_is_written(tmp_path: Path):
    assert write_outputs({"verdict": "pass"}, {}) is False
    with pytest.raises(ConfigError):
        format_heredoc("bad name", "x")


def write(run_dir: Path, name: str, data: dict) -> None:
    run_dir.mkdir(exist_ok=True)
    (run_dir / name).write_text(json.dumps(data))


def test_outputs_from_the_run_directory(tmp_path: Path):
    run = tmp_path / ".mlops-ci"
    assert outputs_from_run_dir(run)["verdict"] == ""  # missing documents: empty outputs
    write(run, "verdict.json", {"verdict": "fail", "summary": "accuracy dropped"})
    write(
        run,
        "comparison.json",
        {
            "baseline": {"sha": "b" * 40},
            "metrics": [{"status": "regressed"}, {"status": "improved"}, {"status": "regressed"}],
        },
    )
    write(run, "train.json", {"stages": [{"status": "ran"}, {"status": "restored"}]})
    (run / "report.md").write_text("# report")
    outputs = outputs_from_run_dir(run)
    assert outputs["verdict"] == "fail"
    assert outputs["regressed"] == "2"
    assert outputs["improved"] == "1"
    assert outputs["baseline-sha"] == "b" * 40
    assert outputs["stages-ran"] == outputs["stages-restored"] == "1"
    assert outputs["report-path"].endswith("report.md")


def test_module_entry_point_sets_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = tmp_path / "run"
    write(run, "verdict.json", {"verdict": "pass", "summary": "ok"})
    out = tmp_path / "output.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert main(["outputs", "--run-dir", str(run), "--only", "verdict"]) == 0
    assert parse_runner_file(out.read_text()) == {"verdict": "pass"}


def test_credentials_are_masked_and_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env_file = tmp_path / "env.txt"
    monkeypatch.setenv("GITHUB_ENV", str(env_file))
    log = io.StringIO()
    names = export_credentials(
        "AWS_ACCESS_KEY_ID=AKIA123\n# note\nAWS_SECRET_ACCESS_KEY=s3cr3t", log
    )
    assert names == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert "::add-mask::s3cr3t" in log.getvalue()
    assert parse_runner_file(env_file.read_text())["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    with pytest.raises(ConfigError) as err:
        export_credentials("just-a-secret-value", log)
    assert "just-a-secret-value" not in str(err.value)  # a bad line is never echoed


def test_setup_exports_the_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GITHUB_ENV", str(tmp_path / "env"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    assert main(["setup"]) == 0
    env = parse_runner_file((tmp_path / "env").read_text())
    assert env["DVC_NO_ANALYTICS"] == "1"
    assert Path(env["MLOPS_CI_PYTHON"]).exists()
    assert parse_runner_file((tmp_path / "out").read_text())["mlops-ci-version"]


def test_deploy_version_output_is_the_version_deployed_not_the_one_promoted(tmp_path: Path):
    """A rollback (or `deploy --version`) after a promote in the same run directory: the deploy
    step's `version` output names what is live."""
    import os

    (tmp_path / "promotion.json").write_text(json.dumps({"version": "v0.3.0", "stage": "staging"}))
    (tmp_path / "deployment.json").write_text(json.dumps({"version": "v0.2.0"}))
    os.utime(tmp_path / "promotion.json", ns=(1_000_000_000, 1_000_000_000))
    assert outputs_from_run_dir(tmp_path)["version"] == "v0.2.0"
    os.utime(tmp_path / "deployment.json", ns=(500_000_000, 500_000_000))
    assert outputs_from_run_dir(tmp_path)["version"] == "v0.3.0"  # a promote ran after it
