"""The root action (the marketplace entry) and the one version every reference agrees with."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mlops_ci import __version__
from tests.lint import tools
from tests.test_actions import action_as_workflow

ROOT = Path(__file__).parents[1]
ROOT_ACTION = ROOT / "action.yml"
# Everything a user copies a version from.
SHIPPED = [
    ROOT_ACTION,
    *sorted(ROOT.glob("actions/*/action.yml")),
    *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
    *sorted((ROOT / "templates").rglob("*.yml")),
    ROOT / ".gitlab-ci.yml",
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
OWN_REF = re.compile(r"mlops-ci/mlops-ci(?:/[\w./-]+)?@(v[\w.]+)")
PIN = re.compile(r"mlops[-_]ci(?:\[[\w,]+\])?==([\w.]+)")
INCLUDE_REF = re.compile(r"^\s*ref: (v[\w.]+)", re.M)


def test_every_version_reference_agrees_with_the_package():
    major = "v" + __version__.split(".")[0]
    found = []
    for path in SHIPPED:
        text = path.read_text()
        where = path.relative_to(ROOT)
        for ref in OWN_REF.findall(text) + INCLUDE_REF.findall(text):
            found.append(ref)
            assert ref == major, f"{where}: @{ref}, but the package is {__version__} ({major})"
        for pin in PIN.findall(text):
            found.append(pin)
            assert pin == __version__, f"{where}: mlops-ci=={pin}, but the package is {__version__}"
    assert len(found) > 20, "the scan found almost nothing: is the pattern still right?"


def test_the_gitlab_template_pins_this_release():
    template = yaml.safe_load((ROOT / "templates/gitlab/mlops-ci.gitlab-ci.yml").read_text())
    assert template["variables"]["MLOPS_CI_INSTALL"] == f"mlops-ci=={__version__}"


def test_only_the_root_action_carries_marketplace_branding():
    root = yaml.safe_load(ROOT_ACTION.read_text())
    assert root["branding"] and root["name"] == "mlops-ci"
    for path in ROOT.glob("actions/*/action.yml"):
        assert "branding" not in yaml.safe_load(path.read_text()), path


def test_the_root_action_is_setup_then_pr_with_their_inputs():
    root = yaml.safe_load(ROOT_ACTION.read_text())
    steps = root["runs"]["steps"]
    assert [s["uses"] for s in steps] == [
        "mlops-ci/mlops-ci/actions/setup@v0",
        "mlops-ci/mlops-ci/actions/pr@v0",
    ]
    pr = yaml.safe_load((ROOT / "actions/pr/action.yml").read_text())
    setup = yaml.safe_load((ROOT / "actions/setup/action.yml").read_text())
    passed = {**steps[0]["with"], **steps[1]["with"]}
    for name in root["inputs"]:
        assert name in pr["inputs"] or name in setup["inputs"], name
        assert f"inputs.{name} }}" in str(passed), f"input {name} is never passed on"
    # Every input of `pr` reaches it; the outputs are the `pr` step's.
    assert set(pr["inputs"]) <= set(steps[1]["with"])
    for spec in root["outputs"].values():
        assert spec["value"].startswith("${{ steps.pr.outputs.")


def test_the_root_action_passes_actionlint_and_the_schema():
    assert (
        tools.actionlint(
            {"action.yml": action_as_workflow(yaml.safe_load(ROOT_ACTION.read_text()))}
        )
        == []
    )
    proc = tools.check_jsonschema("vendor.github-actions", [ROOT_ACTION])
    assert proc.returncode == 0, proc.stdout + proc.stderr
